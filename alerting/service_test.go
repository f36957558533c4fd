package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
)

const secret = "s3cret-for-tests"

// receiver is a real HTTP server on a fixed 127.0.0.1 port that a test can
// stop and start again, recording the CloudEvents it accepts.
type receiver struct {
	t    *testing.T
	addr string
	srv  *http.Server

	mu       sync.Mutex
	got      []CloudEvent
	bodies   [][]byte // as received, in order
	badSigs  int
	requests int
	fail5xx  int // answer this many requests with 503
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *receiver) URL() string { return "http://" + r.addr + "/hook" }

func (r *receiver) start() {
	r.t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ln, err = net.Listen("tcp", r.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("listen on %s again: %v", r.addr, err)
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed
}

func (r *receiver) stop() {
	if r.srv != nil {
		r.srv.Close()
		r.srv = nil
	}
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if r.fail5xx > 0 {
		r.fail5xx--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	if !VerifySignature(secret, body, req.Header.Get(SignatureHeader)) {
		r.badSigs++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if ct := req.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/cloudevents+json") {
		r.t.Errorf("content type %q", ct)
	}
	var ce CloudEvent
	if err := json.Unmarshal(body, &ce); err != nil {
		r.t.Errorf("receiver got a body that is not a CloudEvent: %v", err)
	}
	r.got = append(r.got, ce)
	r.bodies = append(r.bodies, body)
}

func (r *receiver) events() []CloudEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]CloudEvent(nil), r.got...)
}

func testReceiver(url string) Receiver {
	return Receiver{Name: "command", URL: url, Secret: secret, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Events: EventsPoints}
}

func event(typ rules.EventType, k string, at time.Time, grade, prev protocol.Grade, value float64) rules.Event {
	parts := strings.Split(k, "/")
	return rules.Event{Type: typ, Time: at, Site: parts[0], Source: parts[1], Point: parts[2], Condition: rules.Condition(parts[3]),
		Key: k, Grade: grade, PrevGrade: prev, Value: value, Limit: 80, Since: at,
		Facts: protocol.AlarmFacts{Reason: rules.ReasonLimitExceeded, Name: k, Unit: "ppm", LimitName: "HH"}}
}

func TestThinPathMQTTAndWebhook(t *testing.T) {
	broker := testenv.Mosquitto(t)
	ctx := context.Background()
	pub, err := NewMQTTPublisher(ctx, mqttconn.Config{Broker: broker.URL(), ClientID: "alerting-test-pub"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	var mu sync.Mutex
	var onWire []protocol.AlarmEvent
	var grade protocol.SourceGrade
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("alerting-test-sub"))
	if tok := sub.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(100)
	tok := sub.Subscribe(protocol.Prefix+"jh-chem/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasSuffix(m.Topic(), "/incidents") {
			return // incident events: see the incident tests
		}
		if strings.HasSuffix(m.Topic(), "/grade") {
			if err := json.Unmarshal(m.Payload(), &grade); err != nil {
				t.Errorf("source grade payload: %v", err)
			}
			return
		}
		e, err := protocol.DecodeAlarmEvent(m.Payload())
		if err != nil {
			t.Errorf("alarm event on %s: %v", m.Topic(), err)
		}
		onWire = append(onWire, e)
	})
	if tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	rcv := newReceiver(t)
	svc, err := New(Config{Publisher: pub, Receivers: []Receiver{testReceiver(rcv.URL())}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()

	now := time.Now().UTC().Truncate(time.Millisecond)
	k := "jh-chem/nh3-tanks/nh3-gas-1/HH"
	raised := event(rules.Raised, k, now, protocol.Orange, protocol.None, 86)
	src := rules.Event{Type: rules.SourceGradeChanged, Time: now, Site: "jh-chem", Source: "nh3-tanks", Key: "jh-chem/nh3-tanks",
		Grade: protocol.Orange, PrevGrade: protocol.None, Facts: protocol.AlarmFacts{Reason: rules.ReasonSourceRaised, SourceName: "液氨储罐区"}}
	if err := svc.HandleEvents(ctx, []rules.Event{raised, src}); err != nil {
		t.Fatal(err)
	}
	// The same batch again (a replay) changes nothing.
	if err := svc.HandleEvents(ctx, []rules.Event{raised, src}); err != nil {
		t.Fatal(err)
	}
	active := svc.ActiveAlarms()
	if len(active) != 1 || active[0].ID != k || active[0].State != protocol.StateUnacked || active[0].Grade != protocol.Orange {
		t.Fatalf("active alarms %+v", active)
	}
	testenv.Eventually(t, "two events on MQTT and the retained grade", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(onWire) >= 2 && grade.Grade == protocol.Orange
	})
	testenv.Eventually(t, "two events at the receiver", 20*time.Second, func() bool { return len(rcv.events()) >= 2 })
	time.Sleep(100 * time.Millisecond) // a duplicate would arrive by now
	got := rcv.events()
	if len(got) != 2 {
		t.Fatalf("receiver got %d events, want 2 (no duplicates)", len(got))
	}
	ce := got[0]
	if ce.SpecVersion != "1.0" || ce.Type != "cn.hazardwatch.alarm.raised" || ce.Source != "/hazardwatch/jh-chem" ||
		ce.DataContentType != "application/json" || ce.Data.AlarmID != k || ce.ID != ce.Data.ID || !ce.Time.Equal(now) {
		t.Fatalf("CloudEvent %+v", ce)
	}
	if ce.Data.Value != 86 || ce.Data.Grade != protocol.Orange || ce.Data.State != protocol.StateUnacked {
		t.Fatalf("alarm event data %+v", ce.Data)
	}
	mu.Lock()
	if onWire[0].ID != ce.ID {
		t.Errorf("MQTT and webhook ids differ: %s vs %s", onWire[0].ID, ce.ID)
	}
	mu.Unlock()
}

func TestDeliveryWhileReceiverDown(t *testing.T) { eachJournal(t, testDeliveryWhileReceiverDown) }

func testDeliveryWhileReceiverDown(t *testing.T, j journal) {
	rcv := newReceiver(t)
	rcv.mu.Lock()
	rcv.fail5xx = 2 // a busy receiver first
	rcv.mu.Unlock()
	svc, err := New(j.with(Config{Receivers: []Receiver{testReceiver(rcv.URL())}}))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()
	now := time.Now().UTC()
	keys := []string{"jh-chem/nh3-tanks/nh3-gas-1/H", "jh-chem/nh3-tanks/nh3-gas-2/H", "jh-chem/nh3-tanks/nh3-gas-3/HH"}
	var want []string
	send := func(evs ...rules.Event) {
		t.Helper()
		if err := svc.HandleEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	for i, k := range keys[:2] {
		send(event(rules.Raised, k, now.Add(time.Duration(i)*time.Second), protocol.Blue, protocol.None, 50))
	}
	testenv.Eventually(t, "first events delivered after the 503s", 20*time.Second, func() bool { return len(rcv.events()) == 2 })
	rcv.stop()
	at := now.Add(10 * time.Second)
	for step := range 5 {
		for _, k := range keys {
			at = at.Add(time.Second)
			switch step % 2 {
			case 0:
				send(event(rules.GradeChanged, k, at, protocol.Yellow, protocol.Blue, 60+float64(step)))
			case 1:
				send(event(rules.GradeChanged, k, at, protocol.Blue, protocol.Yellow, 50+float64(step)))
			}
		}
	}
	if _, err := svc.Ack(ctx, keys[0], "王工", "现场确认"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // several failed attempts
	stats, err := svc.OutboxStats(ctx)
	if err != nil || len(stats) != 1 || stats[0].Depth != 16 {
		t.Fatalf("outbox while the receiver is down: %+v, %v", stats, err)
	}
	rcv.start()
	timeline := map[string][]string{}
	for _, k := range keys {
		evs, err := svc.Timeline(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			timeline[k] = append(timeline[k], e.ID)
			want = append(want, e.ID)
		}
	}
	testenv.Eventually(t, "every event delivered", 20*time.Second, func() bool { return len(rcv.events()) >= len(want) })
	time.Sleep(100 * time.Millisecond)
	got := rcv.events()
	seen := map[string]int{}
	perAlarm := map[string][]string{}
	for _, ce := range got {
		seen[ce.ID]++
		perAlarm[ce.Subject] = append(perAlarm[ce.Subject], ce.ID)
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s arrived %d times", id, seen[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("receiver got %d events, want %d", len(got), len(want))
	}
	for _, k := range keys {
		if strings.Join(perAlarm[k], ",") != strings.Join(timeline[k], ",") {
			t.Errorf("alarm %s arrived in order %v, journaled %v", k, perAlarm[k], timeline[k])
		}
	}
	rcv.mu.Lock()
	if rcv.badSigs != 0 {
		t.Errorf("%d bad signatures", rcv.badSigs)
	}
	rcv.mu.Unlock()
	stats, _ = svc.OutboxStats(ctx)
	if stats[0].Depth != 0 {
		t.Errorf("outbox not empty after delivery: %+v", stats)
	}
}

func TestRestartKeepsStatesAndOutbox(t *testing.T) { eachJournal(t, testRestartKeepsStatesAndOutbox) }

func testRestartKeepsStatesAndOutbox(t *testing.T, j journal) {
	rcv := newReceiver(t)
	rcv.stop() // down during the first run
	ctx := context.Background()
	now := time.Now().UTC()
	active := "jh-chem/nh3-tanks/nh3-gas-1/HH"
	gone := "jh-chem/nh3-tanks/nh3-gas-2/H"
	rtn := "jh-chem/nh3-tanks/nh3-gas-3/H"
	svc, err := New(j.with(Config{Receivers: []Receiver{testReceiver(rcv.URL())}}))
	if err != nil {
		t.Fatal(err)
	}
	evs := []rules.Event{
		event(rules.Raised, active, now, protocol.Red, protocol.None, 90),
		event(rules.Raised, gone, now, protocol.Blue, protocol.None, 45),
		event(rules.Raised, rtn, now, protocol.Blue, protocol.None, 45),
	}
	if err := svc.HandleEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Ack(ctx, gone, "王工", ""); err != nil {
		t.Fatal(err)
	}
	if err := svc.HandleEvents(ctx, []rules.Event{
		event(rules.Cleared, gone, now.Add(time.Minute), protocol.None, protocol.Blue, 30),
		event(rules.Cleared, rtn, now.Add(time.Minute), protocol.None, protocol.Blue, 30),
	}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}

	svc, err = New(j.with(Config{Receivers: []Receiver{testReceiver(rcv.URL())}}))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	got := map[string]protocol.AlarmState{}
	for _, a := range svc.ActiveAlarms() {
		got[a.ID] = a.State
	}
	if len(got) != 2 || got[active] != protocol.StateUnacked || got[rtn] != protocol.StateRTNUnacked {
		t.Fatalf("alarms after restart %v: want %s unacked and %s returned unacked, %s gone", got, active, rtn, gone)
	}
	// Replayed events from before the restart are recognised.
	if err := svc.HandleEvents(ctx, evs[:1]); err != nil {
		t.Fatal(err)
	}
	stats, err := svc.OutboxStats(ctx)
	if err != nil || stats[0].Depth != 6 {
		t.Fatalf("outbox after restart %+v %v, want the 6 undelivered events", stats, err)
	}
	rcv.start()
	testenv.Eventually(t, "the kept events delivered", 20*time.Second, func() bool { return len(rcv.events()) >= 6 })
	time.Sleep(100 * time.Millisecond)
	if n := len(rcv.events()); n != 6 {
		t.Fatalf("receiver got %d events, want 6", n)
	}
	if _, err := svc.Ack(ctx, rtn, "李工", "已复位"); err != nil {
		t.Fatal(err)
	}
	acts, err := svc.OfficerActions(ctx, "王工", time.Time{}, time.Time{})
	if err != nil || len(acts) != 1 || acts[0].AlarmID != gone || acts[0].Type != protocol.AlarmAcknowledged {
		t.Fatalf("王工's actions %+v %v", acts, err)
	}
	hist, err := svc.History(ctx, HistoryQuery{Site: "jh-chem", Point: "nh3-gas-3"})
	if err != nil || len(hist) != 3 || hist[0].Type != protocol.AlarmRaised || hist[1].Type != protocol.AlarmCleared || hist[2].Type != protocol.AlarmAcknowledged {
		t.Fatalf("history of nh3-gas-3: %+v %v", hist, err)
	}
	// The rules events were stamped a minute after the raise; the range
	// selects by event time.
	hist, err = svc.History(ctx, HistoryQuery{Site: "jh-chem", From: now.Add(30 * time.Second), To: now.Add(2 * time.Minute)})
	if err != nil || len(hist) != 2 || hist[0].Type != protocol.AlarmCleared || hist[1].Type != protocol.AlarmCleared {
		t.Fatalf("history in [+30 s, +2 min]: %+v %v", hist, err)
	}
}

func TestReceiverFilters(t *testing.T) {
	all, red, other := newReceiver(t), newReceiver(t), newReceiver(t)
	r1, r2, r3 := testReceiver(all.URL()), testReceiver(red.URL()), testReceiver(other.URL())
	r2.Name, r2.MinGrade = "red-only", protocol.Red
	r3.Name, r3.Sites = "other-site", []string{"lh-coal"}
	svc, err := New(Config{Receivers: []Receiver{r1, r2, r3}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	now := time.Now().UTC()
	k1, k2 := "jh-chem/a/p1/H", "jh-chem/a/p2/HH"
	if err := svc.HandleEvents(context.Background(), []rules.Event{
		event(rules.Raised, k1, now, protocol.Blue, protocol.None, 1),
		event(rules.Raised, k2, now, protocol.Red, protocol.None, 2),
		event(rules.Cleared, k2, now.Add(time.Second), protocol.None, protocol.Red, 0),
	}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "deliveries", 20*time.Second, func() bool { return len(all.events()) == 3 && len(red.events()) == 2 })
	for _, ce := range red.events() {
		if ce.Subject != k2 {
			t.Errorf("red-only receiver got %s", ce.Subject)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(other.events()); n != 0 {
		t.Errorf("receiver of another site got %d events", n)
	}
}

func TestBadEventsReportedNotFatal(t *testing.T) {
	svc, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	now := time.Now()
	good := event(rules.Raised, "jh-chem/a/p1/H", now, protocol.Blue, protocol.None, 1)
	noKey := good
	noKey.Key = ""
	badGrade := event(rules.Raised, "jh-chem/a/p2/H", now, protocol.Grade(7), protocol.None, 1)
	nan := event(rules.Raised, "jh-chem/a/p3/stale", now, protocol.Blue, protocol.None, 0)
	nan.Value = nanValue()
	err = svc.HandleEvents(context.Background(), []rules.Event{noKey, badGrade, good, nan})
	if err == nil || !strings.Contains(err.Error(), "without key") || !strings.Contains(err.Error(), "jh-chem/a/p2/H") {
		t.Fatalf("error %v should name both bad events", err)
	}
	if n := len(svc.ActiveAlarms()); n != 2 {
		t.Fatalf("%d active alarms, want the good one and the NaN one", n)
	}
	if _, err := svc.Ack(context.Background(), "no/such/alarm", "王工", ""); !errors.Is(err, ErrUnknownAlarm) {
		t.Fatalf("ack of unknown alarm: %v", err)
	}
}

func nanValue() float64 { var z float64; return z / z }

func TestShelveExpiresOnTick(t *testing.T) {
	c := newClock()
	svc, err := New(Config{Now: c.Now, TickInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()
	k := "jh-chem/a/p1/H"
	if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Raised, k, c.Now(), protocol.Blue, protocol.None, 1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Shelve(ctx, k, "王工", "标定", c.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c.Add(59 * time.Minute)
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := svc.Alarm(k); a.State != protocol.StateShelved {
		t.Fatalf("state %s before expiry", a.State)
	}
	c.Add(time.Minute)
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := svc.Alarm(k); a.State != protocol.StateUnacked {
		t.Fatalf("state %s after expiry, want unacked", a.State)
	}
	tl, err := svc.Timeline(ctx, k)
	if err != nil || len(tl) != 3 || tl[2].Type != protocol.AlarmShelveExpired {
		t.Fatalf("timeline %+v %v", tl, err)
	}
}

// TestCommentJournaledDeliveredAndKept: an officer's comment is journaled,
// shown in the alarm's timeline and the officer's actions, delivered to
// the receivers like any officer's action, and kept across a restart. It
// is not an acknowledgement: the alarm stays unacknowledged, its
// escalation schedule runs on, and no time to acknowledge is observed.
func TestCommentJournaledDeliveredAndKept(t *testing.T) {
	eachJournal(t, testCommentJournaledDeliveredAndKept)
}

func testCommentJournaledDeliveredAndKept(t *testing.T, j journal) {
	c := newClock()
	rcv := newReceiver(t)
	reg := prometheus.NewRegistry()
	cfg := j.with(Config{Now: c.Now, TickInterval: -1, Receivers: []Receiver{testReceiver(rcv.URL())}, Registerer: reg})
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := "jh-chem/nh3-tanks/nh3-gas-1/HH"
	start := c.Now()
	if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Raised, k, start, protocol.Red, protocol.None, 90)}); err != nil {
		t.Fatal(err)
	}
	c.Add(3 * time.Minute)
	if _, err := svc.Comment(ctx, k, "王工", ""); !errors.Is(err, ErrNoComment) {
		t.Fatalf("comment without text: %v, want ErrNoComment", err)
	}
	if _, err := svc.Comment(ctx, "no/such/alarm/H", "王工", "x"); !errors.Is(err, ErrUnknownAlarm) {
		t.Fatalf("comment on an unknown alarm: %v, want ErrUnknownAlarm", err)
	}
	const text = "已通知储罐区巡检，佩戴空气呼吸器进入"
	ev, err := svc.Comment(ctx, k, "王工", text)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID == "" || ev.Type != protocol.AlarmCommented || ev.Actor != "王工" || ev.Comment != text ||
		ev.State != protocol.StateUnacked || ev.PrevState != protocol.StateUnacked || ev.Grade != protocol.Red {
		t.Fatalf("comment event %+v", ev)
	}
	if a, _ := svc.Alarm(k); a.State != protocol.StateUnacked || !a.Changed.Equal(start) || !a.Annunciated.Equal(start) {
		t.Fatalf("alarm after the comment %+v; want it unchanged", a)
	}
	// The schedule counts from the annunciation, not from the comment.
	c.t = start.Add(5 * time.Minute)
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if esc := escalations(t, svc, k); len(esc) != 1 || !esc[0].TS.Equal(start.Add(5*time.Minute)) {
		t.Fatalf("re-sends after the comment: %+v; want one at 5 min", esc)
	}
	testenv.Eventually(t, "the comment delivered", 20*time.Second, func() bool { return countType(rcv.events(), protocol.AlarmCommented, k) == 1 })
	for _, ce := range rcv.events() {
		if ce.Data.Type == protocol.AlarmCommented && (ce.Type != "cn.hazardwatch.alarm.commented" || ce.Data.ID != ev.ID || ce.Data.Comment != text) {
			t.Errorf("delivered comment %+v", ce)
		}
	}
	if h := histogramCount(t, reg, "hazardwatch_alerting_time_to_acknowledge_seconds"); h != 0 {
		t.Errorf("a comment counted as an acknowledgement: %d time-to-acknowledge samples", h)
	}

	check := func(svc *Service, when string) {
		t.Helper()
		tl, err := svc.Timeline(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, e := range tl {
			types = append(types, string(e.Type))
		}
		if got := strings.Join(types, ","); got != "raised,commented,escalated" {
			t.Fatalf("%s: timeline %s", when, got)
		}
		if tl[1].ID != ev.ID || tl[1].Actor != "王工" || tl[1].Comment != text {
			t.Fatalf("%s: comment in the timeline %+v", when, tl[1])
		}
		acts, err := svc.OfficerActions(ctx, "王工", time.Time{}, time.Time{})
		if err != nil || len(acts) != 1 || acts[0].ID != ev.ID || acts[0].Type != protocol.AlarmCommented || acts[0].Comment != text {
			t.Fatalf("%s: 王工's actions %+v %v", when, acts, err)
		}
	}
	check(svc, "before the restart")
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}

	cfg.Registerer = nil
	svc, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	check(svc, "after a restart")
	if a, ok := svc.Alarm(k); !ok || a.State != protocol.StateUnacked || a.Resends != 1 {
		t.Fatalf("alarm after a restart %+v", a)
	}
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("metric %s missing", name)
	return 0
}
