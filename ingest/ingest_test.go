package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
)

// broker is the Mosquitto the test machine runs.
const broker = "tcp://127.0.0.1:1883"

const siteYAML = `
id: %s
name: 测试储罐区
gateways:
  - id: gw1
    name: 网关一
    devices:
      - {id: d1, name: GDS, transport: tcp, address: 127.0.0.1:1502}
  - id: gw2
    name: 网关二
    devices:
      - {id: d2, name: PLC, transport: tcp, address: 127.0.0.1:1503}
sources:
  - id: s1
    name: 液氨储罐区
    type: tank_farm
    grade: 2
    points:
      - id: gas1
        name: 氨气 1
        kind: toxic_gas
        gas: NH3
        unit: ppm
        range: [0, 100]
        modbus: {device: d1, table: input, address: 0}
        limits: {h: 40, hh: 80}
      - id: gas2
        name: 氨气 2
        kind: toxic_gas
        gas: NH3
        unit: ppm
        range: [0, 100]
        modbus: {device: d1, table: input, address: 1}
        limits: {h: 40, hh: 80}
      - id: level
        name: 液位
        kind: level
        unit: "%%"
        range: [0, 100]
        modbus: {device: d2, table: holding, address: 0}
        limits: {h: 85, hh: 90}
`

// newSite parses a test site with a random id, so that tests sharing the
// machine's broker do not see each other's messages.
func newSite(t *testing.T) *site.Site {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := "t" + hex.EncodeToString(b[:])
	st, err := site.Parse("test.yaml", []byte(fmt.Sprintf(siteYAML, id)))
	if err != nil {
		t.Fatalf("test site: %v", err)
	}
	return st
}

// recorder is a test Evaluator that records what it is fed and raises
// an event for every value of 80 or more.
type recorder struct {
	mu       sync.Mutex
	observed []rules.Reading
	ticks    int
}

func (r *recorder) Observe(rd rules.Reading, out []rules.Event) []rules.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observed = append(r.observed, rd)
	if rd.Quality == protocol.Good && rd.Value >= 80 {
		out = append(out, rules.Event{Type: rules.Raised, Time: rd.Time, Site: rd.Site, Source: "s1", Point: rd.Point, Condition: rules.HH,
			Key: rd.Site + "/s1/" + rd.Point + "/HH", Grade: protocol.Yellow, Value: rd.Value, Limit: 80})
	}
	return out
}

func (r *recorder) Tick(time.Time, []rules.Event) []rules.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ticks++
	return nil
}

func (r *recorder) readings() []rules.Reading {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rules.Reading(nil), r.observed...)
}

// sink is a test EventSink that keeps the events it is handed.
type sink struct {
	mu     sync.Mutex
	events []rules.Event
}

func (s *sink) HandleEvents(_ context.Context, ev []rules.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ev...)
	return nil
}

func (s *sink) got() []rules.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rules.Event(nil), s.events...)
}

type harness struct {
	site  *site.Site
	store *embedded.Store
	eval  *recorder
	sink  *sink
	reg   *prometheus.Registry
	svc   *Service
	pub   mqtt.Client
	stop  func()
}

func start(t *testing.T, st *site.Site, store storage.Appender, clientID string) (*Service, *prometheus.Registry, *recorder, *sink, func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	ev, sk := &recorder{}, &sink{}
	svc, err := New(Config{Sites: []*site.Site{st}, Broker: broker, ClientID: clientID, Store: store, Evaluator: ev, Sink: sk,
		Registry: reg, TickInterval: 50 * time.Millisecond, DeadLetters: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("Run did not return within 30s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	// Wait until subscribed: the connected gauge is set before the
	// subscription, so poll for the SUBACK through a retained probe.
	testenv.Eventually(t, "service connected", 20*time.Second, func() bool { return gauge(reg, "hazardwatch_ingest_connected") == 1 })
	return svc, reg, ev, sk, stop
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	st := newSite(t)
	store := tempStore(t)
	svc, reg, ev, sk, stop := start(t, st, store, "ingest-"+st.ID)
	h := &harness{site: st, store: store, eval: ev, sink: sk, reg: reg, svc: svc, stop: stop, pub: publisher(t, st.ID)}
	h.awaitSubscribed(t)
	return h
}

func publisher(t *testing.T, id string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("pub-" + id).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// awaitSubscribed publishes gateway states until the service has seen one,
// which proves its subscription is in place.
func (h *harness) awaitSubscribed(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, "subscription active", 20*time.Second, func() bool {
		h.publish(t, protocol.StateTopic(h.site.ID, "gw2"), protocol.EncodeState(protocol.Online, time.Now()), true)
		time.Sleep(50 * time.Millisecond)
		return len(h.svc.GatewayStates()) > 0
	})
}

func (h *harness) publish(t *testing.T, topic string, payload []byte, retained bool) {
	t.Helper()
	tok := h.pub.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
	if retained {
		t.Cleanup(func() { h.pub.Publish(topic, 1, true, []byte{}).WaitTimeout(5 * time.Second) })
	}
}

func (h *harness) telemetry(t *testing.T, gw string, seq uint64, at time.Time, readings ...protocol.Reading) []byte {
	t.Helper()
	b, err := protocol.Telemetry{V: 1, Site: h.site.ID, Gateway: gw, Seq: seq, TS: protocol.Time{Time: at}, Readings: readings}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (h *harness) stored(t *testing.T, point string) []storage.Sample {
	t.Helper()
	now := time.Now()
	got, err := h.store.Range(context.Background(), storage.Point{Site: h.site.ID, Point: point}, now.Add(-2*time.Hour), now.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func family(reg *prometheus.Registry, name string) *dto.MetricFamily {
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

func counter(reg *prometheus.Registry, name string) float64 {
	mf := family(reg, name)
	if mf == nil {
		return 0
	}
	return mf.GetMetric()[0].GetCounter().GetValue()
}

func gauge(reg *prometheus.Registry, name string) float64 {
	mf := family(reg, name)
	if mf == nil {
		return 0
	}
	return mf.GetMetric()[0].GetGauge().GetValue()
}

func rejected(reg *prometheus.Registry) map[string]float64 {
	out := map[string]float64{}
	if mf := family(reg, "hazardwatch_ingest_rejected_total"); mf != nil {
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return out
}

func histCount(reg *prometheus.Registry, name string) uint64 {
	mf := family(reg, name)
	if mf == nil {
		return 0
	}
	return mf.GetMetric()[0].GetHistogram().GetSampleCount()
}

func TestGoodTelemetryIsStoredEvaluatedAndAlerted(t *testing.T) {
	h := newHarness(t)
	t0 := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	h.publish(t, protocol.TelemetryTopic(h.site.ID, "gw1"), h.telemetry(t, "gw1", 1, t0,
		protocol.Reading{Point: "gas1", Value: protocol.F(12.5)},
		protocol.Reading{Point: "gas2", Quality: protocol.CommFail}), false)
	h.publish(t, protocol.TelemetryTopic(h.site.ID, "gw1"), h.telemetry(t, "gw1", 2, t0.Add(500*time.Millisecond),
		protocol.Reading{Point: "gas1", Value: protocol.F(86)}), false)
	h.publish(t, protocol.TelemetryTopic(h.site.ID, "gw2"), h.telemetry(t, "gw2", 1, t0,
		protocol.Reading{Point: "level", Value: protocol.F(55)}), false)

	testenv.Eventually(t, "4 readings evaluated", 20*time.Second, func() bool { return len(h.eval.readings()) == 4 })
	gas1 := h.stored(t, "gas1")
	if len(gas1) != 2 || gas1[0].Value != 12.5 || gas1[1].Value != 86 || !gas1[0].Time.Equal(t0) || gas1[0].Source != "s1" {
		t.Errorf("stored gas1 = %+v, want 12.5 at %s then 86", gas1, t0)
	}
	gas2 := h.stored(t, "gas2")
	if len(gas2) != 1 || gas2[0].Quality != protocol.CommFail || gas2[0].HasValue {
		t.Errorf("stored gas2 = %+v, want one comm_fail without value", gas2)
	}
	if lv := h.stored(t, "level"); len(lv) != 1 || lv[0].Value != 55 {
		t.Errorf("stored level = %+v, want 55", lv)
	}
	var sawCommFail bool
	for _, r := range h.eval.readings() {
		if r.Site != h.site.ID {
			t.Errorf("evaluated reading of site %s", r.Site)
		}
		if r.Point == "gas2" && r.Quality == protocol.CommFail {
			sawCommFail = true
		}
	}
	if !sawCommFail {
		t.Error("the comm_fail reading was not fed to the evaluator")
	}
	testenv.Eventually(t, "HH event at the sink", 20*time.Second, func() bool {
		ev := h.sink.got()
		return len(ev) == 1 && ev[0].Point == "gas1" && ev[0].Value == 86
	})
	testenv.Eventually(t, "evaluator ticked", 20*time.Second, func() bool {
		h.eval.mu.Lock()
		defer h.eval.mu.Unlock()
		return h.eval.ticks > 0
	})
	if n := counter(h.reg, "hazardwatch_ingest_readings_total"); n != 4 {
		t.Errorf("readings_total = %v, want 4", n)
	}
	if n := histCount(h.reg, "hazardwatch_ingest_lag_seconds"); n != 4 {
		t.Errorf("lag histogram has %d observations, want 4", n)
	}
	if n := histCount(h.reg, "hazardwatch_ingest_store_write_seconds"); n != 3 {
		t.Errorf("store latency histogram has %d observations, want 3", n)
	}
	states := h.svc.GatewayStates()
	if len(states) != 1 || states[0].Gateway != "gw2" || states[0].State != protocol.Online || states[0].Since.IsZero() {
		t.Errorf("gateway states = %+v, want gw2 online", states)
	}
	h.publish(t, protocol.StateTopic(h.site.ID, "gw2"), protocol.EncodeState(protocol.Offline, time.Time{}), true)
	testenv.Eventually(t, "gw2 offline", 20*time.Second, func() bool {
		st := h.svc.GatewayStates()
		return len(st) == 1 && st[0].State == protocol.Offline
	})
}

func TestBrokenMessagesAreCountedAndGoodOnesStored(t *testing.T) {
	h := newHarness(t)
	now := time.Now().Truncate(time.Millisecond)
	topic1 := protocol.TelemetryTopic(h.site.ID, "gw1")
	ts := func(d time.Duration) string { return now.Add(d).UTC().Format(protocol.TimeFormat) }
	raw := func(gw string, seq int, readings string) []byte {
		return fmt.Appendf(nil, `{"v":1,"site":%q,"gateway":%q,"seq":%d,"ts":%q,"readings":[%s]}`, h.site.ID, gw, seq, ts(time.Duration(seq)*time.Second-20*time.Second), readings)
	}
	corpus := []struct {
		topic   string
		payload []byte
	}{
		{topic1, raw("gw1", 1, `{"point":"gas1","value":1}`)}, // good: gas1 = 1
		{topic1, []byte("this is not json")},                  // not_json
		{topic1, []byte(`{"v":1,"site":"x"`)},                 // not_json (truncated)
		{topic1, fmt.Appendf(nil, `{"v":"one","site":%q,"gateway":"gw1","seq":2,"ts":%q,"readings":[]}`, h.site.ID, ts(0))},                       // bad_envelope: wrong type
		{topic1, fmt.Appendf(nil, `{"v":2,"site":%q,"gateway":"gw1","seq":2,"ts":%q,"readings":[{"point":"gas1","value":1}]}`, h.site.ID, ts(0))}, // bad_version
		{protocol.TelemetryTopic(h.site.ID, "gw9"), raw("gw9", 1, `{"point":"gas1","value":1}`)},                                                  // unknown_gateway
		{topic1, raw("gw2", 1, `{"point":"level","value":1}`)},                                                                                    // topic_mismatch
		{protocol.TelemetryTopic(h.site.ID, "gw1"), append(append([]byte(`{"pad":"`), strings.Repeat("x", protocol.MaxMessageSize)...), `"}`...)}, // too_large
		// One message, good and bad readings side by side: gas1 = 2 stored.
		{topic1, raw("gw1", 2, `{"point":"gas1","value":2},{"point":"nope","value":1},{"point":"level","value":1}`)},
		// A value that is not a finite number is that reading's problem.
		{topic1, raw("gw1", 3, `{"point":"gas2","value":"NaN"}`)},
		{topic1, raw("gw1", 5, `{"point":"gas2","value":1e400}`)}, // seq 4 missing, for now

		{topic1, raw("gw1", 4, `{"point":"gas2","value":3},{"point":"gas1","value":4,"ts":"`+ts(time.Hour)+`"},{"point":"gas1","quality":"good"},{"point":"gas1","quality":"weird","value":1}`)},
		{topic1, raw("gw1", 4, `{"point":"gas1","value":999}`)},                           // duplicate seq: dropped
		{topic1, raw("gw1", 2, `{"point":"gas1","value":998}`)},                           // older seq: dropped
		{topic1, raw("gw1", 8, `{"point":"gas2","value":5}`)},                             // gap: seq 6-7 missing
		{topic1, raw("gw1", 9, `{"point":"gas2","value":6,"ts":"`+ts(-time.Minute)+`"}`)}, // late: stored, evaluated apart by the rules
		{"hazardwatch/v1/" + h.site.ID + "/gw1/extra/telemetry", []byte("{}")},            // not our topic shape: never subscribed
	}
	for _, c := range corpus {
		h.publish(t, c.topic, c.payload, false)
	}
	const delivered = 16 // the last topic matches no subscription
	testenv.Eventually(t, "every message handled", 20*time.Second, func() bool {
		return counter(h.reg, "hazardwatch_ingest_messages_total") >= delivered+1 // +1: the subscription probe
	})
	// Readings stored: gas1 1, 2; gas2 3, 5, 6.
	testenv.Eventually(t, "good readings stored", 20*time.Second, func() bool {
		return len(h.stored(t, "gas2")) == 3
	})
	gas1 := h.stored(t, "gas1")
	if len(gas1) != 2 || gas1[0].Value != 1 || gas1[1].Value != 2 {
		t.Errorf("stored gas1 = %+v, want 1, 2", gas1)
	}
	gas2 := h.stored(t, "gas2")
	if gas2[0].Value != 6 || gas2[1].Value != 3 || gas2[2].Value != 5 { // ordered by time: the late 6 is oldest
		t.Errorf("stored gas2 = %+v, want 6 (late), 3, 5", gas2)
	}
	if lv := h.stored(t, "level"); len(lv) != 0 {
		t.Errorf("level (not on gw1) stored: %+v", lv)
	}
	want := map[string]float64{
		protocol.ReasonNotJSON:      2,
		protocol.ReasonBadEnvelope:  1, // wrong type
		protocol.ReasonNotANumber:   2, // "NaN" as a string, 1e400
		protocol.ReasonBadVersion:   1,
		ReasonUnknownGateway:        1,
		ReasonTopicMismatch:         1,
		protocol.ReasonTooLarge:     1,
		protocol.ReasonUnknownPoint: 2, // not in the site; on another gateway
		protocol.ReasonBadReading:   2, // good without value, unknown quality
		protocol.ReasonFuture:       1,
		ReasonDuplicate:             2, // seq 4 again, seq 2 again: dead letters too
	}
	got := rejected(h.reg)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rejected by reason = %v\nwant %v", got, want)
	}
	if n := counter(h.reg, "hazardwatch_ingest_duplicates_total"); n != 2 {
		t.Errorf("duplicates = %v, want 2", n)
	}
	// Seq 4 went missing when 5 came, then arrived; 6–7 never did.
	if n := counter(h.reg, "hazardwatch_ingest_gap_messages_total"); n != 3 {
		t.Errorf("gap messages = %v, want 3 (seq 4, 6, 7)", n)
	}
	if n := counter(h.reg, "hazardwatch_ingest_gap_filled_messages_total"); n != 1 {
		t.Errorf("gap filled = %v, want 1 (seq 4 arrived late)", n)
	}
	if n := counter(h.reg, "hazardwatch_ingest_late_readings_total"); n != 1 {
		t.Errorf("late readings = %v, want 1", n)
	}
	fedLate := false
	for _, r := range h.eval.readings() {
		if r.Received.IsZero() || r.Received.Before(r.Time.Add(-time.Hour)) {
			t.Errorf("reading %s %v fed without the centre's receive time: %v", r.Point, r.Value, r.Received)
		}
		fedLate = fedLate || r.Point == "gas2" && r.Value == 6
	}
	if !fedLate {
		t.Error("the late reading was not fed to the evaluator, which evaluates late data apart")
	}
	var total float64
	for _, n := range want {
		total += n
	}
	dl := h.svc.DeadLetters()
	if float64(len(dl)) != total {
		t.Errorf("%d dead letters, want %v", len(dl), total)
	}
	var sawPoint, sawExcerpt bool
	for _, d := range dl {
		if d.Reason == protocol.ReasonUnknownPoint && d.Point == "nope" && d.Seq == 2 && d.Gateway == "gw1" {
			sawPoint = true
		}
		if d.Reason == protocol.ReasonNotJSON && d.Excerpt == "this is not json" {
			sawExcerpt = true
		}
		if d.Reason == protocol.ReasonTooLarge && len(d.Excerpt) > 256 {
			t.Errorf("too_large dead letter keeps %d bytes", len(d.Excerpt))
		}
	}
	if !sawPoint || !sawExcerpt {
		t.Errorf("dead letters lack the unknown point or the not-JSON excerpt: %+v", dl)
	}
	// Still up: a good message after the storm is stored.
	h.publish(t, topic1, raw("gw1", 10, `{"point":"gas1","value":7}`), false)
	testenv.Eventually(t, "message after the corpus stored", 20*time.Second, func() bool { return len(h.stored(t, "gas1")) == 3 })
}

// failingStore refuses every append, like a full disk.
type failingStore struct{}

func (f *failingStore) Append(context.Context, []storage.Sample) error {
	return errors.New("disk full")
}

func TestUnstoredMessageIsRedeliveredAfterRestart(t *testing.T) {
	st := newSite(t)
	clientID := "ingest-" + st.ID
	reg := prometheus.NewRegistry()
	svc, err := New(Config{Sites: []*site.Site{st}, Broker: broker, ClientID: clientID, Store: &failingStore{}, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	testenv.Eventually(t, "first service connected", 20*time.Second, func() bool { return gauge(reg, "hazardwatch_ingest_connected") == 1 })

	h := &harness{site: st, pub: publisher(t, st.ID), svc: svc}
	h.awaitSubscribed(t)
	at := time.Now().Truncate(time.Millisecond)
	h.publish(t, protocol.TelemetryTopic(st.ID, "gw1"), h.telemetry(t, "gw1", 1, at, protocol.Reading{Point: "gas1", Value: protocol.F(33)}), false)
	testenv.Eventually(t, "store attempts exhausted", 20*time.Second, func() bool { return counter(reg, "hazardwatch_ingest_store_errors_total") >= DefaultStoreAttempts })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// The same client id with a working store gets the message again.
	store := tempStore(t)
	h.store = store
	start(t, st, store, clientID)
	testenv.Eventually(t, "redelivered message stored", 20*time.Second, func() bool {
		got := h.stored(t, "gas1")
		return len(got) == 1 && got[0].Value == 33
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	st := newSite(t)
	store := &failingStore{}
	for name, cfg := range map[string]Config{
		"no sites":  {Broker: broker, Store: store},
		"no broker": {Sites: []*site.Site{st}, Store: store},
		"no store":  {Sites: []*site.Site{st}, Broker: broker},
		"twice":     {Sites: []*site.Site{st, st}, Broker: broker, Store: store},
		"nil site":  {Sites: []*site.Site{nil}, Broker: broker, Store: store},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestDeadLettersKeepTheMostRecent(t *testing.T) {
	d := newDeadLetters(3)
	for i := range 5 {
		d.add(DeadLetter{Seq: uint64(i)})
	}
	got := d.list()
	if len(got) != 3 || got[0].Seq != 2 || got[2].Seq != 4 {
		t.Errorf("dead letters = %+v, want seq 2, 3, 4", got)
	}
	if e := excerpt([]byte("ab\xffcd"), 3); e != "ab\uFFFD" {
		t.Errorf("excerpt = %q", e)
	}
}

// refusingSink fails every batch, like an alarm journal on a full disk.
type refusingSink struct{ calls atomic.Int64 }

func (r *refusingSink) HandleEvents(context.Context, []rules.Event) error {
	r.calls.Add(1)
	return errors.New("alarm journal: disk full")
}

// TestMessageWithUnjournaledEventsIsRedelivered: a message whose readings
// raised an alarm is acknowledged only once alerting took the event, so a
// centre stopped before that gets the message, and the alarm, again.
func TestMessageWithUnjournaledEventsIsRedelivered(t *testing.T) {
	st := newSite(t)
	clientID := "ingest-" + st.ID
	reg := prometheus.NewRegistry()
	store := tempStore(t)
	refusing := &refusingSink{}
	svc, err := New(Config{Sites: []*site.Site{st}, Broker: broker, ClientID: clientID, Store: store, Evaluator: &recorder{},
		Sink: refusing, Registry: reg, SinkWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	testenv.Eventually(t, "first service connected", 20*time.Second, func() bool { return gauge(reg, "hazardwatch_ingest_connected") == 1 })

	h := &harness{site: st, pub: publisher(t, st.ID), svc: svc, store: store}
	h.awaitSubscribed(t)
	at := time.Now().Truncate(time.Millisecond)
	h.publish(t, protocol.TelemetryTopic(st.ID, "gw1"), h.telemetry(t, "gw1", 1, at, protocol.Reading{Point: "gas1", Value: protocol.F(85)}), false)
	testenv.Eventually(t, "the reading stored and its alarm refused by the sink", 20*time.Second, func() bool {
		return len(h.stored(t, "gas1")) == 1 && refusing.calls.Load() > 0
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of cancel")
	}

	// The same client id with a working sink gets the message again, and
	// the alarm reaches the sink.
	_, _, _, sk, _ := start(t, st, store, clientID)
	testenv.Eventually(t, "the alarm of the redelivered message", 20*time.Second, func() bool {
		for _, e := range sk.got() {
			if e.Type == rules.Raised && e.Point == "gas1" && e.Value == 85 {
				return true
			}
		}
		return false
	})
	if got := h.stored(t, "gas1"); len(got) != 1 {
		t.Errorf("the redelivered reading is stored %d times, want once", len(got))
	}
}

// TestLatestKeepsEachPointsNewestReading: Latest answers from memory with
// each point's newest stored reading — a late backlog reading or an older
// seeded one does not replace it, a comm_fail reading does when newer.
func TestLatestKeepsEachPointsNewestReading(t *testing.T) {
	h := newHarness(t)
	topic := protocol.TelemetryTopic(h.site.ID, "gw1")
	t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	h.publish(t, topic, h.telemetry(t, "gw1", 1, t0, protocol.Reading{Point: "gas1", Value: protocol.F(10)}, protocol.Reading{Point: "gas2", Value: protocol.F(20)}), false)
	h.publish(t, topic, h.telemetry(t, "gw1", 2, t0.Add(2*time.Second), protocol.Reading{Point: "gas1", Value: protocol.F(11)}, protocol.Reading{Point: "gas2", Quality: protocol.CommFail}), false)
	h.publish(t, topic, h.telemetry(t, "gw1", 3, t0.Add(-5*time.Second), protocol.Reading{Point: "gas1", Value: protocol.F(5)}), false)
	testenv.Eventually(t, "three readings of gas1 stored", 20*time.Second, func() bool { return len(h.stored(t, "gas1")) == 3 })
	h.svc.SeedLatest([]storage.Sample{
		{Site: h.site.ID, Point: "gas1", Time: t0.Add(-10 * time.Second), Value: 1, HasValue: true, Quality: protocol.Good},
		{Site: h.site.ID, Point: "level", Time: t0, Value: 50, HasValue: true, Quality: protocol.Good},
	})

	got, err := h.svc.Latest(context.Background(), h.site.ID)
	if err != nil {
		t.Fatal(err)
	}
	byPoint := map[string]storage.Sample{}
	for _, sm := range got {
		byPoint[sm.Point] = sm
	}
	if sm := byPoint["gas1"]; len(got) != 3 || sm.Value != 11 || !sm.Time.Equal(t0.Add(2*time.Second)) {
		t.Errorf("latest = %+v; want gas1 = 11 at +2s, and gas2 and level", got)
	}
	if sm := byPoint["gas2"]; sm.Quality != protocol.CommFail || !sm.Time.Equal(t0.Add(2*time.Second)) {
		t.Errorf("latest gas2 = %+v, want comm_fail at +2s", sm)
	}
	if sm := byPoint["level"]; sm.Value != 50 {
		t.Errorf("seeded level = %+v, want 50", sm)
	}
	if other, _ := h.svc.Latest(context.Background(), "no-such-site"); len(other) != 0 {
		t.Errorf("latest of another site = %+v, want none", other)
	}
	of, err := h.svc.LatestOf(context.Background(), h.site.ID, []string{"gas1", "no-such-point", "level"})
	if err != nil || len(of) != 2 || of[0].Point != "gas1" || of[0].Value != 11 || of[1].Point != "level" || of[1].Value != 50 {
		t.Errorf("LatestOf gas1, no-such-point, level = %+v, %v; want gas1 = 11 and level = 50", of, err)
	}
	if of, _ := h.svc.LatestOf(context.Background(), "no-such-site", []string{"gas1"}); len(of) != 0 {
		t.Errorf("LatestOf of another site = %+v, want none", of)
	}
}

// tempStore opens an embedded store in a temp dir, closed when the test
// ends.
func tempStore(t *testing.T) *embedded.Store {
	t.Helper()
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}
