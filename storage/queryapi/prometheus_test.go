package queryapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// promBody is Prometheus' JSON envelope as a client reads it.
type promBody struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

type promResult struct {
	ResultType string `json:"resultType"`
	Result     []struct {
		Metric map[string]string `json:"metric"`
		Value  []any             `json:"value"`
		Values [][]any           `json:"values"`
	} `json:"result"`
}

func promServer(t *testing.T, f *fixture) *httptest.Server {
	srv := httptest.NewServer(Prometheus(f.store.Queryable()))
	t.Cleanup(srv.Close)
	return srv
}

func unixSeconds(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}

// pair reads a [time, "value"] pair.
func pair(t *testing.T, p []any) (time.Time, float64) {
	t.Helper()
	if len(p) != 2 {
		t.Fatalf("pair %v", p)
	}
	ts, ok := p[0].(float64)
	s, ok2 := p[1].(string)
	if !ok || !ok2 {
		t.Fatalf("pair %v is not [number, string]", p)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.UnixMilli(int64(math.Round(ts * 1000))), v
}

func TestPromInstantQuery(t *testing.T) {
	f := newFixture(t)
	srv := promServer(t, f)
	at := f.p1[len(f.p1)-1].Time.Add(2 * time.Second)
	var body promBody
	path := "/api/v1/query?query=" + url.QueryEscape(`hazardwatch_value{point="p1"}`) + "&time=" + unixSeconds(at)
	if code := get(t, srv, path, &body); code != http.StatusOK || body.Status != "success" {
		t.Fatalf("status %d %+v", code, body)
	}
	var res promResult
	if err := json.Unmarshal(body.Data, &res); err != nil {
		t.Fatal(err)
	}
	if res.ResultType != "vector" || len(res.Result) != 1 {
		t.Fatalf("result %+v, want a vector of one series", res)
	}
	s := res.Result[0]
	if s.Metric["__name__"] != "hazardwatch_value" || s.Metric["site"] != "t1" || s.Metric["source"] != "s1" || s.Metric["point"] != "p1" {
		t.Errorf("labels %v", s.Metric)
	}
	ts, v := pair(t, s.Value)
	if !ts.Equal(at) || v != f.p1[len(f.p1)-1].Value {
		t.Errorf("value %v at %v, want the last appended %v at %v", v, ts, f.p1[len(f.p1)-1].Value, at)
	}

	// RFC 3339 time and a scalar result work too.
	path = "/api/v1/query?query=" + url.QueryEscape("1+1") + "&time=" + rfc(at)
	if code := get(t, srv, path, &body); code != http.StatusOK || !strings.Contains(string(body.Data), `"resultType":"scalar"`) ||
		!strings.Contains(string(body.Data), `"2"`) {
		t.Errorf("1+1: status %d, data %s", code, body.Data)
	}
}

func TestPromRangeQueryMaxOverTime(t *testing.T) {
	f := newFixture(t)
	srv := promServer(t, f)
	start, end, step := f.base.Add(time.Minute), f.base.Add(5*time.Minute), time.Minute
	form := url.Values{
		"query": {`max_over_time(hazardwatch_value{point="p1"}[1m])`},
		"start": {start.Format(time.RFC3339)}, "end": {unixSeconds(end)}, "step": {"1m"},
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		var body promBody
		var code int
		if method == http.MethodGet {
			code = get(t, srv, "/api/v1/query_range?"+form.Encode(), &body)
		} else {
			code = postForm(t, srv, "/api/v1/query_range", form, &body)
		}
		if code != http.StatusOK || body.Status != "success" {
			t.Fatalf("%s: status %d %+v", method, code, body)
		}
		var res promResult
		if err := json.Unmarshal(body.Data, &res); err != nil {
			t.Fatal(err)
		}
		if res.ResultType != "matrix" || len(res.Result) != 1 {
			t.Fatalf("%s: result %+v, want a matrix of one series", method, res)
		}
		// Expected from the appended samples: the largest value in each
		// step's window (t-1m, t].
		var want []float64
		for ts := start; !ts.After(end); ts = ts.Add(step) {
			m := math.Inf(-1)
			for _, sm := range f.p1 {
				if sm.Time.After(ts.Add(-step)) && !sm.Time.After(ts) {
					m = max(m, sm.Value)
				}
			}
			want = append(want, m)
		}
		got := res.Result[0].Values
		if len(got) != len(want) {
			t.Fatalf("%s: %d steps, want %d: %v", method, len(got), len(want), got)
		}
		for i, p := range got {
			ts, v := pair(t, p)
			if !ts.Equal(start.Add(time.Duration(i)*step)) || v != want[i] {
				t.Errorf("%s: step %d = %v at %v, want %v", method, i, v, ts, want[i])
			}
		}
		if _, ok := res.Result[0].Metric["__name__"]; ok {
			t.Errorf("max_over_time kept the metric name: %v", res.Result[0].Metric)
		}
	}
}

func TestPromSeriesAndLabels(t *testing.T) {
	f := newFixture(t)
	srv := promServer(t, f)

	var body promBody
	if code := get(t, srv, "/api/v1/series?match[]="+url.QueryEscape(`hazardwatch_value{site="t1"}`), &body); code != http.StatusOK {
		t.Fatalf("series: status %d %+v", code, body)
	}
	var series []map[string]string
	if err := json.Unmarshal(body.Data, &series); err != nil {
		t.Fatal(err)
	}
	var points []string
	for _, s := range series {
		if s["__name__"] != "hazardwatch_value" || s["site"] != "t1" {
			t.Errorf("series %v", s)
		}
		points = append(points, s["point"])
	}
	// p1 and p2 had values; p3 none.
	if !slices.Equal(points, []string{"p1", "p2"}) {
		t.Errorf("series of points %v, want p1, p2", points)
	}

	// Two match[] sets are a union.
	form := url.Values{"match[]": {`hazardwatch_value{point="p1"}`, `hazardwatch_quality{point="p2"}`}}
	if code := postForm(t, srv, "/api/v1/series", form, &body); code != http.StatusOK {
		t.Fatalf("series POST: status %d %+v", code, body)
	}
	series = nil
	if err := json.Unmarshal(body.Data, &series); err != nil || len(series) != 2 {
		t.Errorf("series union %s (%v), want 2", body.Data, err)
	}

	var values []string
	if code := get(t, srv, "/api/v1/label/point/values", &body); code != http.StatusOK {
		t.Fatalf("label values: status %d %+v", code, body)
	}
	if err := json.Unmarshal(body.Data, &values); err != nil || !slices.Equal(values, []string{"p1", "p2"}) {
		t.Errorf("point values %s, want p1, p2 (%v)", body.Data, err)
	}
	if code := get(t, srv, "/api/v1/label/__name__/values", &body); code != http.StatusOK {
		t.Fatalf("metric names: status %d", code)
	}
	if err := json.Unmarshal(body.Data, &values); err != nil || !slices.Equal(values, []string{"hazardwatch_quality", "hazardwatch_value"}) {
		t.Errorf("metric names %s (%v)", body.Data, err)
	}
	path := "/api/v1/label/point/values?match[]=" + url.QueryEscape(`hazardwatch_value{point="p2"}`) +
		"&start=" + unixSeconds(f.base) + "&end=" + unixSeconds(f.base.Add(time.Hour))
	if code := get(t, srv, path, &body); code != http.StatusOK {
		t.Fatalf("label values with match: status %d", code)
	}
	if err := json.Unmarshal(body.Data, &values); err != nil || !slices.Equal(values, []string{"p2"}) {
		t.Errorf("point values matching p2: %s (%v)", body.Data, err)
	}

	var names []string
	if code := get(t, srv, "/api/v1/labels", &body); code != http.StatusOK {
		t.Fatalf("labels: status %d", code)
	}
	if err := json.Unmarshal(body.Data, &names); err != nil || !slices.Equal(names, []string{"__name__", "point", "site", "source"}) {
		t.Errorf("label names %s (%v)", body.Data, err)
	}
}

func TestPromBadRequestsAreBadData(t *testing.T) {
	f := newFixture(t)
	srv := promServer(t, f)
	now := unixSeconds(f.base)
	for _, tc := range []struct {
		path, naming string
	}{
		{"/api/v1/query?query=" + url.QueryEscape(`hazardwatch_value{`), "parse error"},
		{"/api/v1/query", "parameter query"},
		{"/api/v1/query?query=up&time=tomorrow", "parameter time"},
		{"/api/v1/query?query=up&timeout=soon", "parameter timeout"},
		{"/api/v1/query_range?query=up&start=" + now + "&end=" + now, "parameter step"},
		{"/api/v1/query_range?query=up&start=" + now + "&end=" + now + "&step=-1", "parameter step"},
		{"/api/v1/query_range?query=up&start=" + now + "&end=" + unixSeconds(f.base.Add(-time.Hour)) + "&step=15", "parameter end"},
		{"/api/v1/query_range?query=up&start=" + now + "&end=" + unixSeconds(f.base.Add(24*time.Hour)) + "&step=1", "maximum resolution"},
		{"/api/v1/query_range?query=" + url.QueryEscape(`hazardwatch_value[5m]`) + "&start=" + now + "&end=" + now + "&step=15", "range query"},
		{"/api/v1/series", "parameter match[]"},
		{"/api/v1/series?match[]=" + url.QueryEscape(`{point=~".*"}`), "matches every series"},
		{"/api/v1/labels?match[]=" + url.QueryEscape(`{point=`), "parameter match[]"},
		{"/api/v1/labels?limit=many", "parameter limit"},
	} {
		var body promBody
		code := get(t, srv, tc.path, &body)
		if code != http.StatusBadRequest || body.Status != "error" || body.ErrorType != "bad_data" || !strings.Contains(body.Error, tc.naming) {
			t.Errorf("%s: status %d %+v; want 400 bad_data naming %q", tc.path, code, body, tc.naming)
		}
	}
}

func TestPromBuildInfoAndUnknownEndpoint(t *testing.T) {
	srv := promServer(t, newFixture(t))
	var body promBody
	if code := get(t, srv, "/api/v1/status/buildinfo", &body); code != http.StatusOK || body.Status != "success" {
		t.Fatalf("buildinfo: status %d %+v", code, body)
	}
	var info map[string]string
	if err := json.Unmarshal(body.Data, &info); err != nil {
		t.Fatal(err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(info["version"], "%d.%d", &major, &minor); err != nil || major < 2 {
		t.Errorf("version %q is not a Prometheus version Grafana understands", info["version"])
	}
	if code := get(t, srv, "/api/v1/alerts", &body); code != http.StatusNotFound || body.ErrorType != "not_found" {
		t.Errorf("unknown endpoint: status %d %+v", code, body)
	}
}

func TestReleaseOfLibraryVersion(t *testing.T) {
	for module, want := range map[string]string{"v0.316.0": "3.16.0", "v0.300.1": "3.0.1", "v0.305.2-rc.0": "3.5.2", "v0.54.1": "", "v1.2.3": "", "junk": ""} {
		got, ok := releaseOf(module)
		if got != want || ok != (want != "") {
			t.Errorf("releaseOf(%q) = %q, %v; want %q", module, got, ok, want)
		}
	}
}

func TestPromNonFiniteResultsAndHugeBodies(t *testing.T) {
	srv := promServer(t, newFixture(t))
	var body promBody
	if code := get(t, srv, "/api/v1/query?query="+url.QueryEscape("vector(0/0) or label_replace(vector(1/0), \"x\", \"y\", \"\", \"\")"), &body); code != http.StatusOK {
		t.Fatalf("status %d %+v", code, body)
	}
	if !strings.Contains(string(body.Data), `"NaN"`) || !strings.Contains(string(body.Data), `"+Inf"`) {
		t.Errorf("non-finite values not written as Prometheus does: %s", body.Data)
	}

	huge := url.Values{"query": {strings.Repeat("1+", 1<<20) + "1"}}
	if code := postForm(t, srv, "/api/v1/query", huge, &body); code != http.StatusBadRequest || body.ErrorType != "bad_data" || !strings.Contains(body.Error, "form parameters") {
		t.Errorf("huge POST: status %d %+v", code, body)
	}
}
