//lint:file-ignore SA1019 the classic dashboard schema (dashboard.Dashboard) is what Grafana's file provisioning loads; the SDK's dashboardv2 needs Grafana's experimental dashboard API.

package grafana

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/site/regions"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
	"github.com/hazardwatch/hazardwatch/storage/queryapi"
)

const (
	sitesDir      = "../../configs/sites"
	dashboardsDir = "../../configs/grafana/dashboards"
)

func exampleSites(t *testing.T) []*site.Site {
	t.Helper()
	sites, err := site.LoadDir(sitesDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(sites) == 0 {
		t.Fatalf("no site files in %s", sitesDir)
	}
	return sites
}

// TestCommittedDashboardsMatchGenerator keeps configs/grafana/dashboards
// what the generator makes of the example sites: no drift, no dashboard of
// a removed site, none missing for a new one.
func TestCommittedDashboardsMatchGenerator(t *testing.T) {
	for _, ds := range Datasources {
		dir := filepath.Join(dashboardsDir, string(ds))
		regen := fmt.Sprintf("regenerate: go run ./cmd/hazardwatch grafana -datasource %s -out configs/grafana/dashboards/%s configs/sites/", ds, ds)
		files, err := Layout(exampleSites(t), Options{Datasource: ds})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, f := range files {
			want[f.Path()] = true
			committed, err := os.ReadFile(filepath.Join(dir, f.Path()))
			if err != nil {
				t.Errorf("%s dashboard %s: %v; %s", ds, f.Path(), err, regen)
				continue
			}
			if !bytes.Equal(f.JSON, committed) {
				t.Errorf("%s/%s differs from what the generator makes; %s", dir, f.Path(), regen)
			}
		}
		err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			if !want[rel] {
				t.Errorf("%s/%s is not in the generated layout; remove it and %s", dir, rel, regen)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestAreaDashboards: a folder per county holds its overview and its
// enterprises' dashboards; a folder per city its overview; each overview
// shows the grade of every source of its area and links to the
// enterprises' dashboards.
func TestAreaDashboards(t *testing.T) {
	sites := exampleSites(t)
	files, err := Layout(sites, Options{})
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]File{}
	for _, f := range files {
		byPath[f.Path()] = f
	}
	overviewOf := func(path string) dashboard.Dashboard {
		f, ok := byPath[path]
		if !ok {
			t.Fatalf("no %s in the layout: %v", path, slices.Collect(maps.Keys(byPath)))
		}
		var d dashboard.Dashboard
		if err := json.Unmarshal(f.JSON, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	shows := func(d dashboard.Dashboard, s *site.Site) {
		t.Helper()
		text, _ := json.Marshal(d)
		for _, src := range s.Sources {
			if !strings.Contains(string(text), fmt.Sprintf(`source=\"%s\"`, src.ID)) || !strings.Contains(string(text), fmt.Sprintf(`site=\"%s\"`, s.ID)) {
				t.Errorf("%s: no grade of %s/%s", deref(d.Title), s.ID, src.ID)
			}
		}
		if !strings.Contains(string(text), `"/d/`+UID(s.ID, Prometheus)+`"`) {
			t.Errorf("%s: no link to %s's dashboard", deref(d.Title), s.ID)
		}
	}
	city := overviewOf("三明市 3504/city-3504.json")
	for _, s := range sites {
		r, _ := regions.Lookup(s.Region)
		dir := r.Name + " " + r.Code
		if _, ok := byPath[dir+"/"+FileName(s)]; !ok {
			t.Errorf("%s's dashboard is not in its county's folder %q", s.ID, dir)
		}
		shows(overviewOf(dir+"/county-"+r.Code+".json"), s)
		shows(city, s)
	}
}

// queryText is a target's PromQL or Flux.
func queryText(t *testing.T, target any) string {
	t.Helper()
	raw, err := json.Marshal(target)
	if err != nil {
		t.Fatal(err)
	}
	var q struct {
		Expr  string `json:"expr"`
		Query string `json:"query"`
	}
	if err := json.Unmarshal(raw, &q); err != nil {
		t.Fatal(err)
	}
	return q.Expr + q.Query
}

// selects reports whether a query picks label (or Flux column) = value.
func selects(text, label, value string) bool {
	return strings.Contains(text, fmt.Sprintf("%s=%q", label, value)) || strings.Contains(text, fmt.Sprintf("r.%s == %q", label, value))
}

func loadCommitted(t *testing.T, ds Datasource, s *site.Site) dashboard.Dashboard {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dashboardsDir, string(ds), SiteDir(s), FileName(s)))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard.Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s dashboard of %s does not unmarshal into the SDK's Dashboard: %v", ds, s.ID, err)
	}
	return d
}

// TestCommittedDashboardsCoverSites: each committed dashboard unmarshals
// into the SDK's dashboard type and shows every hazard source's grade and
// every point's gauge (range and limits from the site file) and trend.
func TestCommittedDashboardsCoverSites(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for _, ds := range Datasources {
		for _, s := range exampleSites(t) {
			t.Run(string(ds)+"/"+s.ID, func(t *testing.T) {
				d := loadCommitted(t, ds, s)
				if d.Uid == nil || *d.Uid != UID(s.ID, ds) {
					t.Errorf("uid = %v, want %s", d.Uid, UID(s.ID, ds))
				}
				var panels []*dashboard.Panel
				ids := map[uint32]bool{}
				for _, p := range d.Panels {
					if p.Panel != nil {
						panels = append(panels, p.Panel)
						if p.Panel.Id == nil || ids[*p.Panel.Id] {
							t.Errorf("panel %q has a missing or repeated id", deref(p.Panel.Title))
						} else {
							ids[*p.Panel.Id] = true
						}
					}
				}
				find := func(typ string, match func(string) bool) []*dashboard.Panel {
					var out []*dashboard.Panel
					for _, p := range panels {
						if p.Type != typ {
							continue
						}
						for _, tg := range p.Targets {
							if match(queryText(t, tg)) {
								out = append(out, p)
								break
							}
						}
					}
					return out
				}
				for _, src := range s.Sources {
					if len(find("stat", func(q string) bool {
						return selects(q, "source", src.ID) && strings.Contains(q, "hazardwatch_source_grade")
					})) == 0 {
						t.Errorf("no grade of hazard source %s in the status grid", src.ID)
					}
					if len(find("state-timeline", func(q string) bool { return selects(q, "source", src.ID) })) == 0 {
						t.Errorf("no grade history of hazard source %s", src.ID)
					}
					for _, pt := range src.Points {
						isPoint := func(q string) bool { return selects(q, "point", pt.ID) }
						gauges := find("gauge", isPoint)
						if len(gauges) != 1 {
							t.Errorf("point %s has %d gauges, want 1", pt.ID, len(gauges))
						} else {
							checkGauge(t, gauges[0], pt)
						}
						if len(find("timeseries", isPoint)) != 1 {
							t.Errorf("point %s is in no trend, or in several", pt.ID)
						}
					}
				}
			})
		}
	}
}

func checkGauge(t *testing.T, p *dashboard.Panel, pt site.Point) {
	t.Helper()
	def := p.FieldConfig.Defaults
	if def.Min == nil || *def.Min != pt.Range.Min || def.Max == nil || *def.Max != pt.Range.Max {
		t.Errorf("gauge of %s spans %v–%v, want its range %v", pt.ID, def.Min, def.Max, pt.Range)
	}
	var limits []float64
	for _, l := range []*float64{pt.Limits.LL, pt.Limits.L, pt.Limits.H, pt.Limits.HH} {
		if l != nil {
			limits = append(limits, *l)
		}
	}
	var steps []float64
	for _, st := range def.Thresholds.Steps[1:] {
		steps = append(steps, *st.Value)
	}
	if !slices.Equal(steps, limits) {
		t.Errorf("gauge of %s has thresholds at %v, want its limits %v", pt.ID, steps, limits)
	}
}

func f(v float64) *float64 { return &v }

func TestLimitStepsColourByLimits(t *testing.T) {
	colourAt := func(steps []dashboard.Threshold, v float64) string {
		c := steps[0].Color
		for _, s := range steps[1:] {
			if v >= *s.Value {
				c = s.Color
			}
		}
		return c
	}
	for _, tc := range []struct {
		name   string
		limits site.Limits
		want   map[float64]string
	}{
		{"all four", site.Limits{LL: f(5), L: f(10), H: f(85), HH: f(90)},
			map[float64]string{1: colourSecondLevel, 7: colourFirstLevel, 50: colourNormal, 86: colourFirstLevel, 95: colourSecondLevel}},
		{"high only", site.Limits{H: f(40), HH: f(80)},
			map[float64]string{0: colourNormal, 39.9: colourNormal, 40: colourFirstLevel, 80: colourSecondLevel}},
		{"one low", site.Limits{L: f(20)},
			map[float64]string{19: colourFirstLevel, 20: colourNormal, 21: colourNormal}},
		{"alarm and power-off equal", site.Limits{H: f(1), HH: f(1)},
			map[float64]string{0.9: colourNormal, 1: colourSecondLevel}},
		{"H alone", site.Limits{H: f(24)},
			map[float64]string{23: colourNormal, 30: colourFirstLevel}},
		{"none", site.Limits{}, map[float64]string{-1e9: colourNormal, 1e9: colourNormal}},
	} {
		steps := limitSteps(tc.limits)
		for v, want := range tc.want {
			if got := colourAt(steps, v); got != want {
				t.Errorf("%s: value %v coloured %s, want %s", tc.name, v, got, want)
			}
		}
	}
}

// TestPromQLParses parses every PromQL query of the example dashboards,
// with Grafana's interval variables filled in as Grafana does.
func TestPromQLParses(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	n := 0
	for _, s := range exampleSites(t) {
		d, err := Build(s, Options{Datasource: Prometheus})
		if err != nil {
			t.Fatal(err)
		}
		for _, pp := range d.Panels {
			if pp.Panel == nil {
				continue
			}
			for _, tg := range pp.Panel.Targets {
				q := strings.NewReplacer("$__interval", "15s", "$__rate_interval", "1m").Replace(queryText(t, tg))
				if _, err := p.ParseExpr(q); err != nil {
					t.Errorf("panel %q: %s: %v", deref(pp.Panel.Title), q, err)
				}
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no queries found")
	}
}

// TestGaugeQueryShowsOnlyFreshGoodValues evaluates a generated gauge query
// through HazardWatch's Prometheus API over a real embedded store: a good
// reading is shown; a newer comm_fail reading or silence past the point's
// stale time hides it instead of showing the old value.
func TestGaugeQueryShowsOnlyFreshGoodValues(t *testing.T) {
	var s *site.Site
	for _, x := range exampleSites(t) {
		if x.ID == "jh-chem" {
			s = x
		}
	}
	if s == nil {
		t.Fatal("example site jh-chem not found")
	}
	pt := s.Point("nh3-gas-1").Point
	fresh := freshness(s, pt)
	expr := promQueries{}.value(s.ID, pt, fresh).text

	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv := httptest.NewServer(queryapi.Prometheus(store.Queryable()))
	defer srv.Close()
	at := func(when time.Time) []string {
		t.Helper()
		resp, err := http.Get(srv.URL + "/api/v1/query?query=" + url.QueryEscape(expr) + fmt.Sprintf("&time=%.3f", float64(when.UnixMilli())/1000))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var ans struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &ans); err != nil || ans.Status != "success" {
			t.Fatalf("%s: %s %v", expr, body, err)
		}
		var out []string
		for _, r := range ans.Data.Result {
			out = append(out, r.Value[1].(string))
		}
		return out
	}
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	reading := func(when time.Time, v float64, q protocol.Quality) storage.Sample {
		return storage.Sample{Site: s.ID, Source: "nh3-tanks", Point: pt.ID, Time: when, Value: v, HasValue: q == protocol.Good || q == protocol.OverRange, Quality: q}
	}
	if err := store.Append(context.Background(), []storage.Sample{reading(t0, 42.5, protocol.Good)}); err != nil {
		t.Fatal(err)
	}
	if got := at(t0.Add(time.Second)); !slices.Equal(got, []string{"42.5"}) {
		t.Errorf("a second after a good 42.5 the gauge shows %v, want [42.5]", got)
	}
	if got := at(t0.Add(fresh + time.Second)); len(got) != 0 {
		t.Errorf("past the point's freshness %s the gauge still shows %v", fresh, got)
	}
	if err := store.Append(context.Background(), []storage.Sample{reading(t0.Add(2*time.Second), 0, protocol.CommFail)}); err != nil {
		t.Fatal(err)
	}
	if got := at(t0.Add(3 * time.Second)); len(got) != 0 {
		t.Errorf("after a comm_fail reading the gauge shows %v, want nothing", got)
	}
	if err := store.Append(context.Background(), []storage.Sample{reading(t0.Add(4*time.Second), 120, protocol.OverRange)}); err != nil {
		t.Fatal(err)
	}
	if got := at(t0.Add(5 * time.Second)); !slices.Equal(got, []string{"120"}) {
		t.Errorf("after an over_range 120 the gauge shows %v, want [120]", got)
	}
}

func TestUIDFitsGrafana(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, id := range []string{"jh-chem", long, long[:33], long[:32]} {
		for _, ds := range Datasources {
			u := UID(id, ds)
			if len(u) > 40 {
				t.Errorf("UID(%d chars, %s) = %q: %d chars, Grafana allows 40", len(id), ds, u, len(u))
			}
		}
	}
	if UID(long, Prometheus) == UID(long[:63]+"b", Prometheus) {
		t.Error("two long site ids sharing a prefix got the same uid")
	}
	if UID("jh-chem", Prometheus) == UID("jh-chem", Influx) {
		t.Error("the two data sources' dashboards of a site share a uid")
	}
}
