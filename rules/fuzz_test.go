package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// fuzzSite is testSite with short delays so that short inputs reach every
// condition, and a second variant without g2 for reloads.
var fuzzSite = strings.NewReplacer(
	"poll_interval: 1s", "poll_interval: 1s",
	"limits: {ll: 5, l: 10, h: 85, hh: 90}", "limits: {ll: 5, l: 10, h: 85, hh: 90}, on_delay: 1s, off_delay: 1s, rate_of_change: {rise: 30, fall: 30, window: 10s}",
	"stuck_after: 30s", "stuck_after: 5s",
).Replace(testSite) + "policy: {first_level_held: {for: 20s, grade: orange}}\n"

var fuzzPoints = []string{"g1", "g2", "g3", "lvl", "ch4", "co"}

// invariants tracks the events an engine has emitted and checks them.
type invariants struct {
	t      *testing.T
	active map[string]protocol.Grade // key → grade
	source map[string]protocol.Grade // site/source → grade, as reported
}

func (iv *invariants) check(e *Engine, evs []Event) {
	t := iv.t
	for _, ev := range evs {
		switch ev.Type {
		case Raised:
			if _, dup := iv.active[ev.Key]; dup {
				t.Fatalf("%s raised while active", ev.Key)
			}
			if ev.Grade < protocol.Blue || ev.Grade > protocol.Red {
				t.Fatalf("%s raised with grade %v", ev.Key, ev.Grade)
			}
			iv.active[ev.Key] = ev.Grade
		case GradeChanged:
			if _, ok := iv.active[ev.Key]; !ok {
				t.Fatalf("grade change of %s, which is not active", ev.Key)
			}
			if ev.Grade < protocol.Blue || ev.Grade > protocol.Red || ev.PrevGrade != iv.active[ev.Key] {
				t.Fatalf("%s grade change %v → %v, tracked %v", ev.Key, ev.PrevGrade, ev.Grade, iv.active[ev.Key])
			}
			iv.active[ev.Key] = ev.Grade
		case Cleared:
			if _, ok := iv.active[ev.Key]; !ok {
				t.Fatalf("%s cleared but not raised before (or cleared twice)", ev.Key)
			}
			if ev.Grade != protocol.None {
				t.Fatalf("%s cleared with grade %v", ev.Key, ev.Grade)
			}
			delete(iv.active, ev.Key)
		case SourceGradeChanged:
			if !ev.Grade.Valid() || ev.Grade == ev.PrevGrade || ev.PrevGrade != iv.source[ev.Key] {
				t.Fatalf("source %s grade %v → %v, reported before %v", ev.Key, ev.PrevGrade, ev.Grade, iv.source[ev.Key])
			}
			iv.source[ev.Key] = ev.Grade
		default:
			t.Fatalf("unknown event type %d", ev.Type)
		}
		if msg(ev) == "" {
			t.Fatalf("%s %s has no message", ev.Type, ev.Key)
		}
	}
	// The engine's view agrees with the events, and every source's grade
	// is the most severe of its active conditions.
	act := e.Active()
	if len(act) != len(iv.active) {
		t.Fatalf("engine has %d active conditions, events say %d", len(act), len(iv.active))
	}
	top := map[string]protocol.Grade{}
	for _, ev := range act {
		if g, ok := iv.active[ev.Key]; !ok || g != ev.Grade {
			t.Fatalf("active %s %v not as the events say (%v, %v)", ev.Key, ev.Grade, g, ok)
		}
		k := ev.Site + "/" + ev.Source
		top[k] = max(top[k], ev.Grade)
	}
	for _, src := range []string{"nh3", "face"} {
		if g := e.SourceGrade("t", src); g != top["t/"+src] || g != iv.source["t/"+src] {
			t.Fatalf("source %s grade %v, max of its active conditions %v, reported %v", src, g, top["t/"+src], iv.source["t/"+src])
		}
	}
}

func FuzzEngine(f *testing.F) {
	f.Add([]byte{0, 0, 200, 0, 0, 200, 0, 0, 200, 1, 10, 0, 3, 4, 0, 0, 10})
	f.Add([]byte{0, 1, 255, 0, 2, 255, 0, 1, 255, 0, 2, 255, 5, 0, 0, 1, 200, 0})
	f.Add([]byte{2, 0, 1, 2, 2, 2, 1, 50, 0, 4, 0, 0, 3, 3, 3})
	// g1 and g2 at HH (vote at second level), a restart, then on.
	f.Add([]byte{0, 0, 240, 0, 1, 240, 16, 0, 240, 16, 1, 240, 16, 0, 240, 16, 1, 240, 6, 0, 0, 16, 0, 240, 24, 1, 0, 24, 1, 0, 27, 0, 0})
	// Stale everywhere, a restart into the model without g2, ticks.
	f.Add([]byte{3, 0, 0, 59, 0, 0, 6, 3, 0, 59, 0, 0, 8, 0, 100})
	full := parseSite(f, fuzzSite)
	noG2 := parseSite(f, strings.Replace(strings.Replace(strings.Replace(fuzzSite,
		"      - {id: g2, name: 2#液氨储罐 NH3 检测器, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: gds, address: 1}, limits: {h: 40, hh: 80}}\n", "", 1),
		"points: [g1, g2, g3]", "points: [g1, g3]", 1), "grade: orange}}", "grade: orange}, escalate_source_grades: [3]}", 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := New([]*site.Site{full})
		if err != nil {
			t.Fatal(err)
		}
		iv := &invariants{t: t, active: map[string]protocol.Grade{}, source: map[string]protocol.Grade{}}
		model := full
		now := t0
		var out []Event
		for i := 0; i+2 < len(data); i += 3 {
			op, a, b := data[i], data[i+1], data[i+2]
			// Time mostly moves on, sometimes stands still or goes back.
			now = now.Add(time.Duration(int(op>>3)-2) * 250 * time.Millisecond)
			out = out[:0]
			switch op % 7 {
			case 0, 1: // a good reading spread over each point's range
				p := fuzzPoints[int(a)%len(fuzzPoints)]
				span := 100.0
				if p == "ch4" {
					span = 4
				}
				v := float64(b) / 255 * span * 1.1
				// The gateway's clock is off from the centre's by up to
				// ±5.6 s, changing as the fuzzer likes: lag, lead, jumps.
				gw := now.Add(time.Duration(int(a>>4)-8) * 700 * time.Millisecond)
				out = e.Observe(Reading{Site: "t", Point: p, Time: gw, Received: now, Value: v, Quality: protocol.Good}, out)
			case 2: // a reading of another quality
				q := []protocol.Quality{protocol.Bad, protocol.CommFail, protocol.OverRange, "", "junk"}[int(b)%5]
				out = e.Observe(Reading{Site: "t", Point: fuzzPoints[int(a)%len(fuzzPoints)], Time: now, Value: float64(b), Quality: q}, out)
			case 3, 4:
				out = e.Tick(now, out)
			case 5: // hot reload between the two models
				model = full
				if a%2 == 1 {
					model = noG2
				}
				out, err = e.Reload([]*site.Site{model}, now, out)
				if err != nil {
					t.Fatal(err)
				}
			case 6: // restart, maybe with the other model: the journal
				// (Active) seeds a new engine; the invariants carry on.
				if a%4 == 1 {
					model = full
				} else if a%4 == 3 {
					model = noG2
				}
				journal := e.Active()
				if e, err = New([]*site.Site{model}); err != nil {
					t.Fatal(err)
				}
				out = e.Restore(journal, now, out)
			}
			iv.check(e, out)
		}
	})
}
