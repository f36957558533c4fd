package gateway

import (
	"fmt"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// AckSource is a Publisher that also delivers the centre's end-to-end
// acknowledgements (the MQTT publisher does). With one, the gateway keeps
// every message in its spool until the centre confirms it.
type AckSource interface {
	// SubscribeAcks (re)subscribes to topic; fn gets each ack, retained
	// telling whether the broker replayed a stored one.
	SubscribeAcks(topic string, fn func(ack protocol.Ack, retained bool)) error
}

// SubscribeAcks subscribes to the gateway's ack topic at QoS 1. The
// broker keeps the subscription in the persistent session; calling it
// again (after a broker lost its sessions) is harmless and fetches the
// retained ack once more.
func (p *MQTTPublisher) SubscribeAcks(topic string, fn func(ack protocol.Ack, retained bool)) error {
	tok := p.client.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		if len(m.Payload()) == 0 {
			return
		}
		ack, err := protocol.DecodeAck(m.Payload())
		if err != nil {
			p.log.Warn("unreadable acknowledgement from the centre; ignored", zap.String("topic", m.Topic()), zap.Error(err))
			return
		}
		fn(ack, m.Retained())
	})
	if !tok.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("subscribe to %s: no SUBACK within 10s", topic)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	return nil
}

// ackState is what the gateway knows of the centre's confirmations.
type ackState struct {
	mu        sync.Mutex
	confirmed uint64
	at        time.Time     // when the last ack arrived
	offset    time.Duration // gateway clock minus centre clock, from the last live ack
	hasOffset bool
}

// onAck takes one ack from the centre; lastID is the highest seq this
// gateway ever built.
func (g *Gateway) onAck(ack protocol.Ack, retained bool, lastID uint64, confirm func(uint64)) {
	if ack.Site != g.cfg.Site.ID || ack.Gateway != g.gw.ID {
		g.log.Warn("acknowledgement for another gateway on this gateway's topic; ignored", zap.String("ack_site", ack.Site), zap.String("ack_gateway", ack.Gateway))
		return
	}
	if ack.Seq > lastID {
		// From a previous life of this gateway (its data directory was
		// reset): confirming seqs it has not built yet would lose them.
		g.log.Warn("the centre confirms seqs this gateway has not sent yet (its data directory was reset?); ignored until the centre follows",
			zap.Uint64("ack_seq", ack.Seq), zap.Uint64("last_seq", lastID))
		return
	}
	now := time.Now()
	g.acks.mu.Lock()
	g.acks.confirmed = max(g.acks.confirmed, ack.Seq)
	g.acks.at = now
	if !retained {
		// A live ack left the centre moments ago: the difference of the
		// clocks, give or take the transit time.
		g.acks.offset, g.acks.hasOffset = now.Sub(ack.TS.Time), true
		g.met.clockOffset.Set(g.acks.offset.Seconds())
	}
	g.acks.mu.Unlock()
	g.met.confirmed.Set(float64(ack.Seq))
	confirm(ack.Seq)
}

// Status is the gateway's state for its status page.
type Status struct {
	Site, Gateway string
	// LastSeq is the seq of the last message built; Confirmed, the
	// highest the centre confirmed durable (end to end).
	LastSeq, Confirmed uint64
	// Unsent is how many messages the spool holds (not yet confirmed).
	Unsent int
	// ConfirmedAt is when the last ack arrived; zero: none yet.
	ConfirmedAt time.Time
	// ClockOffset is this gateway's clock minus the centre's, from the
	// last live ack; ClockKnown is false before one arrived.
	ClockOffset time.Duration
	ClockKnown  bool
	Devices     []DeviceStatus
}

// DeviceStatus is one device's polling state.
type DeviceStatus struct {
	Device        string
	Failures      int // consecutive polls without an answer
	RefusedPoints int // points whose registers the device refuses
}

// Status reports the gateway's state; safe while Run runs.
func (g *Gateway) Status() Status {
	st := Status{Site: g.cfg.Site.ID, Gateway: g.gw.ID}
	g.acks.mu.Lock()
	st.Confirmed, st.ConfirmedAt, st.ClockOffset, st.ClockKnown = g.acks.confirmed, g.acks.at, g.acks.offset, g.acks.hasOffset
	g.acks.mu.Unlock()
	if sp := g.spool.Load(); sp != nil {
		st.LastSeq = sp.LastID()
		st.Unsent, _ = sp.Depth()
	}
	g.statusMu.Lock()
	for _, d := range g.devices {
		st.Devices = append(st.Devices, DeviceStatus{Device: d.dev.ID, Failures: d.statusFails, RefusedPoints: d.statusRefused})
	}
	g.statusMu.Unlock()
	return st
}
