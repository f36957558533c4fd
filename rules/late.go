package rules

import (
	"slices"
	"strconv"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// Late data. A gateway that was cut off sends its backlog when the link is
// back, beside live data, newest or oldest first. Those readings are late:
// older than the point's newest, or received more than stale_after after
// they were taken. They must not disturb the live state (an alarm that is
// on stays on; a delay under way goes on), yet an excursion they show must
// reach the officers: a retrospective warning (补报). So a point keeps its
// late readings apart, and once none has come for LateSettle, evaluates
// them in their own time order against its limits, with its on- and
// off-delays measured between the readings' own times. Each excursion
// found is raised and cleared at once, marked Late, with its own Key (the
// condition's Key + "/late/" + when it began, Unix ms), OccurredAt when it
// happened and Time when the centre learned of it. A late excursion that a
// live alarm of the same condition already covers is not reported again.
// Late data changes neither the source's grade nor votes.

// LateSettle is how long a point's late readings must pause before they
// are evaluated, so that a backlog sent newest first is sorted whole.
const LateSettle = 2 * time.Second

// maxLate bounds the late readings a point keeps; a longer backlog is
// evaluated in chunks of this size (at one reading a second, 68 minutes).
const maxLate = 4096

type lateSample struct {
	rt int64 // the gateway's time
	v  float64
	q  protocol.Quality
}

type lateBuf struct {
	at int64 // when the last late reading arrived, centre time
	s  []lateSample
}

func (p *pointState) keepLate(rt, rc int64, v float64, q protocol.Quality) {
	if p.late == nil {
		p.late = &lateBuf{}
	}
	p.late.at = rc
	p.late.s = append(p.late.s, lateSample{rt, v, q})
	if len(p.late.s) >= maxLate {
		p.late.at = 0 // evaluate at the next tick
	}
}

// lateCond is a limit condition as the late readings show it.
type lateCond struct {
	active, pendingOn, clearingOn bool
	pending, clearing, since      int64
	peak                          float64
	sat                           bool
}

// evalLate evaluates a point's late readings, in time order, and clears
// them.
func (e *Engine) evalLate(p *pointState, now time.Time, out []Event) []Event {
	buf := p.late.s
	p.late = nil
	slices.SortStableFunc(buf, func(a, b lateSample) int {
		switch {
		case a.rt < b.rt:
			return -1
		case a.rt > b.rt:
			return 1
		}
		return 0
	})
	var st [4]lateCond
	var lastT int64
	var lastV float64
	for i, r := range buf {
		t := r.rt + p.clk.off // on the centre's clock
		if i > 0 && (r.rt == buf[i-1].rt || t-lastT >= p.staleAfter) {
			if r.rt == buf[i-1].rt {
				continue // a repeat
			}
			// A gap in the late data: nothing is known in between.
			for sl := range st {
				st[sl].pendingOn, st[sl].clearingOn = false, false
			}
		}
		lastT = t
		v, sat := r.v, false
		switch {
		case p.saturates(r.q, v):
			v, sat = p.top, true
		case r.q == protocol.Good && finite(v):
		default:
			for sl := range st {
				st[sl].pendingOn, st[sl].clearingOn = false, false
			}
			continue
		}
		lastV = v
		for sl := slotHH; sl <= slotLL; sl++ {
			if p.conds[sl] == nil {
				continue
			}
			c := &st[sl]
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
					c.active, c.pendingOn, c.since, c.peak, c.sat = true, false, c.pending, v, sat
					out = e.lateRaise(p, sl, c, v, t, now, out)
				}
				continue
			}
			if sl <= slotH {
				c.peak = max(c.peak, v)
			} else {
				c.peak = min(c.peak, v)
			}
			c.sat = c.sat || sat
			if !back {
				c.clearingOn = false
				continue
			}
			if !c.clearingOn {
				c.clearingOn, c.clearing = true, t
			}
			if t-c.clearing >= p.offDelay {
				c.active = false
				out = e.lateClear(p, sl, c, ReasonBackInside, v, t, now, out)
			}
		}
	}
	for sl := slotHH; sl <= slotLL; sl++ {
		if c := &st[sl]; c.active {
			out = e.lateClear(p, sl, c, ReasonLateEnd, lastV, lastT, now, out)
		}
	}
	return out
}

// covered reports whether a live alarm of the same condition, active since
// before the excursion began, already tells of it.
func (p *pointState) covered(sl slot, since int64) bool {
	c := p.conds[sl]
	return c.active && c.since <= since
}

func (p *pointState) lateEvent(sl slot, lc *lateCond, v float64, t int64, now time.Time) Event {
	s, c := p.src, p.conds[sl]
	ev := s.event(c, now)
	ev.Key += "/late/" + strconv.FormatInt(lc.since/int64(time.Millisecond), 10)
	ev.Late, ev.OccurredAt, ev.Since = true, at(t, now), at(lc.since, now)
	ev.Value, ev.Limit = v, p.limit[sl]
	return ev
}

func (e *Engine) lateRaise(p *pointState, sl slot, lc *lateCond, v float64, t int64, now time.Time, out []Event) []Event {
	if p.covered(sl, lc.since) {
		return out
	}
	g := p.src.gradeOf(p, &cond{kind: slotCondition[sl]})
	if g == protocol.None {
		return out
	}
	ev := p.lateEvent(sl, lc, v, t, now)
	ev.OccurredAt = at(lc.since, now)
	ev.Type, ev.Grade, ev.PrevGrade = Raised, g, protocol.None
	ev.Facts = p.limitFacts(ReasonLimitExceeded, sl, t-lc.since)
	if lc.sat {
		ev.Facts.Detail, ev.Facts.RangeMax = ReasonSaturated, fp(p.cfg.Range.Max)
	}
	return append(out, ev)
}

func (e *Engine) lateClear(p *pointState, sl slot, lc *lateCond, reason string, v float64, t int64, now time.Time, out []Event) []Event {
	if p.covered(sl, lc.since) {
		return out
	}
	g := p.src.gradeOf(p, &cond{kind: slotCondition[sl]})
	if g == protocol.None {
		return out
	}
	ev := p.lateEvent(sl, lc, v, t, now)
	ev.Type, ev.Grade, ev.PrevGrade = Cleared, protocol.None, g
	ev.Facts = p.limitFacts(reason, sl, t-lc.since)
	ev.Facts.ClearAt, ev.Facts.Deadband = fp(p.clearAt[sl]), fp(p.db[sl])
	ev.Facts.Peak = fp(lc.peak)
	return append(out, ev)
}
