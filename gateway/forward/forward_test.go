package forward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hazardwatch/hazardwatch/internal/queue"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
)

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range []Message{
		{Topic: protocol.TelemetryTopic("s1", "gw1"), QoS: 1, Payload: []byte(`{"seq":7}`)},
		{Topic: protocol.StateTopic("s1", "gw1"), QoS: 2, Retained: true},
		{Topic: "t", QoS: 0, Payload: []byte{0, 1, 2, 255}},
	} {
		b, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("decode %+v: %v", m, err)
		}
		if got.Topic != m.Topic || got.QoS != m.QoS || got.Retained != m.Retained || string(got.Payload) != string(m.Payload) {
			t.Fatalf("round trip of %+v gave %+v", m, got)
		}
	}
	for _, bad := range []Message{{Topic: ""}, {Topic: "t", QoS: 3}, {Topic: strings.Repeat("x", 70000)}} {
		if _, err := EncodeMessage(bad); err == nil {
			t.Errorf("message with topic of %d bytes and QoS %d was encoded", len(bad.Topic), bad.QoS)
		}
	}
	for _, bad := range [][]byte{nil, {1, 0, 0}, {2, 1, 1, 0, 'a'}, {1, 0x13, 1, 0, 'a'}, {1, 3, 1, 0, 'a'}, {1, 1, 0, 0}, {1, 1, 9, 0, 'a'}} {
		if m, err := DecodeMessage(bad); err == nil {
			t.Errorf("record %v decoded as %+v", bad, m)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	sp, err := queue.Open(t.TempDir(), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	pub := &testPublisher{}
	for _, cfg := range []Config{
		{Publisher: pub},
		{Spool: sp},
		{Spool: sp, Publisher: pub, ReplayRate: -1},
		{Spool: sp, Publisher: pub, ReplayRate: math.NaN()},
		{Spool: sp, Publisher: pub, BackoffMin: time.Minute, BackoffMax: time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

// testPublisher publishes through paho at QoS as asked and returns after
// the broker's PUBACK. It fails at once while disconnected, and closes
// resumed on the first call after a success that followed failures: by
// then the forwarder has noticed that the link is back.
type testPublisher struct {
	c mqtt.Client

	mu        sync.Mutex
	failures  int
	recovered bool
	resumed   chan struct{}
	once      sync.Once
}

func newTestPublisher(t *testing.T, url string) *testPublisher {
	t.Helper()
	p := &testPublisher{resumed: make(chan struct{})}
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID("forward-test-pub").
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(300 * time.Millisecond).
		SetConnectTimeout(2 * time.Second).SetKeepAlive(5 * time.Second)
	p.c = mqtt.NewClient(opts)
	if tok := p.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect to %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { p.c.Disconnect(100) })
	return p
}

func (p *testPublisher) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	p.mu.Lock()
	if p.recovered {
		p.once.Do(func() { close(p.resumed) })
	}
	p.mu.Unlock()
	err := p.publish(ctx, topic, qos, retained, payload)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failures++
	} else if p.failures > 0 {
		p.recovered = true
	}
	return err
}

func (p *testPublisher) publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	if p.c == nil || !p.c.IsConnectionOpen() {
		return errors.New("not connected to the broker")
	}
	tok := p.c.Publish(topic, qos, retained, payload)
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return fmt.Errorf("publish to %s: %w", topic, ctx.Err())
	}
}

// subscriber records the seq of every telemetry message it receives, in
// arrival order, over a persistent QoS 1 session.
type subscriber struct {
	mu   sync.Mutex
	seqs []uint64
	bad  []string
}

func subscribe(t *testing.T, url, topic string) *subscriber {
	t.Helper()
	s := &subscriber{}
	onMsg := func(_ mqtt.Client, m mqtt.Message) {
		var tm protocol.Telemetry
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := json.Unmarshal(m.Payload(), &tm); err != nil {
			s.bad = append(s.bad, string(m.Payload()))
			return
		}
		s.seqs = append(s.seqs, tm.Seq)
	}
	subscribed := make(chan struct{}, 1)
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID("forward-test-sub").
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(300 * time.Millisecond).
		SetOrderMatters(true).SetDefaultPublishHandler(onMsg).
		SetOnConnectHandler(func(c mqtt.Client) {
			c.Subscribe(topic, 1, nil).Wait()
			select {
			case subscribed <- struct{}{}:
			default:
			}
		})
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect to %s: %v", url, tok.Error())
	}
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber did not subscribe within 10s")
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return s
}

// firstArrivals returns each seq once, in the order it first arrived.
func (s *subscriber) firstArrivals() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[uint64]bool{}
	var out []uint64
	for _, q := range s.seqs {
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	return out
}

func (s *subscriber) waitFor(t *testing.T, upTo uint64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := s.firstArrivals()
		missing := 0
		set := map[uint64]bool{}
		for _, q := range got {
			set[q] = true
		}
		for q := uint64(1); q <= upTo; q++ {
			if !set[q] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the subscriber still misses %d of seqs 1..%d (got %v)", within, missing, upTo, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func telemetry(t *testing.T, seq uint64) Message {
	t.Helper()
	v := float64(seq)
	b, err := protocol.Telemetry{V: protocol.Version, Site: "s1", Gateway: "gw1", Seq: seq,
		TS: protocol.Time{Time: time.Now()}, Readings: []protocol.Reading{{Point: "tank1.level", Value: &v}}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return Message{Topic: protocol.TelemetryTopic("s1", "gw1"), QoS: 1, Payload: b}
}

func enqueue(t *testing.T, sp *queue.Queue, from, to uint64, every time.Duration) {
	t.Helper()
	for q := from; q <= to; q++ {
		if _, err := Enqueue(sp, telemetry(t, q)); err != nil {
			t.Fatalf("enqueue seq %d: %v", q, err)
		}
		time.Sleep(every)
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// TestForwardAcrossBrokerOutage publishes through a real Mosquitto, stops
// it while the gateway keeps spooling, starts it again and checks that the
// subscriber gets every seq, the backlog in order, live data in order, and
// live data before the slow backlog replay is done.
func TestForwardAcrossBrokerOutage(t *testing.T) {
	broker := testenv.Mosquitto(t)
	topic := protocol.TelemetryTopic("s1", "gw1")
	sub := subscribe(t, broker.URL(), topic)
	sp, err := queue.Open(t.TempDir(), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	pub := newTestPublisher(t, broker.URL())
	core, logs := observer.New(zapcore.InfoLevel)
	reg := prometheus.NewRegistry()
	fw, err := New(Config{Spool: sp, Publisher: pub, ReplayRate: 10, BackoffMin: 50 * time.Millisecond,
		BackoffMax: 400 * time.Millisecond, PublishTimeout: 2 * time.Second, Logger: zap.New(core), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- fw.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-runDone:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return within 15s of cancel")
		}
	}()

	// A record that is not a message must not block the queue.
	if _, err := sp.Append([]byte{9, 9, 9}); err != nil {
		t.Fatal(err)
	}
	enqueue(t, sp, 1, 20, 0)
	sub.waitFor(t, 20, 30*time.Second)

	broker.Stop()
	enqueue(t, sp, 21, 60, 40*time.Millisecond) // the outage: about 2s
	broker.Start()
	select {
	case <-pub.resumed:
	case <-time.After(30 * time.Second):
		t.Fatal("the forwarder did not publish again within 30s of the broker's restart")
	}
	enqueue(t, sp, 61, 80, 50*time.Millisecond) // live while 40 replay at 10/s
	sub.waitFor(t, 80, 60*time.Second)

	got := sub.firstArrivals()
	pos := map[uint64]int{}
	for i, q := range got {
		pos[q] = i
	}
	for q := uint64(22); q <= 60; q++ { // backlog keeps its order
		if pos[q] < pos[q-1] {
			t.Fatalf("backlog seq %d arrived before %d: %v", q, q-1, got)
		}
	}
	for q := uint64(62); q <= 80; q++ { // live keeps its order
		if pos[q] < pos[q-1] {
			t.Fatalf("live seq %d arrived before %d: %v", q, q-1, got)
		}
	}
	if pos[61] > pos[60] {
		t.Fatalf("live seq 61 arrived only after the whole backlog (last backlog seq 60): %v", got)
	}
	sub.mu.Lock()
	dups, bad := len(sub.seqs)-len(got), len(sub.bad)
	sub.mu.Unlock()
	if bad != 0 {
		t.Fatalf("%d messages were not telemetry", bad)
	}
	t.Logf("80 seqs received, %d duplicates; first arrivals %v", dups, got)

	deadline := time.Now().Add(10 * time.Second)
	for n, _ := sp.Depth(); n != 0; n, _ = sp.Depth() {
		if time.Now().After(deadline) {
			t.Fatalf("spool still holds %d records after everything was received", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := metricValue(t, reg, "hazardwatch_gateway_forward_replayed_total"); v < 39 {
		t.Errorf("replayed_total = %v, want at least 39 (seqs 22..60)", v)
	}
	if v := metricValue(t, reg, "hazardwatch_gateway_forward_published_total"); v < 80 {
		t.Errorf("published_total = %v, want at least 80", v)
	}
	if v := metricValue(t, reg, "hazardwatch_gateway_forward_publish_errors_total"); v < 1 {
		t.Errorf("publish_errors_total = %v, want at least 1 after an outage", v)
	}
	if v := metricValue(t, reg, "hazardwatch_gateway_forward_discarded_total"); v != 1 {
		t.Errorf("discarded_total = %v, want 1 (the record that was not a message)", v)
	}
	if v := metricValue(t, reg, "hazardwatch_gateway_spool_records"); v != 0 {
		t.Errorf("spool_records = %v, want 0", v)
	}
	if logs.FilterMessageSnippet("broker reachable again").Len() == 0 {
		t.Error("the link's return was not logged")
	}
}

// TestRestartReplaysOnlyUnsent checks that a forwarder started on a spool
// left by an earlier run sends what was not acknowledged, with its
// original bytes, oldest first.
func TestRestartReplaysOnlyUnsent(t *testing.T) {
	broker := testenv.Mosquitto(t)
	topic := protocol.TelemetryTopic("s1", "gw1")
	dir := t.TempDir()
	sp, err := queue.Open(dir, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, sp, 1, 10, 0)
	// Seqs 1..4 were delivered before the gateway went down.
	if err := sp.Ack(1, 2, 3, 4); err != nil {
		t.Fatal(err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	sp, err = queue.Open(dir, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	sub := subscribe(t, broker.URL(), topic)
	fw, err := New(Config{Spool: sp, Publisher: newTestPublisher(t, broker.URL()), ReplayRate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- fw.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(sub.firstArrivals()) < 6 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := sub.firstArrivals(), []uint64{5, 6, 7, 8, 9, 10}; !slices.Equal(got, want) {
		t.Fatalf("after restart the subscriber got %v, want %v", got, want)
	}
	if n, _ := sp.Depth(); n != 0 {
		t.Fatalf("spool depth %d after replay, want 0", n)
	}
}
