package rules

import (
	"time"

	"github.com/hazardwatch/hazardwatch/site"
)

// Stale-data defaults: a point is stale after StalePolls poll intervals of
// its device without a reading, but never sooner than MinStaleAfter, so one
// late poll on a busy bus is not reported as lost data.
const (
	StalePolls    = 3
	MinStaleAfter = 3 * time.Second
)

// StaleAfter is how long a point of a site may go without a reading before
// its data counts as lost: its stale_after, else StalePolls polls of its
// device, at least MinStaleAfter.
func StaleAfter(s *site.Site, pt *site.Point) time.Duration {
	return staleAfterOn(pt, s.Device(pt.Modbus.Device))
}

// staleAfterOn is StaleAfter for a point polled by dev (nil: unknown, one
// poll a second).
func staleAfterOn(pt *site.Point, dev *site.Device) time.Duration {
	if pt.StaleAfter != nil {
		return pt.StaleAfter.D()
	}
	poll := time.Second
	if dev != nil && dev.PollInterval > 0 {
		poll = dev.PollInterval.D()
	}
	return max(StalePolls*poll, MinStaleAfter)
}

// KindDefaults are the alarm settings a point gets from its measurement kind
// when its site file says nothing.
type KindDefaults struct {
	// DeadbandPercent is the hysteresis as a percentage of the range's span.
	DeadbandPercent float64
	// OnDelay: how long a limit must be exceeded before it raises.
	OnDelay time.Duration
	// OffDelay: how long a condition must be gone before it clears.
	OffDelay time.Duration
}

// DefaultsFor returns the defaults of a kind. The figures are the ISA-18.2 /
// EEMUA 191 recommendations summarised in shared/domain.md ("Alarm
// management"): deadbands flow 5 %, level 5 %, pressure 2 %, temperature
// 1 % of span; delays flow 15 s, level 60 s, pressure 15 s, temperature
// 60 s, the same figure on and off as the ISA-18.2 table gives one delay
// for both. Gas detectors get 2 % of range and 2 s: detection must be fast
// (GB/T 50493 T90 ≤ 30 s, AQ 6201 "seconds") and the detector already
// filters its signal.
func DefaultsFor(k site.Kind) KindDefaults {
	switch k {
	case site.Flow:
		return KindDefaults{5, 15 * time.Second, 15 * time.Second}
	case site.Level:
		return KindDefaults{5, 60 * time.Second, 60 * time.Second}
	case site.Pressure:
		return KindDefaults{2, 15 * time.Second, 15 * time.Second}
	case site.Temperature:
		return KindDefaults{1, 60 * time.Second, 60 * time.Second}
	default: // gas detectors: combustible, toxic, oxygen, methane
		return KindDefaults{2, 2 * time.Second, 2 * time.Second}
	}
}

// GasDeadbandLimitPercent caps a gas detector's default deadband at this
// share of each limit, so a toxic or combustible gas alarm clears close to
// its limit whatever the range: mine CO (0–500 ppm, H 24 ppm) clears below
// 21.6 ppm, not 14 ppm. shared/domain.md ("Alarm management": deadband a
// few % of range; gas detectors: the alarm must clear near the set point).
const GasDeadbandLimitPercent = 10.0

// rocClearFactor: a rate-of-change condition clears once the rate falls
// below this share of its limit, so a rate hovering at the limit does not
// chatter.
const rocClearFactor = 0.8
