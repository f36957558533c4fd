package site

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// minimal is a valid site; tests break one thing at a time.
const minimal = `id: s1
name: 测试站
gateways:
  - id: gw1
    devices:
      - id: d1
        address: 127.0.0.1:1502
sources:
  - id: src1
    name: 储罐区
    type: tank_farm
    grade: 2
    points:
      - id: p1
        name: NH3 1
        kind: toxic_gas
        gas: NH3
        unit: ppm
        range: [0, 100]
        modbus: {device: d1, address: 0}
        limits: {h: 40, hh: 80}
      - id: p2
        name: NH3 2
        kind: toxic_gas
        gas: NH3
        unit: ppm
        range: [0, 100]
        modbus: {device: d1, address: 1}
        limits: {h: 40, hh: 80}
`

func mustParse(t *testing.T, text string) *Site {
	t.Helper()
	s, err := Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return s
}

func problemsOf(t *testing.T, text string) Problems {
	t.Helper()
	_, err := Parse("test.yaml", []byte(text))
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	return ps
}

func TestExampleSitesLoad(t *testing.T) {
	sites, err := LoadDir("../configs/sites")
	if err != nil {
		t.Fatalf("example sites: %v", err)
	}
	if len(sites) < 2 {
		t.Fatalf("want at least the two example sites, got %d", len(sites))
	}
	for _, s := range sites {
		for _, src := range s.Sources {
			for _, p := range src.Points {
				ref := s.Point(p.ID)
				if ref == nil || ref.Device == nil || ref.Source.ID != src.ID {
					t.Errorf("%s: point %s not indexed with its device and source", s.File, p.ID)
				}
			}
		}
	}
}

func TestDefaults(t *testing.T) {
	s := mustParse(t, minimal)
	d := s.Device("d1")
	if d.Transport != TransportTCP || d.PollInterval.D() != time.Second || d.Timeout.D() != time.Second || *d.Retries != 1 || d.Gateway != "gw1" {
		t.Errorf("device defaults not applied: %+v", d)
	}
	m := s.Point("p1").Point.Modbus
	if m.Table != HoldingRegisters || m.Type != Uint16 || m.Order != ABCD || *m.Scale != 1 {
		t.Errorf("mapping defaults not applied: %+v", m)
	}
	if got := s.PointsOfDevice("d1"); len(got) != 2 || got[0].Point.ID != "p1" {
		t.Errorf("PointsOfDevice = %v", got)
	}
}

func TestEqualLimitsAllowed(t *testing.T) {
	// Coal-mine return airways set alarm and power-off both at 1.0 % CH4.
	text := strings.Replace(minimal, "limits: {h: 40, hh: 80}", "limits: {h: 40, hh: 40}", 1)
	mustParse(t, text)
}

func TestProblemsNameFileLineAndField(t *testing.T) {
	cases := []struct {
		name, from, to string
		line           int
		field, msg     string
	}{
		{"unknown key", "    grade: 2\n", "    grade: 2\n    colour: red\n", 13, "sources[0].colour", `unknown key "colour"`},
		{"duplicate point", "      - id: p2\n", "      - id: p1\n", 22, "sources[0].points[1].id", `point id "p1" is used twice`},
		{"limit outside range", "limits: {h: 40, hh: 80}", "limits: {h: 40, hh: 120}", 21, "sources[0].points[0].limits.hh", "outside the measuring range"},
		{"limits out of order", "limits: {h: 40, hh: 80}", "limits: {h: 90, hh: 80}", 21, "sources[0].points[0].limits.hh", "LL ≤ L ≤ H ≤ HH"},
		{"unknown device", "modbus: {device: d1, address: 0}", "modbus: {device: d9, address: 0}", 20, "sources[0].points[0].modbus.device", `device "d9", which no gateway`},
		{"bad grade", "    grade: 2\n", "    grade: 5\n", 12, "sources[0].grade", "1 to 4"},
		{"bad duration", "        address: 127.0.0.1:1502\n", "        address: 127.0.0.1:1502\n        poll_interval: soon\n", 8, "gateways[0].devices[0].poll_interval", "not a duration"},
		{"bad id", "id: s1\n", "id: s/1\n", 1, "id", "may hold only"},
		{"bad policy grade", "    grade: 2\n", "    grade: 2\n    policy: {first_level: purple}\n", 13, "sources[0].policy.first_level", "unknown grade"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(minimal, c.from, c.to, 1)
			if text == minimal {
				t.Fatal("test case did not change the file")
			}
			ps := problemsOf(t, text)
			for _, p := range ps {
				if p.Field == c.field && strings.Contains(p.Msg, c.msg) {
					if p.Line != c.line || p.File != "test.yaml" {
						t.Errorf("problem %q at line %d, want %d", p, p.Line, c.line)
					}
					if !strings.HasPrefix(p.String(), "test.yaml:") {
						t.Errorf("problem text %q does not start with file:line", p)
					}
					return
				}
			}
			t.Errorf("no problem at %s containing %q; got:\n%v", c.field, c.msg, ps)
		})
	}
}

func TestAllProblemsListed(t *testing.T) {
	text := strings.NewReplacer(
		"    grade: 2\n", "    grade: 9\n    colour: red\n",
		"limits: {h: 40, hh: 80}", "limits: {h: 90, hh: 80}",
		"modbus: {device: d1, address: 1}", "modbus: {device: nope, address: 1}",
	).Replace(minimal)
	ps := problemsOf(t, text)
	if len(ps) < 4 {
		t.Fatalf("want every problem listed, got %d:\n%v", len(ps), ps)
	}
	for i := 1; i < len(ps); i++ {
		if ps[i].Line < ps[i-1].Line {
			t.Errorf("problems not in file order:\n%v", ps)
		}
	}
}

func TestVotesChecked(t *testing.T) {
	text := minimal + `    votes:
      - {id: leak, k: 3, points: [p1, p9]}
`
	ps := problemsOf(t, text)
	want := []string{"k must be 1 to the number of points", `point "p9" is not a point of source`}
	for _, w := range want {
		if !strings.Contains(ps.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, ps)
		}
	}
}

func TestPowerOffNeedsHH(t *testing.T) {
	text := strings.Replace(minimal, "limits: {h: 40, hh: 80}", "limits: {h: 40, restore: 30}\n        power_off: true", 1)
	ps := problemsOf(t, text)
	if !strings.Contains(ps.Error(), "needs hh") {
		t.Errorf("power-off point without hh accepted:\n%v", ps)
	}
}

func TestPolicyMerge(t *testing.T) {
	text := strings.Replace(minimal, "    grade: 2\n", "    grade: 2\n    policy: {first_level: yellow, escalate_source_grades: []}\n", 1)
	text += "policy: {stale: yellow}\n"
	s := mustParse(t, text)
	p := s.Effective(&s.Sources[0])
	if *p.FirstLevel != protocol.Yellow || *p.Stale != protocol.Yellow || *p.SecondLevel != protocol.Yellow || p.Escalates(2) {
		t.Errorf("merged policy wrong: first %v stale %v second %v escalates(2) %v", *p.FirstLevel, *p.Stale, *p.SecondLevel, p.Escalates(2))
	}
	d := DefaultPolicy()
	if *d.FirstLevel != protocol.Blue || *d.VoteSecondLevel != protocol.Red || !d.Escalates(1) || d.Escalates(3) {
		t.Error("default policy does not follow shared/domain.md")
	}
}

func TestLoadFilesDuplicateSiteAndMissing(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a.yaml", "b.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(minimal), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := LoadDir(dir)
	if err == nil || !strings.Contains(err.Error(), `site id "s1" is already used`) {
		t.Errorf("duplicate site id across files: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := LoadDir(t.TempDir()); err == nil {
		t.Error("empty directory accepted")
	}
}

func TestGarbageNeverPanics(t *testing.T) {
	for _, text := range []string{"", "[", "- 1\n- 2", "id: [", "sources: 3", "gateways: {a: b}", "\t\tx", "id: &a [*a]"} {
		if _, err := Parse("g.yaml", []byte(text)); err == nil {
			t.Errorf("garbage %q accepted", text)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("id: x\nsources: [{points: [{range: [1]}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("f.yaml", data)
		if err == nil && s.ID == "" {
			t.Fatal("site without id accepted")
		}
	})
}
