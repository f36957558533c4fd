package alerting

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
)

// escalations returns the escalated events of an alarm in the journal.
func escalations(t *testing.T, svc *Service, id string) []protocol.AlarmEvent {
	t.Helper()
	tl, err := svc.Timeline(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []protocol.AlarmEvent
	for _, e := range tl {
		if e.Type == protocol.AlarmEscalated {
			out = append(out, e)
		}
	}
	return out
}

func countType(ces []CloudEvent, typ protocol.AlarmEventType, subject string) int {
	n := 0
	for _, ce := range ces {
		if ce.Data.Type == typ && (subject == "" || ce.Subject == subject) {
			n++
		}
	}
	return n
}

func TestEscalationResendsUntilAck(t *testing.T) {
	c := newClock()
	normal, duty := newReceiver(t), newReceiver(t)
	dutyRcv := testReceiver(duty.URL())
	dutyRcv.Name, dutyRcv.Escalation = "duty-manager", true
	svc, err := New(Config{Now: c.Now, TickInterval: -1, EscalationMinGrade: protocol.Red,
		Receivers: []Receiver{testReceiver(normal.URL()), dutyRcv}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()
	red, orange, shelved := "lh-coal/face-3101/ch4-t1/HH", "jh-chem/nh3-tanks/nh3-gas-1/HH", "lh-coal/face-3101/ch4-t2/HH"
	start := c.Now()
	if err := svc.HandleEvents(ctx, []rules.Event{
		event(rules.Raised, red, start, protocol.Red, protocol.None, 1.6),
		event(rules.Raised, orange, start, protocol.Orange, protocol.None, 86),
		event(rules.Raised, shelved, start, protocol.Red, protocol.None, 1.7),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Shelve(ctx, shelved, "王工", "传感器标定", start.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Minute by minute for 20 minutes: re-sends at 5, 10, 15 and 20.
	for m := 1; m <= 20; m++ {
		c.t = start.Add(time.Duration(m) * time.Minute)
		if err := svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if n, want := len(escalations(t, svc, red)), m/5; n != want {
			t.Fatalf("after %d min: %d re-sends of the red alarm, want %d", m, n, want)
		}
	}
	esc := escalations(t, svc, red)
	for i, e := range esc {
		at := start.Add(time.Duration(5*(i+1)) * time.Minute)
		if !e.TS.Equal(at) || e.State != protocol.StateUnacked || e.Grade != protocol.Red ||
			!strings.Contains(e.Message, fmt.Sprintf("第 %d 次重发", i+1)) {
			t.Errorf("re-send %d: %+v", i+1, e)
		}
		if escalated := strings.Contains(e.Message, "已升级通知"); escalated != (i >= 2) {
			t.Errorf("re-send %d at %s escalated=%v", i+1, e.TS.Sub(start), escalated)
		}
	}
	if n := len(escalations(t, svc, orange)); n != 0 {
		t.Errorf("orange alarm below the minimum grade was re-sent %d times", n)
	}
	if n := len(escalations(t, svc, shelved)); n != 0 {
		t.Errorf("shelved alarm was re-sent %d times", n)
	}
	if a, _ := svc.Alarm(red); a.Resends != 4 || !a.ResentAt.Equal(start.Add(20*time.Minute)) {
		t.Errorf("alarm's escalation state %d at %s", a.Resends, a.ResentAt)
	}

	// The normal receiver gets the raises and every re-send; the duty
	// manager only the re-sends from 15 minutes on.
	testenv.Eventually(t, "re-sends at both receivers", 20*time.Second, func() bool {
		return countType(normal.events(), protocol.AlarmEscalated, red) == 4 && len(duty.events()) == 2
	})
	for _, ce := range duty.events() {
		if ce.Type != CloudEventType(protocol.AlarmEscalated) || ce.Subject != red || !strings.Contains(ce.Data.Message, "已升级通知") {
			t.Errorf("escalation receiver got %s of %s: %s", ce.Type, ce.Subject, ce.Data.Message)
		}
	}

	c.t = start.Add(21 * time.Minute)
	for _, id := range []string{red, orange} {
		if _, err := svc.Ack(ctx, id, "王工", "已派人"); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []int{25, 30, 45} {
		c.t = start.Add(time.Duration(m) * time.Minute)
		if err := svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(escalations(t, svc, red)); n != 4 {
		t.Errorf("%d re-sends after the acknowledgement, want still 4", n)
	}
	// A worse grade of an acknowledged alarm annunciates it again: a new
	// schedule counting from 1.
	if err := svc.HandleEvents(ctx, []rules.Event{event(rules.GradeChanged, orange, c.Now(), protocol.Red, protocol.Orange, 95)}); err != nil {
		t.Fatal(err)
	}
	c.Add(5 * time.Minute)
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if esc := escalations(t, svc, orange); len(esc) != 1 || !strings.Contains(esc[0].Message, "第 1 次重发") || strings.Contains(esc[0].Message, "已升级通知") {
		t.Errorf("re-sends of the alarm raised to red: %+v", esc)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(duty.events()); n != 2 {
		t.Errorf("escalation receiver got %d events, want 2", n)
	}
}

func TestEscalationScheduleSurvivesRestart(t *testing.T) {
	eachJournal(t, testEscalationScheduleSurvivesRestart)
}

func testEscalationScheduleSurvivesRestart(t *testing.T, j journal) {
	c := newClock()
	start := c.Now()
	open := func() *Service {
		t.Helper()
		svc, err := New(j.with(Config{Now: c.Now, TickInterval: -1}))
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	tickAt := func(svc *Service, m float64) {
		t.Helper()
		c.t = start.Add(time.Duration(m * float64(time.Minute)))
		if err := svc.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	k := "jh-chem/nh3-tanks/nh3-gas-1/HH"
	svc := open()
	if err := svc.HandleEvents(context.Background(), []rules.Event{event(rules.Raised, k, start, protocol.Orange, protocol.None, 86)}); err != nil {
		t.Fatal(err)
	}
	tickAt(svc, 5)
	tickAt(svc, 7)
	svc.Close()

	// Back at once: the schedule goes on from the 5-minute re-send.
	svc = open()
	tickAt(svc, 9)
	if n := len(escalations(t, svc, k)); n != 1 {
		t.Fatalf("%d re-sends after a restart at 9 min, want 1 (no burst)", n)
	}
	tickAt(svc, 10)
	tickAt(svc, 10)
	if n := len(escalations(t, svc, k)); n != 2 {
		t.Fatalf("%d re-sends at 10 min, want 2", n)
	}
	svc.Close()

	// Down over the 15-minute re-send: it is sent once on return,
	// escalated, and the schedule goes on from there.
	svc = open()
	defer svc.Close()
	tickAt(svc, 17)
	tickAt(svc, 17.5)
	esc := escalations(t, svc, k)
	if len(esc) != 3 || !esc[2].TS.Equal(start.Add(17*time.Minute)) || !strings.Contains(esc[2].Message, "已升级通知") {
		t.Fatalf("re-sends after a downtime over the 15-minute one: %+v", esc)
	}
	tickAt(svc, 21.9)
	tickAt(svc, 22)
	if esc := escalations(t, svc, k); len(esc) != 4 || !strings.Contains(esc[3].Message, "第 4 次重发") {
		t.Fatalf("re-sends at 22 min: %+v", esc)
	}
}
