package center

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
)

// The example city's three levels, one token each, and an operator of
// another enterprise.
const (
	cityToken     = "scope-test-city-supervisor-token"
	countyToken   = "scope-test-county-supervisor-token"
	operatorToken = "scope-test-jh-chem-operator-token"
	foreignToken  = "scope-test-sx-chlor-operator-token"
)

func levels() access.Config {
	return access.Config{Tokens: []access.Token{
		{Name: "sm-city", Role: access.Supervisor, Hash: access.HashToken(cityToken), Scope: access.Scope{Region: "3504"}},
		{Name: "sy-county", Role: access.Supervisor, Hash: access.HashToken(countyToken), Scope: access.Scope{Region: "350404"}},
		{Name: "jh-operator", Role: access.Officer, Hash: access.HashToken(operatorToken), Scope: access.Scope{Enterprises: []string{"91350404MA1X7H2K3Q"}}},
		{Name: "sx-operator", Role: access.Officer, Hash: access.HashToken(foreignToken), Scope: access.Scope{Sites: []string{"sx-chlor"}}},
	}}
}

// TestEachLevelSeesItsScope: over the real centre, the city supervisor
// sees the city's three enterprises, the county supervisor of 三元区 only
// the tank farm there, the tank farm's operator only it — in the sources,
// the roll-up, the alarms, the incidents, the status, the readings, the
// Prometheus API and the console's snapshot; an action outside the scope
// or the role is refused with 403 and not recorded.
func TestEachLevelSeesItsScope(t *testing.T) {
	sites, err := site.LoadDir("../../configs/sites")
	if err != nil {
		t.Fatal(err)
	}
	broker := testenv.Mosquitto(t)
	c := openCenterWith(t, broker.URL(), t.TempDir(), sites, levels())
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()

	now := time.Now()
	ctx := context.Background()
	if err := c.Store().Append(ctx, []storage.Sample{
		{Site: "jh-chem", Gateway: "gw-tank", Source: "nh3-tanks", Point: "nh3-gas-1", Time: now, Value: 90, HasValue: true, Quality: protocol.Good},
		{Site: "xs-coal", Gateway: "gw-mine", Source: "face-3101", Point: "ch4-3101-t1", Time: now, Value: 1.2, HasValue: true, Quality: protocol.Good},
	}); err != nil {
		t.Fatal(err)
	}
	raise := func(key string, g protocol.Grade) []rules.Event {
		p := strings.Split(key, "/")
		return []rules.Event{
			{Type: rules.Raised, Key: key, Site: p[0], Source: p[1], Point: p[2], Condition: rules.Condition(p[3]), Grade: g, Value: 90, Limit: 80, Since: now, Time: now},
			{Type: rules.SourceGradeChanged, Key: p[0] + "/" + p[1], Site: p[0], Source: p[1], Grade: g, Time: now},
		}
	}
	jhAlarm, mineAlarm := "jh-chem/nh3-tanks/nh3-gas-1/HH", "xs-coal/face-3101/ch4-3101-t1/H"
	if err := c.Alerting().HandleEvents(ctx, append(raise(jhAlarm, protocol.Orange), raise(mineAlarm, protocol.Yellow)...)); err != nil {
		t.Fatal(err)
	}

	call := func(method, path, token, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// sitesIn lists the distinct "site" fields anywhere in a JSON answer.
	var sitesIn func(v any, out map[string]bool)
	sitesIn = func(v any, out map[string]bool) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "site" || ok && k == "Site" {
					out[s] = true
				}
				sitesIn(x, out)
			}
		case []any:
			for _, x := range v {
				sitesIn(x, out)
			}
		}
	}
	seen := func(path, token string) []string {
		t.Helper()
		code, body := call("GET", path, token, "")
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		set := map[string]bool{}
		sitesIn(v, set)
		var out []string
		for s := range set {
			out = append(out, s)
		}
		slices.Sort(out)
		return out
	}
	query := "/api/v1/query?query=" + url.QueryEscape("hazardwatch_value")
	for _, lv := range []struct {
		name, token string
		sites       []string // the example sites in the scope
		withData    []string // those with an alarm or a reading above
		top         string   // the roll-up's top
	}{
		{"city", cityToken, []string{"jh-chem", "sx-chlor", "xs-coal"}, []string{"jh-chem", "xs-coal"}, "350400"},
		{"county", countyToken, []string{"jh-chem"}, []string{"jh-chem"}, "350404"},
		{"operator", operatorToken, []string{"jh-chem"}, []string{"jh-chem"}, ""},
	} {
		for path, want := range map[string][]string{
			"/api/sources":         lv.sites,
			"/api/status":          lv.sites,
			"/api/stream/snapshot": lv.sites,
			"/api/points/latest":   lv.sites,
			"/api/alarms":          lv.withData,
			"/api/incidents":       lv.withData,
			"/api/history":         lv.withData,
		} {
			if got := seen(path, lv.token); !slices.Equal(got, want) {
				t.Errorf("%s: %s shows sites %v, want %v", lv.name, path, got, want)
			}
		}
		code, body := call("GET", query, lv.token, "")
		if code != http.StatusOK {
			t.Fatalf("%s: query: %d %s", lv.name, code, body)
		}
		var res struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range res.Data.Result {
			got = append(got, r.Metric["site"])
		}
		slices.Sort(got)
		if !slices.Equal(slices.Compact(got), lv.withData) {
			t.Errorf("%s: the Prometheus API shows sites %v, want %v", lv.name, got, lv.withData)
		}
		_, body = call("GET", "/api/regions", lv.token, "")
		var tree struct {
			Code    string `json:"code"`
			Sources int    `json:"sources"`
		}
		if err := json.Unmarshal(body, &tree); err != nil || tree.Code != lv.top || tree.Sources != 2*len(lv.sites) {
			t.Errorf("%s: the roll-up's top %q with %d sources, want %q with %d: %s", lv.name, tree.Code, tree.Sources, lv.top, 2*len(lv.sites), body)
		}
	}

	ack := "/api/alarms/" + url.PathEscape(jhAlarm) + "/ack"
	for _, c := range []struct {
		who, token string
		want       int
	}{
		{"another enterprise's operator", foreignToken, http.StatusForbidden},
		{"the county supervisor (no operator's role)", countyToken, http.StatusForbidden},
		{"the city supervisor (no operator's role)", cityToken, http.StatusForbidden},
		{"the tank farm's operator", operatorToken, http.StatusOK},
	} {
		if code, body := call("POST", ack, c.token, `{"comment":"现场确认"}`); code != c.want {
			t.Errorf("%s acknowledges %s: %d %s, want %d", c.who, jhAlarm, code, body, c.want)
		}
	}
	// The refused ones would have made the operator's a 409; and the
	// journal holds the operator's acknowledgement alone.
	if a, _ := c.Alerting().Alarm(jhAlarm); a.State != protocol.StateAcked {
		t.Errorf("alarm %s is %s, want acked", jhAlarm, a.State)
	}
	for _, who := range []string{"sx-operator", "sy-county", "sm-city"} {
		if acts, err := c.Alerting().OfficerActions(ctx, who, time.Time{}, time.Time{}); err != nil || len(acts) != 0 {
			t.Errorf("%s's recorded actions: %v %v, want none", who, acts, err)
		}
	}
	if code, body := call("POST", "/api/alarms/"+url.PathEscape(mineAlarm)+"/comment", countyToken, `{"comment":"督促处置"}`); code != http.StatusForbidden {
		t.Errorf("三元区's supervisor comments on 永安市's alarm: %d %s, want 403", code, body)
	}
	if code, body := call("POST", "/api/alarms/"+url.PathEscape(mineAlarm)+"/comment", cityToken, `{"comment":"请尽快核实"}`); code != http.StatusOK {
		t.Errorf("the city supervisor comments on 永安市's alarm: %d %s, want 200", code, body)
	}
}
