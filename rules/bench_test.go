package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

func ptr[T any](v T) *T { return &v }

// citySites builds a city-size model in code: sites × sources × points,
// every source a tank farm of gas detectors voted 2oo3 plus process points.
func citySites(sites, sourcesPerSite, pointsPerSource int) []*site.Site {
	kinds := []site.Kind{site.ToxicGas, site.CombustibleGas, site.Level, site.Pressure, site.Temperature}
	out := make([]*site.Site, 0, sites)
	for si := 0; si < sites; si++ {
		s := &site.Site{ID: fmt.Sprintf("s%03d", si), Name: "site",
			Gateways: []site.Gateway{{ID: "gw", Devices: []site.Device{{ID: "d", PollInterval: site.Duration(time.Second)}}}}}
		for ri := 0; ri < sourcesPerSite; ri++ {
			src := site.Source{ID: fmt.Sprintf("src%02d", ri), Name: "source", Type: site.TankFarm, Grade: 1 + ri%4}
			for pi := 0; pi < pointsPerSource; pi++ {
				src.Points = append(src.Points, site.Point{
					ID: fmt.Sprintf("p%02d-%02d", ri, pi), Name: "point", Kind: kinds[pi%len(kinds)], Unit: "u",
					Range:        site.Range{Min: 0, Max: 100},
					Modbus:       site.Mapping{Device: "d"},
					Limits:       site.Limits{LL: ptr(5.0), L: ptr(10.0), H: ptr(40.0), HH: ptr(80.0)},
					RateOfChange: &site.RateOfChange{Rise: ptr(50.0), Window: site.Duration(time.Minute)},
				})
			}
			src.Votes = []site.Vote{{ID: "v", K: 2, Points: []string{src.Points[0].ID, src.Points[1].ID, src.Points[5].ID}}}
			s.Sources = append(s.Sources, src)
		}
		out = append(out, s)
	}
	return out
}

// BenchmarkObserve feeds normal readings of a city of 1,000 hazard sources
// and 50,000 points, each point once a second in turn: the steady state.
func BenchmarkObserve(b *testing.B) {
	sites := citySites(100, 10, 50)
	e, err := New(sites)
	if err != nil {
		b.Fatal(err)
	}
	var readings []Reading
	for _, s := range sites {
		for _, src := range s.Sources {
			for _, p := range src.Points {
				readings = append(readings, Reading{Site: s.ID, Point: p.ID, Quality: protocol.Good})
			}
		}
	}
	if len(readings) != 50000 {
		b.Fatalf("model has %d points", len(readings))
	}
	step := time.Second / time.Duration(len(readings))
	out := make([]Event, 0, 64)
	now := t0
	feed := func(i int) {
		r := &readings[i%len(readings)]
		r.Time = now
		r.Value = 20 + float64(i%7) // normal, moving, never near a limit
		out = e.Observe(*r, out[:0])
		now = now.Add(step)
	}
	for i := 0; i < 2*len(readings); i++ { // warm up: every point seen
		feed(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		feed(i)
	}
	b.StopTimer()
	if len(out) != 0 {
		b.Fatalf("normal readings raised %v", out)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
}

// BenchmarkTick is one tick over the same city with nothing to report.
func BenchmarkTick(b *testing.B) {
	e, err := New(citySites(100, 10, 50))
	if err != nil {
		b.Fatal(err)
	}
	out := make([]Event, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = e.Tick(t0.Add(time.Duration(i)), out[:0]) // nanoseconds apart: nothing goes stale
	}
	if len(out) != 0 {
		b.Fatalf("tick raised %d events", len(out))
	}
}
