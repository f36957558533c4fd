package i18n

import (
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

func TestCatalogsHaveTheSameKeys(t *testing.T) {
	zh := Catalog(ZH)
	for _, l := range Langs[1:] {
		c := Catalog(l)
		for k := range zh {
			if _, ok := c[k]; !ok {
				t.Errorf("%s.json lacks %q", l, k)
			}
		}
		for k := range c {
			if _, ok := zh[k]; !ok {
				t.Errorf("%s.json has %q, which zh.json lacks", l, k)
			}
		}
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]Lang{"": ZH, "zh": ZH, "zh-CN": ZH, "EN": EN, "en_US": EN} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := Parse("fr"); err == nil || !strings.Contains(err.Error(), "fr") {
		t.Errorf("Parse(fr) error %v", err)
	}
}

func ptr(v float64) *float64 { return &v }

func TestRenderNamesNotIDs(t *testing.T) {
	vote := protocol.AlarmEvent{Type: protocol.AlarmRaised, Condition: "vote_first", Grade: protocol.Orange, Value: 2, Limit: 2,
		Facts: &protocol.AlarmFacts{Reason: "vote_met", Name: "NH3 leak 2oo3", Detail: "first", Need: 2, Points: []protocol.PointFact{
			{ID: "nh3-gas-1", Name: "Tank 1 NH3", Value: 86, Unit: "ppm"}, {ID: "nh3-gas-2", Name: "Tank 2 NH3", Value: 45, Unit: "ppm"}}}}
	if got, want := Render(EN, vote), "NH3 leak 2oo3: Tank 1 NH3 86 ppm, Tank 2 NH3 45 ppm at first level alarm"; got != want {
		t.Errorf("en vote %q, want %q", got, want)
	}
	if got, want := Render(ZH, vote), "NH3 leak 2oo3：Tank 1 NH3 86 ppm、Tank 2 NH3 45 ppm 达一级报警"; got != want {
		t.Errorf("zh vote %q, want %q", got, want)
	}
	hh := protocol.AlarmEvent{Type: protocol.AlarmRaised, Condition: "HH", Value: 86, Limit: 80, Grade: protocol.Yellow,
		Facts: &protocol.AlarmFacts{Reason: "limit_exceeded", Name: "1#液氨储罐 NH3 检测器", Unit: "ppm", LimitName: "HH", HeldS: 2}}
	if got, want := Render(ZH, hh), "1#液氨储罐 NH3 检测器 86 ppm ≥ HH 80 ppm，持续 2 秒"; got != want {
		t.Errorf("zh HH %q, want %q", got, want)
	}
	hh.Chattering, hh.Facts.Raises = true, 3
	if got := Render(EN, hh); !strings.HasSuffix(got, "(alarm no. 3 within 1 minute: chattering)") {
		t.Errorf("en chattering %q", got)
	}
	occ := time.Date(2026, 12, 1, 3, 4, 5, 0, time.Local)
	late := protocol.AlarmEvent{Type: protocol.AlarmCleared, Condition: "HH", Value: 20, Limit: 80, Late: true,
		OccurredAt: protocol.Time{Time: occ}, TS: protocol.Time{Time: occ.Add(time.Minute)},
		Facts: &protocol.AlarmFacts{Reason: "back_inside", Name: "Tank 1 NH3", Unit: "ppm", LimitName: "HH", ClearAt: ptr(78), Peak: ptr(90), HeldS: 6}}
	if got, want := Render(EN, late), "[Late report] Tank 1 NH3 20 ppm back within 78 ppm: alarm cleared, worst 90 ppm, after 6 s (happened 2026-12-01 03:04:05, received 2026-12-01 03:05:05)"; got != want {
		t.Errorf("en late %q\nwant %q", got, want)
	}
	src := protocol.AlarmEvent{Type: protocol.AlarmSourceGradeChanged, Grade: protocol.Orange, PrevGrade: protocol.Blue,
		Facts: &protocol.AlarmFacts{Reason: "source_raised", SourceName: "Tank farm", Cause: hh.Facts}}
	src.Facts.Cause.Condition, src.Facts.Cause.Value, src.Facts.Cause.Limit = "HH", ptr(86), ptr(80)
	if got, want := Render(EN, src), "Tank farm raised to orange warning (was blue warning): 1#液氨储罐 NH3 检测器 86 ppm ≥ HH 80 ppm for 2 s"; got != want {
		t.Errorf("en source %q\nwant %q", got, want)
	}
	if got := Render(EN, protocol.AlarmEvent{Message: "old"}); got != "old" {
		t.Errorf("an event without facts keeps its message, got %q", got)
	}
}

func TestT(t *testing.T) {
	if got := T(EN, "dur.min_s", Args{"m": "3", "s": "5"}); got != "3 min 5 s" {
		t.Errorf("T = %q", got)
	}
	if got := T(EN, "no.such.key", nil); got != "no.such.key" {
		t.Errorf("missing key gives %q", got)
	}
	if got := Duration(ZH, 3725*time.Second); got != "1 小时 2 分" {
		t.Errorf("Duration = %q", got)
	}
}
