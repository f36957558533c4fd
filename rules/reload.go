package rules

import (
	"fmt"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// Reload replaces the model with sites while running. A point that still
// exists (same site, source and point id) keeps its state: its last value,
// history, delays under way and active conditions, re-graded by the new
// policy. A condition whose point, limit, vote or source is gone is cleared
// with a Cleared event, and a source that is gone reports None. On error
// the engine is unchanged.
func (e *Engine) Reload(sites []*site.Site, now time.Time, out []Event) ([]Event, error) {
	if !timeOK(now) {
		return out, fmt.Errorf("rules: reload at impossible time %s", now)
	}
	nsites, nbyID, err := build(sites)
	if err != nil {
		return out, err
	}
	t := now.UnixNano()
	for _, ss := range e.sites {
		ss.occ = t
	}
	for _, ss := range nsites {
		ss.occ = t
	}

	// Carry state over to the new model; clear what has no place in it.
	oldGrade := map[*sourceState]protocol.Grade{}
	for _, ss := range e.sites {
		nss := nbyID[ss.id]
		for _, s := range ss.sources {
			var ns *sourceState
			if nss != nil {
				ns = nss.byID[s.id]
			}
			for _, p := range s.points {
				var np *pointState
				if ns != nil {
					np = ns.byID[p.id]
				}
				out = transferPoint(p, np, now, out)
			}
			if ns == nil {
				out = clearGone(s, s.manyFirst, now, out)
				out = clearGone(s, s.manySecond, now, out)
				for _, v := range s.votes {
					out = clearGone(s, v.first, now, out)
					out = clearGone(s, v.second, now, out)
				}
				s.changed = false
				if s.grade != protocol.None {
					out = append(out, Event{Type: SourceGradeChanged, Time: now, Site: ss.id, Source: s.id,
						Key: ss.id + "/" + s.id, Grade: protocol.None, PrevGrade: s.grade, OccurredAt: now,
						Facts: protocol.AlarmFacts{Reason: ReasonSourceRemoved, SourceName: s.name}})
				}
				continue
			}
			oldGrade[ns] = s.grade
			*ns.manyFirst = *s.manyFirst
			*ns.manySecond = *s.manySecond
			for _, v := range s.votes {
				var nv *voteState
				for _, x := range ns.votes {
					if x.cfg.ID == v.cfg.ID {
						nv = x
					}
				}
				if nv == nil {
					out = clearGone(s, v.first, now, out)
					out = clearGone(s, v.second, now, out)
					continue
				}
				*nv.first, *nv.second = *v.first, *v.second
			}
		}
	}

	// Count what carried over, re-grade it by the new policy, then
	// re-evaluate the sources and report their grades.
	for _, nss := range nsites {
		for _, ns := range nss.sources {
			ns.grade = oldGrade[ns]
			ns.count = [protocol.Red + 1]int{}
			countCond := func(c *cond) {
				if c != nil && c.active {
					ns.count[c.grade]++
				}
			}
			for _, p := range ns.points {
				for _, c := range p.conds {
					countCond(c)
				}
			}
			countCond(ns.manyFirst)
			countCond(ns.manySecond)
			for _, v := range ns.votes {
				countCond(v.first)
				countCond(v.second)
			}
			for _, p := range ns.points {
				for _, c := range p.conds {
					if c == nil || !c.active {
						continue
					}
					if g := ns.gradeOf(p, c); g != c.grade {
						ev := ns.event(c, now)
						ev.Value, ev.Since = p.value, at(c.since, now)
						ev.Facts = p.facts(ReasonPolicyChanged)
						out = ns.regrade(c, g, ev, out)
					}
				}
			}
			out = e.evalSource(ns, t, now, out)
			out = ns.report(now, out)
		}
	}
	e.sites, e.byID = nsites, nbyID
	return out, nil
}

// transferPoint moves a point's state to its counterpart in the new model
// (np, nil when the point is gone), clearing conditions that have no
// counterpart.
func transferPoint(p, np *pointState, now time.Time, out []Event) []Event {
	if np != nil {
		np.seen, np.lastTime = p.seen, p.lastTime
		np.dataKnown, np.lastData = p.dataKnown, p.lastData
		np.hasValue, np.value, np.changedAt = p.hasValue, p.value, p.changedAt
		np.hist = p.hist
		np.clk, np.late, np.saturated = p.clk, p.late, p.saturated
	}
	for sl, c := range p.conds {
		if c == nil {
			continue
		}
		if np != nil && np.conds[sl] != nil {
			*np.conds[sl] = *c
			continue
		}
		out = clearGone(p.src, c, now, out)
	}
	return out
}

// clearGone clears an active condition whose configuration was removed.
func clearGone(s *sourceState, c *cond, now time.Time, out []Event) []Event {
	if c == nil || !c.active {
		return out
	}
	ev := s.event(c, now)
	ev.Since = at(c.since, now)
	ev.Facts = protocol.AlarmFacts{Reason: ReasonRemoved, SourceName: s.name, Name: c.part}
	if p := s.byID[c.point]; p != nil {
		ev.Facts.Name, ev.Facts.Unit = p.name, p.cfg.Unit
	}
	for _, v := range s.votes {
		if v.first == c || v.second == c {
			ev.Facts.Name = v.name
		}
	}
	return s.clear(c, ev, out)
}
