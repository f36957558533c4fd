package rules

import (
	"slices"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// Restore seeds the engine with conditions that were active before a
// restart, as the alarm journal last saw them (each given as its latest
// Raised or GradeChanged Event: Key, Site, Source, Point, Condition, Grade,
// Since, Value, Limit, Points). It emits no events for conditions it can
// take over; a condition it cannot place (unknown site/source/point/vote,
// a condition the point no longer has, e.g. its limit was removed from the
// site file) gets a Cleared event appended to out, so the caller can close
// the alarm. Call it once, after New and before the first Observe/Tick.
//
// A restored condition keeps its Key and Since and goes on as if the engine
// had never stopped: readings clear it or keep it without a new Raised, and
// a first level held too long counts from Since. Its grade is recomputed by
// the current policy (a GradeChanged when that differs from the journal's);
// votes and counts are recomputed from the restored point conditions (the
// normal Raised/GradeChanged/Cleared where they disagree). A source's grade
// starts at the most severe grade the journal holds for it, so only a real
// difference is reported as SourceGradeChanged. Events of another type and
// a second event for a Key already active are ignored.
func (e *Engine) Restore(active []Event, now time.Time, out []Event) []Event {
	if !timeOK(now) {
		e.stats.Invalid++
		return out
	}
	t := now.UnixNano()
	for _, ss := range e.sites {
		ss.occ = t
	}
	touched := map[*sourceState]bool{}
	journalGrade := map[*sourceState]protocol.Grade{}
	type goneSource struct{ site, source string }
	var gone []goneSource
	goneGrade := map[goneSource]protocol.Grade{}

	for i := range active {
		ev := &active[i]
		if ev.Type != Raised && ev.Type != GradeChanged {
			continue
		}
		var s *sourceState
		if ss := e.byID[ev.Site]; ss != nil {
			s = ss.byID[ev.Source]
		}
		if s == nil {
			k := goneSource{ev.Site, ev.Source}
			if _, seen := goneGrade[k]; !seen {
				gone = append(gone, k)
			}
			goneGrade[k] = max(goneGrade[k], validGrade(ev.Grade))
			out = clearUnplaced(ev, "source_gone", now, out)
			continue
		}
		journalGrade[s] = max(journalGrade[s], validGrade(ev.Grade))
		touched[s] = true
		p, c, why := s.place(ev)
		if c == nil {
			out = clearUnplaced(ev, why, now, out)
			continue
		}
		if c.active {
			continue // the journal gave this alarm twice; the first one stands
		}
		out = e.restoreCond(s, p, c, ev, t, now, out)
	}

	// Recompute votes and counts, then report only what differs from the
	// journal's view of each source.
	for _, ss := range e.sites {
		for _, s := range ss.sources {
			if !touched[s] {
				continue
			}
			s.grade = journalGrade[s]
			out = e.evalSource(s, t, now, out)
			out = s.report(now, out)
		}
	}
	for _, k := range gone {
		if g := goneGrade[k]; g != protocol.None {
			out = append(out, Event{Type: SourceGradeChanged, Time: now, Site: k.site, Source: k.source,
				Key: k.site + "/" + k.source, Grade: protocol.None, PrevGrade: g, OccurredAt: now,
				Facts: protocol.AlarmFacts{Reason: ReasonSourceRemoved, SourceName: k.source}})
		}
	}
	return out
}

// place finds the condition a journal event names in source s: its point
// (nil for votes and counts) and its state, or nil and why not.
func (s *sourceState) place(ev *Event) (*pointState, *cond, string) {
	var p *pointState
	var c *cond
	switch ev.Condition {
	case VoteFirst, VoteSecond:
		for _, v := range s.votes {
			vc := v.first
			if ev.Condition == VoteSecond {
				vc = v.second
			}
			if s.key(vc) == ev.Key {
				c = vc
			}
		}
		if c == nil {
			return nil, nil, "vote_gone"
		}
	case ManyFirst:
		c = s.manyFirst
	case ManySecond:
		c = s.manySecond
	default:
		sl := slices.Index(slotCondition[:], ev.Condition)
		if sl < 0 {
			return nil, nil, "unknown_condition"
		}
		if p = s.byID[ev.Point]; p == nil {
			return nil, nil, "point_gone"
		}
		if c = p.conds[sl]; c == nil {
			return nil, nil, "limit_gone"
		}
	}
	if s.key(c) != ev.Key {
		return nil, nil, "key_mismatch"
	}
	return p, c, ""
}

// restoreCond makes c active as the journal event ev says, graded by the
// current policy.
func (e *Engine) restoreCond(s *sourceState, p *pointState, c *cond, ev *Event, t int64, now time.Time, out []Event) []Event {
	since := ev.Since
	if !timeOK(since) {
		since = now
	}
	raised := ev.Time
	if !timeOK(raised) || raised.After(now) {
		raised = now
	}
	c.since, c.raisedAt, c.raiseValue = since.UnixNano(), raised.UnixNano(), ev.Value
	c.pendingOn, c.clearingOn = false, false
	if sl := slices.Index(slotCondition[:slotLL+1], c.kind); sl >= 0 && p != nil && !finite(c.raiseValue) {
		c.raiseValue = p.limit[sl] // rising is then measured from the limit
	}
	switch c.kind {
	case H, L:
		// Held counts from Since, so time spent down counts too.
		rule := s.policy.FirstLevelHeld
		c.held = rule != nil && rule.Grade != protocol.None && t-c.since >= int64(rule.For)
	case HH, LL:
		// Rising cannot be seen again from the journal's one value; keep it
		// when the journal's grade shows it.
		c.rising = true
		withRising := s.gradeOf(p, c)
		c.rising = false
		c.rising = withRising > s.gradeOf(p, c) && ev.Grade >= withRising
	}
	if c.kind == VoteFirst || c.kind == VoteSecond || c.kind == ManyFirst || c.kind == ManySecond {
		c.points = slices.Clone(ev.Points)
	}

	facts := func(reason string) protocol.AlarmFacts {
		if p != nil {
			return p.facts(reason)
		}
		f := protocol.AlarmFacts{Reason: reason, SourceName: s.name}
		for _, v := range s.votes {
			if v.first == c || v.second == c {
				f.Name = v.name
			}
		}
		return f
	}
	g := s.gradeOf(p, c)
	last := *ev
	last.Points = slices.Clone(ev.Points)
	last.Chattering = false
	if last.Facts.Reason == "" {
		// A journal without facts: say the condition from the model, with
		// its names, as the raise would have.
		last.Facts = s.restoredFacts(p, c, ev, t)
	}
	if g == protocol.None {
		// The policy no longer grades this condition: it is not an alarm.
		last.Type, last.Time, last.Grade, last.PrevGrade = Cleared, now, protocol.None, ev.Grade
		last.OccurredAt, last.Facts = now, facts(ReasonPolicyOff)
		saved := c.raises
		c.reset()
		c.raises = saved
		s.changed = true
		return append(out, last)
	}
	c.active, c.grade = true, g
	c.last = &last
	s.count[g]++
	s.changed = true
	if g == ev.Grade {
		return out
	}
	gc := last
	gc.Type, gc.Time, gc.OccurredAt, gc.Grade, gc.PrevGrade = GradeChanged, now, now, g, ev.Grade
	gc.Facts = facts(ReasonRestoreRegrade)
	gc.Facts.Detail = "policy"
	if c.held && (c.kind == H || c.kind == L) {
		gc.Facts.Detail, gc.Facts.HeldS, gc.Facts.SettingS = "held", secs(t-c.since), s.policy.FirstLevelHeld.For.D().Seconds()
	}
	c.last = &gc
	return append(out, gc)
}

// restoredFacts are the facts of a restored condition's raise, for a
// journal that did not keep them.
func (s *sourceState) restoredFacts(p *pointState, c *cond, ev *Event, t int64) protocol.AlarmFacts {
	if p == nil {
		var f protocol.AlarmFacts
		second := c.kind == VoteSecond || c.kind == ManySecond
		ps := s.points
		f = protocol.AlarmFacts{Reason: ReasonCountMet, SourceName: s.name, Detail: levelDetail(second), Need: int(ev.Limit)}
		for _, v := range s.votes {
			if v.first == c || v.second == c {
				f.Reason, f.Name, ps = ReasonVoteMet, v.name, v.points
			}
		}
		f.Points = pointFacts(ps, ev.Points)
		return f
	}
	var f protocol.AlarmFacts
	switch c.kind {
	case HH, H, L, LL:
		sl := slot(slices.Index(slotCondition[:], c.kind))
		f = p.limitFacts(ReasonLimitExceeded, sl, max(0, t-c.since))
	case Stale:
		f = p.facts(ReasonNoData)
		f.HeldS, f.SettingS = secs(max(0, t-c.since)), secs(p.staleAfter)
	case Stuck:
		f = p.facts(ReasonValueFrozen)
		f.HeldS = secs(max(0, t-c.since))
	case RateRise, RateFall:
		f = p.facts(ReasonRateExceeded)
		f.Detail = "rise"
		if c.kind == RateFall {
			f.Detail = "fall"
		}
	default:
		f = p.facts(ReasonBadQuality)
	}
	return f
}

// clearUnplaced closes a journal alarm the current model has no place for.
func clearUnplaced(ev *Event, why string, now time.Time, out []Event) []Event {
	c := *ev
	c.Type, c.Time, c.Grade, c.PrevGrade = Cleared, now, protocol.None, ev.Grade
	c.Points = slices.Clone(ev.Points)
	c.Chattering = false
	c.OccurredAt = now
	c.Facts = protocol.AlarmFacts{Reason: ReasonUnplaced, Detail: why, Name: ev.Facts.Name, SourceName: ev.Facts.SourceName, Unit: ev.Facts.Unit}
	if c.Facts.Name == "" {
		c.Facts.Name = ev.Point // the journal does not know the name of a point that is gone
	}
	return append(out, c)
}

// validGrade is g when it is a grade an alarm can have, else None.
func validGrade(g protocol.Grade) protocol.Grade {
	if g < protocol.Blue || g > protocol.Red {
		return protocol.None
	}
	return g
}
