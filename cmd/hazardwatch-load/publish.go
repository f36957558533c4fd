package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// pubTimeout bounds the wait for one message's PUBACK.
const pubTimeout = 30 * time.Second

// publisher is one simulated gateway: its own MQTT client publishing all
// its points in one telemetry message per tick, QoS 1, seq rising.
type publisher struct {
	index    int
	site, id string
	points   []string
	interval time.Duration
	ledger   *ledger
	client   mqtt.Client

	seq    uint64
	lastTS time.Time
	// sentReadings counts readings handed to the client; pubErrors
	// messages the broker did not acknowledge.
	sentReadings atomic.Int64
	pubErrors    atomic.Int64
	firstErr     atomic.Pointer[error]
}

func newPublisher(conn mqttconn.Config, siteID string, g, points int, interval time.Duration, l *ledger, runID string) (*publisher, error) {
	p := &publisher{index: g, site: siteID, id: gatewayID(g), interval: interval, ledger: l}
	for i := range points {
		p.points = append(p.points, pointID(g, i))
	}
	conn.ClientID = fmt.Sprintf("hazardwatch-load-%s-%s-%s", runID, siteID, p.id)
	client, err := mqttconn.New(conn, nil, func(o *mqtt.ClientOptions) {
		o.SetCleanSession(true).SetOrderMatters(false).SetWriteTimeout(pubTimeout)
	})
	if err != nil {
		return nil, err
	}
	p.client = client
	return p, nil
}

func (p *publisher) connect(ctx context.Context) error {
	tok := p.client.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("gateway %s: connect: %w", p.id, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gateway %s: connect: %w", p.id, ctx.Err())
	}
}

// announce publishes the gateway's online state (not retained: the load
// leaves nothing behind on a shared broker).
func (p *publisher) announce() error {
	tok := p.client.Publish(protocol.StateTopic(p.site, p.id), 1, false, protocol.EncodeState(protocol.Online, time.Now()))
	if !tok.WaitTimeout(pubTimeout) {
		return fmt.Errorf("gateway %s: state not acknowledged within %v", p.id, pubTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("gateway %s: publish state: %w", p.id, err)
	}
	return nil
}

// nextTS is the send time in ms (the contract's precision), kept strictly
// rising so that every reading of the gateway has its own (point, time).
func (p *publisher) nextTS(now time.Time) time.Time { return risingTS(&p.lastTS, now) }

// risingTS is now in ms, at least 1 ms after *last, which it updates.
func risingTS(last *time.Time, now time.Time) time.Time {
	ts := now.Truncate(time.Millisecond)
	if !ts.After(*last) {
		ts = last.Add(time.Millisecond)
	}
	*last = ts
	return ts
}

// run publishes every interval, starting after offset, until ctx is done;
// then it waits for the outstanding acknowledgements.
func (p *publisher) run(ctx context.Context, offset time.Duration) {
	acks := make(chan mqtt.Token, 4096)
	var waiters sync.WaitGroup
	waiters.Go(func() {
		for tok := range acks {
			if !tok.WaitTimeout(pubTimeout) {
				p.fail(fmt.Errorf("gateway %s: no PUBACK within %v", p.id, pubTimeout))
			} else if err := tok.Error(); err != nil {
				p.fail(fmt.Errorf("gateway %s: publish: %w", p.id, err))
			}
		}
	})
	defer func() {
		close(acks)
		waiters.Wait()
	}()

	select {
	case <-time.After(offset):
	case <-ctx.Done():
		return
	}
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	msg := protocol.Telemetry{V: protocol.Version, Site: p.site, Gateway: p.id, Readings: make([]protocol.Reading, len(p.points))}
	values := make([]float64, len(p.points))
	topic := protocol.TelemetryTopic(p.site, p.id)
	for {
		p.seq++
		msg.Seq = p.seq
		msg.TS = protocol.Time{Time: p.nextTS(time.Now())}
		for i, id := range p.points {
			// A slow wave well below the h limit: evaluated, never alarming.
			values[i] = math.Round(100*(15+10*math.Sin(float64(p.seq)/50+float64(i)))) / 100
			msg.Readings[i] = protocol.Reading{Point: id, Value: &values[i]}
		}
		payload, err := msg.Encode()
		if err != nil {
			p.fail(fmt.Errorf("gateway %s: encode seq %d: %w", p.id, p.seq, err))
			return
		}
		p.ledger.sent(p.index, msg.TS.Time)
		p.sentReadings.Add(int64(len(p.points)))
		// Blocks when acknowledgements fall far behind: the send rate then
		// drops below the target, which the report shows.
		acks <- p.client.Publish(topic, 1, false, payload)
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

func (p *publisher) fail(err error) {
	if p.pubErrors.Add(1) == 1 {
		p.firstErr.Store(&err)
	}
}

func (p *publisher) err() error {
	if e := p.firstErr.Load(); e != nil {
		return *e
	}
	return nil
}

func (p *publisher) close() { p.client.Disconnect(250) }

// publishErrors joins the first error of each publisher that had any.
func publishErrors(pubs []*publisher) (n int64, err error) {
	var errs []error
	for _, p := range pubs {
		n += p.pubErrors.Load()
		if e := p.err(); e != nil {
			errs = append(errs, e)
		}
	}
	return n, errors.Join(errs...)
}
