package rules

import (
	"strings"
	"testing"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// restart stands for a restart of the ingest service at s: the alarm
// journal keeps the engine's active conditions, a new engine is built from
// text and restored from them. It returns Restore's events.
func (h *harness) restart(s float64, text string) []Event {
	h.t.Helper()
	journal := h.e.Active()
	e, err := New([]*site.Site{parseSite(h.t, text)})
	if err != nil {
		h.t.Fatal(err)
	}
	h.e = e
	evs := e.Restore(journal, sec(s), nil)
	h.all = append(h.all, evs...)
	return evs
}

// sameActive fails unless the engine's active conditions are those of
// before, with their Since and grades.
func sameActive(t *testing.T, before, after []Event) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("active before restart %d, after %d:\n%s---\n%s", len(before), len(after), dump(before), dump(after))
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.Key != b.Key || !a.Since.Equal(b.Since) || a.Grade != b.Grade {
			t.Errorf("after restart %s since %v %v, before %s since %v %v", a.Key, a.Since, a.Grade, b.Key, b.Since, b.Grade)
		}
	}
}

func TestRestoreLimitContinuesAndClears(t *testing.T) {
	h := newHarness(t, testSite)
	for s := 0; s <= 3; s++ {
		h.read(float64(s), "g1", 50)
	}
	before := h.e.Active()
	if evs := h.restart(30, testSite); len(evs) != 0 {
		t.Fatalf("restoring a condition the model still has emitted:\n%s", dump(evs))
	}
	sameActive(t, before, h.e.Active())
	if g := h.e.SourceGrade("t", "nh3"); g != protocol.Blue {
		t.Fatalf("source grade after restore %v, want blue", g)
	}
	mark := len(h.all)
	for s := 31; s <= 40; s++ {
		h.read(float64(s), "g1", 45)
	}
	if n := count(h.all[mark:], Raised, keyH); n != 0 {
		t.Fatalf("a value still past the limit raised the restored alarm again:\n%s", dump(h.all[mark:]))
	}
	// Back inside the deadband for the off-delay: the restored alarm clears
	// with its original Since, and the source reports back to none.
	h.read(41, "g1", 10)
	h.read(43, "g1", 10)
	c := find(t, h.all, Cleared, keyH)
	if !c.Since.Equal(sec(0)) || c.PrevGrade != protocol.Blue || !strings.Contains(msg(c), "历时 43 秒") {
		t.Errorf("clear after restore: %+v", c)
	}
	sg := find(t, h.all[mark:], SourceGradeChanged, "t/nh3")
	if sg.PrevGrade != protocol.Blue || sg.Grade != protocol.None {
		t.Errorf("source change after restore %v → %v, want blue → none", sg.PrevGrade, sg.Grade)
	}
}

func TestRestoreHeldCountsFromSince(t *testing.T) {
	// Restarted at 5 min: the held upgrade still comes 10 min after Since.
	h := newHarness(t, testSite)
	for s := 0; s <= 3; s++ {
		h.read(float64(s), "g1", 50)
	}
	h.restart(300, testSite)
	for s := 301; s <= 660; s++ {
		h.read(float64(s), "g1", 50)
		h.tick(float64(s) + 0.5)
	}
	held := find(t, h.all, GradeChanged, keyH)
	if !held.Time.Equal(sec(600)) || held.Grade != protocol.Yellow || held.PrevGrade != protocol.Blue {
		t.Errorf("held after restore: %+v", held)
	}
	if g := h.e.SourceGrade("t", "nh3"); g != protocol.Yellow {
		t.Errorf("source grade %v, want yellow", g)
	}

	// Down across the 10 minutes: Restore itself upgrades it.
	h = newHarness(t, testSite)
	for s := 0; s <= 3; s++ {
		h.read(float64(s), "g1", 50)
	}
	evs := h.restart(700, testSite)
	gc := find(t, evs, GradeChanged, keyH)
	if gc.Grade != protocol.Yellow || gc.PrevGrade != protocol.Blue || !strings.Contains(msg(gc), "超过 10 分钟") {
		t.Errorf("held during downtime: %+v", gc)
	}
	sg := find(t, evs, SourceGradeChanged, "t/nh3")
	if sg.PrevGrade != protocol.Blue || sg.Grade != protocol.Yellow {
		t.Errorf("source change %v → %v, want blue → yellow", sg.PrevGrade, sg.Grade)
	}
	// Already held in the journal: nothing to report on a second restart.
	if evs := h.restart(710, testSite); len(evs) != 0 {
		t.Errorf("restoring a held alarm emitted:\n%s", dump(evs))
	}
}

func TestRestoreRisingAndPowerOff(t *testing.T) {
	h := newHarness(t, testSite)
	for s := 0; s <= 3; s++ {
		h.read(float64(s), "g2", 82)
		h.read(float64(s), "ch4", 1.62)
	}
	for s := 4; s <= 12; s++ {
		h.read(float64(s), "g2", 82+float64(s))
	}
	if g := activeKeys(h.e)["t/nh3/g2/HH"]; g != protocol.Orange {
		t.Fatalf("setup: rising HH is %v", g)
	}
	before := h.e.Active()
	if evs := h.restart(20, testSite); len(evs) != 0 {
		t.Fatalf("restoring rising and power-off alarms emitted:\n%s", dump(evs))
	}
	sameActive(t, before, h.e.Active())
	if h.e.SourceGrade("t", "face") != protocol.Red || h.e.SourceGrade("t", "nh3") != protocol.Orange {
		t.Fatalf("source grades after restore: face %v, nh3 %v", h.e.SourceGrade("t", "face"), h.e.SourceGrade("t", "nh3"))
	}
	// Below power-off but above restore: stays; below restore: clears.
	for s := 21; s <= 26; s++ {
		h.read(float64(s), "ch4", 1.2)
	}
	if count(h.all, Cleared, "t/face/ch4/HH") != 0 {
		t.Fatalf("restored power-off cleared above the restore value:\n%s", dump(h.all))
	}
	for s := 27; s <= 29; s++ {
		h.read(float64(s), "ch4", 0.95)
	}
	c := find(t, h.all, Cleared, "t/face/ch4/HH")
	if !strings.Contains(msg(c), "复电值 1 %") || !c.Since.Equal(sec(0)) {
		t.Errorf("power-off clear after restore: %+v", c)
	}
	sg := find(t, h.all, SourceGradeChanged, "t/face")
	if sg.PrevGrade != protocol.Red || sg.Grade != protocol.Blue {
		t.Errorf("face %v → %v, want red → blue (H still active)", sg.PrevGrade, sg.Grade)
	}
}

func TestRestoreStaleFaultStuckRate(t *testing.T) {
	h := newHarness(t, testSite)
	h.tick(0)
	h.quality(1, "g2", protocol.Bad, 0)
	v := 5.0
	for s := 0; s <= 40; s++ {
		h.read(float64(s), "co", v)
		h.tick(float64(s) + 0.5)
	}
	for s := 41; s <= 100; s++ { // 120 ppm/min: rate of change
		v += 2
		h.read(float64(s), "co", v)
	}
	act := activeKeys(h.e)
	for _, key := range []string{"t/nh3/g1/stale", "t/nh3/g2/fault", "t/face/co/roc_rise"} {
		if act[key] == protocol.None {
			t.Fatalf("setup: %s not active: %v", key, act)
		}
	}
	before := h.e.Active()
	if evs := h.restart(101, testSite); len(evs) != 0 {
		t.Fatalf("restore emitted:\n%s", dump(evs))
	}
	sameActive(t, before, h.e.Active())
	// Ticks without data: stale stays, and is not raised again.
	mark := len(h.all)
	for s := 102; s <= 110; s++ {
		h.tick(float64(s))
	}
	if n := count(h.all[mark:], Raised, "t/nh3/g1/stale"); n != 0 {
		t.Fatalf("restored stale raised again:\n%s", dump(h.all[mark:]))
	}
	// Good data clears stale and fault; a flat value clears the rate.
	h.read(111, "g1", 5)
	h.read(111, "g2", 5)
	if c := find(t, h.all, Cleared, "t/nh3/g1/stale"); !strings.Contains(msg(c), "中断历时") {
		t.Errorf("stale clear: %+v", c)
	}
	find(t, h.all, Cleared, "t/nh3/g2/fault")
	for s := 111; s <= 180; s++ {
		h.read(float64(s), "co", v+float64(s%2))
	}
	find(t, h.all, Cleared, "t/face/co/roc_rise")

	// Stuck: the same value after the restart keeps it, a change clears it.
	h = newHarness(t, testSite)
	for s := 0; s <= 40; s++ {
		h.read(float64(s), "co", 5)
		h.tick(float64(s) + 0.5)
	}
	find(t, h.all, Raised, "t/face/co/stuck")
	h.restart(50, testSite)
	for s := 51; s <= 60; s++ {
		h.read(float64(s), "co", 5)
		h.tick(float64(s) + 0.5)
	}
	if count(h.all, Cleared, "t/face/co/stuck")+count(h.all, Raised, "t/face/co/stuck") != 1 {
		t.Fatalf("a value still frozen after restart must keep the stuck alarm:\n%s", dump(h.all))
	}
	h.read(61, "co", 6)
	find(t, h.all, Cleared, "t/face/co/stuck")
}

func TestRestoreVotesRecomputed(t *testing.T) {
	setup := func() *harness {
		h := newHarness(t, testSite)
		for s := 0; s <= 3; s++ {
			h.read(float64(s), "g1", 50)
			h.read(float64(s), "g2", 50)
		}
		if g := h.e.SourceGrade("t", "nh3"); g != protocol.Orange {
			t.Fatalf("setup: grade %v", g)
		}
		return h
	}
	// Agreeing: nothing emitted, and the next change reports from orange.
	h := setup()
	before := h.e.Active()
	if evs := h.restart(10, testSite); len(evs) != 0 {
		t.Fatalf("restoring an agreeing vote emitted:\n%s", dump(evs))
	}
	sameActive(t, before, h.e.Active())
	mark := len(h.all)
	for s := 11; s <= 14; s++ {
		h.read(float64(s), "g2", 0)
	}
	for _, key := range []string{"t/nh3/leak/vote_first", "t/nh3/many_first", "t/nh3/g2/H"} {
		if count(h.all[mark:], Cleared, key) != 1 {
			t.Errorf("%s not cleared after restore:\n%s", key, dump(h.all[mark:]))
		}
	}
	sg := find(t, h.all[mark:], SourceGradeChanged, "t/nh3")
	if sg.PrevGrade != protocol.Orange || sg.Grade != protocol.Blue {
		t.Errorf("source %v → %v, want orange → blue", sg.PrevGrade, sg.Grade)
	}

	// Disagreeing: the journal lost g2's H; the vote and count clear.
	h = setup()
	var journal []Event
	for _, ev := range h.e.Active() {
		if ev.Key != "t/nh3/g2/H" {
			journal = append(journal, ev)
		}
	}
	e, err := New([]*site.Site{parseSite(t, testSite)})
	if err != nil {
		t.Fatal(err)
	}
	evs := e.Restore(journal, sec(10), nil)
	if count(evs, Cleared, "t/nh3/leak/vote_first") != 1 || count(evs, Cleared, "t/nh3/many_first") != 1 {
		t.Errorf("vote without its points not cleared:\n%s", dump(evs))
	}
	sg = find(t, evs, SourceGradeChanged, "t/nh3")
	if sg.PrevGrade != protocol.Orange || sg.Grade != protocol.Blue || e.SourceGrade("t", "nh3") != protocol.Blue {
		t.Errorf("source %v → %v (now %v), want orange → blue", sg.PrevGrade, sg.Grade, e.SourceGrade("t", "nh3"))
	}

	// The journal lacks the vote but has both points: it is raised.
	h = setup()
	journal = journal[:0]
	for _, ev := range h.e.Active() {
		if ev.Condition == H {
			journal = append(journal, ev)
		}
	}
	e, _ = New([]*site.Site{parseSite(t, testSite)})
	evs = e.Restore(journal, sec(10), nil)
	if count(evs, Raised, "t/nh3/leak/vote_first") != 1 || count(evs, Raised, "t/nh3/many_first") != 1 {
		t.Errorf("vote of restored points not raised:\n%s", dump(evs))
	}
	if sg := find(t, evs, SourceGradeChanged, "t/nh3"); sg.PrevGrade != protocol.Blue || sg.Grade != protocol.Orange {
		t.Errorf("source %v → %v, want blue → orange", sg.PrevGrade, sg.Grade)
	}
}

func TestRestoreUnplacedAndPolicyChange(t *testing.T) {
	h := newHarness(t, testSite)
	for s := 0; s <= 3; s++ {
		h.read(float64(s), "g1", 50)
		h.read(float64(s), "g2", 50)
		h.read(float64(s), "co", 30)
	}
	journal := h.e.Active()
	journal = append(journal,
		Event{Type: Raised, Site: "gone", Source: "x", Point: "p", Condition: H, Key: "gone/x/p/H", Grade: protocol.Yellow, Since: sec(1)},
		Event{Type: Raised, Site: "t", Source: "nh3", Point: "g3", Condition: "bogus", Key: "t/nh3/g3/bogus", Grade: protocol.Blue, Since: sec(1)},
		Event{Type: Raised, Site: "t", Source: "nh3", Point: "g3", Condition: H, Key: "wrong-key", Grade: protocol.Blue, Since: sec(1)},
		Event{Type: SourceGradeChanged, Site: "t", Source: "nh3", Key: "t/nh3", Grade: protocol.Red},
	)
	// While down: g2 removed (the vote keeps g1, g3), g1 lost its H limit,
	// the face removed, and first level is now yellow.
	text := strings.Replace(testSite, "      - {id: g2, name: 2#液氨储罐 NH3 检测器, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: gds, address: 1}, limits: {h: 40, hh: 80}}\n", "", 1)
	text = strings.Replace(text, "points: [g1, g2, g3]", "points: [g1, g3]", 1)
	text = strings.Replace(text, "address: 0}, limits: {h: 40, hh: 80}", "address: 0}, limits: {hh: 80}", 1)
	text = text[:strings.Index(text, "  - id: face")] + "policy: {first_level: yellow}\n"
	e, err := New([]*site.Site{parseSite(t, text)})
	if err != nil {
		t.Fatal(err)
	}
	evs := e.Restore(journal, sec(10), nil)
	for _, key := range []string{"t/nh3/g1/H", "t/nh3/g2/H", "t/face/co/H", "gone/x/p/H", "t/nh3/g3/bogus", "wrong-key",
		"t/nh3/leak/vote_first", "t/nh3/many_first"} {
		if count(evs, Cleared, key) != 1 {
			t.Errorf("%s not cleared:\n%s", key, dump(evs))
		}
	}
	if c := find(t, evs, Cleared, "t/nh3/g1/H"); c.PrevGrade != protocol.Blue || !strings.Contains(msg(c), "无法接续") || !c.Time.Equal(sec(10)) {
		t.Errorf("unplaced clear %+v", c)
	}
	for _, ev := range evs {
		if ev.Type == Raised {
			t.Errorf("restore raised %s", ev.Key)
		}
	}
	if sg := find(t, evs, SourceGradeChanged, "t/face"); sg.PrevGrade != protocol.Blue || sg.Grade != protocol.None {
		t.Errorf("removed face: %v → %v", sg.PrevGrade, sg.Grade)
	}
	if sg := find(t, evs, SourceGradeChanged, "gone/x"); sg.PrevGrade != protocol.Yellow || sg.Grade != protocol.None {
		t.Errorf("unknown site: %v → %v", sg.PrevGrade, sg.Grade)
	}
	if sg := find(t, evs, SourceGradeChanged, "t/nh3"); sg.PrevGrade != protocol.Orange || sg.Grade != protocol.None {
		t.Errorf("nh3: %v → %v, want orange → none", sg.PrevGrade, sg.Grade)
	}
	if n := len(e.Active()); n != 0 {
		t.Errorf("nothing should stay active: %v", activeKeys(e))
	}

	// Same model, new policy: first level yellow re-grades the H alarm.
	h = newHarness(t, testSite)
	for s := 0; s <= 3; s++ {
		h.read(float64(s), "g1", 50)
	}
	evs = h.restart(10, testSite+"policy: {first_level: yellow}\n")
	gc := find(t, evs, GradeChanged, keyH)
	if gc.PrevGrade != protocol.Blue || gc.Grade != protocol.Yellow || !gc.Since.Equal(sec(0)) {
		t.Errorf("policy re-grade %+v", gc)
	}
	if sg := find(t, evs, SourceGradeChanged, "t/nh3"); sg.PrevGrade != protocol.Blue || sg.Grade != protocol.Yellow {
		t.Errorf("source %v → %v, want blue → yellow", sg.PrevGrade, sg.Grade)
	}
	if act := activeKeys(h.e); act[keyH] != protocol.Yellow {
		t.Errorf("active after re-grade %v", act)
	}
	// A policy that turns first level off closes the alarm.
	evs = h.restart(20, testSite+"policy: {first_level: none}\n")
	if count(evs, Cleared, keyH) != 1 || len(h.e.Active()) != 0 {
		t.Errorf("first_level none must clear the restored H:\n%s", dump(evs))
	}
}

func TestChattering(t *testing.T) {
	h := newHarness(t, testSite)
	// Raise at 2, 8, 14, 20 (2 s on-delay), clear in between.
	for cycle := 0; cycle < 4; cycle++ {
		base := float64(cycle * 6)
		for s := base; s <= base+2; s++ {
			h.read(s, "g1", 50)
		}
		for s := base + 3; s <= base+5; s++ {
			h.read(s, "g1", 0)
		}
	}
	var raises []Event
	for _, ev := range h.all {
		if ev.Type == Raised && ev.Key == keyH {
			raises = append(raises, ev)
		}
	}
	if len(raises) != 4 {
		t.Fatalf("want 4 raises:\n%s", dump(h.all))
	}
	for i, ev := range raises {
		chattering := i >= 2
		if ev.Chattering != chattering {
			t.Errorf("raise %d at %v: chattering %v, want %v", i+1, ev.Time, ev.Chattering, chattering)
		}
		if want := "（1 分钟内第 " + string(rune('1'+i)) + " 次报警，疑似抖动）"; chattering != strings.HasSuffix(msg(ev), want) {
			t.Errorf("raise %d message %q", i+1, msg(ev))
		}
	}
	if ev := h.e.Active(); len(ev) != 0 {
		t.Fatalf("setup: still active %v", activeKeys(h.e))
	}
	// A raise more than a minute after the earlier ones is not chattering;
	// the alarm itself is never suppressed.
	for s := 90; s <= 92; s++ {
		h.read(float64(s), "g1", 50)
	}
	last := find(t, h.all, Raised, keyH)
	if !last.Time.Equal(sec(92)) || last.Chattering || strings.Contains(msg(last), "抖动") {
		t.Errorf("a raise after a quiet minute: %+v", last)
	}
	if act := h.e.Active(); len(act) != 1 || act[0].Chattering {
		t.Errorf("active after the quiet raise: %+v", act)
	}
}

// TestRestoreWithoutFactsNamesTheCondition: a journal that kept no facts
// (written before they existed) still gives the restored alarm its names,
// so a later source change says what is behind it in words.
func TestRestoreWithoutFactsNamesTheCondition(t *testing.T) {
	h := newHarness(t, testSite)
	h.all = h.e.Restore([]Event{{Type: Raised, Key: keyHH, Site: "t", Source: "nh3", Point: "g1", Condition: HH,
		Grade: protocol.Yellow, Value: 86, Limit: 80, Since: sec(0), Time: sec(2)}}, sec(10), nil)
	act := h.e.Active()
	if len(act) != 1 || act[0].Facts.Reason != ReasonLimitExceeded || act[0].Facts.Name != "1#液氨储罐 NH3 检测器" {
		t.Fatalf("restored %+v", act)
	}
	if m := msg(act[0]); m != "1#液氨储罐 NH3 检测器 86 ppm ≥ HH 80 ppm，持续 10 秒" {
		t.Errorf("restored alarm says %q", m)
	}
}
