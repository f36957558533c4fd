package incident

import (
	"fmt"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// drive turns bytes into a stream of inputs for two sources and checks the
// book's invariants after every batch.
func drive(t testing.TB, data []byte) {
	b, err := NewBook(Config{AutoCloseAfter: time.Minute, AutoCloseMaxGrade: protocol.Yellow}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
	points := []string{"p1", "p2", "p3"}
	sources := []string{"s1", "s2"}
	lastSeq := map[string]int{}
	closed := map[string]bool{}
	for len(data) >= 3 {
		op, a, c := data[0], data[1], data[2]
		data = data[3:]
		now = now.Add(time.Duration(c%64) * time.Second)
		src := sources[a%2]
		pt := points[(a/2)%3]
		g := protocol.Grade(c % 5)
		tx := b.Begin()
		mk := func(typ protocol.AlarmEventType, st protocol.AlarmState, grade, prev protocol.Grade) protocol.AlarmEvent {
			return protocol.AlarmEvent{V: 1, AlarmID: "x/" + src + "/" + pt + "/H", Type: typ, Site: "x", Source: src, Point: pt,
				Condition: "H", Grade: grade, PrevGrade: prev, State: st, TS: protocol.Time{Time: now}}
		}
		var ferr error
		switch op % 7 {
		case 0:
			_, ferr = tx.Alarm(mk(protocol.AlarmRaised, protocol.StateUnacked, max(g, protocol.Blue), protocol.None))
		case 1:
			_, ferr = tx.Alarm(mk(protocol.AlarmGradeChanged, protocol.StateUnacked, max(g, protocol.Blue), protocol.Yellow))
		case 2:
			_, ferr = tx.Alarm(mk(protocol.AlarmCleared, protocol.StateRTNUnacked, protocol.None, max(g, protocol.Blue)))
		case 3:
			_, ferr = tx.SourceGrade("x", src, g, now)
		case 4:
			if inc, ok := b.OfSource("x", src); ok {
				_, _ = tx.Ack(inc.ID, "wang", "", now)
			}
		case 5:
			if inc, ok := b.OfSource("x", src); ok {
				_, _ = tx.Dispose(inc.ID, Disposal{By: "wang", Cause: CauseFalseAlarm, Found: "f", Measures: "m"}, now)
			}
		case 6:
			tx.Tick(now)
		}
		if ferr != nil {
			t.Fatalf("valid input refused: %v", ferr)
		}
		for _, e := range tx.Events() {
			if closed[e.IncidentID] {
				t.Fatalf("event %s of a closed incident", e.Type)
			}
			if e.Seq != lastSeq[e.IncidentID]+1 {
				t.Fatalf("incident %s: event %d after %d", e.IncidentID, e.Seq, lastSeq[e.IncidentID])
			}
			lastSeq[e.IncidentID] = e.Seq
			if e.Grade > e.WorstGrade {
				t.Fatalf("grade %s above worst %s", e.Grade, e.WorstGrade)
			}
			if e.Type == TypeClosed {
				closed[e.IncidentID] = true
				if e.Disposal == nil && e.WorstGrade > protocol.Yellow {
					t.Fatalf("%s incident closed without a disposal", e.WorstGrade)
				}
			}
		}
		b.Commit(tx)
		for _, inc := range b.Open() {
			active := inc.anyActive()
			if (inc.State == Active) != active || (inc.State == Normal) == active || (inc.Grade == protocol.None) == active {
				t.Fatalf("incident %s: state %s, grade %s, active conditions %v", inc.ID, inc.State, inc.Grade, active)
			}
			if inc.State == Normal && inc.Disposal != nil {
				t.Fatalf("normal incident %s with a disposal is not closed", inc.ID)
			}
		}
		if b.Len() > len(sources) {
			t.Fatalf("%d incidents open for %d sources", b.Len(), len(sources))
		}
	}
}

func FuzzBook(f *testing.F) {
	f.Add([]byte{0, 0, 1, 3, 0, 4, 4, 0, 1, 2, 0, 1, 5, 0, 1})
	f.Add([]byte{0, 1, 2, 2, 1, 2, 6, 0, 63, 6, 0, 63, 0, 1, 3})
	f.Fuzz(func(t *testing.T, data []byte) { drive(t, data) })
}

// BenchmarkAlarmEvent: one alarm event into a book with 1,000 open
// incidents, committed.
func BenchmarkAlarmEvent(b *testing.B) {
	book, err := NewBook(Config{AutoCloseAfter: time.Minute, AutoCloseMaxGrade: protocol.Yellow}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
	tx := book.Begin()
	for i := range 1000 {
		src := fmt.Sprintf("s%d", i)
		for p := range 5 {
			if _, err := tx.Alarm(protocol.AlarmEvent{V: 1, AlarmID: fmt.Sprintf("x/%s/p%d/H", src, p), Type: protocol.AlarmRaised, Site: "x",
				Source: src, Point: fmt.Sprintf("p%d", p), Condition: "H", Grade: protocol.Yellow, State: protocol.StateUnacked, TS: protocol.Time{Time: now}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	book.Commit(tx)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		now = now.Add(time.Millisecond)
		tx := book.Begin()
		g := protocol.Yellow + protocol.Grade(i%2)
		if _, err := tx.Alarm(protocol.AlarmEvent{V: 1, AlarmID: "x/s7/p3/H", Type: protocol.AlarmGradeChanged, Site: "x", Source: "s7",
			Point: "p3", Condition: "H", Grade: g, PrevGrade: protocol.Yellow, State: protocol.StateUnacked, TS: protocol.Time{Time: now}}); err != nil {
			b.Fatal(err)
		}
		book.Commit(tx)
	}
}
