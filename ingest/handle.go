package ingest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/storage"
)

// Reasons ingest itself adds to protocol's and storage's.
const (
	ReasonTopic          = "bad_topic"       // not a gateway topic
	ReasonTopicMismatch  = "topic_mismatch"  // payload's site/gateway differ from the topic's
	ReasonUnknownSite    = "unknown_site"    // site not configured here
	ReasonUnknownGateway = "unknown_gateway" // gateway not in the site file
	ReasonBadState       = "bad_state"       // state payload not understood
	ReasonDuplicate      = "duplicate"       // seq already handled: dropped
)

// storeTimeout bounds one attempt to store a message's samples. It is
// above what a store takes to give up on its server and spill (InfluxDB:
// about twice its 10 s RequestTimeout), so a slow server leads to a spill,
// not to a message left unacknowledged.
const storeTimeout = 30 * time.Second

// Handle processes one MQTT message. It returns an error only when the
// message's readings could not be stored, or (while Run runs) the events
// they raised did not reach the sink, and the message must then not be
// acknowledged; every refusal of bad input is counted, logged and kept as
// a dead letter, and returns nil (the message is settled).
func (s *Service) Handle(topic string, payload []byte) error {
	s.metrics.messages.Inc()
	t, err := protocol.ParseTopic(topic)
	if err != nil {
		s.reject(rejection{reason: ReasonTopic, topic: topic, err: err, payload: payload})
		return nil
	}
	if t.Kind == "state" {
		s.handleState(t, payload)
		return nil
	}
	return s.handleTelemetry(t, topic, payload)
}

func (s *Service) handleState(t protocol.Topic, payload []byte) {
	if len(payload) == 0 {
		return // a retained state being cleared
	}
	k := gatewayKey{t.Site, t.Gateway}
	st, ok := s.site(t.Site)
	if !ok || st.Gateway(t.Gateway) == nil {
		reason := ReasonUnknownGateway
		if !ok {
			reason = ReasonUnknownSite
		}
		s.reject(rejection{reason: reason, topic: protocol.StateTopic(t.Site, t.Gateway), site: t.Site, gateway: t.Gateway,
			err: fmt.Errorf("state of gateway %s of site %s, which is not configured", t.Gateway, t.Site), payload: payload})
		return
	}
	gs, err := protocol.DecodeState(payload)
	if err != nil {
		s.reject(rejection{reason: ReasonBadState, topic: protocol.StateTopic(t.Site, t.Gateway), site: t.Site, gateway: t.Gateway, err: err, payload: payload})
		return
	}
	status := GatewayStatus{Site: t.Site, Gateway: t.Gateway, State: gs.State, Updated: s.cfg.Clock()}
	if gs.Since != nil {
		status.Since = gs.Since.Time
	}
	s.mu.Lock()
	prev, had := s.states[k]
	s.states[k] = status
	s.mu.Unlock()
	if !had || prev.State != status.State {
		s.log.Info("gateway state", zap.String("site", t.Site), zap.String("gateway", t.Gateway), zap.String("state", gs.State))
	}
}

// handleTelemetry processes one telemetry message synchronously.
func (s *Service) handleTelemetry(t protocol.Topic, topic string, payload []byte) error {
	j := &job{topic: topic, payload: payload}
	s.prepareParsed(j, t)
	if err := s.finish(j); err != nil {
		return err
	}
	return s.journaled(j)
}

// prepare is a telemetry message's first step in its gateway's lane:
// decode, check, drop a duplicate, and start storing its readings. It runs
// in the gateway's order; storing overlaps with the messages behind it.
func (s *Service) prepare(j *job) {
	t, err := protocol.ParseTopic(j.topic)
	if err != nil {
		s.reject(rejection{reason: ReasonTopic, topic: j.topic, err: err, payload: j.payload})
		j.settled = true
		return
	}
	s.prepareParsed(j, t)
}

func (s *Service) prepareParsed(j *job, t protocol.Topic) {
	j.settled = true // until there is something to store
	topic, payload := j.topic, j.payload
	msg, err := protocol.DecodeTelemetry(payload)
	if err != nil {
		reason := protocol.ReasonBadEnvelope
		var me *protocol.MessageError
		if errors.As(err, &me) {
			reason = me.Reason
		}
		s.reject(rejection{reason: reason, topic: topic, site: t.Site, gateway: t.Gateway, err: err, payload: payload})
		return
	}
	rj := rejection{topic: topic, site: msg.Site, gateway: msg.Gateway, seq: msg.Seq, payload: payload}
	if msg.Site != t.Site || msg.Gateway != t.Gateway {
		rj.reason, rj.err = ReasonTopicMismatch, fmt.Errorf("payload says site %s gateway %s, topic says site %s gateway %s", msg.Site, msg.Gateway, t.Site, t.Gateway)
		s.reject(rj)
		return
	}
	st, ok := s.site(msg.Site)
	if !ok {
		rj.reason, rj.err = ReasonUnknownSite, fmt.Errorf("site %s is not configured", msg.Site)
		s.reject(rj)
		return
	}
	if st.Gateway(msg.Gateway) == nil {
		rj.reason, rj.err = ReasonUnknownGateway, fmt.Errorf("gateway %s is not in site %s", msg.Gateway, msg.Site)
		s.reject(rj)
		return
	}

	gk := gatewayKey{msg.Site, msg.Gateway}
	s.mu.Lock()
	tracker := s.seqs[gk]
	if tracker == nil {
		tracker = &seqTracker{}
		s.seqs[gk] = tracker
	}
	dup := tracker.seen(msg.Seq)
	inFlight := !dup && s.inFlight[gk][msg.Seq] > 0
	if !dup && !inFlight {
		if s.inFlight[gk] == nil {
			s.inFlight[gk] = map[uint64]int{}
		}
		s.inFlight[gk][msg.Seq]++
	}
	s.mu.Unlock()
	if dup {
		s.acks.durable(msg.Site, msg.Gateway, msg.Seq) // stored before: confirm again
		s.metrics.duplicates.Inc()
		rj.reason, rj.err = ReasonDuplicate, fmt.Errorf("seq %d of gateway %s was already handled; message dropped", msg.Seq, msg.Gateway)
		s.reject(rj)
		s.acks.durable(msg.Site, msg.Gateway, msg.Seq) // stored before
		return
	}
	j.msg, j.gk, j.tracker, j.rj = msg, gk, tracker, rj
	if inFlight {
		// A redelivery of a message still being stored: settled by
		// that one's outcome, at its turn in the lane (finish).
		j.settled, j.dupOfInFlight = false, true
		return
	}
	j.settled = false

	now := s.cfg.Clock()
	j.received = now
	samples := make([]storage.Sample, 0, len(msg.Readings))
	for _, r := range msg.Readings {
		rr := rj
		rr.point = r.Point
		if err := r.Check(); err != nil {
			rr.reason, rr.err = protocol.ReasonBadReading, err
			var me *protocol.MessageError
			if errors.As(err, &me) {
				rr.reason = me.Reason
			}
			s.reject(rr)
			continue
		}
		ref := st.Point(r.Point)
		if ref == nil || ref.Device == nil || ref.Device.Gateway != msg.Gateway {
			rr.reason = protocol.ReasonUnknownPoint
			if ref == nil {
				rr.err = fmt.Errorf("point %s is not in site %s", r.Point, msg.Site)
			} else {
				rr.err = fmt.Errorf("point %s is not read by gateway %s", r.Point, msg.Gateway)
			}
			s.reject(rr)
			continue
		}
		at := r.At(msg.TS)
		if at.After(now.Add(s.cfg.MaxFuture)) {
			rr.reason, rr.err = protocol.ReasonFuture, fmt.Errorf("point %s: time %s is %v ahead of the centre's clock", r.Point, at.UTC().Format(protocol.TimeFormat), at.Sub(now).Round(time.Second))
			s.reject(rr)
			continue
		}
		sm := storage.Sample{Site: msg.Site, Gateway: msg.Gateway, Source: ref.Source.ID, Point: r.Point, Time: at, Quality: r.QualityOrGood()}
		if r.Value != nil {
			sm.Value, sm.HasValue = *r.Value, true
		}
		s.settleQuality(&sm, r, ref, rr)
		samples = append(samples, sm)
	}
	j.payload = nil // decoded; let it go
	j.storedCh = make(chan struct{})
	go func() {
		defer close(j.storedCh)
		j.stored, j.storeErr = s.store(samples, rj)
	}()
}

// finish is a telemetry message's second step, in its gateway's order:
// wait until its readings are durable, record the seq and feed the rules
// (journaled then waits for alerting). An error means the message must not
// be acknowledged.
func (s *Service) finish(j *job) error {
	if j.settled {
		return nil
	}
	msg := j.msg
	if j.dupOfInFlight {
		// The first copy came before this one in the lane and is done.
		s.mu.Lock()
		stored := j.tracker.seen(msg.Seq)
		s.mu.Unlock()
		if !stored {
			return fmt.Errorf("site %s gateway %s seq %d: redelivered while the first copy was being stored, which failed", msg.Site, msg.Gateway, msg.Seq)
		}
		s.metrics.duplicates.Inc()
		rj := j.rj
		rj.reason, rj.err = ReasonDuplicate, fmt.Errorf("seq %d of gateway %s was redelivered while its first copy was being stored; copy dropped", msg.Seq, msg.Gateway)
		s.reject(rj)
		return nil
	}
	<-j.storedCh
	stored, err := j.stored, j.storeErr
	s.mu.Lock()
	if n := s.inFlight[j.gk][msg.Seq]; n <= 1 {
		delete(s.inFlight[j.gk], msg.Seq)
	} else {
		s.inFlight[j.gk][msg.Seq] = n - 1
	}
	var v seqVerdict
	var missing uint64
	if err == nil {
		v = j.tracker.observe(msg.Seq)
		missing = j.tracker.missing()
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.recordSeq(msg, v, missing)
	s.messageDurable(msg.Site, msg.Gateway, msg.Seq)

	storedAt := s.cfg.Clock()
	for _, sm := range stored {
		s.metrics.lag.Observe(storedAt.Sub(sm.Time).Seconds())
	}
	s.keepLatest(stored)
	s.metrics.readings.Add(float64(len(stored)))
	j.handled = s.evaluate(stored, j.received)
	j.evaluated = true
	return nil
}

// journaled is a stored message's third step, in its gateway's order: the
// message is acknowledged only once alerting has journaled the events its
// readings raised, so a crash before that gets the message again, and so
// the events (alerting drops repeats by id). Waiting here, not in finish,
// lets the next messages' readings reach the rules meanwhile.
func (s *Service) journaled(j *job) error {
	if !j.evaluated {
		return nil
	}
	msg := j.msg
	if j.handled != nil {
		if err := <-j.handled; err != nil {
			return fmt.Errorf("events of site %s gateway %s seq %d: %w", msg.Site, msg.Gateway, msg.Seq, err)
		}
	}
	return nil
}

// keepLatest remembers each point's newest stored reading, so Latest
// answers from memory.
func (s *Service) keepLatest(stored []storage.Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sm := range stored {
		k := pointKey{sm.Site, sm.Point}
		switch prev, ok := s.latest[k]; {
		case !ok:
			kept := sm
			s.latest[k] = &kept
		case sm.Time.After(prev.Time):
			*prev = sm
		}
	}
}

// Latest returns the newest reading this service stored of each point of
// a site (every site when site is empty), from memory: what the console
// asks every few seconds, without a query to the store. SeedLatest fills
// it from the store at start.
func (s *Service) Latest(_ context.Context, site string) ([]storage.Sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]storage.Sample, 0, len(s.latest))
	for k, sm := range s.latest {
		if site == "" || k.site == site {
			out = append(out, *sm)
		}
	}
	return out, nil
}

// LatestOf returns the newest reading this service stored of each of the
// given points of a site that it has one of: what an incident shows of its
// points, without copying every point of a large site.
func (s *Service) LatestOf(_ context.Context, site string, points []string) ([]storage.Sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]storage.Sample, 0, len(points))
	for _, p := range points {
		if sm, ok := s.latest[pointKey{site, p}]; ok {
			out = append(out, *sm)
		}
	}
	return out, nil
}

// SeedLatest takes the store's newest readings at start, so Latest knows
// the points that have not reported since (report by exception sends a
// calm point only at its heartbeat). A newer reading already kept wins.
func (s *Service) SeedLatest(samples []storage.Sample) { s.keepLatest(samples) }

// recordSeq counts and logs what the gateway's seq said of a stored message.
func (s *Service) recordSeq(msg protocol.Telemetry, v seqVerdict, missing uint64) {
	gw := []zap.Field{zap.String("site", msg.Site), zap.String("gateway", msg.Gateway), zap.Uint64("seq", msg.Seq)}
	s.metrics.missing.WithLabelValues(msg.Site, msg.Gateway).Set(float64(missing))
	switch {
	case v.reset:
		s.metrics.seqResets.Inc()
		s.log.Warn("gateway seq jumped too far ahead to be a gap; taken as a new start (a forged or corrupt seq, or a reset gateway)",
			append(gw, zap.Uint64("jump", v.jump))...)
	case v.restarted:
		s.log.Warn("gateway restarted its sequence at 1 (its state was reset)", gw...)
	case v.opened > 0:
		s.metrics.gaps.Add(float64(v.opened))
		s.log.Warn("messages missing from gateway (a backlog may still fill them)", append(gw,
			zap.Uint64("missing_from", msg.Seq-v.opened), zap.Uint64("missing_to", msg.Seq-1))...)
	case v.filled > 0:
		s.metrics.gapsFilled.Inc()
	}
	if v.givenUp > 0 {
		s.metrics.gapsLost.Add(float64(v.givenUp))
		s.log.Error("missing messages given up as lost", append(gw, zap.Uint64("lost", v.givenUp))...)
	}
}

// store appends the samples, retrying a failing store a few times, and
// returns those the store kept.
func (s *Service) store(samples []storage.Sample, rj rejection) ([]storage.Sample, error) {
	if len(samples) == 0 {
		return nil, nil
	}
	var err error
	for attempt := 1; attempt <= DefaultStoreAttempts; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		start := time.Now()
		err = s.cfg.Store.Append(ctx, samples)
		s.metrics.storeLatency.Observe(time.Since(start).Seconds())
		cancel()
		var rejected *storage.RejectedError
		if errors.As(err, &rejected) {
			refused := make(map[int]bool, len(rejected.Rejected))
			for _, r := range rejected.Rejected {
				refused[r.Index] = true
				rr := rj
				if r.Index >= 0 && r.Index < len(samples) {
					rr.point = samples[r.Index].Point
				}
				rr.reason, rr.err = r.Reason, r.Err
				s.reject(rr)
			}
			kept := samples[:0:0]
			for i, sm := range samples {
				if !refused[i] {
					kept = append(kept, sm)
				}
			}
			return kept, nil
		}
		if err == nil {
			return samples, nil
		}
		s.metrics.storeErrors.Inc()
		s.log.Warn("store append failed", zap.String("site", rj.site), zap.String("gateway", rj.gateway), zap.Uint64("seq", rj.seq), zap.Int("attempt", attempt), zap.Error(err))
		time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
	}
	return nil, fmt.Errorf("store %d readings of site %s gateway %s seq %d: %w", len(samples), rj.site, rj.gateway, rj.seq, err)
}

// eventBatch is what the evaluator produced at once; handled, when not
// nil, hears whether the sink took the batch.
type eventBatch struct {
	events  []rules.Event
	handled chan error
}

// errSinkGaveUp is what a batch's handled hears when shutdown ended the
// sink's retries before it took the batch.
var errSinkGaveUp = errors.New("alerting did not take the events before shutdown")

// dispatch queues an event batch for the sink and reports whether it did.
// Events are never dropped: when the sink falls behind, dispatch waits,
// which holds back the MQTT callback and so the acknowledgements; the
// broker keeps the messages.
func (s *Service) dispatch(b eventBatch) bool {
	if len(b.events) == 0 {
		return false
	}
	s.metrics.events.Add(float64(len(b.events)))
	s.queueMu.RLock()
	defer s.queueMu.RUnlock()
	if s.queueClosed {
		// Only ticks racing shutdown get here; the engine re-derives
		// time-driven conditions at the next start.
		s.metrics.dropped.Add(float64(len(b.events)))
		s.log.Error("events after shutdown began were not delivered", zap.Int("events", len(b.events)))
		return false
	}
	select {
	case s.events <- b:
		return true
	default:
	}
	s.metrics.queueFull.Inc()
	s.log.Warn("event queue full: the alerting sink is slow; holding back ingest until it catches up",
		zap.Int("queued_batches", len(s.events)), zap.Int("events", len(b.events)))
	s.events <- b
	return true
}

// closeQueue ends the event queue; later batches are counted as dropped.
func (s *Service) closeQueue() {
	s.queueMu.Lock()
	defer s.queueMu.Unlock()
	if !s.queueClosed {
		s.queueClosed = true
		close(s.events)
	}
}

// runSink hands queued event batches to the sink until the queue closes.
func (s *Service) runSink(done chan<- struct{}) {
	defer close(done)
	for b := range s.events {
		if s.cfg.Sink == nil {
			s.log.Warn("no event sink configured; events not delivered", zap.Int("events", len(b.events)))
			continue
		}
		if !s.sinkBatch(b.events) {
			// Shutdown gave up: tell every waiting message, which then
			// stays unacknowledged and comes again after the restart.
			b.fail(errSinkGaveUp)
			for rest := range s.events {
				s.metrics.dropped.Add(float64(len(rest.events)))
				rest.fail(errSinkGaveUp)
			}
			return
		}
		b.fail(nil)
	}
}

// fail tells the batch's waiter the outcome (nil: taken).
func (b eventBatch) fail(err error) {
	if b.handled != nil {
		b.handled <- err
	}
}

// sinkBatch retries the sink until it takes the batch (true) or shutdown
// gives up on it (false): an alarm must reach alerting.
func (s *Service) sinkBatch(events []rules.Event) bool {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		err := s.cfg.Sink.HandleEvents(s.sinkCtx, events)
		if err == nil {
			return true
		}
		s.metrics.sinkErrors.Inc()
		s.log.Error("event sink failed; retrying", zap.Int("events", len(events)), zap.Duration("retry_in", wait), zap.Error(err))
		select {
		case <-s.sinkCtx.Done():
			s.metrics.dropped.Add(float64(len(events)))
			s.log.Error("events not delivered at shutdown", zap.Int("events", len(events)))
			return false
		case <-time.After(wait):
		}
	}
}

func sortStatuses(st []GatewayStatus) {
	sort.Slice(st, func(i, j int) bool {
		if st[i].Site != st[j].Site {
			return st[i].Site < st[j].Site
		}
		return st[i].Gateway < st[j].Gateway
	})
}
