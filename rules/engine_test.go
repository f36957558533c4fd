package rules

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

const keyH = "t/nh3/g1/H"

// step is one input of a scripted case: a reading of g1 or, with tick, a
// clock tick.
type step struct {
	at   float64
	v    float64
	tick bool
}

func TestLimitDeadbandAndDelays(t *testing.T) {
	cases := []struct {
		name           string
		steps          []step
		raised, clears int
		raisedAt       float64 // when raised, the event's time
	}{
		{"spike shorter than the on-delay raises nothing",
			[]step{{0, 10, false}, {1, 55, false}, {2, 10, false}, {3, 60, false}, {4, 30, false}, {5, 0, true}, {9, 0, true}}, 0, 0, 0},
		{"held for the on-delay raises once",
			[]step{{0, 50, false}, {1, 51, false}, {2, 52, false}, {3, 53, false}, {4, 0, true}}, 1, 0, 2},
		{"on-delay expiring between readings raises on the tick",
			[]step{{0, 50, false}, {1, 0, true}, {2.5, 0, true}}, 1, 0, 2.5},
		{"chattering inside the deadband raises nothing extra",
			[]step{{0, 45, false}, {1, 45, false}, {2, 45, false}, {3, 39, false}, {4, 41, false}, {5, 38.5, false}, {6, 40.5, false}, {7, 38.2, false}, {8, 42, false}, {9, 39, false}, {10, 0, true}, {20, 39.9, false}}, 1, 0, 2},
		{"clears below limit minus deadband after the off-delay",
			[]step{{0, 45, false}, {2, 45, false}, {10, 37, false}, {11, 37, false}, {12, 36, false}}, 1, 1, 2},
		{"a dip shorter than the off-delay does not clear",
			[]step{{0, 45, false}, {2, 45, false}, {10, 37, false}, {11, 45, false}, {12, 37, false}, {13, 45, false}, {14, 0, true}}, 1, 0, 2},
		{"off-delay expiring between readings clears on the tick",
			[]step{{0, 45, false}, {2, 45, false}, {3, 10, false}, {4, 0, true}, {5, 0, true}}, 1, 1, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testSite)
			for _, s := range tc.steps {
				if s.tick {
					h.tick(s.at)
				} else {
					h.read(s.at, "g1", s.v)
				}
			}
			if got := count(h.all, Raised, keyH); got != tc.raised {
				t.Errorf("raised %d times, want %d:\n%s", got, tc.raised, dump(h.all))
			}
			if got := count(h.all, Cleared, keyH); got != tc.clears {
				t.Errorf("cleared %d times, want %d:\n%s", got, tc.clears, dump(h.all))
			}
			if tc.raised > 0 {
				ev := find(t, h.all, Raised, keyH)
				if !ev.Time.Equal(sec(tc.raisedAt)) || !ev.Since.Equal(sec(0)) || ev.Limit != 40 || ev.Grade != protocol.Blue {
					t.Errorf("raise event %+v: want time %v, since t0, limit 40, blue", ev, sec(tc.raisedAt))
				}
			}
		})
	}
}

func TestHHKeepsHAndMessages(t *testing.T) {
	h := newHarness(t, testSite)
	for s := 0; s <= 12; s++ {
		h.read(float64(s), "g1", 86)
	}
	hh := find(t, h.all, Raised, "t/nh3/g1/HH")
	if want := "1#液氨储罐 NH3 检测器 86 ppm ≥ HH 80 ppm，持续 2 秒"; msg(hh) != want {
		t.Errorf("message %q, want %q", msg(hh), want)
	}
	if hh.Grade != protocol.Yellow || hh.Value != 86 || hh.Limit != 80 || hh.Point != "g1" || hh.Source != "nh3" || hh.Site != "t" {
		t.Errorf("HH event fields wrong: %+v", hh)
	}
	act := activeKeys(h.e)
	if act["t/nh3/g1/H"] != protocol.Blue || act["t/nh3/g1/HH"] != protocol.Yellow {
		t.Errorf("with HH active, H must stay active: %v", act)
	}
	if g := h.e.SourceGrade("t", "nh3"); g != protocol.Yellow {
		t.Errorf("source grade %v, want yellow (one point at second level)", g)
	}
	sg := find(t, h.all, SourceGradeChanged, "t/nh3")
	if !strings.Contains(msg(sg), "液氨储罐区 升为黄色预警") {
		t.Errorf("source message %q", msg(sg))
	}
	// Falling to 60: HH clears (below 80 − 2), H stays.
	h.read(13, "g1", 60)
	h.read(15, "g1", 60)
	if count(h.all, Cleared, "t/nh3/g1/HH") != 1 || count(h.all, Cleared, keyH) != 0 {
		t.Errorf("at 60 ppm HH must clear and H stay:\n%s", dump(h.all))
	}
	c := find(t, h.all, Cleared, "t/nh3/g1/HH")
	if !strings.Contains(msg(c), "60 ppm < 78 ppm") || c.PrevGrade != protocol.Yellow || c.Grade != protocol.None {
		t.Errorf("clear event %+v", c)
	}
	if g := h.e.SourceGrade("t", "nh3"); g != protocol.Blue {
		t.Errorf("source grade %v after HH cleared, want blue", g)
	}
}

func TestVoteGrades(t *testing.T) {
	h := newHarness(t, testSite)
	for s := 0; s <= 3; s++ {
		h.read(float64(s), "g1", 50)
	}
	one := h.e.SourceGrade("t", "nh3")
	for s := 4; s <= 7; s++ {
		h.read(float64(s), "g2", 50)
	}
	two := h.e.SourceGrade("t", "nh3")
	if one != protocol.Blue || two != protocol.Orange {
		t.Fatalf("one detector of 2oo3 gave %v, two gave %v; want blue then orange:\n%s", one, two, dump(h.all))
	}
	v := find(t, h.all, Raised, "t/nh3/leak/vote_first")
	if msg(v) != "液氨泄漏 2oo3 表决：1#液氨储罐 NH3 检测器 50 ppm、2#液氨储罐 NH3 检测器 50 ppm 达一级报警" || len(v.Points) != 2 || v.Value != 2 || v.Limit != 2 {
		t.Errorf("vote event %+v", v)
	}
	if count(h.all, Raised, "t/nh3/many_first") != 1 {
		t.Errorf("two points at first level must raise many_first:\n%s", dump(h.all))
	}
	// The third detector joins: same condition, new points.
	for s := 8; s <= 11; s++ {
		h.read(float64(s), "g3", 50)
	}
	if gc := find(t, h.all, GradeChanged, "t/nh3/leak/vote_first"); len(gc.Points) != 3 {
		t.Errorf("vote should list three points now: %+v", gc)
	}
	// Two at second level: red.
	for s := 12; s <= 15; s++ {
		h.read(float64(s), "g1", 90)
		h.read(float64(s), "g2", 90)
	}
	if g := h.e.SourceGrade("t", "nh3"); g != protocol.Red {
		t.Errorf("2oo3 at second level gave %v, want red:\n%s", g, dump(h.all))
	}
	// All back to normal: everything clears, the source returns to none.
	for s := 16; s <= 20; s++ {
		for _, p := range []string{"g1", "g2", "g3"} {
			h.read(float64(s), p, 0)
		}
	}
	if g := h.e.SourceGrade("t", "nh3"); g != protocol.None || len(h.e.Active()) != 0 {
		t.Errorf("after recovery grade %v, active %v", g, activeKeys(h.e))
	}
}

func TestStaleAndFaultRaiseTheirOwnConditions(t *testing.T) {
	h := newHarness(t, testSite)
	h.tick(0)
	// g1 starts exceeding, then its head fails: no gas alarm may follow.
	h.read(0, "g1", 55)
	h.quality(1, "g1", protocol.Bad, 0)
	// g2 reports a value below its range; g3 only communication failures.
	h.quality(1, "g2", protocol.OverRange, -5)
	h.quality(1, "g3", protocol.CommFail, 0)
	h.quality(2, "g3", protocol.CommFail, 0)
	// Good quality but NaN counts as a fault as well.
	h.reading(Reading{Site: "t", Point: "lvl", Time: sec(1), Value: math.NaN()})
	for s := 1; s <= 10; s++ {
		h.tick(float64(s))
		h.quality(float64(s)+0.5, "g1", protocol.Bad, 0)
		h.quality(float64(s)+0.5, "g2", protocol.OverRange, -5)
	}
	for _, key := range []string{"t/nh3/g1/fault", "t/nh3/g2/fault", "t/nh3/g3/stale", "t/nh3/lvl/fault", "t/face/ch4/stale"} {
		if count(h.all, Raised, key) != 1 {
			t.Errorf("%s not raised once:\n%s", key, dump(h.all))
		}
	}
	for _, ev := range h.all {
		switch ev.Condition {
		case H, HH, VoteFirst, VoteSecond, ManyFirst, ManySecond:
			t.Errorf("false alarm from a faulty or stale point: %s %s", ev.Key, msg(ev))
		}
	}
	if g := h.e.SourceGrade("t", "nh3"); g != protocol.Blue {
		t.Errorf("stale and faults grade %v, want blue", g)
	}
	f := find(t, h.all, Raised, "t/nh3/g2/fault")
	if !strings.Contains(msg(f), "低于量程：-5 ppm") {
		t.Errorf("below-range message %q", msg(f))
	}
	st := find(t, h.all, Raised, "t/nh3/g3/stale")
	if !st.Time.Equal(sec(3)) || !strings.Contains(msg(st), "通信中断") {
		t.Errorf("stale event %+v", st)
	}
	// Good data clears both.
	h.read(11, "g1", 5)
	h.read(11, "g3", 5)
	if count(h.all, Cleared, "t/nh3/g1/fault") != 1 || count(h.all, Cleared, "t/nh3/g3/stale") != 1 {
		t.Errorf("good readings must clear fault and stale:\n%s", dump(h.all))
	}
}

func TestCoalMinePowerOffAndRestore(t *testing.T) {
	h := newHarness(t, testSite)
	for s := 0; s <= 2; s++ {
		h.read(float64(s), "ch4", 1.62)
	}
	off := find(t, h.all, Raised, "t/face/ch4/HH")
	if off.Grade != protocol.Red || h.e.SourceGrade("t", "face") != protocol.Red {
		t.Fatalf("CH4 power-off gave %v / source %v, want red", off.Grade, h.e.SourceGrade("t", "face"))
	}
	if !strings.Contains(msg(off), "1.62 % ≥ 断电值 1.5 %") {
		t.Errorf("power-off message %q", msg(off))
	}
	// 1.2 %: below the power-off value but above restore (1.0): stays.
	for s := 3; s <= 8; s++ {
		h.read(float64(s), "ch4", 1.2)
	}
	if count(h.all, Cleared, "t/face/ch4/HH") != 0 {
		t.Fatalf("power-off cleared above the restore value:\n%s", dump(h.all))
	}
	// 0.95 %: below restore, power-off clears; H (1.0, deadband 0.08) stays.
	for s := 9; s <= 11; s++ {
		h.read(float64(s), "ch4", 0.95)
	}
	if count(h.all, Cleared, "t/face/ch4/HH") != 1 || count(h.all, Cleared, "t/face/ch4/H") != 0 {
		t.Fatalf("want HH cleared below restore and H kept:\n%s", dump(h.all))
	}
	if c := find(t, h.all, Cleared, "t/face/ch4/HH"); !strings.Contains(msg(c), "复电值 1 %") {
		t.Errorf("restore message %q", msg(c))
	}
	if g := h.e.SourceGrade("t", "face"); g != protocol.Blue {
		t.Errorf("after restore the face is %v, want blue (H still active)", g)
	}
}

func TestEscalationBySourceGrade(t *testing.T) {
	cases := []struct {
		grade           int
		first, powerOff protocol.Grade
	}{
		{1, protocol.Yellow, protocol.Red},
		{2, protocol.Yellow, protocol.Red},
		{3, protocol.Blue, protocol.Red},
		{4, protocol.Blue, protocol.Red},
	}
	for _, tc := range cases {
		text := strings.ReplaceAll(testSite, "grade: 3", "grade: "+string(rune('0'+tc.grade)))
		h := newHarness(t, text)
		for s := 0; s <= 2; s++ {
			h.read(float64(s), "g1", 50)
			h.read(float64(s), "ch4", 1.6)
		}
		if g := find(t, h.all, Raised, keyH).Grade; g != tc.first {
			t.Errorf("GB 18218 grade %d: first level is %v, want %v", tc.grade, g, tc.first)
		}
		if g := find(t, h.all, Raised, "t/face/ch4/HH").Grade; g != tc.powerOff {
			t.Errorf("GB 18218 grade %d: power-off is %v, want %v (never above red)", tc.grade, g, tc.powerOff)
		}
	}
}

func TestPolicyOverride(t *testing.T) {
	text := testSite + "policy: {first_level: yellow, stale: none}\n"
	h := newHarness(t, text)
	h.tick(0)
	for s := 0; s <= 2; s++ {
		h.read(float64(s), "g1", 50)
	}
	h.tick(10)
	if g := find(t, h.all, Raised, keyH).Grade; g != protocol.Yellow {
		t.Errorf("site policy first_level yellow gave %v", g)
	}
	for _, ev := range h.all {
		if ev.Condition == Stale {
			t.Errorf("stale: none must turn stale off, got %s", msg(ev))
		}
	}
}

func TestFirstLevelHeldAndSecondLevelRising(t *testing.T) {
	h := newHarness(t, testSite)
	for s := 0; s <= 660; s += 1 {
		h.read(float64(s), "g1", 50)
		h.tick(float64(s) + 0.5)
	}
	held := find(t, h.all, GradeChanged, keyH)
	if held.Grade != protocol.Yellow || held.PrevGrade != protocol.Blue || !held.Time.Equal(sec(600)) {
		t.Errorf("first level held 10 min: %+v", held)
	}
	if !strings.Contains(msg(held), "超过 10 分钟，升为黄色预警") {
		t.Errorf("held message %q", msg(held))
	}
	if count(h.all, GradeChanged, keyH) != 1 {
		t.Errorf("held grade change repeated:\n%s", dump(h.all))
	}

	h = newHarness(t, testSite)
	for s := 0; s <= 3; s++ {
		h.read(float64(s), "g2", 82)
	}
	for s := 4; s <= 20; s++ { // steady at 82–83: not rising
		h.read(float64(s), "g2", 82+float64(s%2))
	}
	if count(h.all, GradeChanged, "t/nh3/g2/HH") != 0 {
		t.Fatalf("a steady second-level value counted as rising:\n%s", dump(h.all))
	}
	for s := 21; s <= 30; s++ {
		h.read(float64(s), "g2", 82+float64(s-20))
	}
	r := find(t, h.all, GradeChanged, "t/nh3/g2/HH")
	if r.Grade != protocol.Orange || !strings.Contains(msg(r), "仍在上升") {
		t.Errorf("rising second level: %+v", r)
	}
}

func TestRateOfChangeAndStuck(t *testing.T) {
	h := newHarness(t, testSite)
	for s := 0; s <= 40; s++ {
		h.read(float64(s), "co", 5)
		h.tick(float64(s) + 0.5)
	}
	st := find(t, h.all, Raised, "t/face/co/stuck")
	if !st.Time.Equal(sec(30)) || !strings.Contains(msg(st), "未变化") {
		t.Errorf("stuck event %+v", st)
	}
	if count(h.all, Raised, "t/face/co/roc_rise") != 0 {
		t.Fatal("flat value raised rate of change")
	}
	// Rising 0.5 ppm a second = 30 ppm/min < 60: no rate alarm; the
	// change clears stuck.
	v := 5.0
	for s := 41; s <= 160; s++ {
		v += 0.5
		h.read(float64(s), "co", v)
	}
	if count(h.all, Cleared, "t/face/co/stuck") != 1 {
		t.Errorf("a moving value must clear stuck:\n%s", dump(h.all))
	}
	if count(h.all, Raised, "t/face/co/roc_rise") != 0 {
		t.Fatalf("30 ppm/min raised a 60 ppm/min rate limit:\n%s", dump(h.all))
	}
	// 2 ppm a second = 120 ppm/min over the one-minute window: raise.
	for s := 161; s <= 230; s++ {
		v += 2
		h.read(float64(s), "co", v)
	}
	roc := find(t, h.all, Raised, "t/face/co/roc_rise")
	if roc.Limit != 60 || !strings.Contains(msg(roc), "上升过快") || roc.Time.After(sec(200)) {
		t.Errorf("rate-of-change event %+v", roc)
	}
	// Flat again for a minute: the rate falls and the condition clears.
	for s := 231; s <= 300; s++ {
		h.read(float64(s), "co", v+float64(s%2))
	}
	if count(h.all, Cleared, "t/face/co/roc_rise") != 1 {
		t.Errorf("rate condition did not clear:\n%s", dump(h.all))
	}
}

func TestOrderingAndUnknownInput(t *testing.T) {
	h := newHarness(t, testSite)
	h.read(10, "g1", 50)
	h.read(5, "g1", 0)  // older: late, kept apart from the live state
	h.read(10, "g1", 0) // duplicate time: ignored
	h.read(12, "g1", 50)
	if count(h.all, Raised, keyH) != 1 {
		t.Errorf("older readings must not reset the on-delay:\n%s", dump(h.all))
	}
	h.reading(Reading{Site: "nope", Point: "g1", Time: sec(13), Value: 99})
	h.reading(Reading{Site: "t", Point: "nope", Time: sec(13), Value: 99})
	h.reading(Reading{Site: "t", Point: "g2", Time: sec(13), Quality: "weird"})
	h.reading(Reading{Site: "t", Point: "g2", Time: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)})
	st := h.e.Stats()
	if st.OutOfOrder != 1 || st.Late != 1 || st.UnknownPoint != 2 || st.Invalid != 2 {
		t.Errorf("stats %+v", st)
	}
	if _, err := New([]*site.Site{nil}); err == nil {
		t.Error("nil site accepted")
	}
	s := parseSite(t, testSite)
	if _, err := New([]*site.Site{s, s}); err == nil || !strings.Contains(err.Error(), `site id "t" is given twice`) {
		t.Errorf("duplicate site: %v", err)
	}
	bad := parseSite(t, testSite)
	nan := math.NaN()
	bad.Sources[0].Points[0].Limits.H = &nan
	if _, err := New([]*site.Site{bad}); err == nil || !strings.Contains(err.Error(), `point "g1"`) {
		t.Errorf("NaN limit: %v", err)
	}
}

func TestReloadKeepsStateAndClearsRemoved(t *testing.T) {
	h := newHarness(t, testSite)
	for s := 0; s <= 3; s++ {
		h.read(float64(s), "g1", 50)
		h.read(float64(s), "g2", 50)
		h.read(float64(s), "co", 30)
	}
	before := activeKeys(h.e)
	if before["t/nh3/leak/vote_first"] == protocol.None {
		t.Fatalf("setup: vote not active: %v", before)
	}
	sinceH := find(t, h.all, Raised, keyH).Since

	// New file: g2 removed (and so the vote loses a point: k 2 of g1, g3),
	// the face source removed, g1's H limit moved.
	text := strings.Replace(testSite, "      - {id: g2, name: 2#液氨储罐 NH3 检测器, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: gds, address: 1}, limits: {h: 40, hh: 80}}\n", "", 1)
	text = strings.Replace(text, "points: [g1, g2, g3]", "points: [g1, g3]", 1)
	text = text[:strings.Index(text, "  - id: face")]
	evs, err := h.e.Reload([]*site.Site{parseSite(t, text)}, sec(4), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"t/nh3/g2/H", "t/nh3/leak/vote_first", "t/nh3/many_first", "t/face/co/H"} {
		if count(evs, Cleared, key) != 1 {
			t.Errorf("%s not cleared by reload:\n%s", key, dump(evs))
		}
	}
	if count(evs, Raised, keyH)+count(evs, Cleared, keyH) != 0 {
		t.Errorf("g1's H must survive the reload untouched:\n%s", dump(evs))
	}
	var faceGone bool
	for _, ev := range evs {
		if ev.Type == SourceGradeChanged && ev.Key == "t/face" && ev.Grade == protocol.None {
			faceGone = true
		}
	}
	if !faceGone {
		t.Errorf("removed source must report none:\n%s", dump(evs))
	}
	act := h.e.Active()
	if len(act) != 1 || act[0].Key != keyH || !act[0].Since.Equal(sinceH) {
		t.Errorf("after reload active = %v", activeKeys(h.e))
	}
	if g := h.e.SourceGrade("t", "nh3"); g != protocol.Blue {
		t.Errorf("nh3 grade after reload %v, want blue", g)
	}
	// g1 still clears through its carried-over state, and g3 with g1 votes.
	for s := 5; s <= 8; s++ {
		h.read(float64(s), "g3", 50)
	}
	if g := h.e.SourceGrade("t", "nh3"); g != protocol.Orange {
		t.Errorf("vote of g1 and g3 after reload: %v, want orange", g)
	}
	// A bad reload leaves the engine as it was.
	if _, err := h.e.Reload([]*site.Site{nil}, sec(9), nil); err == nil || h.e.SourceGrade("t", "nh3") != protocol.Orange {
		t.Errorf("failed reload changed the engine: %v", err)
	}
}

func TestExampleSitesLoad(t *testing.T) {
	sites, err := site.LoadDir("../configs/sites")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(sites)
	if err != nil {
		t.Fatalf("example sites: %v", err)
	}
	// A leak at two NH3 detectors of the grade-2 tank farm: vote at first
	// level is orange, escalated to red.
	var evs []Event
	for s := 0; s <= 3; s++ {
		for _, p := range []string{"nh3-gas-1", "nh3-gas-2"} {
			evs = e.Observe(Reading{Site: "jh-chem", Point: p, Time: sec(float64(s)), Value: 45, Quality: protocol.Good}, evs)
		}
	}
	if g := e.SourceGrade("jh-chem", "nh3-tanks"); g != protocol.Red {
		t.Errorf("example NH3 leak grade %v, want red:\n%s", g, dump(evs))
	}
}

func TestActiveMatchesSourceGrades(t *testing.T) {
	h := newHarness(t, testSite)
	for s := 0; s <= 3; s++ {
		h.read(float64(s), "g1", 90)
		h.read(float64(s), "lvl", 3)
	}
	act := h.e.Active()
	for i := 1; i < len(act); i++ {
		if act[i-1].Key >= act[i].Key {
			t.Fatalf("Active not sorted: %s before %s", act[i-1].Key, act[i].Key)
		}
	}
	var top protocol.Grade
	for _, ev := range act {
		if ev.Source == "nh3" {
			top = max(top, ev.Grade)
		}
	}
	if g := h.e.SourceGrade("t", "nh3"); g != top || g != protocol.Yellow {
		t.Errorf("source grade %v, max of active %v, want yellow (level LL still in its 60 s on-delay)", g, top)
	}
	h.read(60, "g1", 90)
	h.read(60, "lvl", 3)
	if ll := activeKeys(h.e)["t/nh3/lvl/LL"]; ll != protocol.Yellow {
		t.Errorf("level LL after its 60 s on-delay: %v", ll)
	}
	if g := h.e.SourceGrade("t", "nh3"); g != protocol.Orange {
		t.Errorf("two points at second level: %v, want orange", g)
	}
}
