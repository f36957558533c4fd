package rules

import (
	"errors"
	"fmt"
	"math"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// build checks sites and lays out their state. Sites come from site.Load,
// which validates them strictly; build checks again what the engine relies
// on, so a site built in code cannot make it misbehave.
func build(sites []*site.Site) ([]*siteState, map[string]*siteState, error) {
	var errs []error
	out := make([]*siteState, 0, len(sites))
	byID := make(map[string]*siteState, len(sites))
	for i, s := range sites {
		if s == nil {
			errs = append(errs, fmt.Errorf("rules: sites[%d] is nil", i))
			continue
		}
		if s.ID == "" {
			errs = append(errs, fmt.Errorf("rules: sites[%d] has no id", i))
			continue
		}
		if _, dup := byID[s.ID]; dup {
			errs = append(errs, fmt.Errorf("rules: site id %q is given twice", s.ID))
			continue
		}
		ss, err := buildSite(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, ss)
		byID[s.ID] = ss
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return out, byID, nil
}

func buildSite(s *site.Site) (*siteState, error) {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("rules: site %q: "+format, append([]any{s.ID}, args...)...))
	}
	devices := map[string]*site.Device{}
	for gi := range s.Gateways {
		for di := range s.Gateways[gi].Devices {
			d := &s.Gateways[gi].Devices[di]
			devices[d.ID] = d
		}
	}
	ss := &siteState{id: s.ID, cfg: s, points: map[string]*pointState{}, byID: map[string]*sourceState{}}
	for si := range s.Sources {
		src := &s.Sources[si]
		if src.ID == "" {
			fail("sources[%d] has no id", si)
			continue
		}
		if ss.byID[src.ID] != nil {
			fail("source id %q is used twice", src.ID)
			continue
		}
		pol := s.Effective(src)
		if err := checkPolicy(&pol); err != nil {
			fail("source %q: %v", src.ID, err)
			continue
		}
		st := &sourceState{
			site: ss, cfg: src, id: src.ID, name: orID(src.Name, src.ID),
			policy: pol, escalate: pol.Escalates(src.Grade), coal: src.Type.IsCoalMine(),
			byID: map[string]*pointState{},
		}
		st.manyFirst = &cond{kind: ManyFirst}
		st.manySecond = &cond{kind: ManySecond}
		for pi := range src.Points {
			pt := &src.Points[pi]
			if pt.ID == "" {
				fail("source %q: points[%d] has no id", src.ID, pi)
				continue
			}
			if ss.points[pt.ID] != nil {
				fail("point id %q is used twice", pt.ID)
				continue
			}
			p, err := newPoint(st, pt, devices[pt.Modbus.Device])
			if err != nil {
				fail("source %q: %v", src.ID, err)
				continue
			}
			ss.points[pt.ID] = p
			st.byID[pt.ID] = p
			st.points = append(st.points, p)
		}
		seen := map[string]bool{}
		for vi := range src.Votes {
			v := &src.Votes[vi]
			if v.ID == "" || seen[v.ID] {
				fail("source %q: votes[%d] has an empty or repeated id %q", src.ID, vi, v.ID)
				continue
			}
			seen[v.ID] = true
			vs := &voteState{cfg: v, name: orID(v.Name, v.ID),
				first:  &cond{kind: VoteFirst, part: v.ID},
				second: &cond{kind: VoteSecond, part: v.ID}}
			ok := v.K >= 1 && v.K <= len(v.Points)
			if !ok {
				fail("source %q: vote %q: k %d is not 1 to its %d points", src.ID, v.ID, v.K, len(v.Points))
			}
			in := map[string]bool{}
			for _, id := range v.Points {
				p := st.byID[id]
				if p == nil || in[id] {
					fail("source %q: vote %q: point %q is not a point of the source or is listed twice", src.ID, v.ID, id)
					ok = false
					continue
				}
				in[id] = true
				vs.points = append(vs.points, p)
			}
			if ok {
				st.votes = append(st.votes, vs)
			}
		}
		ss.sources = append(ss.sources, st)
		ss.byID[src.ID] = st
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ss, nil
}

func orID(name, id string) string {
	if name == "" {
		return id
	}
	return name
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func checkPolicy(p *site.Policy) error {
	for _, g := range []*protocol.Grade{p.FirstLevel, p.SecondLevel, p.Stale, p.Fault, p.RateOfChange,
		p.SecondLevelRising, p.PowerOff, p.VoteFirstLevel, p.VoteSecondLevel} {
		if g != nil && !g.Valid() {
			return fmt.Errorf("policy has an invalid grade %d", uint8(*g))
		}
	}
	if h := p.FirstLevelHeld; h != nil && (h.For <= 0 || !h.Grade.Valid()) {
		return fmt.Errorf("policy first_level_held needs a positive for and a valid grade")
	}
	for _, c := range []*site.CountRule{p.FirstLevelPoints, p.SecondLevelPoints} {
		if c != nil && (c.Count < 1 || !c.Grade.Valid()) {
			return fmt.Errorf("policy point count rule needs a count of at least 1 and a valid grade")
		}
	}
	return nil
}

// newPoint resolves a point's settings: its own where the site file gives
// them, else the defaults of its kind (DefaultsFor) and device.
func newPoint(src *sourceState, pt *site.Point, dev *site.Device) (*pointState, error) {
	r := pt.Range
	if !finite(r.Min) || !finite(r.Max) || r.Min >= r.Max {
		return nil, fmt.Errorf("point %q: range [%g, %g] must be finite with min below max", pt.ID, r.Min, r.Max)
	}
	d := DefaultsFor(pt.Kind)
	p := &pointState{src: src, cfg: pt, id: pt.ID, name: orID(pt.Name, pt.ID)}
	p.gas, p.top = pt.Kind.IsGas(), r.Max
	p.deadband = d.DeadbandPercent / 100 * r.Span()
	explicit := pt.Deadband != nil
	if explicit {
		p.deadband = *pt.Deadband
	}
	if !finite(p.deadband) || p.deadband < 0 {
		return nil, fmt.Errorf("point %q: deadband %g must be a number ≥ 0", pt.ID, p.deadband)
	}
	p.onDelay, p.offDelay = int64(d.OnDelay), int64(d.OffDelay)
	if pt.OnDelay != nil {
		p.onDelay = int64(*pt.OnDelay)
	}
	if pt.OffDelay != nil {
		p.offDelay = int64(*pt.OffDelay)
	}
	p.staleAfter = int64(staleAfterOn(pt, dev))
	if pt.StuckAfter != nil {
		p.stuckAfter = int64(*pt.StuckAfter)
	}
	p.window = int64(site.DefaultROCWindow)
	if roc := pt.RateOfChange; roc != nil {
		if roc.Window > 0 {
			p.window = int64(roc.Window)
		}
		if roc.Rise != nil {
			p.rise = *roc.Rise
		}
		if roc.Fall != nil {
			p.fall = *roc.Fall
		}
	}
	if p.onDelay < 0 || p.offDelay < 0 || p.staleAfter <= 0 || p.stuckAfter < 0 {
		return nil, fmt.Errorf("point %q: delays must not be negative and stale_after must be positive", pt.ID)
	}
	if !finite(p.rise) || !finite(p.fall) || p.rise < 0 || p.fall < 0 {
		return nil, fmt.Errorf("point %q: rate_of_change rise and fall must be positive numbers", pt.ID)
	}

	lims := [4]*float64{pt.Limits.HH, pt.Limits.H, pt.Limits.L, pt.Limits.LL}
	for sl, v := range lims {
		if v == nil {
			continue
		}
		if !finite(*v) {
			return nil, fmt.Errorf("point %q: limit %s is %g", pt.ID, slotCondition[sl], *v)
		}
		p.limit[sl] = *v
		p.db[sl] = p.deadband
		if p.gas && !explicit {
			// A gas alarm must clear close to its limit: never more than
			// GasDeadbandLimitPercent of the limit (docs/rules.md).
			p.db[sl] = min(p.deadband, GasDeadbandLimitPercent/100*math.Abs(*v))
		}
		if slot(sl) <= slotH {
			p.clearAt[sl] = *v - p.db[sl]
		} else {
			p.clearAt[sl] = *v + p.db[sl]
		}
		p.conds[sl] = &cond{}
	}
	// A power-off (断电) limit clears only below its restore (复电) value
	// (AQ 6201; shared/domain.md "Coal mines").
	if pt.PowerOff && pt.Limits.HH != nil && pt.Limits.Restore != nil {
		if !finite(*pt.Limits.Restore) {
			return nil, fmt.Errorf("point %q: restore is %g", pt.ID, *pt.Limits.Restore)
		}
		p.clearAt[slotHH] = *pt.Limits.Restore
	}
	if p.rise > 0 {
		p.conds[slotRise] = &cond{}
	}
	if p.fall > 0 {
		p.conds[slotFall] = &cond{}
	}
	p.conds[slotStale] = &cond{}
	p.conds[slotFault] = &cond{}
	if p.stuckAfter > 0 {
		p.conds[slotStuck] = &cond{}
	}
	for sl, c := range p.conds {
		if c != nil {
			c.kind, c.part, c.point = slotCondition[sl], pt.ID, pt.ID
		}
	}
	return p, nil
}
