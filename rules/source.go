package rules

import (
	"slices"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// key builds a condition's stable identity: site/source/point/condition,
// site/source/vote-id/condition, or site/source/condition for the counts.
func (s *sourceState) key(c *cond) string {
	if c.key == "" {
		if c.part == "" {
			c.key = s.site.id + "/" + s.id + "/" + string(c.kind)
		} else {
			c.key = s.site.id + "/" + s.id + "/" + c.part + "/" + string(c.kind)
		}
	}
	return c.key
}

// event starts an event about condition c.
func (s *sourceState) event(c *cond, now time.Time) Event {
	return Event{Time: now, OccurredAt: at(s.site.occ, now), Site: s.site.id, Source: s.id, Point: c.point, Condition: c.kind, Key: s.key(c)}
}

func (s *sourceState) raise(c *cond, g protocol.Grade, ev Event, out []Event) []Event {
	c.active, c.grade = true, g
	c.pendingOn, c.clearingOn = false, false
	s.count[g]++
	s.changed = true
	ev.Type, ev.Grade, ev.PrevGrade = Raised, g, protocol.None
	if n := c.noteRaise(ev.Time.UnixNano()); n >= chatterRaises {
		ev.Chattering, ev.Facts.Raises = true, n
	}
	c.last = &ev
	return append(out, ev)
}

// Chattering (ISA-18.2, shared/domain.md "Alarm management"): an alarm
// that goes active chatterRaises or more times within chatterWindow.
const (
	chatterRaises = 3
	chatterWindow = int64(time.Minute)
)

// noteRaise records a raise at t and returns how many raises of the
// condition fall within the chatterWindow ending at t, this one included.
func (c *cond) noteRaise(t int64) int {
	keep := c.raises[:0]
	for _, r := range c.raises {
		if t-r <= chatterWindow && r <= t {
			keep = append(keep, r)
		}
	}
	c.raises = append(keep, t)
	return len(c.raises)
}

func (s *sourceState) clear(c *cond, ev Event, out []Event) []Event {
	ev.Type, ev.Grade, ev.PrevGrade = Cleared, protocol.None, c.grade
	s.count[c.grade]--
	s.changed = true
	c.reset()
	return append(out, ev)
}

// regrade gives an active condition a new grade; None clears it.
func (s *sourceState) regrade(c *cond, g protocol.Grade, ev Event, out []Event) []Event {
	if g == protocol.None {
		return s.clear(c, ev, out)
	}
	ev.Type, ev.Grade, ev.PrevGrade = GradeChanged, g, c.grade
	s.count[c.grade]--
	s.count[g]++
	c.grade = g
	s.changed = true
	c.last = &ev
	return append(out, ev)
}

func gradeOr(g *protocol.Grade) protocol.Grade {
	if g == nil {
		return protocol.None
	}
	return *g
}

// gradeOf grades condition c (of point p, nil for source conditions) by the
// source's policy: the base grade of its kind, raised by the held/rising
// rules, then one step more severe for an escalated source, never above
// red. None means the policy turns the condition off.
func (s *sourceState) gradeOf(p *pointState, c *cond) protocol.Grade {
	pol := &s.policy
	var g protocol.Grade
	switch c.kind {
	case H, L:
		g = gradeOr(pol.FirstLevel)
		if g != protocol.None && c.held && pol.FirstLevelHeld != nil {
			g = max(g, pol.FirstLevelHeld.Grade)
		}
	case HH, LL:
		g = gradeOr(pol.SecondLevel)
		if c.kind == HH && p != nil && p.cfg.PowerOff && s.coal && pol.PowerOff != nil {
			g = *pol.PowerOff
		}
		if g != protocol.None && c.rising {
			g = max(g, gradeOr(pol.SecondLevelRising))
		}
	case RateRise, RateFall:
		g = gradeOr(pol.RateOfChange)
	case Stale:
		g = gradeOr(pol.Stale)
	case Fault, Stuck:
		g = gradeOr(pol.Fault)
	case VoteFirst:
		g = gradeOr(pol.VoteFirstLevel)
	case VoteSecond:
		g = gradeOr(pol.VoteSecondLevel)
	case ManyFirst:
		if pol.FirstLevelPoints != nil {
			g = pol.FirstLevelPoints.Grade
		}
	case ManySecond:
		if pol.SecondLevelPoints != nil {
			g = pol.SecondLevelPoints.Grade
		}
	}
	if s.escalate {
		g = g.Raise(1)
	}
	return g
}

// evalSource evaluates the source's own conditions (votes, counts) from its
// points' conditions, and re-grades those already active.
func (e *Engine) evalSource(s *sourceState, t int64, now time.Time, out []Event) []Event {
	first, second := e.firstIDs[:0], e.secondIDs[:0]
	for _, p := range s.points {
		if p.firstLevel() {
			first = append(first, p.id)
		}
		if p.secondLevel() {
			second = append(second, p.id)
		}
	}
	if r := s.policy.FirstLevelPoints; r != nil {
		out = e.setGroup(s, s.manyFirst, nil, len(first) >= r.Count, first, r.Count, t, now, out)
	} else if s.manyFirst.active {
		out = e.setGroup(s, s.manyFirst, nil, false, first, 0, t, now, out)
	}
	if r := s.policy.SecondLevelPoints; r != nil {
		out = e.setGroup(s, s.manySecond, nil, len(second) >= r.Count, second, r.Count, t, now, out)
	} else if s.manySecond.active {
		out = e.setGroup(s, s.manySecond, nil, false, second, 0, t, now, out)
	}
	for _, v := range s.votes {
		first, second = first[:0], second[:0]
		for _, p := range v.points {
			if p.highFirst() {
				first = append(first, p.id)
			}
			if p.active(slotHH) {
				second = append(second, p.id)
			}
		}
		out = e.setGroup(s, v.first, v, len(first) >= v.cfg.K, first, v.cfg.K, t, now, out)
		out = e.setGroup(s, v.second, v, len(second) >= v.cfg.K, second, v.cfg.K, t, now, out)
	}
	e.firstIDs, e.secondIDs = first, second
	return out
}

// setGroup brings a source condition to on/off with ids the points in
// alarm; while it stays on, a new grade or new points is a GradeChanged.
func (e *Engine) setGroup(s *sourceState, c *cond, v *voteState, on bool, ids []string, need int, t int64, now time.Time, out []Event) []Event {
	g := s.gradeOf(nil, c)
	if g == protocol.None {
		on = false
	}
	second := c.kind == VoteSecond || c.kind == ManySecond
	fill := func(ev *Event, met bool) {
		ev.Value, ev.Limit, ev.Since = float64(len(ids)), float64(need), at(c.since, now)
		reason, name, ps := ReasonCountMet, "", s.points
		if v != nil {
			reason, name, ps = ReasonVoteMet, v.name, v.points
		}
		if !met {
			reason = map[string]string{ReasonCountMet: ReasonCountUnmet, ReasonVoteMet: ReasonVoteUnmet}[reason]
		}
		ev.Facts = protocol.AlarmFacts{Reason: reason, SourceName: s.name, Name: name, Need: need,
			Detail: levelDetail(second), Points: pointFacts(ps, ids)}
		if !met {
			ev.Facts.HeldS = secs(t - c.since)
		}
	}
	switch {
	case on && !c.active:
		c.since, c.raisedAt = t, t
		c.points = slices.Clone(ids)
		ev := s.event(c, now)
		fill(&ev, true)
		ev.Points = c.points
		return s.raise(c, g, ev, out)
	case !on && c.active:
		ev := s.event(c, now)
		fill(&ev, false)
		ev.Points = slices.Clone(ids)
		return s.clear(c, ev, out)
	case on && (g != c.grade || !slices.Equal(ids, c.points)):
		c.points = slices.Clone(ids)
		ev := s.event(c, now)
		fill(&ev, true)
		ev.Points = c.points
		return s.regrade(c, g, ev, out)
	}
	return out
}

// report emits SourceGradeChanged when the source's grade moved.
func (s *sourceState) report(now time.Time, out []Event) []Event {
	s.changed = false
	g := s.top()
	if g == s.grade {
		return out
	}
	prev := s.grade
	s.grade = g
	ev := Event{Type: SourceGradeChanged, Time: now, OccurredAt: at(s.site.occ, now), Site: s.site.id, Source: s.id,
		Key: s.site.id + "/" + s.id, Grade: g, PrevGrade: prev}
	ev.Facts = protocol.AlarmFacts{Reason: ReasonSourceLowered, SourceName: s.name}
	switch {
	case g == protocol.None:
		ev.Facts.Reason = ReasonSourceNormal
	case g > prev:
		ev.Facts.Reason = ReasonSourceRaised
	}
	if w := s.worst(); w != nil {
		cause := w.Facts
		cause.Points = slices.Clone(cause.Points)
		cause.Condition, cause.Value, cause.Limit, cause.Grade = string(w.Condition), fp(w.Value), fp(w.Limit), w.Grade
		ev.Facts.Cause = &cause
	}
	return append(out, ev)
}

// worst is the latest event of the source's most severe active condition.
func (s *sourceState) worst() *Event {
	var best *Event
	consider := func(c *cond) {
		if c != nil && c.active && c.last != nil && (best == nil || c.grade > best.Grade) {
			best = c.last
		}
	}
	for _, v := range s.votes {
		consider(v.second)
		consider(v.first)
	}
	consider(s.manySecond)
	consider(s.manyFirst)
	for _, p := range s.points {
		for _, c := range p.conds {
			consider(c)
		}
	}
	return best
}
