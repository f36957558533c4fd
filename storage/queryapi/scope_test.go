package queryapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
)

// headerScope reads the sites a test request may see from X-Sites: "*"
// for all, else a comma-separated list (empty: none).
func headerScope(r *http.Request) ([]string, bool) {
	h := r.Header.Get("X-Sites")
	if h == "*" {
		return nil, true
	}
	if h == "" {
		return nil, false
	}
	return strings.Split(h, ","), false
}

func getAs(t *testing.T, srv *httptest.Server, path, sites string, into any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Sites", sites)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, resp, path, into)
}

// TestScopeFiltersPrometheusAndReadings: a request sees the series and
// readings of its sites only — in queries, series, label values, the
// latest readings and histories — whatever its query asks for.
func TestScopeFiltersPrometheusAndReadings(t *testing.T) {
	f := newFixture(t)
	at := f.p1[len(f.p1)-1].Time
	if err := f.store.Append(context.Background(), []storage.Sample{{Site: "t2", Gateway: "gw9", Source: "s9", Point: "q1",
		Time: at, Value: 7, HasValue: true, Quality: protocol.Good}}); err != nil {
		t.Fatal(err)
	}
	prom := httptest.NewServer(Prometheus(f.store.Queryable(), headerScope))
	t.Cleanup(prom.Close)
	sitesOf := func(sites, query string) []string {
		var body promBody
		path := "/api/v1/query?query=" + url.QueryEscape(query) + "&time=" + rfc(at)
		if code := getAs(t, prom, path, sites, &body); code != http.StatusOK {
			t.Fatalf("%s as %q: %d %+v", query, sites, code, body)
		}
		var res promResult
		if err := json.Unmarshal(body.Data, &res); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range res.Result {
			out = append(out, s.Metric["site"])
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	for _, c := range []struct {
		sites, query string
		want         []string
	}{
		{"*", "hazardwatch_value", []string{"t1", "t2"}},
		{"t2", "hazardwatch_value", []string{"t2"}},
		{"t2", `hazardwatch_value{site="t1"}`, nil},
		{"t2", `{__name__=~".+"}`, []string{"t2"}},
		{"", "hazardwatch_value", nil},
		{"t1,t2", `count by (site) (hazardwatch_value)`, []string{"t1", "t2"}},
	} {
		if got := sitesOf(c.sites, c.query); !slices.Equal(got, c.want) {
			t.Errorf("%s as %q: sites %v, want %v", c.query, c.sites, got, c.want)
		}
	}
	var body promBody
	if code := getAs(t, prom, "/api/v1/label/site/values", "t2", &body); code != http.StatusOK || string(body.Data) != `["t2"]` {
		t.Errorf("label values as t2: %d %s", code, body.Data)
	}
	if code := getAs(t, prom, "/api/v1/series?match[]=hazardwatch_value", "t2", &body); code != http.StatusOK || strings.Contains(string(body.Data), `"t1"`) {
		t.Errorf("series as t2: %d %s", code, body.Data)
	}

	readings := httptest.NewServer(ReadingsOf(f.store, func() []*site.Site { return []*site.Site{f.site} }, headerScope))
	t.Cleanup(readings.Close)
	var latest LatestResponse
	if code := getAs(t, readings, "/api/points/latest", "t2", &latest); code != http.StatusOK || len(latest.Points) != 0 {
		t.Errorf("latest as t2: %d, %d points of t1", code, len(latest.Points))
	}
	if code := getAs(t, readings, "/api/points/latest", "*", &latest); code != http.StatusOK || len(latest.Points) != 3 {
		t.Errorf("latest as all: %d, %d points, want t1's 3", code, len(latest.Points))
	}
	var errBody map[string]any
	if code := getAs(t, readings, "/api/points/t1/p1/history", "t2", &errBody); code != http.StatusForbidden {
		t.Errorf("t1's history as t2: %d %v, want 403", code, errBody)
	}
	if code := getAs(t, readings, "/api/points/latest?site=t1", "t2", &errBody); code != http.StatusForbidden {
		t.Errorf("t1's latest as t2: %d %v, want 403", code, errBody)
	}
}
