package alerting

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
)

const key = "jh-chem/nh3-tanks/nh3-gas-1/HH"

// clock is a fake clock moved by hand.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time                { return c.t }
func (c *clock) Add(d time.Duration) time.Time { c.t = c.t.Add(d); return c.t }

func newClock() *clock { return &clock{t: time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)} }

func ruleEvent(typ rules.EventType, at time.Time, grade, prev protocol.Grade, value float64) rules.Event {
	return rules.Event{Type: typ, Time: at, Site: "jh-chem", Source: "nh3-tanks", Point: "nh3-gas-1", Condition: rules.HH,
		Key: key, Grade: grade, PrevGrade: prev, Value: value, Limit: 80, Since: at.Add(-2 * time.Second),
		Facts: protocol.AlarmFacts{Reason: rules.ReasonLimitExceeded, Name: "NH3", Unit: "ppm", LimitName: "HH"}}
}

func mustApply(t *testing.T, a *Alarm, ev rules.Event, wantType protocol.AlarmEventType, from, to protocol.AlarmState) protocol.AlarmEvent {
	t.Helper()
	out, err := a.Apply(ev)
	if err != nil {
		t.Fatalf("apply %s: %v", ev.Type, err)
	}
	checkTransition(t, out, wantType, from, to)
	return out
}

func checkTransition(t *testing.T, ev protocol.AlarmEvent, wantType protocol.AlarmEventType, from, to protocol.AlarmState) {
	t.Helper()
	if ev.Type != wantType || ev.PrevState != from || ev.State != to {
		t.Fatalf("transition %s %s→%s, want %s %s→%s", ev.Type, ev.PrevState, ev.State, wantType, from, to)
	}
	if ev.AlarmID != key || ev.TS.IsZero() {
		t.Fatalf("transition lacks alarm id or time: %+v", ev)
	}
}

func TestLifecycleRaiseAckClear(t *testing.T) {
	c := newClock()
	var a Alarm
	ev := mustApply(t, &a, ruleEvent(rules.Raised, c.Now(), protocol.Yellow, protocol.None, 86), protocol.AlarmRaised, protocol.StateNormal, protocol.StateUnacked)
	if ev.Grade != protocol.Yellow || ev.Value != 86 || ev.Limit != 80 || ev.Since == nil {
		t.Fatalf("raised event lost the numbers: %+v", ev)
	}
	if !a.Present() || !a.Active {
		t.Fatal("raised alarm is not present and active")
	}
	ack, err := a.Ack("王工", "派人查看", c.Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	checkTransition(t, ack, protocol.AlarmAcknowledged, protocol.StateUnacked, protocol.StateAcked)
	if ack.Actor != "王工" || ack.Comment != "派人查看" || !ack.TS.Equal(c.Now()) {
		t.Fatalf("ack lacks who, comment or time: %+v", ack)
	}
	if _, err := a.Ack("王工", "", c.Now()); !errors.Is(err, ErrNotAckable) {
		t.Fatalf("second ack: %v, want ErrNotAckable", err)
	}
	// A lower grade keeps the acknowledgement; a higher one needs a new one.
	mustApply(t, &a, ruleEvent(rules.GradeChanged, c.Add(time.Minute), protocol.Blue, protocol.Yellow, 82), protocol.AlarmGradeChanged, protocol.StateAcked, protocol.StateAcked)
	ev = mustApply(t, &a, ruleEvent(rules.GradeChanged, c.Add(time.Minute), protocol.Orange, protocol.Blue, 95), protocol.AlarmGradeChanged, protocol.StateAcked, protocol.StateUnacked)
	if ev.Grade != protocol.Orange || ev.PrevGrade != protocol.Blue {
		t.Fatalf("grade change grades %s←%s", ev.Grade, ev.PrevGrade)
	}
	if _, err := a.Ack("李工", "", c.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ev = mustApply(t, &a, ruleEvent(rules.Cleared, c.Add(time.Minute), protocol.None, protocol.Orange, 60), protocol.AlarmCleared, protocol.StateAcked, protocol.StateNormal)
	if a.Present() || a.Active || ev.PrevGrade != protocol.Orange || ev.Grade != protocol.None {
		t.Fatalf("cleared acknowledged alarm: present %v active %v event %+v", a.Present(), a.Active, ev)
	}
}

func TestLifecycleReturnToNormalUnacked(t *testing.T) {
	c := newClock()
	var a Alarm
	mustApply(t, &a, ruleEvent(rules.Raised, c.Now(), protocol.Red, protocol.None, 90), protocol.AlarmRaised, protocol.StateNormal, protocol.StateUnacked)
	mustApply(t, &a, ruleEvent(rules.Cleared, c.Add(time.Minute), protocol.None, protocol.Red, 60), protocol.AlarmCleared, protocol.StateUnacked, protocol.StateRTNUnacked)
	if !a.Present() || a.Grade != protocol.Red {
		t.Fatalf("returned-to-normal unacked alarm must stay shown with its grade: %+v", a)
	}
	// Raised again before anyone acknowledged.
	mustApply(t, &a, ruleEvent(rules.Raised, c.Add(time.Minute), protocol.Red, protocol.None, 91), protocol.AlarmRaised, protocol.StateRTNUnacked, protocol.StateUnacked)
	mustApply(t, &a, ruleEvent(rules.Cleared, c.Add(time.Minute), protocol.None, protocol.Red, 60), protocol.AlarmCleared, protocol.StateUnacked, protocol.StateRTNUnacked)
	ack, err := a.Ack("王工", "已复位", c.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	checkTransition(t, ack, protocol.AlarmAcknowledged, protocol.StateRTNUnacked, protocol.StateNormal)
	if a.Present() {
		t.Fatal("acknowledged returned alarm still present")
	}
}

func TestLifecycleShelve(t *testing.T) {
	c := newClock()
	var a Alarm
	mustApply(t, &a, ruleEvent(rules.Raised, c.Now(), protocol.Blue, protocol.None, 41), protocol.AlarmRaised, protocol.StateNormal, protocol.StateUnacked)
	if _, err := a.Shelve("", "检修", c.Now().Add(time.Hour), c.Now()); !errors.Is(err, ErrNoOfficer) {
		t.Fatalf("shelve without officer: %v", err)
	}
	if _, err := a.Shelve("王工", "", c.Now().Add(time.Hour), c.Now()); !errors.Is(err, ErrNoReason) {
		t.Fatalf("shelve without reason: %v", err)
	}
	if _, err := a.Shelve("王工", "检修", c.Now(), c.Now()); !errors.Is(err, ErrBadExpiry) {
		t.Fatalf("shelve with past expiry: %v", err)
	}
	until := c.Now().Add(time.Hour)
	ev, err := a.Shelve("王工", "探头标定", until, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	checkTransition(t, ev, protocol.AlarmShelved, protocol.StateUnacked, protocol.StateShelved)
	if ev.Until == nil || !ev.Until.Equal(until) || ev.Actor != "王工" || ev.Comment != "探头标定" {
		t.Fatalf("shelve event lacks expiry, who or why: %+v", ev)
	}
	// The condition clears and comes back while shelved: tracked, still shelved.
	mustApply(t, &a, ruleEvent(rules.Cleared, c.Add(time.Minute), protocol.None, protocol.Blue, 30), protocol.AlarmCleared, protocol.StateShelved, protocol.StateShelved)
	mustApply(t, &a, ruleEvent(rules.Raised, c.Add(time.Minute), protocol.Yellow, protocol.None, 85), protocol.AlarmRaised, protocol.StateShelved, protocol.StateShelved)
	if _, ok := a.Tick(c.Add(30 * time.Minute)); ok {
		t.Fatal("shelve expired early")
	}
	exp, ok := a.Tick(c.Add(time.Hour))
	if !ok {
		t.Fatal("shelve did not expire")
	}
	// Still active at expiry: annunciated again.
	checkTransition(t, exp, protocol.AlarmShelveExpired, protocol.StateShelved, protocol.StateUnacked)
	if exp.Grade != protocol.Yellow {
		t.Fatalf("expired shelve grade %s, want the grade reached while shelved", exp.Grade)
	}

	// Unshelve early, with the condition gone: back to normal.
	if _, err := a.Shelve("王工", "误报", c.Now().Add(time.Hour), c.Now()); err != nil {
		t.Fatal(err)
	}
	mustApply(t, &a, ruleEvent(rules.Cleared, c.Add(time.Minute), protocol.None, protocol.Yellow, 30), protocol.AlarmCleared, protocol.StateShelved, protocol.StateShelved)
	un, err := a.Unshelve("李工", "处理完毕", c.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	checkTransition(t, un, protocol.AlarmUnshelved, protocol.StateShelved, protocol.StateNormal)
	if _, err := a.Unshelve("李工", "", c.Now()); !errors.Is(err, ErrNotShelved) {
		t.Fatalf("unshelve a normal alarm: %v", err)
	}
}

func TestLifecycleOutOfService(t *testing.T) {
	c := newClock()
	var a Alarm
	mustApply(t, &a, ruleEvent(rules.Raised, c.Now(), protocol.Blue, protocol.None, 41), protocol.AlarmRaised, protocol.StateNormal, protocol.StateUnacked)
	if _, err := a.Ack("王工", "", c.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	ev, err := a.OutOfService("王工", "更换探头", c.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	checkTransition(t, ev, protocol.AlarmOutOfService, protocol.StateAcked, protocol.StateOutOfService)
	if ev.Actor != "王工" || ev.Comment != "更换探头" {
		t.Fatalf("out of service lacks who and why: %+v", ev)
	}
	if _, err := a.Shelve("王工", "x", c.Now().Add(time.Hour), c.Now()); !errors.Is(err, ErrOutOfService) {
		t.Fatalf("shelve an out-of-service alarm: %v", err)
	}
	if _, ok := a.Tick(c.Add(48 * time.Hour)); ok {
		t.Fatal("out of service ended by itself")
	}
	mustApply(t, &a, ruleEvent(rules.GradeChanged, c.Add(time.Minute), protocol.Orange, protocol.Blue, 99), protocol.AlarmGradeChanged, protocol.StateOutOfService, protocol.StateOutOfService)
	back, err := a.ReturnToService("李工", "探头已更换", c.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	checkTransition(t, back, protocol.AlarmReturnedToService, protocol.StateOutOfService, protocol.StateUnacked)
	if _, err := a.ReturnToService("李工", "", c.Now()); !errors.Is(err, ErrNotOutOfService) {
		t.Fatalf("return an in-service alarm: %v", err)
	}
}

func TestLifecycleRefusesBadEvents(t *testing.T) {
	c := newClock()
	a := Alarm{ID: "other/key"}
	if _, err := a.Apply(ruleEvent(rules.Raised, c.Now(), protocol.Blue, protocol.None, 1)); err == nil {
		t.Fatal("event of another alarm accepted")
	}
	var b Alarm
	ev := ruleEvent(rules.SourceGradeChanged, c.Now(), protocol.Blue, protocol.None, 1)
	if _, err := b.Apply(ev); err == nil {
		t.Fatal("source grade event accepted as an alarm's")
	}
	ev = ruleEvent(rules.Raised, c.Now(), protocol.Grade(9), protocol.None, 1)
	if _, err := b.Apply(ev); err == nil {
		t.Fatal("invalid grade accepted")
	}
	ev = ruleEvent(rules.Raised, c.Now(), protocol.Red, protocol.None, 1)
	ev.Key = ""
	if _, err := b.Apply(ev); err == nil {
		t.Fatal("event without key accepted")
	}
}

// TestLifecycleComment: an officer may comment on an alarm in every present
// state; the comment is recorded with the officer's name and changes
// nothing — state, time of the last transition, shelving, escalation
// schedule, grade and numbers stay.
func TestLifecycleComment(t *testing.T) {
	for _, tc := range []struct {
		state protocol.AlarmState
		setup func(t *testing.T, a *Alarm, c *clock)
	}{
		{protocol.StateUnacked, func(t *testing.T, a *Alarm, c *clock) {}},
		{protocol.StateAcked, func(t *testing.T, a *Alarm, c *clock) {
			if _, err := a.Ack("王工", "", c.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}},
		{protocol.StateRTNUnacked, func(t *testing.T, a *Alarm, c *clock) {
			mustApply(t, a, ruleEvent(rules.Cleared, c.Add(time.Second), protocol.None, protocol.Orange, 60), protocol.AlarmCleared, protocol.StateUnacked, protocol.StateRTNUnacked)
		}},
		{protocol.StateShelved, func(t *testing.T, a *Alarm, c *clock) {
			if _, err := a.Shelve("王工", "探头标定", c.Now().Add(time.Hour), c.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}},
		{protocol.StateOutOfService, func(t *testing.T, a *Alarm, c *clock) {
			if _, err := a.OutOfService("王工", "更换探头", c.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(string(tc.state), func(t *testing.T) {
			c := newClock()
			var a Alarm
			mustApply(t, &a, ruleEvent(rules.Raised, c.Now(), protocol.Orange, protocol.None, 86), protocol.AlarmRaised, protocol.StateNormal, protocol.StateUnacked)
			a.Resends, a.ResentAt = 2, c.Now().Add(500*time.Millisecond) // an escalation schedule under way
			tc.setup(t, &a, c)
			if a.State != tc.state {
				t.Fatalf("setup left the alarm %s, want %s", a.State, tc.state)
			}
			before := a
			ev, err := a.Comment("李工", "已通知现场巡检", c.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			checkTransition(t, ev, protocol.AlarmCommented, tc.state, tc.state)
			if ev.Actor != "李工" || ev.Comment != "已通知现场巡检" || !ev.TS.Equal(c.Now()) {
				t.Errorf("comment lacks who, what or when: %+v", ev)
			}
			if ev.Grade != before.Grade || ev.PrevGrade != before.Grade || ev.Value != before.Value || ev.Limit != before.Limit ||
				ev.Message != before.Message || ev.Since == nil || !ev.Since.Equal(before.Since) {
				t.Errorf("comment lost the alarm's grade or numbers: %+v, alarm %+v", ev, before)
			}
			if !reflect.DeepEqual(a, before) {
				t.Errorf("comment changed the alarm:\n got %+v\nwant %+v", a, before)
			}
		})
	}
}

func TestLifecycleCommentRefused(t *testing.T) {
	c := newClock()
	var a Alarm
	mustApply(t, &a, ruleEvent(rules.Raised, c.Now(), protocol.Yellow, protocol.None, 86), protocol.AlarmRaised, protocol.StateNormal, protocol.StateUnacked)
	before := a
	for _, tc := range []struct {
		name, officer, comment string
		want                   error
	}{
		{"no officer", "", "已通知现场巡检", ErrNoOfficer},
		{"no comment", "李工", "", ErrNoComment},
		{"blank comment", "李工", " \t\n", ErrNoComment},
	} {
		if _, err := a.Comment(tc.officer, tc.comment, c.Add(time.Second)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if !reflect.DeepEqual(a, before) {
		t.Errorf("a refused comment changed the alarm: %+v", a)
	}
	// Acknowledged and cleared: nothing left to comment on.
	if _, err := a.Ack("王工", "", c.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	mustApply(t, &a, ruleEvent(rules.Cleared, c.Add(time.Second), protocol.None, protocol.Yellow, 60), protocol.AlarmCleared, protocol.StateAcked, protocol.StateNormal)
	if _, err := a.Comment("李工", "复查", c.Add(time.Second)); !errors.Is(err, ErrUnknownAlarm) {
		t.Errorf("comment on a normal alarm: %v, want ErrUnknownAlarm", err)
	}
}

// TestLifecycleBlankRefused: a name or reason of white space is no name or
// reason, for every action; the alarm is left as it was.
func TestLifecycleBlankRefused(t *testing.T) {
	c := newClock()
	var a Alarm
	mustApply(t, &a, ruleEvent(rules.Raised, c.Now(), protocol.Yellow, protocol.None, 86), protocol.AlarmRaised, protocol.StateNormal, protocol.StateUnacked)
	before := a
	now, until := c.Now(), c.Now().Add(time.Hour)
	for _, blank := range []string{"", " ", "\t\n", "\u3000", " \u00a0 "} {
		for name, do := range map[string]func() error{
			"ack":                func() error { _, err := a.Ack(blank, "", now); return err },
			"shelve":             func() error { _, err := a.Shelve(blank, "检修", until, now); return err },
			"unshelve":           func() error { _, err := a.Unshelve(blank, "", now); return err },
			"out of service":     func() error { _, err := a.OutOfService(blank, "更换探头", now); return err },
			"return to service":  func() error { _, err := a.ReturnToService(blank, "", now); return err },
			"comment":            func() error { _, err := a.Comment(blank, "复查", now); return err },
			"shelve, no reason":  func() error { _, err := a.Shelve("li.gong", blank, until, now); return err },
			"oos, no reason":     func() error { _, err := a.OutOfService("li.gong", blank, now); return err },
			"comment, no remark": func() error { _, err := a.Comment("li.gong", blank, now); return err },
		} {
			err := do()
			if !errors.Is(err, ErrNoOfficer) && !errors.Is(err, ErrNoReason) && !errors.Is(err, ErrNoComment) {
				t.Errorf("%s with %q: %v, want a refusal for the blank", name, blank, err)
			}
		}
	}
	if !reflect.DeepEqual(a, before) {
		t.Errorf("a refused action changed the alarm: %+v", a)
	}
}
