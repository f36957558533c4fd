package simulators

import (
	"bytes"
	"fmt"
	"io/fs"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hazardwatch/hazardwatch/configs/scenarios"
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

// Builtin returns a built-in scenario by name: the YAML files of
// configs/scenarios.
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

var builtins = loadBuiltins()

func loadBuiltins() map[string]Scenario {
	out := map[string]Scenario{}
	files, err := fs.Glob(scenarios.FS, "*.yaml")
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(scenarios.FS, f)
		if err != nil {
			panic(err)
		}
		sc, err := ParseScenario("configs/scenarios/"+f, b)
		if err != nil {
			panic(fmt.Sprintf("built-in scenario: %v", err)) // caught by the package's tests
		}
		out[sc.Name] = sc
	}
	return out
}

// scenarioFile is a scenario as written in YAML.
type scenarioFile struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Site        string `yaml:"site"`
	Steps       []struct {
		At    site.Duration `yaml:"at"`
		Point string        `yaml:"point"`
		To    *float64      `yaml:"to"`
		Over  site.Duration `yaml:"over"`
	} `yaml:"steps"`
}

// LoadScenario reads a scenario file (see configs/scenarios for the
// format).
func LoadScenario(path string) (Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("scenario: %w", err)
	}
	return ParseScenario(path, b)
}

// ParseScenario reads a scenario from YAML; file names it in errors.
// Unknown keys, a missing name or step target, and negative times are
// errors naming the line.
func ParseScenario(file string, data []byte) (Scenario, error) {
	var f scenarioFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return Scenario{}, fmt.Errorf("scenario %s: %w", file, err)
	}
	if f.Name == "" {
		return Scenario{}, fmt.Errorf("scenario %s: no name", file)
	}
	if len(f.Steps) == 0 {
		return Scenario{}, fmt.Errorf("scenario %s: no steps", file)
	}
	sc := Scenario{Name: f.Name, Description: f.Description, Site: f.Site}
	for i, st := range f.Steps {
		switch {
		case st.Point == "":
			return Scenario{}, fmt.Errorf("scenario %s: step %d has no point", file, i+1)
		case st.To == nil || math.IsNaN(*st.To) || math.IsInf(*st.To, 0):
			return Scenario{}, fmt.Errorf("scenario %s: step %d (%s) needs a finite target `to`", file, i+1, st.Point)
		case st.At < 0 || st.Over < 0:
			return Scenario{}, fmt.Errorf("scenario %s: step %d (%s) has a negative time", file, i+1, st.Point)
		}
		sc.Steps = append(sc.Steps, Step{At: st.At.D(), Point: st.Point, To: *st.To, Over: st.Over.D()})
	}
	return sc, nil
}

// Check reports the steps whose points the site does not have, and a
// scenario written for another site.
func (sc Scenario) Check(s *site.Site) error {
	if sc.Site != "" && sc.Site != s.ID {
		return fmt.Errorf("scenario %s is written for site %s, not %s", sc.Name, sc.Site, s.ID)
	}
	for i, st := range sc.Steps {
		if s.Point(st.Point) == nil {
			return fmt.Errorf("scenario %s step %d: site %s has no point %q", sc.Name, i+1, s.ID, st.Point)
		}
	}
	return nil
}

// calmBand is where a point's value may sit without raising anything:
// its measuring range, narrowed by its alarm limits (H or HH above, L or
// LL below).
func calmBand(p *site.Point) (lo, hi float64) {
	lo, hi = p.Range.Min, p.Range.Max
	l := p.Limits
	for _, up := range []*float64{l.H, l.HH} {
		if up != nil {
			hi = math.Min(hi, *up)
		}
	}
	for _, down := range []*float64{l.L, l.LL} {
		if down != nil {
			lo = math.Max(lo, *down)
		}
	}
	if hi < lo { // limits that leave no calm band: the range decides
		lo, hi = p.Range.Min, p.Range.Max
	}
	return lo, hi
}

// isGas: a gas detector reads near the bottom of its band in clean air.
func isGas(k site.Kind) bool {
	return k == site.ToxicGas || k == site.CombustibleGas || k == site.Methane
}

// Baseline is the calm value of a point: what a healthy plant reads. It
// starts from what such an instrument typically shows (2 ppm NH3, 20.8 %
// O2, a half-full tank), and moves it inside the point's own calm band —
// its range narrowed by its limits, with a margin — when the site's limits
// are tighter (a chlorine plant's H of 0.3 ppm): a calm plant never alarms.
func Baseline(p *site.Point) float64 {
	if p.Modbus.Table.IsBit() || p.Modbus.Bit != nil {
		return 0
	}
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
	lo, hi := calmBand(p)
	margin := (hi - lo) * 0.05
	lowest := lo + margin
	if isGas(p.Kind) {
		lowest = lo // clean air reads at the bottom of the band
	}
	if v < lowest || v > hi-margin {
		if isGas(p.Kind) {
			v = lo + (hi-lo)*0.1
		} else {
			v = lo + (hi-lo)/2
		}
	}
	return v
}

// noiseAmplitude is the half-width of the calm jitter of a point: what
// such an instrument typically wanders by, but never so much that the
// jitter reaches a limit or leaves the range from the baseline.
func noiseAmplitude(p *site.Point) float64 {
	if p.Modbus.Table.IsBit() || p.Modbus.Bit != nil {
		return 0
	}
	var a float64
	switch p.Kind {
	case site.ToxicGas, site.CombustibleGas:
		a = 1
	case site.Methane:
		a = 0.05
	case site.Oxygen:
		a = 0.1
	case site.Level, site.Temperature:
		a = 0.2
	case site.Pressure:
		a = 0.01
	default:
		a = p.Range.Span() * 0.002
	}
	lo, hi := calmBand(p)
	v := Baseline(p)
	room := math.Min(hi-v, v-lo)
	if isGas(p.Kind) {
		room = hi - v // the low side is clamped at the range's bottom
	}
	return math.Max(0, math.Min(a, math.Min(room/3, (hi-lo)*0.05)))
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
