package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
)

// TestStreamKeepsToTheScope: a county officer's console gets the snapshot
// and the changes of the county's sites only; an installation-wide one
// gets everything, in the same order.
func TestStreamKeepsToTheScope(t *testing.T) {
	sites, err := site.LoadDir("../configs/sites")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, sites, nil)
	const countyToken = "console-county-token-yongan"
	auth, err := access.New(access.Config{Tokens: []access.Token{
		{Name: "yongan-duty", Role: access.Supervisor, Hash: access.HashToken(countyToken), Scope: access.Scope{Region: "350481"}},
		{Name: "wall", Role: access.Viewer, Hash: access.HashToken(viewerToken)}}}, access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(auth.Middleware(f.con.Handler()))
	t.Cleanup(srv.Close)
	request := func(path, token string) *http.Request {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		return req
	}
	county := openStream(t, request("/api/stream", countyToken))
	all := openStream(t, request("/api/stream", viewerToken))
	snap := expect(county, "snapshot", func(Snapshot) bool { return true })
	if len(snap.Sites) != 1 || snap.Sites[0].ID != "xs-coal" {
		t.Fatalf("the county officer's snapshot shows sites %+v, want only xs-coal of 永安市", snap.Sites)
	}
	for _, s := range snap.Sources {
		if s.Site != "xs-coal" {
			t.Errorf("the county officer's snapshot shows source %s/%s", s.Site, s.Source)
		}
	}
	if snap := expect(all, "snapshot", func(Snapshot) bool { return true }); len(snap.Sites) != len(sites) {
		t.Errorf("the installation-wide snapshot shows %d sites, want %d", len(snap.Sites), len(sites))
	}

	// A warning in 三元区, then one in 永安市: the county's console sees
	// the second as its first alarm; the other console sees both in order.
	now := time.Now()
	outside, inside := "jh-chem/nh3-tanks/nh3-gas-1/HH", "xs-coal/face-3101/ch4-3101-t1/H"
	for _, k := range []string{outside, inside} {
		if err := f.alarm.HandleEvents(context.Background(), []rules.Event{raise(k, protocol.Orange, now)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := expect(county, "alarm", func(AlarmChange) bool { return true }); got.Event.AlarmID != inside {
		t.Errorf("the county officer's first alarm is %s, want %s of its county", got.Event.AlarmID, inside)
	}
	if got := expect(all, "alarm", func(AlarmChange) bool { return true }); got.Event.AlarmID != outside {
		t.Errorf("the installation-wide console's first alarm is %s, want %s", got.Event.AlarmID, outside)
	}

	resp, err := http.DefaultClient.Do(request("/api/stream/snapshot", countyToken))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var plain Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&plain); err != nil {
		t.Fatal(err)
	}
	if len(plain.Sites) != 1 || len(plain.Alarms) != 1 || plain.Alarms[0].Site != "xs-coal" {
		t.Errorf("the county officer's plain snapshot: sites %+v, alarms %d", plain.Sites, len(plain.Alarms))
	}
}

// TestMapTilesOptional: with no tile server the pages load nothing from
// elsewhere; with one, GET /api/map names it and the pages may load
// images from its origin only; a template without {z} is refused.
func TestMapTilesOptional(t *testing.T) {
	csp := func(f *fixture) string {
		resp, err := http.Get(f.srv.URL + "/regions")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Content-Security-Policy")
	}
	plain := newFixture(t, tankFarm(t), nil)
	if got := csp(plain); !strings.Contains(got, "img-src 'self' data:;") {
		t.Errorf("CSP without tiles: %q", got)
	}
	const tiles = "https://tiles.example.gov.cn/{z}/{x}/{y}.png"
	f := newFixture(t, tankFarm(t), func(c *Config) { c.MapTiles = tiles })
	if got := csp(f); !strings.Contains(got, "img-src 'self' data: https://tiles.example.gov.cn;") {
		t.Errorf("CSP with tiles: %q", got)
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/api/map", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || m["tiles"] != tiles {
		t.Errorf("GET /api/map: %v %v", m, err)
	}
	if _, err := New(Config{Sites: func() []*site.Site { return nil }, Alarms: f.alarm, Gateways: f.gws.get, MapTiles: "https://tiles.example/x.png"}); err == nil {
		t.Error("a tile URL without {z} was accepted")
	}
}
