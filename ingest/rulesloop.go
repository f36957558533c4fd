package ingest

import (
	"errors"
	"sort"
	"time"

	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
)

// The rules engine is a state machine owned by one goroutine, the rules
// loop (in the manner of etcd's raft): the lanes hand it stored readings
// over a channel, it ticks on its own timer, reloads come the same way,
// and what the engine returns is queued for the alerting sink in the order
// the engine produced it. No lock is held around the engine.

// rulesReq is one thing for the rules loop to do.
type rulesReq struct {
	samples  []storage.Sample // readings to observe
	received time.Time        // when the centre received them
	reload   []*site.Site     // or, when isReload: new site files
	isReload bool
	reply    chan rulesReply
}

type rulesReply struct {
	handled <-chan error // the sink's word on the events raised; nil: none
	err     error        // a refused reload
}

// errRulesStopped is what a request hears when the rules loop has ended.
var errRulesStopped = errors.New("ingest: the rules loop has stopped")

// rulesOwner is the rules loop's own state: nothing else touches it.
type rulesOwner struct {
	s *Service
	// evaluated is each point's newest reading time the engine saw, by
	// pointer: one map lookup a reading.
	evaluated map[pointKey]*time.Time
}

// runRules owns the evaluator until stop is closed; then it closes done.
func (s *Service) runRules(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	o := s.rules
	tk := time.NewTicker(s.cfg.TickInterval)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case req := <-s.rulesIn:
			req.reply <- o.do(req)
		case <-tk.C:
			s.dispatch(eventBatch{events: s.cfg.Evaluator.Tick(s.cfg.Clock(), nil)})
		}
	}
}

func (o *rulesOwner) do(req rulesReq) rulesReply {
	s := o.s
	if req.isReload {
		r := s.cfg.Evaluator.(Reloader)
		events, err := r.Reload(req.reload, s.cfg.Clock(), nil)
		if err != nil {
			return rulesReply{err: err}
		}
		s.dispatch(eventBatch{events: events})
		return rulesReply{}
	}
	return rulesReply{handled: o.observe(req.samples, req.received)}
}

// observe feeds stored readings to the evaluator in time order, with the
// time the centre received them (the clock the rules' timers run on).
// Those older than what it has already seen of their point are counted as
// late; the rules evaluate them apart, so they do not disturb the live
// alarm state. When they raised events and the sink runs, the returned
// channel tells when the sink took them (nil) or gave up at shutdown.
func (o *rulesOwner) observe(samples []storage.Sample, received time.Time) <-chan error {
	s := o.s
	sorted := samples
	if !sort.SliceIsSorted(sorted, func(i, j int) bool { return sorted[i].Time.Before(sorted[j].Time) }) {
		sorted = make([]storage.Sample, len(samples))
		copy(sorted, samples)
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time.Before(sorted[j].Time) })
	}
	var events []rules.Event
	late := 0
	for _, sm := range sorted {
		k := pointKey{sm.Site, sm.Point}
		switch newest, ok := o.evaluated[k]; {
		case !ok:
			t := sm.Time
			o.evaluated[k] = &t
		case !sm.Time.After(*newest):
			late++ // the rules evaluate it apart, as late data
		default:
			*newest = sm.Time
		}
		events = s.cfg.Evaluator.Observe(rules.Reading{Site: sm.Site, Point: sm.Point, Time: sm.Time, Received: received, Value: sm.Value, Quality: sm.Quality}, events)
	}
	if late > 0 {
		s.metrics.late.Add(float64(late))
	}
	// Queued here, in the loop, so batches reach the sink in the order the
	// engine produced them.
	var handled chan error
	if len(events) > 0 && s.cfg.Sink != nil && s.sinkRunning.Load() {
		handled = make(chan error, 1)
	}
	if !s.dispatch(eventBatch{events: events, handled: handled}) || handled == nil {
		return nil
	}
	return handled
}

// ask hands a request to the rules loop and waits for its reply; without
// a running loop (before Run, after it) the caller's goroutine does the
// work, which is then the only one touching the evaluator.
func (s *Service) ask(req rulesReq) rulesReply {
	s.rulesMu.Lock()
	if s.rulesStop == nil {
		defer s.rulesMu.Unlock()
		return s.rules.do(req)
	}
	done := s.rulesDone
	s.rulesMu.Unlock()
	req.reply = make(chan rulesReply, 1)
	select {
	case s.rulesIn <- req:
		return <-req.reply
	case <-done:
		return rulesReply{err: errRulesStopped}
	}
}

// evaluate hands stored readings to the rules; see rulesOwner.observe.
func (s *Service) evaluate(samples []storage.Sample, received time.Time) <-chan error {
	if s.cfg.Evaluator == nil || len(samples) == 0 {
		return nil
	}
	rep := s.ask(rulesReq{samples: samples, received: received})
	if rep.err != nil {
		ch := make(chan error, 1)
		ch <- rep.err
		return ch
	}
	return rep.handled
}

// startRules starts the rules loop; stopRules ends it and returns the
// evaluator's state to direct calls.
func (s *Service) startRules() {
	if s.cfg.Evaluator == nil {
		return
	}
	s.rulesMu.Lock()
	defer s.rulesMu.Unlock()
	s.rulesStop, s.rulesDone = make(chan struct{}), make(chan struct{})
	go s.runRules(s.rulesStop, s.rulesDone)
}

func (s *Service) stopRules() {
	s.rulesMu.Lock()
	stop, done := s.rulesStop, s.rulesDone
	s.rulesMu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	<-done
	s.rulesMu.Lock()
	s.rulesStop, s.rulesDone = nil, nil
	s.rulesMu.Unlock()
}
