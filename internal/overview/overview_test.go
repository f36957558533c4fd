package overview

import (
	"encoding/json"
	"fmt"
	"strings"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
)

// city is three enterprises in two counties of Sanming and one in Nanping
// (3507), each with one source of two points.
func city(t *testing.T) []*site.Site {
	t.Helper()
	var out []*site.Site
	for _, c := range []struct{ id, region, code string }{
		{"chem-a", "350404", "91350400A"}, {"chem-b", "350404", "91350400B"},
		{"mine-c", "350481", "91350481C"}, {"far-d", "350702", "91350702D"},
	} {
		text := fmt.Sprintf(`id: %s
name: %s 公司
enterprise_code: %q
region: %q
gateways:
  - id: gw
    devices:
      - {id: d1, address: "127.0.0.1:1502"}
sources:
  - id: src
    name: %s 储罐区
    type: tank_farm
    grade: 3
    points:
      - {id: p1, name: 检测器1, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: d1, address: 0}, limits: {h: 40, hh: 80}}
      - {id: p2, name: 检测器2, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: d1, address: 1}, limits: {h: 40, hh: 80}}
`, c.id, c.id, c.code, c.region, c.id)
		s, err := site.Parse(c.id+".yaml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func inputs(t *testing.T) Inputs {
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	sites := city(t)
	// Every point has fresh data but mine-c's p2, silent for a minute.
	var newest []storage.Sample
	for _, s := range sites {
		for _, p := range []string{"p1", "p2"} {
			at := now.Add(-time.Second)
			if s.ID == "mine-c" && p == "p2" {
				at = now.Add(-time.Minute)
			}
			newest = append(newest, storage.Sample{Site: s.ID, Point: p, Time: at, Quality: protocol.Good, HasValue: true})
		}
	}
	return Inputs{
		Sites:     sites,
		Grades:    map[string]protocol.Grade{"chem-a/src": protocol.Red, "mine-c/src": protocol.Blue},
		Fresh:     Freshness(sites, newest, now),
		Incidents: map[string]Incidents{"chem-a/src": {Open: 1, Unacked: 1}, "mine-c/src": {Open: 1, Overdue: 1}},
	}
}

func find(n *Node, code string) *Node {
	if n.Code == code {
		return n
	}
	for _, c := range n.Children {
		if f := find(c, code); f != nil {
			return f
		}
	}
	return nil
}

func TestTreeRollsUpByCounty(t *testing.T) {
	root := Tree(inputs(t), access.Scope{})
	if root.Level != LevelInstallation || root.Sources != 4 || root.Grade != protocol.Red {
		t.Fatalf("root: %+v", root)
	}
	sm := find(root, "350400")
	if sm == nil || sm.Level != "city" || sm.Name != "三明市" || sm.Sources != 3 {
		t.Fatalf("三明市 node: %+v", sm)
	}
	sy := find(sm, "350404")
	if sy.Name != "三元区" || sy.Sources != 2 || sy.ByGrade[protocol.Red] != 1 || sy.ByGrade[protocol.None] != 1 ||
		sy.Incidents != (Incidents{Open: 1, Unacked: 1}) || sy.Grade != protocol.Red || sy.OnlineRate != 1 {
		t.Errorf("三元区: %+v", sy)
	}
	ya := find(sm, "350481")
	if ya.Grade != protocol.Blue || ya.Points != 2 || ya.PointsOnline != 1 || ya.OnlineRate != 0.5 || ya.Incidents.Overdue != 1 {
		t.Errorf("永安市: %+v", ya)
	}
	// Drill-down: county → enterprise → source → point.
	ent := ya.Children[0]
	if ent.Level != LevelEnterprise || ent.Code != "mine-c" || ent.Children[0].Level != LevelSource ||
		len(ent.Children[0].Children) != 2 || *ent.Children[0].Children[1].Online {
		t.Errorf("永安市's drill-down: %+v / %+v", ent, ent.Children[0])
	}
	if sm.Incidents != (Incidents{Open: 2, Unacked: 1, Overdue: 1}) || sm.Points != 6 || sm.PointsOnline != 5 {
		t.Errorf("三明市 totals: %+v", sm)
	}
}

func TestScopes(t *testing.T) {
	in := inputs(t)
	for _, c := range []struct {
		scope   access.Scope
		top     string
		sources int
	}{
		{access.Scope{Region: "3504"}, "city", 3},
		{access.Scope{Region: "350481"}, "county", 1},
		{access.Scope{Sites: []string{"chem-b"}}, LevelInstallation, 1},
		{access.Scope{Enterprises: []string{"91350400A"}, Region: "3504"}, "city", 1},
	} {
		root := Tree(in, c.scope)
		if root.Level != c.top || root.Sources != c.sources {
			t.Errorf("scope %+v: top %s with %d sources, want %s with %d", c.scope, root.Level, root.Sources, c.top, c.sources)
		}
		if n := len(Sources(in, c.scope)); n != c.sources {
			t.Errorf("scope %+v: %d sources listed, want %d", c.scope, n, c.sources)
		}
	}
	// A county scope lists the enterprises directly under the county.
	if root := Tree(in, access.Scope{Region: "350481"}); root.Children[0].Level != LevelEnterprise {
		t.Errorf("county scope's children: %+v", root.Children[0])
	}
}

// TestHandlerServesCallersScope: the API answers for the principal in the
// request: a county officer gets the county, nobody without one anything.
func TestHandlerServesCallersScope(t *testing.T) {
	in := inputs(t)
	grades := []protocol.SourceGrade{{Site: "chem-a", Source: "src", Grade: protocol.Red}, {Site: "mine-c", Source: "src", Grade: protocol.Blue}}
	h := Handler(Config{Sites: func() []*site.Site { return in.Sites }, Grades: func() []protocol.SourceGrade { return grades }})
	get := func(path string, p *access.Principal) (*httptest.ResponseRecorder, []Source) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if p != nil {
			req = req.WithContext(access.NewContext(req.Context(), *p))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var rows []Source
		if path == "/api/sources" && rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), &rows); err != nil {
				t.Fatal(err)
			}
		}
		return rec, rows
	}
	if rec, _ := get("/api/sources", nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("no principal: %d, want 401", rec.Code)
	}
	county := access.Principal{Name: "ya-duty", Role: access.Supervisor, Scope: access.Scope{Region: "350481"}}
	rec, rows := get("/api/sources", &county)
	if rec.Code != http.StatusOK || len(rows) != 1 || rows[0].Site != "mine-c" || rows[0].Grade != protocol.Blue || rows[0].RegionName != "永安市" {
		t.Errorf("county officer's sources: %d %+v", rec.Code, rows)
	}
	// The map reads location.lat and location.lon.
	city := access.Principal{Name: "sm-duty", Role: access.Viewer}
	in.Sites[0].Location = &site.Location{Lat: 26.21, Lon: 117.59}
	if rec, _ := get("/api/sources", &city); !strings.Contains(rec.Body.String(), `"location":{"lat":26.21,"lon":117.59}`) {
		t.Errorf("a source's location in JSON: %s", rec.Body.String())
	}
	rec, _ = get("/api/regions", &county)
	var tree Node
	if err := json.Unmarshal(rec.Body.Bytes(), &tree); err != nil || tree.Code != "350481" || tree.Sources != 1 {
		t.Errorf("county officer's regions: %s", rec.Body.String())
	}
}
