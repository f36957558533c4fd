package simulators

import (
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/site"
)

// A correctly configured chlorine plant (Cl2 H 0.3 / HH 0.6 ppm) and other
// tight limits stay calm: baseline and noise inside the band, for many
// ticks of noise.
func TestCalmValuesFollowTheSitesLimits(t *testing.T) {
	s, err := site.Parse("cl2.yaml", []byte(`id: cl2-plant
name: chlorine plant
gateways:
  - id: gw1
    devices:
      - {id: gds, address: 127.0.0.1:1502}
sources:
  - id: cl2-store
    name: 液氯库
    type: storage
    grade: 2
    points:
      - {id: cl2-1, name: cl2-1, kind: toxic_gas, gas: Cl2, unit: ppm, range: [0, 10], modbus: {device: gds, address: 0, type: float32}, limits: {h: 0.3, hh: 0.6}}
      - {id: h2s-1, name: h2s-1, kind: toxic_gas, gas: H2S, unit: ppm, range: [0, 100], modbus: {device: gds, address: 2, scale: 0.01}, limits: {h: 0.2, hh: 0.4}}
      - {id: o2-1, name: o2-1, kind: oxygen, gas: O2, unit: "%", range: [0, 25], modbus: {device: gds, address: 3, scale: 0.01}, limits: {l: 19.5, h: 23.5}}
      - {id: t-1, name: t-1, kind: temperature, unit: °C, range: [-20, 60], modbus: {device: gds, address: 4, type: float32}, limits: {h: 10, l: 5}}
      - {id: p-1, name: p-1, kind: pressure, unit: MPa, range: [0, 2.5], modbus: {device: gds, address: 6, type: float32}, limits: {h: 1.2, l: 0.8}}
`))
	if err != nil {
		t.Fatal(err)
	}
	sim, err := New(s, WithSeed(7))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 2000 {
		sim.step(now.Add(time.Duration(i) * 200 * time.Millisecond))
		for _, src := range s.Sources {
			for _, p := range src.Points {
				v, _ := sim.Value(p.ID)
				l := p.Limits
				if l.H != nil && v >= *l.H || l.L != nil && v <= *l.L || v < p.Range.Min || v > p.Range.Max {
					t.Fatalf("tick %d: %s reads %v, outside its calm band (range %v, limits %+v)", i, p.ID, v, p.Range, l)
				}
			}
		}
	}
	if v := Baseline(s.Point("cl2-1").Point); v <= 0 || v >= 0.1 {
		t.Errorf("calm Cl2 %v ppm, want a little above 0 and well below H 0.3", v)
	}
	if v := Baseline(s.Point("o2-1").Point); v != 20.8 {
		t.Errorf("calm O2 %v %%, want the usual 20.8 inside 19.5..23.5", v)
	}
}

func TestBuiltinScenariosAreFilesThatFitTheirSites(t *testing.T) {
	want := map[string]string{"nh3-leak": "tank-farm.yaml", "coal-ch4": "coal-mine.yaml"}
	if got := strings.Join(BuiltinNames(), ","); got != "coal-ch4,nh3-leak" {
		t.Fatalf("built-in scenarios %s, want coal-ch4,nh3-leak", got)
	}
	for name, file := range want {
		sc, _ := Builtin(name)
		if err := sc.Check(exampleSite(t, file)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		loaded, err := LoadScenario("../configs/scenarios/" + name + ".yaml")
		if err != nil || len(loaded.Steps) != len(sc.Steps) || loaded.Site != sc.Site {
			t.Errorf("LoadScenario(%s): %+v, %v", name, loaded, err)
		}
	}
	// NH3 at 1# tank passes H (40 ppm) at about 17 s and HH (80) at 35 s.
	sc, _ := Builtin("nh3-leak")
	if v := sc.ValueAt("nh3-gas-1", 2, 17*time.Second); v < 40 || v > 43 {
		t.Errorf("nh3-gas-1 at 17 s: %v, want just past 40", v)
	}
}

func TestScenarioFileErrorsNameTheProblem(t *testing.T) {
	for text, want := range map[string]string{
		"name: x\nsteps:\n  - {at: 1s, point: p, to: 1, ovr: 2s}\n": "line 3",
		"name: x\nsteps:\n  - {at: 1s, point: p}\n":                 "needs a finite target",
		"name: x\nsteps:\n  - {at: -1s, point: p, to: 1}\n":         "negative time",
		"steps:\n  - {at: 1s, point: p, to: 1}\n":                   "no name",
		"name: x\n": "no steps",
	} {
		_, err := ParseScenario("leak.yaml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "leak.yaml") {
			t.Errorf("ParseScenario(%q): %v, want an error naming leak.yaml and %q", text, err, want)
		}
	}
}
