package rules

import (
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// Events carry facts, not prose: the words for people are rendered at the
// edges (console, terminal, receivers) from the catalogs of internal/i18n,
// in each reader's language. The reasons below are the catalogs' keys;
// docs/alerting.md lists them with the facts each one carries.
const (
	ReasonLimitExceeded  = "limit_exceeded"  // H/HH/L/LL raised
	ReasonBackInside     = "back_inside"     // H/HH/L/LL cleared past limit ∓ deadband
	ReasonRestoreValue   = "restore_value"   // power-off HH cleared below the restore value
	ReasonHeldTooLong    = "held_too_long"   // first level held past first_level_held
	ReasonStillRising    = "still_rising"    // second level still moving away (Detail "fall" for LL)
	ReasonRateExceeded   = "rate_exceeded"   // roc raised (Detail "rise"/"fall")
	ReasonRateNormal     = "rate_normal"     // roc cleared
	ReasonNoData         = "no_data"         // stale raised
	ReasonDataResumed    = "data_resumed"    // stale cleared
	ReasonSaturated      = "saturated"       // fault: above the measuring range (the limits are raised too)
	ReasonOverRange      = "over_range"      // fault: below the measuring range
	ReasonBadQuality     = "bad_quality"     // fault: quality bad
	ReasonInvalidValue   = "invalid_value"   // fault: NaN or ±Inf
	ReasonSensorOK       = "sensor_ok"       // fault cleared
	ReasonValueFrozen    = "value_frozen"    // stuck raised
	ReasonValueChanged   = "value_changed"   // stuck cleared
	ReasonVoteMet        = "vote_met"        // vote raised or its points changed (Detail "first"/"second")
	ReasonVoteUnmet      = "vote_unmet"      // vote cleared
	ReasonCountMet       = "count_met"       // many points raised or changed
	ReasonCountUnmet     = "count_unmet"     // many points cleared
	ReasonSourceRaised   = "source_raised"   // source grade up; Cause: the worst condition
	ReasonSourceLowered  = "source_lowered"  // source grade down
	ReasonSourceNormal   = "source_normal"   // source back to normal
	ReasonPolicyChanged  = "policy_changed"  // reload re-graded a condition
	ReasonRemoved        = "removed"         // reload removed a point, limit or vote
	ReasonSourceRemoved  = "source_removed"  // reload removed a source
	ReasonRestoreRegrade = "restore_regrade" // restart: re-graded (Detail "held" or "policy")
	ReasonPolicyOff      = "policy_off"      // restart: the policy no longer grades it
	ReasonUnplaced       = "unplaced"        // restart: no place in the model (Detail says why)
	ReasonLateEnd        = "late_data_end"   // a late excursion still on where the late data ends
)

// facts starts the facts of a point's event.
func (p *pointState) facts(reason string) protocol.AlarmFacts {
	return protocol.AlarmFacts{Reason: reason, SourceName: p.src.name, Name: p.name, Unit: p.cfg.Unit}
}

// limitName names a limit as the site file and the standards do.
func (p *pointState) limitName(sl slot) string {
	if sl == slotHH && p.cfg.PowerOff {
		return "power_off"
	}
	return string(slotCondition[sl])
}

func (p *pointState) limitFacts(reason string, sl slot, held int64) protocol.AlarmFacts {
	f := p.facts(reason)
	f.LimitName, f.HeldS = p.limitName(sl), secs(held)
	return f
}

// secs is a duration in nanoseconds as seconds.
func secs(ns int64) float64 { return time.Duration(ns).Seconds() }

// fp is a finite number as a fact, nil for NaN or ±Inf (JSON cannot
// carry them).
func fp(v float64) *float64 {
	if !finite(v) {
		return nil
	}
	return &v
}

func levelDetail(second bool) string {
	if second {
		return "second"
	}
	return "first"
}

// pointFacts lists points with their names and values.
func pointFacts(ps []*pointState, ids []string) []protocol.PointFact {
	out := make([]protocol.PointFact, 0, len(ids))
	for _, id := range ids {
		for _, p := range ps {
			if p.id == id {
				f := protocol.PointFact{ID: id, Name: p.name, Unit: p.cfg.Unit}
				if p.hasValue && finite(p.value) {
					f.Value = p.value
				}
				if p.saturated {
					f.Condition = ReasonSaturated
				}
				out = append(out, f)
				break
			}
		}
	}
	return out
}
