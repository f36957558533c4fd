package ingest

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// Defaults of the end-to-end acknowledgement.
const (
	// DefaultAckInterval is the most often one gateway's ack is published.
	DefaultAckInterval = 500 * time.Millisecond
	// DefaultAckHoleTimeout is how long the ack waits at a missing seq
	// while later messages are durable, before the missing ones are given
	// up as lost. Gateways re-send what stays unconfirmed after 30 s, so a
	// message a gateway still holds arrives well within it.
	DefaultAckHoleTimeout = 5 * time.Minute
)

// acker tells each gateway, on its retained ack topic, the highest seq up
// to which every one of its messages is durable, so the gateway may forget
// them (it keeps everything above and re-sends it). Ingest calls durable
// once a message is stored and its events are journaled; messages may be
// durable in any order (batched, parallel stores), and the ack advances
// only over a contiguous run.
//
// The ack it starts from is its own retained ack read back from the broker,
// so a restarted centre never confirms less than it did, nor more than it
// knows. A seq that never comes (lost before the centre saw it, or sent
// before the gateway kept messages for the ack) holds the ack back for at
// most HoleTimeout, then is given up, counted and logged.
type acker struct {
	log         *zap.Logger
	clock       func() time.Time
	interval    time.Duration
	holeTimeout time.Duration
	publish     func(topic string, payload []byte) error

	mu  sync.Mutex
	gws map[gatewayKey]*ackState

	published, givenUp, errors prometheus.Counter
}

type ackState struct {
	acked uint64
	// durable holds the durable seqs above acked+1, sorted.
	durable []uint64
	// waiting is since when the ack waits for acked+1 while later seqs are
	// durable; zero when nothing waits.
	waiting time.Time
	dirty   bool // acked moved (or the gateway re-sent acked seqs) since the last publish
	sent    time.Time
}

func newAcker(reg prometheus.Registerer, log *zap.Logger, clock func() time.Time, interval, holeTimeout time.Duration) (*acker, error) {
	if interval <= 0 {
		interval = DefaultAckInterval
	}
	if holeTimeout <= 0 {
		holeTimeout = DefaultAckHoleTimeout
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "hazardwatch", Subsystem: "ingest", Name: name, Help: help})
	}
	a := &acker{log: log, clock: clock, interval: interval, holeTimeout: holeTimeout, gws: map[gatewayKey]*ackState{},
		published: counter("acks_published_total", "End-to-end acknowledgements published to gateways."),
		givenUp:   counter("ack_given_up_messages_total", "Missing messages the acknowledgement stopped waiting for (lost before the centre saw them)."),
		errors:    counter("ack_publish_errors_total", "Acknowledgements that could not be published (retried)."),
	}
	for _, c := range []prometheus.Collector{a.published, a.givenUp, a.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *acker) state(k gatewayKey) *ackState {
	st := a.gws[k]
	if st == nil {
		st = &ackState{}
		a.gws[k] = st
	}
	return st
}

// durable records that the message seq of a gateway is durably stored.
func (a *acker) durable(site, gateway string, seq uint64) {
	if seq == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.state(gatewayKey{site, gateway})
	if seq == 1 && st.acked > 1 {
		// The gateway lost its state and began again at 1.
		a.log.Warn("gateway restarted its sequence at 1; acknowledging from there", zap.String("site", site), zap.String("gateway", gateway), zap.Uint64("previous_ack", st.acked))
		*st = ackState{dirty: true}
	}
	if seq <= st.acked {
		// A re-send of what was confirmed: the gateway may have missed
		// the ack, so say it again.
		st.dirty = true
		return
	}
	i := sort.Search(len(st.durable), func(i int) bool { return st.durable[i] >= seq })
	if i == len(st.durable) || st.durable[i] != seq {
		st.durable = append(st.durable, 0)
		copy(st.durable[i+1:], st.durable[i:])
		st.durable[i] = seq
	}
	a.advance(st)
	for len(st.durable) > maxPending {
		a.giveUp(site, gateway, st)
	}
}

// advance moves acked over the contiguous durable run.
func (a *acker) advance(st *ackState) {
	n := 0
	for n < len(st.durable) && st.durable[n] <= st.acked+1 {
		st.acked = max(st.acked, st.durable[n])
		n++
	}
	if n > 0 {
		st.durable = st.durable[n:]
		st.dirty = true
		st.waiting = time.Time{}
	}
	if len(st.durable) > 0 && st.waiting.IsZero() {
		st.waiting = a.clock()
	}
}

// giveUp stops waiting for the seqs missing below the lowest durable one.
func (a *acker) giveUp(site, gateway string, st *ackState) {
	from, to := st.acked+1, st.durable[0]-1
	a.givenUp.Add(float64(to - from + 1))
	a.log.Warn("messages never arrived; the acknowledgement no longer waits for them (lost before the centre saw them, or sent before the gateway kept messages for acknowledgement)",
		zap.String("site", site), zap.String("gateway", gateway), zap.Uint64("missing_from", from), zap.Uint64("missing_to", to))
	st.acked = to
	st.waiting = time.Time{}
	a.advance(st)
}

// retained takes an ack this centre published before (read back from the
// broker at connect): never confirm less than that.
func (a *acker) retained(ack protocol.Ack) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.state(gatewayKey{ack.Site, ack.Gateway})
	if ack.Seq > st.acked {
		st.acked = ack.Seq
		i := sort.Search(len(st.durable), func(i int) bool { return st.durable[i] > ack.Seq })
		st.durable = st.durable[i:]
		st.waiting = time.Time{}
		a.advance(st)
	}
}

// subscribe reads the retained acks back; called on every connection.
func (a *acker) subscribe(c mqtt.Client) {
	tok := c.Subscribe(protocol.AckFilter, 1, func(_ mqtt.Client, m mqtt.Message) {
		// The client acknowledges by hand (the telemetry's ack rule): an
		// unacknowledged ack would hold a place in the broker's in-flight
		// window for good, and stall every delivery once it is full.
		defer m.Ack()
		if len(m.Payload()) == 0 {
			return
		}
		ack, err := protocol.DecodeAck(m.Payload())
		if err != nil {
			a.log.Warn("unreadable acknowledgement on the broker; ignored", zap.String("topic", m.Topic()), zap.Error(err))
			return
		}
		a.retained(ack)
	})
	go func() {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			a.log.Warn("could not subscribe to the acknowledgement topics; the centre acknowledges from what it stores from now on", zap.Error(tok.Error()))
		}
	}()
}

// run publishes the acks that moved, at most once per interval per
// gateway, and gives up holes waited on for too long, until ctx is done.
func (a *acker) run(ctx context.Context) {
	tk := time.NewTicker(a.interval / 2)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			a.flush(true)
			return
		case <-tk.C:
			a.flush(false)
		}
	}
}

type pendingAck struct {
	key gatewayKey
	seq uint64
}

func (a *acker) flush(final bool) {
	now := a.clock()
	var out []pendingAck
	a.mu.Lock()
	for k, st := range a.gws {
		if len(st.durable) > 0 && !st.waiting.IsZero() && now.Sub(st.waiting) >= a.holeTimeout {
			a.giveUp(k.site, k.gateway, st)
		}
		if st.dirty && st.acked > 0 && (final || now.Sub(st.sent) >= a.interval) {
			out = append(out, pendingAck{k, st.acked})
			st.dirty, st.sent = false, now
		}
	}
	a.mu.Unlock()
	for _, p := range out {
		payload, err := protocol.Ack{V: protocol.Version, Site: p.key.site, Gateway: p.key.gateway, Seq: p.seq, TS: protocol.Time{Time: a.clock()}}.Encode()
		if err == nil {
			err = a.publish(protocol.AckTopic(p.key.site, p.key.gateway), payload)
		}
		if err != nil {
			a.errors.Inc()
			a.log.Warn("acknowledgement not published; retrying", zap.String("site", p.key.site), zap.String("gateway", p.key.gateway), zap.Uint64("seq", p.seq), zap.Error(err))
			a.mu.Lock()
			a.state(p.key).dirty = true
			a.mu.Unlock()
			continue
		}
		a.published.Inc()
	}
}

// Acked returns the seq last confirmed to a gateway (0: none yet).
func (s *Service) Acked(site, gateway string) uint64 {
	s.acks.mu.Lock()
	defer s.acks.mu.Unlock()
	if st := s.acks.gws[gatewayKey{site, gateway}]; st != nil {
		return st.acked
	}
	return 0
}

// mqttPublish publishes a retained QoS 1 message and waits for the broker.
func mqttPublish(c mqtt.Client) func(topic string, payload []byte) error {
	return func(topic string, payload []byte) error {
		tok := c.Publish(topic, 1, true, payload)
		if !tok.WaitTimeout(10 * time.Second) {
			return fmt.Errorf("publish %s: no PUBACK within 10s", topic)
		}
		return tok.Error()
	}
}
