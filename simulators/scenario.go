package simulators

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/hazardwatch/hazardwatch/site"
)

// Scenario is a scripted course of events: data, not code, so scenarios
// can be listed, checked and played by any tool.
type Scenario struct {
	Name        string
	Description string
	Site        string // the site id the scenario is written for
	Steps       []Step
}

// Step ramps one point linearly from wherever it is to To over Over,
// starting At after the scenario starts. Over 0 jumps.
type Step struct {
	At    time.Duration
	Point string
	To    float64
	Over  time.Duration
}

// Builtin returns a built-in scenario by name.
func Builtin(name string) (Scenario, bool) {
	sc, ok := builtins[name]
	return sc, ok
}

// BuiltinNames lists the built-in scenarios.
func BuiltinNames() []string {
	out := make([]string, 0, len(builtins))
	for n := range builtins {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

const s = time.Second

var builtins = map[string]Scenario{
	// NH3 limits are H 40 / HH 80 ppm. Ramps are timed so that nh3-gas-1
	// passes H at about 17 s and HH at about 35 s; nh3-gas-2 passes H at
	// about 26 s and HH at about 46 s, satisfying the 2-of-3 vote at both
	// levels; everything is back at baseline about four minutes in.
	"nh3-leak": {
		Name:        "nh3-leak",
		Description: "ammonia leak at 1# tank: nh3-gas-1 then nh3-gas-2 past H and HH, back to calm after ~3 min",
		Site:        "jh-chem",
		Steps: []Step{
			{At: 5 * s, Point: "nh3-gas-1", To: 50, Over: 15 * s},  // 2 → 50: 40 at ~16.9 s
			{At: 20 * s, Point: "nh3-gas-1", To: 90, Over: 20 * s}, // 50 → 90: 80 at 35 s
			{At: 10 * s, Point: "nh3-gas-2", To: 50, Over: 20 * s}, // 40 at ~25.8 s
			{At: 30 * s, Point: "nh3-gas-2", To: 88, Over: 20 * s}, // 80 at ~45.8 s
			{At: 20 * s, Point: "nh3-gas-3", To: 18, Over: 30 * s}, // downwind, stays below H
			{At: 180 * s, Point: "nh3-gas-1", To: 2, Over: 60 * s}, // leak isolated
			{At: 180 * s, Point: "nh3-gas-2", To: 2, Over: 60 * s}, //
			{At: 180 * s, Point: "nh3-gas-3", To: 2, Over: 60 * s}, //
		},
	},
	// CH4 at the 3101 face: alarm (1.0 %) at about 21 s, power-off (1.5 %)
	// at about 41 s; the return airway follows to just below its 1.0 %.
	"coal-ch4": {
		Name:        "coal-ch4",
		Description: "methane build-up at the 3101 face: ch4-3101-t1 past 1.0 % then 1.5 %, back to calm after ~3 min",
		Site:        "xs-coal",
		Steps: []Step{
			{At: 5 * s, Point: "ch4-3101-t1", To: 1.2, Over: 20 * s},  // 0.3 → 1.2: 1.0 at ~20.6 s
			{At: 30 * s, Point: "ch4-3101-t1", To: 1.7, Over: 15 * s}, // 1.2 → 1.7: 1.5 at 39 s
			{At: 15 * s, Point: "ch4-3101-t2", To: 0.8, Over: 30 * s},
			{At: 180 * s, Point: "ch4-3101-t1", To: 0.3, Over: 60 * s},
			{At: 180 * s, Point: "ch4-3101-t2", To: 0.3, Over: 60 * s},
		},
	},
}

// Baseline is the calm value of a point: what a healthy plant reads.
func Baseline(p *site.Point) float64 {
	var v float64
	gas := strings.ToUpper(p.Gas)
	switch p.Kind {
	case site.ToxicGas:
		switch gas {
		case "NH3":
			v = 2
		case "CO":
			v = 3
		default:
			v = 0.5
		}
	case site.CombustibleGas:
		v = 1
	case site.Methane:
		v = 0.3
	case site.Oxygen:
		v = 20.8
	case site.Level:
		v = 50
	case site.Pressure:
		v = 0.9
	case site.Temperature:
		v = 18
	default:
		v = p.Range.Min + p.Range.Span()/2
	}
	if p.Modbus.Table.IsBit() || p.Modbus.Bit != nil {
		return 0
	}
	// A baseline must sit inside the measuring range and clear of limits.
	v = math.Min(math.Max(v, p.Range.Min), p.Range.Max)
	return v
}

// noiseAmplitude is the half-width of the calm jitter of a point.
func noiseAmplitude(p *site.Point) float64 {
	if p.Modbus.Table.IsBit() || p.Modbus.Bit != nil {
		return 0
	}
	switch p.Kind {
	case site.ToxicGas:
		return 1
	case site.CombustibleGas:
		return 1
	case site.Methane:
		return 0.05
	case site.Oxygen:
		return 0.1
	case site.Level:
		return 0.2
	case site.Pressure:
		return 0.01
	case site.Temperature:
		return 0.2
	}
	return p.Range.Span() * 0.002
}

// ValueAt is where a point stands t after the scenario starts, from a
// value of start before it, ignoring noise. It lets tools and tests check a
// scenario's timing without waiting for it.
func (sc Scenario) ValueAt(point string, start float64, t time.Duration) float64 {
	v := start
	steps := make([]Step, 0, len(sc.Steps))
	for _, st := range sc.Steps {
		if st.Point == point {
			steps = append(steps, st)
		}
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	for _, st := range steps {
		if t < st.At {
			break
		}
		if st.Over == 0 || t >= st.At+st.Over {
			v = st.To
			continue
		}
		v += (st.To - v) * float64(t-st.At) / float64(st.Over)
	}
	return v
}
