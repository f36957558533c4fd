package alerting

import (
	"context"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
)

func newMemService(t *testing.T) *Service {
	t.Helper()
	svc, err := New(Config{TickInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc
}

func next(t *testing.T, ch <-chan protocol.AlarmEvent) protocol.AlarmEvent {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return protocol.AlarmEvent{}
}

// TestSubscribeSeesJournalOrder: a subscriber gets rules events and
// officers' actions as journaled, in order, and nothing after cancelling.
func TestSubscribeSeesJournalOrder(t *testing.T) {
	svc := newMemService(t)
	ctx := context.Background()
	ch, cancel := svc.Subscribe(16)
	at := time.Now()
	k := "s1/src/p1/HH"
	if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Raised, k, at, protocol.Orange, protocol.None, 90)}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Ack(ctx, k, "王工", "on my way"); err != nil {
		t.Fatal(err)
	}
	e := next(t, ch)
	if e.Type != protocol.AlarmRaised || e.AlarmID != k || e.State != protocol.StateUnacked || e.ID == "" {
		t.Errorf("first event = %+v, want raised unacked %s", e, k)
	}
	if e = next(t, ch); e.Type != protocol.AlarmAcknowledged || e.Actor != "王工" || e.State != protocol.StateAcked {
		t.Errorf("second event = %+v, want acknowledged by 王工", e)
	}
	// What a subscriber sees is what the journal holds.
	tl, err := svc.Timeline(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl) != 2 || tl[1].Actor != "王工" {
		t.Errorf("timeline = %+v", tl)
	}
	cancel()
	cancel() // twice is harmless
	if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Cleared, k, at.Add(time.Second), protocol.None, protocol.Orange, 10)}); err != nil {
		t.Fatal(err)
	}
	if e, ok := <-ch; ok {
		t.Errorf("event %+v after cancel", e)
	}
}

// TestSlowSubscriberIsCutOffNotWaitedFor: a subscriber that does not read
// never holds up alerting; its channel closes once it is behind, after the
// events it holds, and the others go on receiving.
func TestSlowSubscriberIsCutOffNotWaitedFor(t *testing.T) {
	svc := newMemService(t)
	ctx := context.Background()
	slow, cancelSlow := svc.Subscribe(3)
	defer cancelSlow()
	fast, cancelFast := svc.Subscribe(100)
	defer cancelFast()
	at := time.Now()
	var keys []string
	for i := range 10 {
		k := "s1/src/p" + string(rune('a'+i)) + "/H"
		keys = append(keys, k)
		done := make(chan error, 1)
		go func() {
			done <- svc.HandleEvents(ctx, []rules.Event{event(rules.Raised, k, at.Add(time.Duration(i)*time.Millisecond), protocol.Yellow, protocol.None, 50)})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("HandleEvents blocked on a subscriber that does not read")
		}
	}
	var got []string
	for e := range slow {
		got = append(got, e.AlarmID)
	}
	if len(got) != 3 || got[0] != keys[0] || got[2] != keys[2] {
		t.Errorf("slow subscriber got %v before its channel closed, want the first 3 of %v", got, keys)
	}
	for i, k := range keys {
		if e := next(t, fast); e.AlarmID != k {
			t.Fatalf("fast subscriber event %d = %s, want %s", i, e.AlarmID, k)
		}
	}
	// Subscribing again works: the way back after falling behind.
	again, cancelAgain := svc.Subscribe(4)
	defer cancelAgain()
	if _, err := svc.Ack(ctx, keys[0], "李工", ""); err != nil {
		t.Fatal(err)
	}
	if e := next(t, again); e.Type != protocol.AlarmAcknowledged || e.AlarmID != keys[0] {
		t.Errorf("after subscribing again: %+v", e)
	}
}
