package incident

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// clock is the tests' fake clock.
type clock struct{ t time.Time }

func newClock() *clock { return &clock{t: time.Date(2026, 11, 28, 3, 4, 0, 0, time.UTC)} }

func (c *clock) advance(d time.Duration) time.Time { c.t = c.t.Add(d); return c.t }

func alarmEv(typ protocol.AlarmEventType, point, cond string, g, prev protocol.Grade, state protocol.AlarmState, at time.Time, value float64) protocol.AlarmEvent {
	id := "jh-chem/nh3-tanks/" + point + "/" + cond
	return protocol.AlarmEvent{V: 1, AlarmID: id, Type: typ, Site: "jh-chem", Source: "nh3-tanks", Point: point, Condition: cond,
		Grade: g, PrevGrade: prev, State: state, Value: value, Limit: 40, TS: protocol.Time{Time: at}, Since: &protocol.Time{Time: at}}
}

func raised(point, cond string, g protocol.Grade, at time.Time, value float64) protocol.AlarmEvent {
	return alarmEv(protocol.AlarmRaised, point, cond, g, protocol.None, protocol.StateUnacked, at, value)
}

func cleared(point, cond string, prev protocol.Grade, state protocol.AlarmState, at time.Time) protocol.AlarmEvent {
	return alarmEv(protocol.AlarmCleared, point, cond, protocol.None, prev, state, at, 10)
}

// run feeds one batch and commits it, returning its events.
func run(t *testing.T, b *Book, f func(tx *Txn) error) []Event {
	t.Helper()
	tx := b.Begin()
	if err := f(tx); err != nil {
		t.Fatal(err)
	}
	b.Commit(tx)
	return tx.Events()
}

func types(evs []Event) []EventType {
	out := make([]EventType, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func lifecycle(evs []Event) []Event {
	var out []Event
	for _, e := range evs {
		if e.Type.Lifecycle() {
			out = append(out, e)
		}
	}
	return out
}

func newBook(t testing.TB, cfg Config) *Book {
	t.Helper()
	b, err := NewBook(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func feed(tx *Txn, evs ...protocol.AlarmEvent) error {
	for _, e := range evs {
		if _, err := tx.Alarm(e); err != nil {
			return err
		}
	}
	return nil
}

// TestAmmoniaLeakIsOneIncident: the demo's leak — H of one detector, the
// 2oo3 vote, HH, the second detector — is one incident of the tank farm
// rising yellow → orange → red, acknowledged once; a disposal closes it
// once the conditions have cleared. The lifecycle events are a handful.
func TestAmmoniaLeakIsOneIncident(t *testing.T) {
	c := newClock()
	b := newBook(t, Config{AutoCloseAfter: 30 * time.Minute, AutoCloseMaxGrade: protocol.Yellow})
	var all []Event
	step := func(f func(tx *Txn) error) []Event {
		evs := run(t, b, f)
		all = append(all, evs...)
		return evs
	}
	t0 := c.t
	evs := step(func(tx *Txn) error {
		if err := feed(tx, raised("nh3-gas-1", "H", protocol.Yellow, t0, 45.9)); err != nil {
			return err
		}
		_, err := tx.SourceGrade("jh-chem", "nh3-tanks", protocol.Yellow, t0)
		return err
	})
	if got := types(evs); !slices.Equal(got, []EventType{TypeOpened}) {
		t.Fatalf("first condition: events %v, want [opened]", got)
	}
	inc := evs[0]
	if inc.IncidentID != "jh-chem/nh3-tanks/20261128T030400.000Z" || inc.Grade != protocol.Yellow || inc.State != Active || len(inc.Conditions) != 1 {
		t.Fatalf("opened = %+v", inc)
	}
	t1 := c.advance(10 * time.Second)
	step(func(tx *Txn) error {
		if err := feed(tx, raised("nh3-gas-2", "H", protocol.Yellow, t1, 41)); err != nil {
			return err
		}
		if err := feed(tx, alarmEv(protocol.AlarmRaised, "nh3-leak", "vote_first", protocol.Orange, protocol.None, protocol.StateUnacked, t1, 2)); err != nil {
			return err
		}
		_, err := tx.SourceGrade("jh-chem", "nh3-tanks", protocol.Orange, t1)
		return err
	})
	t2 := c.advance(10 * time.Second)
	step(func(tx *Txn) error {
		if err := feed(tx, raised("nh3-gas-1", "HH", protocol.Orange, t2, 85.9),
			alarmEv(protocol.AlarmRaised, "nh3-leak", "vote_second", protocol.Red, protocol.None, protocol.StateUnacked, t2, 2)); err != nil {
			return err
		}
		_, err := tx.SourceGrade("jh-chem", "nh3-tanks", protocol.Red, t2)
		return err
	})
	if b.Len() != 1 {
		t.Fatalf("%d incidents open, want 1", b.Len())
	}
	open, _ := b.OfSource("jh-chem", "nh3-tanks")
	if open.Grade != protocol.Red || open.WorstGrade != protocol.Red || len(open.Conditions) != 5 || open.Acknowledged {
		t.Fatalf("incident at the peak = %+v", open)
	}
	grades := []protocol.Grade{}
	for _, e := range lifecycle(all) {
		grades = append(grades, e.Grade)
	}
	if !slices.Equal(grades, []protocol.Grade{protocol.Yellow, protocol.Orange, protocol.Red}) {
		t.Errorf("lifecycle grades %v, want yellow, orange, red", grades)
	}

	// Acknowledged once.
	t3 := c.advance(30 * time.Second)
	step(func(tx *Txn) error { _, err := tx.Ack(open.ID, "wang", "收到", t3); return err })
	tx := b.Begin()
	if _, err := tx.Ack(open.ID, "li", "", t3); !errors.Is(err, ErrAcked) {
		t.Errorf("second acknowledgement: %v, want ErrAcked", err)
	}
	// A disposal filed while the leak goes on: recorded, not closed.
	t4 := c.advance(5 * time.Minute)
	evs = step(func(tx *Txn) error {
		_, err := tx.Dispose(open.ID, Disposal{By: "wang", Cause: CauseLeak, Found: "1#罐法兰泄漏", Measures: "关阀、水幕稀释", EmergencyResponse: true}, t4)
		return err
	})
	if got := types(evs); !slices.Equal(got, []EventType{TypeDisposalRecorded}) {
		t.Fatalf("disposal while active: %v", got)
	}
	// The conditions clear: it closes with the last one.
	t5 := c.advance(5 * time.Minute)
	evs = step(func(tx *Txn) error {
		for _, a := range open.Conditions {
			e := alarmEv(protocol.AlarmCleared, a.Point, a.Condition, protocol.None, a.Grade, protocol.StateNormal, t5, 1)
			if _, err := tx.Alarm(e); err != nil {
				return err
			}
		}
		_, err := tx.SourceGrade("jh-chem", "nh3-tanks", protocol.None, t5)
		return err
	})
	if got := types(evs); !slices.Equal(got[len(got)-2:], []EventType{TypeNormal, TypeClosed}) {
		t.Fatalf("clearing: %v, want … normal, closed", got)
	}
	closed := evs[len(evs)-1]
	if closed.State != Closed || closed.WorstGrade != protocol.Red || closed.Actor != "wang" || closed.Disposal == nil || closed.Disposal.Cause != CauseLeak {
		t.Errorf("closed = %+v", closed)
	}
	if b.Len() != 0 {
		t.Errorf("closed incident still open in the book")
	}
	if n := len(lifecycle(all)); n > 6 {
		t.Errorf("%d lifecycle events for one leak: %v", n, types(lifecycle(all)))
	}
	for i, e := range all {
		if e.Seq != i+1 || e.ID != EventID(open.ID, i+1) {
			t.Errorf("event %d: seq %d id %s", i, e.Seq, e.ID)
		}
	}

	// A new condition after closing opens a new incident.
	t6 := c.advance(time.Minute)
	evs = step(func(tx *Txn) error { return feed(tx, raised("nh3-gas-1", "H", protocol.Yellow, t6, 42)) })
	if len(evs) != 1 || evs[0].Type != TypeOpened || evs[0].IncidentID == open.ID {
		t.Errorf("after close: %+v, want a new incident", evs)
	}
}

// TestOrangeNeedsDisposalYellowClosesItself: a normal yellow incident
// closes at the auto-close time, not a moment earlier; one that reached
// orange stays until its disposal, which needs an acknowledgement.
func TestOrangeNeedsDisposalYellowClosesItself(t *testing.T) {
	c := newClock()
	b := newBook(t, Config{AutoCloseAfter: 30 * time.Minute, AutoCloseMaxGrade: protocol.Yellow})
	t0 := c.t
	run(t, b, func(tx *Txn) error { return feed(tx, raised("nh3-gas-1", "H", protocol.Yellow, t0, 45)) })
	t1 := c.advance(time.Minute)
	evs := run(t, b, func(tx *Txn) error {
		return feed(tx, cleared("nh3-gas-1", "H", protocol.Yellow, protocol.StateRTNUnacked, t1))
	})
	if got := types(evs); !slices.Equal(got, []EventType{TypeConditionCleared, TypeNormal}) {
		t.Fatalf("clear: %v", got)
	}
	if evs := run(t, b, func(tx *Txn) error { tx.Tick(t1.Add(30*time.Minute - time.Millisecond)); return nil }); len(evs) != 0 {
		t.Fatalf("closed before its time: %v", types(evs))
	}
	evs = run(t, b, func(tx *Txn) error { tx.Tick(t1.Add(30 * time.Minute)); return nil })
	if len(evs) != 1 || evs[0].Type != TypeClosed || evs[0].Actor != "" || evs[0].Disposal != nil {
		t.Fatalf("auto-close: %+v", evs)
	}

	// Orange: never by itself.
	t2 := c.advance(time.Hour)
	run(t, b, func(tx *Txn) error { return feed(tx, raised("nh3-gas-1", "HH", protocol.Orange, t2, 85)) })
	t3 := c.advance(time.Minute)
	run(t, b, func(tx *Txn) error {
		return feed(tx, cleared("nh3-gas-1", "HH", protocol.Orange, protocol.StateRTNUnacked, t3))
	})
	if evs := run(t, b, func(tx *Txn) error { tx.Tick(t3.Add(24 * time.Hour)); return nil }); len(evs) != 0 {
		t.Fatalf("orange closed by itself: %v", types(evs))
	}
	inc, ok := b.OfSource("jh-chem", "nh3-tanks")
	if !ok || inc.State != Normal || inc.WorstGrade != protocol.Orange {
		t.Fatalf("orange incident after clearing = %+v", inc)
	}
	d := Disposal{By: "wang", Cause: CauseSensorFault, Found: "探头进水", Measures: "更换探头"}
	tx := b.Begin()
	if _, err := tx.Dispose(inc.ID, d, t3); !errors.Is(err, ErrNotAcked) {
		t.Errorf("disposal before acknowledgement: %v", err)
	}
	for _, bad := range []Disposal{{By: "", Cause: CauseLeak, Found: "x", Measures: "y"}, {By: "w", Cause: "fire", Found: "x", Measures: "y"},
		{By: "w", Cause: CauseLeak, Found: " ", Measures: "y"}, {By: "w", Cause: CauseLeak, Found: "x", Measures: ""}} {
		if _, err := tx.Dispose(inc.ID, bad, t3); err == nil {
			t.Errorf("disposal %+v accepted", bad)
		}
	}
	t4 := c.advance(time.Minute)
	evs = run(t, b, func(tx *Txn) error {
		if _, err := tx.Ack(inc.ID, "wang", "", t4); err != nil {
			return err
		}
		_, err := tx.Dispose(inc.ID, d, t4)
		return err
	})
	if got := types(evs); !slices.Equal(got, []EventType{TypeAcknowledged, TypeDisposalRecorded, TypeClosed}) {
		t.Fatalf("ack and disposal of a normal orange: %v", got)
	}
	if _, ok := b.OfSource("jh-chem", "nh3-tanks"); ok {
		t.Error("still open after disposal")
	}
}

// TestWorseGradeNeedsNewAck: an incident acknowledged at yellow that
// rises to red is unacknowledged again; falling back keeps it as it is.
func TestWorseGradeNeedsNewAck(t *testing.T) {
	c := newClock()
	b := newBook(t, Config{})
	t0 := c.t
	evs := run(t, b, func(tx *Txn) error { return feed(tx, raised("nh3-gas-1", "H", protocol.Yellow, t0, 45)) })
	id := evs[0].IncidentID
	run(t, b, func(tx *Txn) error { _, err := tx.Ack(id, "wang", "", c.advance(time.Second)); return err })
	evs = run(t, b, func(tx *Txn) error {
		_, err := tx.SourceGrade("jh-chem", "nh3-tanks", protocol.Red, c.advance(time.Second))
		return err
	})
	if len(evs) != 1 || evs[0].Type != TypeGradeChanged || evs[0].Acknowledged || evs[0].PrevGrade != protocol.Yellow {
		t.Fatalf("rise to red after acknowledgement: %+v", evs)
	}
	run(t, b, func(tx *Txn) error { _, err := tx.Ack(id, "li", "", c.advance(time.Second)); return err })
	evs = run(t, b, func(tx *Txn) error {
		_, err := tx.SourceGrade("jh-chem", "nh3-tanks", protocol.Orange, c.advance(time.Second))
		return err
	})
	if len(evs) != 1 || !evs[0].Acknowledged || evs[0].Grade != protocol.Orange || evs[0].WorstGrade != protocol.Red {
		t.Fatalf("fall to orange: %+v", evs)
	}
	inc, _ := b.Get(id)
	if inc.AckedBy != "li" || inc.FirstAckAt.After(inc.AckedAt) || inc.FirstAckAt.Equal(inc.AckedAt) {
		t.Errorf("acknowledgements: %+v", inc)
	}
}

// TestUncommittedTxnChangesNothing: a batch whose journal write failed is
// dropped; the book is as before and the same input gives the same events.
func TestUncommittedTxnChangesNothing(t *testing.T) {
	c := newClock()
	b := newBook(t, Config{})
	t0 := c.t
	run(t, b, func(tx *Txn) error { return feed(tx, raised("nh3-gas-1", "H", protocol.Yellow, t0, 45)) })
	before, _ := b.OfSource("jh-chem", "nh3-tanks")
	t1 := c.advance(time.Second)
	in := raised("nh3-gas-2", "HH", protocol.Orange, t1, 90)
	tx := b.Begin()
	first, err := tx.Alarm(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Ack(before.ID, "wang", "", t1); err != nil {
		t.Fatal(err)
	}
	after, _ := b.OfSource("jh-chem", "nh3-tanks")
	if after.Seq != before.Seq || len(after.Conditions) != 1 || after.Acknowledged {
		t.Fatalf("an uncommitted batch changed the book: %+v", after)
	}
	again := run(t, b, func(tx *Txn) error { _, err := tx.Alarm(in); return err })
	if len(again) != len(first) || again[0].ID != first[0].ID {
		t.Errorf("replayed batch: %v, first try %v", again, first)
	}
}

// TestSilencedConditionOpensNothing: a condition raised while shelved does
// not open an incident; when the shelving expires with the condition still
// present it does. Escalations, comments and floods are no incident's.
func TestSilencedConditionOpensNothing(t *testing.T) {
	c := newClock()
	b := newBook(t, Config{})
	t0 := c.t
	shelvedRaise := alarmEv(protocol.AlarmRaised, "nh3-gas-1", "H", protocol.Yellow, protocol.None, protocol.StateShelved, t0, 45)
	esc := alarmEv(protocol.AlarmEscalated, "nh3-gas-1", "H", protocol.Yellow, protocol.Yellow, protocol.StateUnacked, t0, 45)
	if evs := run(t, b, func(tx *Txn) error { return feed(tx, shelvedRaise, esc) }); len(evs) != 0 {
		t.Fatalf("shelved raise: %v", types(evs))
	}
	back := alarmEv(protocol.AlarmShelveExpired, "nh3-gas-1", "H", protocol.Yellow, protocol.Yellow, protocol.StateUnacked, c.advance(time.Hour), 45)
	if evs := run(t, b, func(tx *Txn) error { return feed(tx, back) }); len(evs) != 1 || evs[0].Type != TypeOpened {
		t.Fatalf("shelve expired with the condition present: %v", types(evs))
	}
	tx := b.Begin()
	if _, err := tx.Alarm(protocol.AlarmEvent{Type: protocol.AlarmRaised}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("empty alarm event: %v", err)
	}
	if _, err := tx.Ack("nope", "wang", "", c.t); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown incident: %v", err)
	}
}

// TestRestoreKeepsOpenIncidents: a book rebuilt from the incidents'
// snapshots continues them: the next condition joins, the numbering goes
// on, closed ones stay closed.
func TestRestoreKeepsOpenIncidents(t *testing.T) {
	c := newClock()
	b := newBook(t, Config{})
	t0 := c.t
	evs := run(t, b, func(tx *Txn) error { return feed(tx, raised("nh3-gas-1", "H", protocol.Yellow, t0, 45)) })
	snap := b.Open()
	closed := snap[0].Clone()
	closed.ID, closed.Source, closed.State = "jh-chem/lpg-tanks/x", "lpg-tanks", Closed
	b2, err := NewBook(Config{}, append(snap, closed), []protocol.SourceGrade{{Site: "jh-chem", Source: "nh3-tanks", Grade: protocol.Yellow}})
	if err != nil {
		t.Fatal(err)
	}
	if b2.Len() != 1 {
		t.Fatalf("restored %d open incidents, want 1", b2.Len())
	}
	more := run(t, b2, func(tx *Txn) error {
		return feed(tx, raised("nh3-gas-2", "H", protocol.Yellow, c.advance(time.Second), 41))
	})
	if len(more) != 1 || more[0].IncidentID != evs[0].IncidentID || more[0].Seq != 2 || more[0].Type != TypeConditionJoined {
		t.Errorf("after restore: %+v", more)
	}
	if _, err := NewBook(Config{AutoCloseMaxGrade: protocol.Orange}, nil, nil); err == nil {
		t.Error("auto-close of orange incidents accepted")
	}
}
