package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/gateway"
	"github.com/hazardwatch/hazardwatch/ingest"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/simulators"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
)

// recordingPublisher is the gateway's MQTT publisher, noting every
// telemetry message the broker acknowledged (PUBACK), by seq.
type recordingPublisher struct {
	*gateway.MQTTPublisher
	mu     sync.Mutex
	bySeq  map[uint64]protocol.Telemetry
	sends  map[uint64]int
	frozen bool // stop noting (the test has what it checks)
}

func (p *recordingPublisher) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	if err := p.MQTTPublisher.Publish(ctx, topic, qos, retained, payload); err != nil {
		return err
	}
	if m, err := protocol.DecodeTelemetry(payload); err == nil {
		p.mu.Lock()
		if !p.frozen {
			p.bySeq[m.Seq] = m
		}
		p.sends[m.Seq]++
		p.mu.Unlock()
	}
	return nil
}

func (p *recordingPublisher) top() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var top uint64
	for s := range p.bySeq {
		top = max(top, s)
	}
	return top
}

// gatedStore holds Append while closed, as a centre whose store stalls
// (or that is busy) leaves its messages queued in the broker.
type gatedStore struct {
	storage.Appender
	mu   sync.Mutex
	open chan struct{}
}

func (g *gatedStore) Append(ctx context.Context, s []storage.Sample) error {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Appender.Append(ctx, s)
}

func (g *gatedStore) set(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if open {
		select {
		case <-g.open:
		default:
			close(g.open)
		}
		return
	}
	g.open = make(chan struct{})
}

// TestBrokerCrashLosesNoMessage SIGKILLs a Mosquitto running as shipped
// (persistence on, autosave every 30 minutes) while a gateway publishes
// and the centre's messages are queued in the broker, then restarts it.
// The broker had acknowledged those messages to the gateway and lost them;
// the gateway kept them until the centre confirmed them end to end, sends
// them again, and every seq is stored, each reading once.
func TestBrokerCrashLosesNoMessage(t *testing.T) {
	const within = 60 * time.Second
	broker := testenv.MosquittoAsShipped(t)
	addr := testenv.FreeAddr(t)
	text := fmt.Sprintf(`id: crash-%d
name: broker crash test
gateways:
  - id: gw1
    devices:
      - {id: gds, address: %s, poll_interval: 100ms, timeout: 500ms}
sources:
  - id: src
    name: tanks
    type: tank_farm
    grade: 3
    points:
      - {id: nh3, name: nh3, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: gds, table: input, address: 0, scale: 0.1}, limits: {h: 40, hh: 80}}
      - {id: lvl, name: lvl, kind: level, unit: "%%", range: [0, 100], modbus: {device: gds, address: 10, type: float32}}
`, rand.Uint64(), addr)
	s, err := site.Parse("crash.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulators.New(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	gate := &gatedStore{Appender: store, open: make(chan struct{})}
	gate.set(true)
	log := zap.NewNop()
	if testing.Verbose() {
		log, _ = zap.NewDevelopment()
	}
	centre, err := ingest.New(ingest.Config{Sites: []*site.Site{s}, Broker: broker.URL(), ClientID: "crash-ingest", Store: gate,
		AckInterval: 100 * time.Millisecond, Logger: log.Named("ingest")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	centreDone := make(chan error, 1)
	go func() { centreDone <- centre.Run(ctx) }()
	defer func() {
		cancel()
		<-centreDone
	}()

	mp, err := gateway.ConnectMQTT(gateway.MQTTConfig{Broker: broker.URL(), MaxReconnectInterval: time.Second}, s.ID, "gw1", log.Named("mqtt"))
	if err != nil {
		t.Fatal(err)
	}
	defer mp.Close()
	pub := &recordingPublisher{MQTTPublisher: mp, bySeq: map[uint64]protocol.Telemetry{}, sends: map[uint64]int{}}
	gw, err := gateway.New(gateway.Config{Site: s, GatewayID: "gw1", DataDir: t.TempDir(), Publisher: pub, AckTimeout: 2 * time.Second, Logger: log.Named("gateway")})
	if err != nil {
		t.Fatal(err)
	}
	gwCtx, stopGateway := context.WithCancel(ctx)
	gwDone := make(chan error, 1)
	go func() { gwDone <- gw.Run(gwCtx) }()
	defer func() {
		stopGateway()
		<-gwDone
	}()

	testenv.Eventually(t, "the centre confirming the gateway's first 10 messages", within, func() bool {
		return centre.Acked(s.ID, "gw1") >= 10 && gw.Status().Confirmed >= 10
	})

	// The centre's store stalls: the broker queues what the gateway
	// publishes, having acknowledged it to the gateway.
	gate.set(false)
	stalledAt := centre.Acked(s.ID, "gw1")
	testenv.Eventually(t, "20 messages acknowledged by the broker while the centre waits", within, func() bool {
		return pub.top() >= stalledAt+20
	})
	queued := pub.top()
	broker.Kill()
	gate.set(true)
	broker.Start()
	t.Logf("broker killed with seqs %d..%d acknowledged to the gateway and not yet stored", stalledAt+1, queued)

	// The centre stores everything again, up to live data past the crash.
	testenv.Eventually(t, "the centre confirming every seq past the crash", within, func() bool {
		return centre.Acked(s.ID, "gw1") >= queued+10
	})
	pub.mu.Lock()
	pub.frozen = true
	last := centre.Acked(s.ID, "gw1")
	var resent []uint64
	for seq, n := range pub.sends {
		if seq > stalledAt && seq <= queued && n > 1 {
			resent = append(resent, seq)
		}
	}
	var taken []int64
	var lastTime time.Time
	for seq := uint64(1); seq <= last; seq++ {
		m, ok := pub.bySeq[seq]
		if !ok {
			t.Errorf("seq %d confirmed by the centre but never acknowledged by the broker", seq)
			continue
		}
		for _, r := range m.Readings {
			if r.Point == "nh3" {
				taken = append(taken, r.At(m.TS).UnixMilli())
				if at := r.At(m.TS); at.After(lastTime) {
					lastTime = at
				}
			}
		}
	}
	pub.mu.Unlock()
	if len(resent) == 0 {
		t.Errorf("no message between the stall and the kill (%d..%d) was sent twice: the crash lost nothing, so the test proved nothing", stalledAt+1, queued)
	}
	slices.Sort(taken)
	pts, err := store.Range(context.Background(), storage.Point{Site: s.ID, Point: "nh3"}, time.UnixMilli(taken[0]).Add(-time.Second), lastTime, 0)
	if err != nil {
		t.Fatal(err)
	}
	var stored []int64
	for _, p := range pts {
		stored = append(stored, p.Time.UnixMilli())
	}
	if !slices.Equal(stored, taken) {
		t.Errorf("nh3: %d readings stored, %d taken in seqs 1..%d; first difference: %s", len(stored), len(taken), last, firstDifference(stored, taken))
	}
	st := gw.Status()
	t.Logf("seqs 1..%d stored once each (%d nh3 readings); %d of the %d messages lost in the broker were sent again; gateway confirmed %d, clock offset %v (known %v)",
		last, len(stored), len(resent), queued-stalledAt, st.Confirmed, st.ClockOffset, st.ClockKnown)
	if !st.ClockKnown {
		t.Error("the gateway learnt no clock offset from the centre's acks")
	}
}
