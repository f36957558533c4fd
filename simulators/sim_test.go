package simulators

import (
	"math"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	gbmodbus "github.com/goburrow/modbus"

	"github.com/hazardwatch/hazardwatch/gateway/codec"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

func exampleSite(t *testing.T, name string) *site.Site {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	s, err := site.Load(filepath.Join(filepath.Dir(file), "..", "configs", "sites", name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// crossing is the first time, in 100ms steps, a point reaches v.
func crossing(sc Scenario, point string, start, v float64) time.Duration {
	for t := time.Duration(0); t < 10*time.Minute; t += 100 * time.Millisecond {
		if sc.ValueAt(point, start, t) >= v {
			return t
		}
	}
	return -1
}

func TestNH3LeakTiming(t *testing.T) {
	s := exampleSite(t, "tank-farm.yaml")
	sc, ok := Builtin("nh3-leak")
	if !ok || sc.Site != s.ID {
		t.Fatalf("nh3-leak scenario missing or not for %s", s.ID)
	}
	for _, st := range sc.Steps {
		if s.Point(st.Point) == nil {
			t.Fatalf("scenario names unknown point %s", st.Point)
		}
	}
	base := Baseline(s.Point("nh3-gas-1").Point)
	if base < 1 || base > 3 {
		t.Fatalf("NH3 baseline %v, want 1–3 ppm", base)
	}
	in := func(what string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			t.Errorf("%s at %v, want %v–%v", what, d, lo, hi)
		}
	}
	h1, hh1 := crossing(sc, "nh3-gas-1", base, 40), crossing(sc, "nh3-gas-1", base, 80)
	h2, hh2 := crossing(sc, "nh3-gas-2", base, 40), crossing(sc, "nh3-gas-2", base, 80)
	in("nh3-gas-1 past H", h1, 15*time.Second, 20*time.Second)
	in("nh3-gas-1 past HH", hh1, 35*time.Second, 40*time.Second)
	if h2 <= h1 || hh2 <= hh1 || hh2 > 60*time.Second {
		t.Errorf("nh3-gas-2 must follow a little later: H at %v, HH at %v", h2, hh2)
	}
	if c := crossing(sc, "nh3-gas-3", base, 40); c >= 0 {
		t.Errorf("nh3-gas-3 passes H at %v; the leak is at 1# tank", c)
	}
	for _, p := range []string{"nh3-gas-1", "nh3-gas-2", "nh3-gas-3"} {
		if v := sc.ValueAt(p, base, 170*time.Second); p != "nh3-gas-3" && v < 80 {
			t.Errorf("%s at 170 s is %v: the leak should still be on", p, v)
		}
		if v := sc.ValueAt(p, base, 5*time.Minute); v > 3 {
			t.Errorf("%s at 5 min is %v, want back at baseline", p, v)
		}
	}
}

func TestCoalCH4Timing(t *testing.T) {
	s := exampleSite(t, "coal-mine.yaml")
	sc, _ := Builtin("coal-ch4")
	p := s.Point("ch4-3101-t1")
	if p == nil || sc.Site != s.ID {
		t.Fatal("coal-ch4 scenario does not fit coal-mine.yaml")
	}
	base := Baseline(p.Point)
	a, off := crossing(sc, "ch4-3101-t1", base, 1.0), crossing(sc, "ch4-3101-t1", base, 1.5)
	if a <= 0 || off <= a || off > time.Minute {
		t.Errorf("CH4 past 1.0 %% at %v and 1.5 %% at %v", a, off)
	}
}

// Calm: the example sites raise nothing while no scenario plays.
func TestBaselinesAreCalm(t *testing.T) {
	for _, name := range []string{"tank-farm.yaml", "coal-mine.yaml", "chlor-alkali.yaml"} {
		s := exampleSite(t, name)
		for _, src := range s.Sources {
			for _, p := range src.Points {
				v := Baseline(&p)
				a := noiseAmplitude(&p)
				l := p.Limits
				if (l.H != nil && v+a >= *l.H) || (l.HH != nil && v+a >= *l.HH) || (l.L != nil && v-a <= *l.L) || (l.LL != nil && v-a <= *l.LL) {
					t.Errorf("%s %s: baseline %v ± %v reaches a limit %+v", name, p.ID, v, a, l)
				}
			}
		}
	}
}

// A real Modbus client reads what the simulator serves.
func TestServesCoalMine(t *testing.T) {
	s := exampleSite(t, "coal-mine.yaml")
	sim, err := New(s, WithAddress("sub-3101", testenv.FreeAddr(t)), WithAddress("sub-2201", testenv.FreeAddr(t)), WithSeed(1), WithTick(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	read := func(dev string, p *site.Point) (codec.Result, error) {
		h := gbmodbus.NewTCPClientHandler(sim.Addr(dev))
		h.SlaveId = s.Device(dev).UnitID
		h.Timeout = 2 * time.Second
		defer h.Close()
		c := gbmodbus.NewClient(h)
		m := p.Modbus
		var b []byte
		if m.Table == site.InputRegisters {
			b, err = c.ReadInputRegisters(m.Address, uint16(codec.Registers(m)))
		} else {
			b, err = c.ReadHoldingRegisters(m.Address, uint16(codec.Registers(m)))
		}
		if err != nil {
			return codec.Result{}, err
		}
		regs := make([]uint16, len(b)/2)
		for i := range regs {
			regs[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		}
		return codec.Decode(m, p.Range, regs)
	}

	o2 := s.Point("o2-2201-intake").Point
	r, err := read("sub-2201", o2)
	if err != nil {
		t.Fatal(err)
	}
	if r.Quality != protocol.Good || math.Abs(r.Value-20.8) > 0.2 {
		t.Fatalf("calm O2 %+v, want about 20.8 %%", r)
	}
	if err := sim.SetFault("o2-2201-intake", BrokenLoop); err != nil {
		t.Fatal(err)
	}
	if r, _ = read("sub-2201", o2); r.Quality != protocol.Bad {
		t.Fatalf("broken loop read as %+v, want bad", r)
	}
	if err := sim.SetFault("o2-2201-intake", NoFault); err != nil {
		t.Fatal(err)
	}

	// A scenario step plays through the live server.
	ch4 := s.Point("ch4-3101-t1").Point
	if err := sim.Play(t.Context(), Scenario{Name: "t", Steps: []Step{{At: 0, Point: ch4.ID, To: 2.0, Over: 200 * time.Millisecond}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := read("sub-3101", ch4)
		if err == nil && r.Value >= 1.9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CH4 never ramped to 2.0: last %+v %v", r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A silenced device does not answer within the client's timeout.
	if err := sim.Silence("sub-3101", true); err != nil {
		t.Fatal(err)
	}
	h := gbmodbus.NewTCPClientHandler(sim.Addr("sub-3101"))
	h.SlaveId, h.Timeout = 1, 300*time.Millisecond
	if _, err := gbmodbus.NewClient(h).ReadInputRegisters(0, 1); err == nil {
		t.Fatal("silenced device answered")
	}
	h.Close()

	for _, bad := range []error{sim.Set("nope", 1), sim.Set(ch4.ID, math.NaN()), sim.SetFault("nope", BrokenLoop), sim.Silence("nope", true)} {
		if bad == nil {
			t.Error("bad input accepted")
		}
	}
	if err := sim.Play(t.Context(), Scenario{Name: "x", Steps: []Step{{Point: "nope", To: 1}}}); err == nil {
		t.Error("scenario with unknown point accepted")
	}
}
