package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// gatewayRun feeds point g1 a physical signal as a gateway whose clock is
// offset from the centre's would: each reading is taken at centre time s,
// stamped s+offset by the gateway and received a little later. The centre
// ticks every second, half a second after the readings.
const keyHH = "t/nh3/g1/HH"

func gatewayRun(t *testing.T, offset time.Duration, signal func(s int) (float64, bool), until int) *harness {
	h := newHarness(t, testSite)
	for s := 0; s <= until; s++ {
		if v, ok := signal(s); ok {
			jitter := time.Duration(50+(s*37)%250) * time.Millisecond // 50–300 ms in transit
			h.reading(Reading{Site: "t", Point: "g1", Time: sec(float64(s)).Add(offset), Received: sec(float64(s)).Add(jitter), Value: v})
		}
		h.tick(float64(s) + 0.5)
	}
	return h
}

// decisions lists the raise/clear decisions about g1, with the centre's
// time rounded to the tick.
func decisions(evs []Event) []string {
	var out []string
	for _, ev := range evs {
		if ev.Point == "g1" && ev.Type != SourceGradeChanged {
			out = append(out, fmt.Sprintf("%s %s @%.0f", ev.Type, ev.Condition, ev.Time.Sub(t0).Seconds()))
		}
	}
	return out
}

// TestGatewayClockOffsetsGiveTheSameDecisions: lagging and leading clocks,
// any that the contract accepts, decide exactly as a correct one.
func TestGatewayClockOffsetsGiveTheSameDecisions(t *testing.T) {
	signal := func(s int) (float64, bool) {
		switch {
		case s == 10: // a single-sample spike, shorter than the 2 s on-delay
			return 90, true
		case s >= 20 && s <= 25: // a real excursion: H after the on-delay
			return 50, true
		case s > 35: // the gateway falls silent
			return 0, false
		}
		return 5, true
	}
	ref := decisions(gatewayRun(t, 0, signal, 45).all)
	want := []string{"raised H @22", "cleared H @28", "raised stale @38"}
	if strings.Join(ref, ", ") != strings.Join(want, ", ") {
		t.Fatalf("correct clock decided %v, want %v", ref, want)
	}
	for _, off := range []time.Duration{-1800 * time.Millisecond, -2500 * time.Millisecond, -10 * time.Second, -10 * time.Minute,
		30 * time.Second, 4 * time.Minute} {
		h := gatewayRun(t, off, signal, 45)
		if got := decisions(h.all); strings.Join(got, ", ") != strings.Join(ref, ", ") {
			t.Errorf("gateway clock %v: decided %v, want %v as with a correct clock:\n%s", off, got, ref, dump(h.all))
		}
		if st := h.e.Stats(); st.Late != 0 || st.ClockJumps != 0 {
			t.Errorf("gateway clock %v: steady data counted late or as a jump: %+v", off, st)
		}
	}
}

// TestDriftingGatewayClock: a clock that loses 1 s a minute (far worse
// than any crystal) is followed; steady data never goes stale or late.
func TestDriftingGatewayClock(t *testing.T) {
	h := newHarness(t, testSite)
	for s := 0; s <= 900; s++ {
		drift := time.Duration(s) * time.Second / 60
		h.reading(Reading{Site: "t", Point: "g1", Time: sec(float64(s)).Add(-drift), Received: sec(float64(s) + 0.1), Value: 5})
		h.tick(float64(s) + 0.5)
	}
	if d := decisions(h.all); len(d) != 0 {
		t.Errorf("drifting clock raised %v:\n%s", d, dump(h.all))
	}
	if st := h.e.Stats(); st.Late != 0 {
		t.Errorf("drifting clock: %d readings counted late", st.Late)
	}
}

// TestGatewayClockSetBack: a gateway whose clock is set back by 10 minutes
// goes on being evaluated live, without a stale alarm, and its next
// excursion raises live.
func TestGatewayClockSetBack(t *testing.T) {
	h := newHarness(t, testSite)
	for s := 0; s <= 40; s++ {
		off := time.Duration(0)
		if s >= 10 {
			off = -10 * time.Minute
		}
		v := 5.0
		if s >= 30 && s <= 34 {
			v = 50
		}
		h.reading(Reading{Site: "t", Point: "g1", Time: sec(float64(s)).Add(off), Received: sec(float64(s) + 0.1), Value: v})
		h.tick(float64(s) + 0.5)
	}
	if st := h.e.Stats(); st.ClockJumps != 1 {
		t.Errorf("clock jumps %d, want 1", st.ClockJumps)
	}
	if count(h.all, Raised, "t/nh3/g1/stale") != 0 {
		t.Errorf("a clock set back made the point stale:\n%s", dump(h.all))
	}
	if r := find(t, h.all, Raised, keyH); r.Late || r.Time.Before(sec(32)) || r.Time.After(sec(33)) {
		t.Errorf("excursion after the jump: %+v", r)
	}
}

// backlogRun: g1 reads 50 (H live since 2 s) until the link drops at 10 s;
// during the outage the value went to 90 for 4 s (HH) and back to 50; at
// 22 s the link is back, live data (50) goes on and the backlog of 10–21 s
// is replayed beside it, in the given order, 20 ms apart.
func backlogRun(t *testing.T, newestFirst bool) *harness {
	h := newHarness(t, testSite)
	value := func(s int) float64 {
		if s >= 14 && s <= 17 {
			return 90
		}
		return 50
	}
	live := func(s int) {
		h.reading(Reading{Site: "t", Point: "g1", Time: sec(float64(s)), Received: sec(float64(s)).Add(100 * time.Millisecond), Value: value(s)})
	}
	for s := 0; s <= 9; s++ {
		live(s)
		h.tick(float64(s) + 0.5)
	}
	for s := 10; s <= 21; s++ {
		h.tick(float64(s) + 0.5)
	}
	var backlog []int
	for s := 10; s <= 21; s++ {
		backlog = append(backlog, s)
	}
	if newestFirst {
		for i, j := 0, len(backlog)-1; i < j; i, j = i+1, j-1 {
			backlog[i], backlog[j] = backlog[j], backlog[i]
		}
	}
	for s := 22; s <= 35; s++ {
		live(s)
		if s == 22 {
			for i, b := range backlog {
				h.reading(Reading{Site: "t", Point: "g1", Time: sec(float64(b)), Received: sec(22.2 + 0.02*float64(i)), Value: value(b)})
			}
		}
		h.tick(float64(s) + 0.5)
	}
	return h
}

func TestLateBacklogIsReportedOnceWithoutDisturbingLiveState(t *testing.T) {
	for _, newestFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("newest first %v", newestFirst), func(t *testing.T) {
			h := backlogRun(t, newestFirst)
			var late []Event
			for _, ev := range h.all {
				if ev.Late {
					late = append(late, ev)
				}
			}
			// The late alarm's Key: the condition's, "/late/" and when it
			// began (Unix ms, the gateway's time on the centre's clock:
			// 14 s plus the 0.1 s transit).
			lateKey := "t/nh3/g1/HH/late/" + fmt.Sprint(sec(14).Add(100*time.Millisecond).UnixMilli())
			if len(late) != 2 || late[0].Type != Raised || late[1].Type != Cleared || late[0].Key != lateKey || late[1].Key != lateKey {
				t.Fatalf("want the HH excursion raised and cleared late, once, as %s; got:\n%s\nall:\n%s", lateKey, dump(late), dump(h.all))
			}
			r, c := late[0], late[1]
			// Raised when it began (14 s), cleared after the 2 s off-delay
			// from the first value back inside (18 s), both long before the
			// centre learned of them (after 22 s).
			if !r.OccurredAt.Equal(sec(14).Add(100*time.Millisecond)) || !c.OccurredAt.Equal(sec(20).Add(100*time.Millisecond)) || r.Time.Before(sec(22)) || c.Time.Before(r.Time) {
				t.Errorf("late times: raised occurred %v recorded %v, cleared occurred %v recorded %v",
					r.OccurredAt.Sub(t0), r.Time.Sub(t0), c.OccurredAt.Sub(t0), c.Time.Sub(t0))
			}
			if r.Grade != protocol.Yellow || r.Value != 90 || r.Facts.Reason != ReasonLimitExceeded || c.Facts.Peak == nil || *c.Facts.Peak != 90 {
				t.Errorf("late raise %+v / clear %+v", r, c)
			}
			if m := msg(r); !strings.HasPrefix(m, "【补报】1#液氨储罐 NH3 检测器 90 ppm ≥ HH 80 ppm，持续 2 秒") {
				t.Errorf("late message %q", m)
			}
			// The live H alarm, on since 0 s, is untouched: never cleared
			// nor raised again, still active with its Since; the live HH
			// was never raised; the stale alarm of the outage cleared.
			if count(h.all, Raised, keyH) != 1 || count(h.all, Cleared, keyH) != 0 || count(h.all, Raised, keyHH) != 0 {
				t.Errorf("live alarms disturbed:\n%s", dump(h.all))
			}
			if a := activeKeys(h.e); a[keyH] == protocol.None || a[keyHH] != protocol.None {
				t.Errorf("active after the backlog: %v", a)
			}
			if count(h.all, Raised, "t/nh3/g1/stale") != 1 || count(h.all, Cleared, "t/nh3/g1/stale") != 1 {
				t.Errorf("the outage must raise and clear stale once:\n%s", dump(h.all))
			}
			// Every event is recorded in order.
			for i := 1; i < len(h.all); i++ {
				if h.all[i].Time.Before(h.all[i-1].Time) {
					t.Errorf("event %d recorded before the one before it:\n%s", i, dump(h.all))
				}
			}
		})
	}
}

// TestLateBacklogAfterLiveOldestFirst: a third-party gateway replays its
// backlog oldest first before any live data: the readings are newer than
// the newest seen, but arrive long after they were taken.
func TestLateBacklogBeforeLiveData(t *testing.T) {
	h := newHarness(t, testSite)
	for s := 0; s <= 9; s++ {
		h.reading(Reading{Site: "t", Point: "g1", Time: sec(float64(s)), Received: sec(float64(s)).Add(100 * time.Millisecond), Value: 5})
		h.tick(float64(s) + 0.5)
	}
	for s := 10; s <= 29; s++ {
		h.tick(float64(s) + 0.5)
	}
	for i, s := range []int{10, 11, 12, 13, 14, 15, 16, 17, 18, 19} {
		v := 5.0
		if s >= 12 && s <= 15 {
			v = 50
		}
		h.reading(Reading{Site: "t", Point: "g1", Time: sec(float64(s)), Received: sec(30 + 0.02*float64(i)), Value: v})
	}
	for s := 30; s <= 40; s++ {
		h.reading(Reading{Site: "t", Point: "g1", Time: sec(float64(s)), Received: sec(float64(s) + 0.5), Value: 5})
		h.tick(float64(s) + 0.6)
	}
	lateKey := "t/nh3/g1/H/late/" + fmt.Sprint(sec(12).Add(100*time.Millisecond).UnixMilli())
	if count(h.all, Raised, lateKey) != 1 || count(h.all, Cleared, lateKey) != 1 || count(h.all, Raised, keyH) != 0 {
		t.Errorf("want the H excursion reported late once, nothing live:\n%s", dump(h.all))
	}
}

func TestSaturatedDetectorRaisesItsLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    protocol.Quality
		v    float64
	}{
		{"register over_range", protocol.OverRange, 150},
		{"4-20 mA above 20 mA", protocol.OverRange, 103.125},
		{"third-party value above range", protocol.Good, 120},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testSite)
			h.read(0, "g1", 5)
			for s := 1; s <= 4; s++ {
				h.quality(float64(s), "g1", tc.q, tc.v)
				h.tick(float64(s) + 0.5)
			}
			for _, key := range []string{keyH, keyHH, "t/nh3/g1/fault"} {
				if count(h.all, Raised, key) != 1 {
					t.Errorf("%s not raised once:\n%s", key, dump(h.all))
				}
			}
			hh := find(t, h.all, Raised, keyHH)
			if hh.Value != 100 || hh.Facts.Detail != ReasonSaturated || !strings.Contains(msg(hh), "探测器饱和") {
				t.Errorf("HH from saturation: %+v %q", hh, msg(hh))
			}
			if f := find(t, h.all, Raised, "t/nh3/g1/fault"); f.Facts.Reason != ReasonSaturated {
				t.Errorf("fault reason %q", f.Facts.Reason)
			}
			// Back in range: the fault clears at once, the limits after
			// their off-delay.
			for s := 5; s <= 8; s++ {
				h.read(float64(s), "g1", 5)
			}
			for _, key := range []string{keyH, keyHH, "t/nh3/g1/fault"} {
				if count(h.all, Cleared, key) != 1 {
					t.Errorf("%s not cleared once:\n%s", key, dump(h.all))
				}
			}
		})
	}
}

// TestGasAlarmClearsCloseToItsLimit: mine CO, range 0–500 ppm, H 24 ppm:
// 2 % of span would be 10 ppm (42 % of the limit); the default deadband is
// capped at 10 % of the limit, so the alarm clears below 21.6 ppm.
func TestGasAlarmClearsCloseToItsLimit(t *testing.T) {
	h := newHarness(t, testSite)
	const key = "t/face/co/H"
	for s := 0; s <= 3; s++ {
		h.read(float64(s), "co", 30)
	}
	for s := 4; s <= 8; s++ {
		h.read(float64(s), "co", 22) // above 21.6: stays
	}
	if count(h.all, Raised, key) != 1 || count(h.all, Cleared, key) != 0 {
		t.Fatalf("CO H at 22 ppm:\n%s", dump(h.all))
	}
	for s := 9; s <= 12; s++ {
		h.read(float64(s), "co", 21)
	}
	c := find(t, h.all, Cleared, key)
	if c.Facts.ClearAt == nil || *c.Facts.ClearAt != 21.6 || !strings.Contains(msg(c), "< 21.6 ppm（H 24 ppm 减回差 2.4）") {
		t.Errorf("CO clear: %q", msg(c))
	}
}
