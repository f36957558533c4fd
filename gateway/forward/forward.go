// Package forward drains the gateway's spool to the broker: it reads
// records from a queue.Queue, publishes each through a Publisher and
// acknowledges it in the spool only after Publish returned nil (the
// broker's PUBACK), so a message leaves the gateway's disk only once the
// centre's broker holds it.
//
// Live first: every record that is in the spool when Run starts, or when
// the link comes back after failed publishes, is backlog. Records appended
// after that are live and are sent as they arrive; the backlog is replayed
// oldest first, at most ReplayRate messages per second, in the gaps between
// live records, so a long outage does not delay current readings. Within
// the backlog and within live traffic the spool's order is kept; between
// the two it is not (the centre tracks seen seq ranges). Records are
// published with their original bytes, so a replayed telemetry message
// keeps its seq.
//
// End to end (Config.EndToEnd): a message the broker acknowledged stays in
// the spool until the centre confirms it (Confirm, from the centre's
// retained ack: every record up to that id is durable at the centre), so a
// broker that crashes with messages it acknowledged but had not yet written
// to disk loses nothing. When the centre confirms nothing new for
// AckTimeout while sent messages wait, everything unconfirmed is sent again
// from the oldest, as backlog at ReplayRate, and AckTimeout doubles (up to
// ten times) until the centre confirms again; OnResend is told each time.
//
// Delivery is at least once: a crash between PUBACK and the spool's ack, or
// a publish that timed out after the broker took it, sends a message again,
// and the centre drops it by seq. A failed publish keeps the record and
// backs off exponentially, from BackoffMin doubling up to BackoffMax. A
// record that cannot be read or decoded is logged, counted and acknowledged,
// since retrying cannot repair it.
//
// Config options and defaults: EndToEnd false; AckTimeout 30s; ReplayRate 50 messages/s; BackoffMin 500ms;
// BackoffMax 30s; PublishTimeout 30s (bounds one Publish, so a dead peer
// cannot stall the queue); Logger a no-op logger; Registerer nil (no
// metrics registered).
//
// Metrics, prefixed hazardwatch_gateway_: spool_records, spool_bytes,
// spool_oldest_age_seconds, spool_dropped_total, forward_published_total,
// forward_replayed_total, forward_publish_errors_total,
// forward_discarded_total, forward_resent_total, forward_confirmed_id.
package forward

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/internal/queue"
)

// Publisher sends one message and returns once the broker acknowledged it.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
}

// Defaults of Config.
const (
	DefaultReplayRate     = 50.0
	DefaultBackoffMin     = 500 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	DefaultPublishTimeout = 30 * time.Second
	DefaultAckTimeout     = 30 * time.Second
)

// Config sets up a Forwarder; Spool and Publisher are required.
type Config struct {
	Spool     *queue.Queue
	Publisher Publisher
	// ReplayRate caps backlog replay in messages per second.
	ReplayRate     float64
	BackoffMin     time.Duration
	BackoffMax     time.Duration
	PublishTimeout time.Duration
	// EndToEnd keeps every record until Confirm covers it, not only
	// until the broker's PUBACK.
	EndToEnd bool
	// AckTimeout is how long sent records may wait for the centre's
	// confirmation before they are sent again; default 30s.
	AckTimeout time.Duration
	// OnResend, when set, is called (on the forwarder's goroutine) each
	// time unconfirmed records are sent again.
	OnResend   func()
	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

// Forwarder moves spooled messages to the broker.
type Forwarder struct {
	cfg Config
	sp  *queue.Queue
	pub Publisher
	log *zap.Logger
	m   metrics
	// confirmed is the highest id the centre confirmed (Confirm);
	// applied, the highest acknowledged in the spool for it.
	confirmed atomic.Uint64
	applied   uint64
	wake      chan struct{} // a confirmation arrived
}

type metrics struct {
	published, replayed, errors, discarded, resent prometheus.Counter
}

// New checks cfg, fills defaults and registers the metrics.
func New(cfg Config) (*Forwarder, error) {
	if cfg.Spool == nil || cfg.Publisher == nil {
		return nil, errors.New("forward: Config needs a Spool and a Publisher")
	}
	if cfg.ReplayRate == 0 {
		cfg.ReplayRate = DefaultReplayRate
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ReplayRate < 0 || math.IsNaN(cfg.ReplayRate) || cfg.BackoffMin < 0 || cfg.BackoffMax < cfg.BackoffMin || cfg.PublishTimeout < 0 {
		return nil, fmt.Errorf("forward: invalid config: ReplayRate %v, BackoffMin %v, BackoffMax %v, PublishTimeout %v",
			cfg.ReplayRate, cfg.BackoffMin, cfg.BackoffMax, cfg.PublishTimeout)
	}
	f := &Forwarder{cfg: cfg, sp: cfg.Spool, pub: cfg.Publisher, log: cfg.Logger, wake: make(chan struct{}, 1)}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "hazardwatch", Subsystem: "gateway", Name: name, Help: help})
	}
	f.m = metrics{
		published: counter("forward_published_total", "Messages published and acknowledged by the broker, live and replayed."),
		replayed:  counter("forward_replayed_total", "Backlog messages published after an outage or restart."),
		errors:    counter("forward_publish_errors_total", "Failed publish attempts (the message was kept and retried)."),
		discarded: counter("forward_discarded_total", "Spool records discarded because they could not be read or decoded."),
		resent:    counter("forward_resent_total", "Times the messages the centre had not confirmed were sent again."),
	}
	if cfg.Registerer != nil {
		gauge := func(name, help string, fn func() float64) prometheus.Collector {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "hazardwatch", Subsystem: "gateway", Name: name, Help: help}, fn)
		}
		sp := cfg.Spool
		cs := []prometheus.Collector{f.m.published, f.m.replayed, f.m.errors, f.m.discarded, f.m.resent,
			gauge("forward_confirmed_id", "Highest spool id (telemetry seq) the centre confirmed as durable.", func() float64 { return float64(f.confirmed.Load()) }),
			gauge("spool_records", "Messages in the spool not yet acknowledged by the broker.", func() float64 { n, _ := sp.Depth(); return float64(n) }),
			gauge("spool_bytes", "Bytes of the spooled messages not yet acknowledged.", func() float64 { _, b := sp.Depth(); return float64(b) }),
			gauge("spool_oldest_age_seconds", "Age of the oldest message not yet acknowledged; 0 when the spool is empty.", func() float64 { return sp.OldestAge().Seconds() }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "hazardwatch", Subsystem: "gateway", Name: "spool_dropped_total",
				Help: "Messages dropped unsent because the spool reached its byte bound."}, func() float64 { return float64(sp.Dropped()) }),
		}
		for _, c := range cs {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("forward: register metrics: %w", err)
			}
		}
	}
	return f, nil
}

// cursors track where live sending and backlog replay stand. Ids at or
// below boundary are backlog; above it, live.
type cursors struct {
	boundary uint64
	live     uint64 // last live id sent (≥ boundary)
	backlog  uint64 // last backlog id sent
}

// sent reports whether a record was published already: replayed as
// backlog, or sent live.
func (c *cursors) sent(id uint64) bool {
	return id <= c.backlog || id > c.boundary && id <= c.live
}

// Run forwards until ctx is done, then returns nil. It returns an error
// only when the spool was closed under it.
func (f *Forwarder) Run(ctx context.Context) error {
	c := cursors{boundary: f.sp.LastID()}
	c.live = c.boundary
	if n, _ := f.sp.Depth(); n > 0 {
		f.log.Info("forwarder starting with a backlog", zap.Int("records", n), zap.Duration("oldest_age", f.sp.OldestAge()))
	}
	interval := time.Duration(float64(time.Second) / f.cfg.ReplayRate)
	var nextReplay time.Time
	var backoff time.Duration
	var down bool
	var downSince time.Time
	var failures int
	// End to end: since when sent records wait for the centre without
	// news, and how long they may.
	var waitingSince time.Time
	ackTimeout := f.cfg.AckTimeout
	for ctx.Err() == nil {
		if f.cfg.EndToEnd {
			if f.applyConfirmed() {
				waitingSince, ackTimeout = time.Time{}, f.cfg.AckTimeout
			}
			if oldest, err := f.sp.Peek(); err == nil && c.sent(oldest.ID) {
				if waitingSince.IsZero() {
					waitingSince = time.Now()
				} else if time.Since(waitingSince) >= ackTimeout {
					f.m.resent.Inc()
					f.log.Warn("forward: the centre has not confirmed sent messages; sending them again",
						zap.Uint64("from_record", oldest.ID), zap.Uint64("confirmed", f.confirmed.Load()), zap.Duration("waited", time.Since(waitingSince)))
					c.boundary = f.sp.LastID()
					c.live = max(c.live, c.boundary)
					c.backlog = oldest.ID - 1
					waitingSince = time.Now()
					ackTimeout = min(2*ackTimeout, 10*f.cfg.AckTimeout)
					if f.cfg.OnResend != nil {
						f.cfg.OnResend()
					}
				}
			} else {
				waitingSince = time.Time{}
			}
		}
		rec, live, err := f.next(&c)
		switch {
		case errors.Is(err, queue.ErrEmpty):
			f.wait(ctx, time.Second, true)
			continue
		case errors.Is(err, queue.ErrClosed):
			return fmt.Errorf("forward: %w", err)
		case err != nil:
			var ce *queue.CorruptError
			if errors.As(err, &ce) {
				f.discard(ce.ID, err)
				continue
			}
			f.log.Error("forward: reading the spool failed; retrying", zap.Error(err))
			backoff = f.nextBackoff(backoff)
			f.wait(ctx, backoff, false)
			continue
		}
		if !live {
			if d := time.Until(nextReplay); d > 0 {
				f.wait(ctx, d, true) // a live record may arrive meanwhile
				continue
			}
		}
		msg, err := DecodeMessage(rec.Data)
		if err != nil {
			f.discard(rec.ID, err)
			continue
		}
		started := time.Now()
		pctx, cancel := context.WithTimeout(ctx, f.cfg.PublishTimeout)
		err = f.pub.Publish(pctx, msg.Topic, msg.QoS, msg.Retained, msg.Payload)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			f.m.errors.Inc()
			failures++
			if !down {
				down, downSince = true, started
				f.log.Warn("forward: publish failed; keeping the message and backing off",
					zap.Uint64("record", rec.ID), zap.String("topic", msg.Topic), zap.Error(err))
			} else {
				f.log.Debug("forward: publish failed again", zap.Uint64("record", rec.ID), zap.Int("failures", failures), zap.Error(err))
			}
			backoff = f.nextBackoff(backoff)
			f.wait(ctx, backoff, false)
			continue
		}
		backoff = 0
		if !f.cfg.EndToEnd {
			if err := f.sp.Ack(rec.ID); err != nil {
				// The broker has it; after a restart it is sent again and
				// the centre drops the duplicate by seq.
				f.log.Error("forward: acknowledging a published message in the spool failed", zap.Uint64("record", rec.ID), zap.Error(err))
			}
		}
		f.m.published.Inc()
		if live {
			c.live = rec.ID
		} else {
			c.backlog = rec.ID
			f.m.replayed.Inc()
			nextReplay = started.Add(interval)
		}
		if down {
			// The link is back: what piled up meanwhile is backlog, what
			// comes from now on is live.
			down = false
			c.boundary = f.sp.LastID()
			c.live = max(c.live, c.boundary)
			n, _ := f.sp.Depth()
			f.log.Info("forward: broker reachable again; replaying the backlog behind live data",
				zap.Duration("outage", time.Since(downSince)), zap.Int("failed_attempts", failures),
				zap.Int("backlog_records", n), zap.Float64("replay_rate", f.cfg.ReplayRate))
			failures = 0
		}
	}
	return nil
}

// next picks the next record to send: a live one if any, else the oldest
// backlog one.
func (f *Forwarder) next(c *cursors) (queue.Record, bool, error) {
	rec, err := f.sp.NextUnacked(c.live)
	if err == nil {
		return rec, true, nil
	}
	if !errors.Is(err, queue.ErrEmpty) {
		return rec, true, err
	}
	rec, err = f.sp.NextUnacked(c.backlog)
	if err != nil {
		return rec, false, err
	}
	if rec.ID > c.live { // appended since the first look: live
		return rec, true, nil
	}
	if rec.ID > c.boundary {
		// Sent live, waiting for the centre's confirmation: the backlog
		// is done.
		return queue.Record{}, false, queue.ErrEmpty
	}
	return rec, false, nil
}

// Confirm tells the forwarder that the centre holds every record up to id
// durably (end to end); safe from any goroutine. Lower ids than before are
// ignored.
func (f *Forwarder) Confirm(id uint64) {
	for {
		cur := f.confirmed.Load()
		if id <= cur {
			return
		}
		if f.confirmed.CompareAndSwap(cur, id) {
			select {
			case f.wake <- struct{}{}:
			default:
			}
			return
		}
	}
}

// Confirmed is the highest id the centre confirmed.
func (f *Forwarder) Confirmed() uint64 { return f.confirmed.Load() }

// applyConfirmed acknowledges in the spool the records the centre
// confirmed since the last call; it reports whether there were any.
func (f *Forwarder) applyConfirmed() bool {
	conf := f.confirmed.Load()
	if conf <= f.applied {
		return false
	}
	var ids []uint64
	after := f.applied
	for {
		rec, err := f.sp.NextUnacked(after)
		if err != nil || rec.ID > conf {
			break
		}
		ids = append(ids, rec.ID)
		after = rec.ID
		if len(ids) == 4096 {
			f.ackIDs(ids)
			ids = ids[:0]
		}
	}
	f.ackIDs(ids)
	f.applied = conf
	return true
}

func (f *Forwarder) ackIDs(ids []uint64) {
	if len(ids) == 0 {
		return
	}
	if err := f.sp.Ack(ids...); err != nil {
		f.log.Error("forward: acknowledging confirmed messages in the spool failed; they are sent again after a restart", zap.Int("records", len(ids)), zap.Error(err))
	}
}

// discard acknowledges a record that can never be published.
func (f *Forwarder) discard(id uint64, why error) {
	f.m.discarded.Inc()
	f.log.Error("forward: discarding an unreadable spool record", zap.Uint64("record", id), zap.Error(why))
	if err := f.sp.Ack(id); err != nil {
		f.log.Error("forward: acknowledging a discarded record failed", zap.Uint64("record", id), zap.Error(err))
	}
}

func (f *Forwarder) nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return f.cfg.BackoffMin
	}
	return min(2*d, f.cfg.BackoffMax)
}

// wait sleeps for d, or until ctx is done, or (when onAppend) until the
// spool took new records.
func (f *Forwarder) wait(ctx context.Context, d time.Duration, onAppend bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	var appended <-chan struct{}
	if onAppend {
		appended = f.sp.Appended()
	}
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-appended:
	case <-f.wake:
	}
}
