package rules

import (
	"sort"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// Engine evaluates the conditions of every point and hazard source of a set
// of sites. Feed it readings (Observe) and clock ticks (Tick); it returns
// what changed as events. Not safe for concurrent use.
type Engine struct {
	sites []*siteState
	byID  map[string]*siteState
	stats Stats
	// scratch lists of point ids, reused so that evaluating a source does
	// not allocate unless a condition changes.
	firstIDs, secondIDs []string
}

// Stats counts readings the engine refused (they raise nothing), those it
// evaluated as late data, and gateway clocks found set back.
type Stats struct {
	UnknownPoint uint64 // site or point not in the model
	OutOfOrder   uint64 // the same time as the point's last reading: a repeat
	Invalid      uint64 // unknown quality or an impossible time
	// Late counts readings evaluated late (a backlog; see lateBuf), and
	// ClockJumps the times a gateway's clock was found to have been set back.
	Late       uint64
	ClockJumps uint64
}

// New returns an engine for the sites, which must have valid, distinct ids
// (as site.Load guarantees). Every point starts normal; its stale clock
// starts at the first tick or reading that concerns it.
func New(sites []*site.Site) (*Engine, error) {
	ss, byID, err := build(sites)
	if err != nil {
		return nil, err
	}
	return &Engine{sites: ss, byID: byID}, nil
}

// Stats returns the counts since New.
func (e *Engine) Stats() Stats { return e.stats }

// Observe feeds one reading and appends the events it causes to out. A
// reading of an unknown site or point, or of the same time as the point's
// last one, is ignored (and counted in Stats). A reading that is late —
// older than the point's newest, or received long after it was taken (a
// gateway's backlog) — does not touch the live state: it is kept and
// evaluated on its own at a later Tick (see lateBuf). It allocates nothing
// unless a condition changes.
func (e *Engine) Observe(r Reading, out []Event) []Event {
	ss := e.byID[r.Site]
	if ss == nil {
		e.stats.UnknownPoint++
		return out
	}
	p := ss.points[r.Point]
	if p == nil {
		e.stats.UnknownPoint++
		return out
	}
	q := r.Quality
	if q == "" {
		q = protocol.Good // the wire contract's default
	}
	recv := r.Received
	if recv.IsZero() {
		recv = r.Time
	}
	if !q.Valid() || !timeOK(r.Time) || !timeOK(recv) {
		e.stats.Invalid++
		return out
	}
	rt, rc := r.Time.UnixNano(), recv.UnixNano()
	off := rc - rt
	switch {
	case !p.seen:
		p.clk.reset(off, rc)
	case rt == p.lastTime:
		e.stats.OutOfOrder++ // the same reading again
		return out
	case rt < p.lastTime || off-p.clk.off > p.staleAfter:
		// Late: older than what was seen, or delayed past the point's
		// stale time — unless the gateway's clock was evidently set back.
		if !p.clk.jumped(off, rc, rt, p.staleAfter/2, p.staleAfter/3) {
			e.stats.Late++
			p.keepLate(rt, rc, r.Value, q)
			return out
		}
		p.clk.reset(off, rc)
		e.stats.ClockJumps++
	default:
		p.clk.note(off, rc)
	}
	p.seen, p.lastTime = true, rt
	// t: when the reading was taken, on the centre's clock; never after rc.
	t := rt + p.clk.off
	now := recv
	ss.occ = t
	s := p.src

	if q != protocol.CommFail {
		// Data came through: the link works, whatever the sensor says.
		p.dataKnown, p.lastData = true, t
		if c := p.conds[slotStale]; c.active {
			ev := s.event(c, now)
			ev.Since = at(c.since, now)
			ev.Facts = p.facts(ReasonDataResumed)
			ev.Facts.HeldS = secs(t - c.since)
			out = s.clear(c, ev, out)
		}
	}
	v := r.Value
	switch {
	case q == protocol.CommFail:
		// Not a value: limits neither raise nor clear; stale tells.
	case p.saturates(q, v):
		// Saturated (NAMUR NE 43 / a register above range): the
		// concentration is at least the top of the range.
		out = e.raiseFault(p, ReasonSaturated, q, v, t, now, out)
		out = e.observeValue(p, p.top, true, t, now, out)
	case q == protocol.Good && finite(v):
		out = e.observeValue(p, v, false, t, now, out)
	default:
		reason := ReasonBadQuality
		switch {
		case q == protocol.OverRange:
			reason = ReasonOverRange
		case q == protocol.Good:
			reason = ReasonInvalidValue
		}
		p.cancelPending()
		p.saturated = false
		out = e.raiseFault(p, reason, q, v, t, now, out)
	}
	out = e.timers(p, t, now, out)
	ss.occ = rc
	if s.changed {
		out = e.evalSource(s, t, now, out)
		out = s.report(now, out)
	}
	return out
}

// observeValue handles a good, finite value; sat: the detector is
// saturated and v is the top of its range, which the value is at least.
func (e *Engine) observeValue(p *pointState, v float64, sat bool, t int64, now time.Time, out []Event) []Event {
	s := p.src
	if c := p.conds[slotFault]; c.active && !sat {
		ev := s.event(c, now)
		ev.Value, ev.Since = v, at(c.since, now)
		ev.Facts = p.facts(ReasonSensorOK)
		out = s.clear(c, ev, out)
	}
	// A stuck condition restored after a restart has no last value yet:
	// the value it was raised with stands in for it.
	if c := p.conds[slotStuck]; c != nil && c.active && !p.hasValue && v == c.raiseValue {
		p.hasValue, p.value, p.changedAt = true, v, c.since
	}
	if !p.hasValue || v != p.value || sat || p.saturated {
		// A saturated head reads its top constantly: not a stuck value.
		p.changedAt = t
		if c := p.conds[slotStuck]; c != nil && c.active {
			ev := s.event(c, now)
			ev.Value, ev.Since = v, at(c.since, now)
			ev.Facts = p.facts(ReasonValueChanged)
			out = s.clear(c, ev, out)
		}
	}
	p.hasValue, p.value, p.saturated = true, v, sat

	for sl := slotHH; sl <= slotLL; sl++ {
		c := p.conds[sl]
		if c == nil {
			continue
		}
		beyond, back := p.crossing(sl, v)
		if !c.active {
			c.clearingOn = false
			if !beyond {
				c.pendingOn = false
				continue
			}
			if !c.pendingOn {
				c.pendingOn, c.pending = true, t
			}
			if t-c.pending >= p.onDelay {
				out = e.raiseLimit(p, sl, v, t, now, out)
			}
			continue
		}
		if !back {
			c.clearingOn = false
			if (sl == slotHH || sl == slotLL) && !c.rising && !sat {
				out = e.checkRising(p, sl, v, t, now, out)
			}
			continue
		}
		if !c.clearingOn {
			c.clearingOn, c.clearing = true, t
		}
		if t-c.clearing >= p.offDelay {
			out = e.clearLimit(p, sl, v, t, now, out)
		}
	}
	if sat {
		return out // no rate from a clipped value
	}
	out = e.checkRate(p, v, t, now, out)
	p.hist.push(t, v, p.window/historySize)
	return out
}

func (e *Engine) raiseLimit(p *pointState, sl slot, v float64, t int64, now time.Time, out []Event) []Event {
	s, c := p.src, p.conds[sl]
	g := s.gradeOf(p, c)
	if g == protocol.None {
		return out // the policy turned this condition off
	}
	c.since, c.raisedAt, c.raiseValue = c.pending, t, v
	c.pendingOn = false
	ev := s.event(c, now)
	ev.Value, ev.Limit, ev.Since = v, p.limit[sl], at(c.since, now)
	ev.Facts = p.limitFacts(ReasonLimitExceeded, sl, t-c.since)
	if p.saturated {
		ev.Facts.Detail, ev.Facts.RangeMax = ReasonSaturated, fp(p.cfg.Range.Max)
	}
	return s.raise(c, g, ev, out)
}

func (e *Engine) clearLimit(p *pointState, sl slot, v float64, t int64, now time.Time, out []Event) []Event {
	s, c := p.src, p.conds[sl]
	ev := s.event(c, now)
	ev.Value, ev.Limit, ev.Since = v, p.limit[sl], at(c.since, now)
	reason := ReasonBackInside
	if sl == slotHH && p.cfg.PowerOff && p.cfg.Limits.Restore != nil {
		reason = ReasonRestoreValue
	}
	ev.Facts = p.limitFacts(reason, sl, t-c.since)
	ev.Facts.ClearAt = fp(p.clearAt[sl])
	if reason == ReasonBackInside {
		ev.Facts.Deadband = fp(p.db[sl])
	}
	return s.clear(c, ev, out)
}

// checkRising: a second-level condition "keeps rising" when the value has
// moved further past the limit by more than the deadband within the
// rate-of-change window (measured from the raise at the earliest).
func (e *Engine) checkRising(p *pointState, sl slot, v float64, t int64, now time.Time, out []Event) []Event {
	c := p.conds[sl]
	from := t - p.window
	base, baseT := c.raiseValue, c.raisedAt
	if c.raisedAt < from {
		b, ok := p.hist.oldestSince(from)
		if !ok {
			return out
		}
		base, baseT = b.v, b.t
	}
	d := v - base
	if sl == slotLL {
		d = -d
	}
	if d <= p.db[sl] {
		return out
	}
	s := p.src
	c.rising = true
	g := s.gradeOf(p, c)
	if g == c.grade {
		return out
	}
	ev := s.event(c, now)
	ev.Value, ev.Limit, ev.Since = v, p.limit[sl], at(c.since, now)
	ev.Facts = p.limitFacts(ReasonStillRising, sl, t-baseT)
	ev.Facts.From = fp(base)
	if sl == slotLL {
		ev.Facts.Detail = "fall"
	}
	return s.regrade(c, g, ev, out)
}

// checkRate evaluates the rate-of-change conditions, in units per minute
// over the point's window.
func (e *Engine) checkRate(p *pointState, v float64, t int64, now time.Time, out []Event) []Event {
	if p.rise == 0 && p.fall == 0 {
		return out
	}
	b, ok := p.hist.oldestSince(t - p.window)
	if !ok || t-b.t < p.window/historySize || t == b.t {
		return out
	}
	rate := (v - b.v) / float64(t-b.t) * float64(time.Minute)
	s := p.src
	for _, sl := range [2]slot{slotRise, slotFall} {
		c := p.conds[sl]
		if c == nil {
			continue
		}
		lim, r, dir := p.rise, rate, "rise"
		if sl == slotFall {
			lim, r, dir = p.fall, -rate, "fall"
		}
		switch {
		case !c.active && r >= lim:
			g := s.gradeOf(p, c)
			if g == protocol.None {
				continue
			}
			c.since, c.raisedAt, c.raiseValue = t, t, v
			ev := s.event(c, now)
			ev.Value, ev.Limit, ev.Since = v, lim, at(t, now)
			ev.Facts = p.facts(ReasonRateExceeded)
			ev.Facts.Detail, ev.Facts.Rate, ev.Facts.From, ev.Facts.HeldS = dir, fp(r), fp(b.v), secs(t-b.t)
			out = s.raise(c, g, ev, out)
		case c.active && r < lim*rocClearFactor:
			ev := s.event(c, now)
			ev.Value, ev.Limit, ev.Since = v, lim, at(c.since, now)
			ev.Facts = p.facts(ReasonRateNormal)
			ev.Facts.Detail, ev.Facts.Rate, ev.Facts.HeldS = dir, fp(max(r, 0)), secs(t-c.since)
			out = s.clear(c, ev, out)
		}
	}
	return out
}

// raiseFault raises a point's fault for a reading that carries no usable
// value (quality bad, over_range below or above the range, a good quality
// with NaN or ±Inf), or for a saturated gas detector. Callers cancel the
// pending delays where the value cannot be trusted.
func (e *Engine) raiseFault(p *pointState, reason string, q protocol.Quality, v float64, t int64, now time.Time, out []Event) []Event {
	c := p.conds[slotFault]
	if c.active {
		return out
	}
	s := p.src
	g := s.gradeOf(p, c)
	if g == protocol.None {
		return out
	}
	c.since, c.raisedAt = t, t
	ev := s.event(c, now)
	ev.Since = at(t, now)
	ev.Value = v
	ev.Facts = p.facts(reason)
	ev.Facts.Quality = string(q)
	if reason == ReasonSaturated || reason == ReasonOverRange {
		ev.Facts.RangeMin, ev.Facts.RangeMax = fp(p.cfg.Range.Min), fp(p.cfg.Range.Max)
	}
	return s.raise(c, g, ev, out)
}

// saturates reports whether a reading says the gas detector is saturated:
// over_range at or above the range's top, or a good value above it (a
// gateway that does not mark over_range).
func (p *pointState) saturates(q protocol.Quality, v float64) bool {
	return p.gas && finite(v) && (q == protocol.OverRange && v >= p.top || q == protocol.Good && v > p.top)
}

// crossing tells where v stands against a limit slot: beyond the limit
// (at or above a high one, at or below a low one) and back past its
// clearing point (below a high one's, above a low one's).
func (p *pointState) crossing(sl slot, v float64) (beyond, back bool) {
	if sl <= slotH {
		return v >= p.limit[sl], v < p.clearAt[sl]
	}
	return v <= p.limit[sl], v > p.clearAt[sl]
}

// cancelPending restarts the on- and off-delays of a point whose data
// cannot be trusted for now; active conditions stay as they are.
func (p *pointState) cancelPending() {
	for sl := slotHH; sl <= slotFall; sl++ {
		if c := p.conds[sl]; c != nil {
			c.pendingOn, c.clearingOn = false, false
		}
	}
}

// timers evaluates a point's time-based conditions at t: stale data, on- and
// off-delays expiring, first level held too long, a stuck value.
func (e *Engine) timers(p *pointState, t int64, now time.Time, out []Event) []Event {
	s := p.src
	if !p.dataKnown {
		p.dataKnown, p.lastData = true, t
	}
	stale := p.conds[slotStale]
	if !stale.active && t-p.lastData >= p.staleAfter {
		if g := s.gradeOf(p, stale); g != protocol.None {
			p.cancelPending()
			stale.since, stale.raisedAt = p.lastData, t
			ev := s.event(stale, now)
			ev.Since = at(p.lastData, now)
			ev.Facts = p.facts(ReasonNoData)
			ev.Facts.HeldS, ev.Facts.SettingS = secs(t-p.lastData), secs(p.staleAfter)
			out = s.raise(stale, g, ev, out)
		}
	}
	if !p.hasValue || stale.active || p.conds[slotFault].active && !p.saturated || t-p.lastData >= p.staleAfter {
		return out
	}
	for sl := slotHH; sl <= slotLL; sl++ {
		c := p.conds[sl]
		switch {
		case c == nil:
		case !c.active && c.pendingOn && t-c.pending >= p.onDelay:
			out = e.raiseLimit(p, sl, p.value, t, now, out)
		case c.active && c.clearingOn && t-c.clearing >= p.offDelay:
			out = e.clearLimit(p, sl, p.value, t, now, out)
		case c.active && !c.clearingOn && !c.held && (sl == slotH || sl == slotL):
			out = e.checkHeld(p, sl, t, now, out)
		}
	}
	if c := p.conds[slotStuck]; c != nil && !c.active && t-p.changedAt >= p.stuckAfter {
		if g := s.gradeOf(p, c); g != protocol.None {
			c.since, c.raisedAt, c.raiseValue = p.changedAt, t, p.value
			ev := s.event(c, now)
			ev.Value, ev.Since = p.value, at(p.changedAt, now)
			ev.Facts = p.facts(ReasonValueFrozen)
			ev.Facts.HeldS = secs(t - p.changedAt)
			out = s.raise(c, g, ev, out)
		}
	}
	return out
}

func (e *Engine) checkHeld(p *pointState, sl slot, t int64, now time.Time, out []Event) []Event {
	s, c := p.src, p.conds[sl]
	rule := s.policy.FirstLevelHeld
	if rule == nil || rule.Grade == protocol.None || t-c.since < int64(rule.For) {
		return out
	}
	c.held = true
	g := s.gradeOf(p, c)
	if g == c.grade {
		return out
	}
	ev := s.event(c, now)
	ev.Value, ev.Limit, ev.Since = p.value, p.limit[sl], at(c.since, now)
	ev.Facts = p.limitFacts(ReasonHeldTooLong, sl, t-c.since)
	ev.Facts.SettingS = rule.For.D().Seconds()
	return s.regrade(c, g, ev, out)
}

// Tick evaluates every time-based condition at now: stale data, on- and
// off-delays expiring, first level held too long, stuck values. Call it
// about once a second with the caller's clock.
func (e *Engine) Tick(now time.Time, out []Event) []Event {
	if !timeOK(now) {
		e.stats.Invalid++
		return out
	}
	t := now.UnixNano()
	for _, ss := range e.sites {
		ss.occ = t
		for _, s := range ss.sources {
			for _, p := range s.points {
				out = e.timers(p, t, now, out)
				if p.late != nil && t-p.late.at >= int64(LateSettle) {
					out = e.evalLate(p, now, out)
				}
			}
			if s.changed {
				out = e.evalSource(s, t, now, out)
				out = s.report(now, out)
			}
		}
	}
	return out
}

// SourceGrade returns a hazard source's current grade; None when it is
// normal or unknown.
func (e *Engine) SourceGrade(siteID, source string) protocol.Grade {
	ss := e.byID[siteID]
	if ss == nil {
		return protocol.None
	}
	if s := ss.byID[source]; s != nil {
		return s.grade
	}
	return protocol.None
}

// Active returns every active condition as its latest Raised or
// GradeChanged event, sorted by Key. The events are copies.
func (e *Engine) Active() []Event {
	var out []Event
	add := func(c *cond) {
		if c != nil && c.active && c.last != nil {
			out = append(out, *c.last)
		}
	}
	for _, ss := range e.sites {
		for _, s := range ss.sources {
			for _, p := range s.points {
				for _, c := range p.conds {
					add(c)
				}
			}
			add(s.manyFirst)
			add(s.manySecond)
			for _, v := range s.votes {
				add(v.first)
				add(v.second)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// at turns Unix nanoseconds into a time in now's location.
func at(ns int64, now time.Time) time.Time { return time.Unix(0, ns).In(now.Location()) }
