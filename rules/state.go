package rules

import (
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// slot indexes a point's conditions; limits come first, highest first.
type slot uint8

const (
	slotHH slot = iota
	slotH
	slotL
	slotLL
	slotRise
	slotFall
	slotStale
	slotFault
	slotStuck
	numSlots
)

var slotCondition = [numSlots]Condition{HH, H, L, LL, RateRise, RateFall, Stale, Fault, Stuck}

// cond is the state of one condition: a point's (H, stale …) or a source's
// (vote, count). Times are Unix nanoseconds.
type cond struct {
	kind  Condition
	part  string // point id or vote id; empty for the source-wide counts
	point string // Event.Point
	key   string // built on the condition's first event

	active bool
	grade  protocol.Grade

	// On-delay: the limit has been exceeded since pending.
	pendingOn bool
	pending   int64
	// Off-delay: the value has been back inside since clearing.
	clearingOn bool
	clearing   int64

	since      int64   // when the limit was first exceeded (or the condition became true)
	raisedAt   int64   // when the condition was raised
	raiseValue float64 // the value it was raised with
	held       bool    // a first-level condition held past policy.first_level_held
	rising     bool    // a second-level condition that kept rising

	points []string // source conditions: the points in alarm
	last   *Event   // the latest Raised/GradeChanged event while active
	// raises: when the condition was raised within the last chatterWindow,
	// oldest first; kept across clears to detect chattering.
	raises []int64
}

func (c *cond) reset() {
	c.active, c.grade = false, protocol.None
	c.pendingOn, c.clearingOn = false, false
	c.held, c.rising = false, false
	c.points, c.last = nil, nil
}

// sample is one value of a point's short history.
type sample struct {
	t int64
	v float64
}

// historySize samples spaced at least window/historySize apart cover a
// rate-of-change window without a slice per point or any allocation.
const historySize = 8

// history is a fixed ring of a point's recent good values.
type history struct {
	s       [historySize]sample
	n, head int // head: the oldest
}

func (h *history) push(t int64, v float64, spacing int64) {
	if h.n > 0 && t-h.s[(h.head+h.n-1)%historySize].t < spacing {
		return
	}
	if h.n < historySize {
		h.s[(h.head+h.n)%historySize] = sample{t, v}
		h.n++
		return
	}
	h.s[h.head] = sample{t, v}
	h.head = (h.head + 1) % historySize
}

// oldestSince returns the oldest sample taken at or after from.
func (h *history) oldestSince(from int64) (sample, bool) {
	for i := 0; i < h.n; i++ {
		s := h.s[(h.head+i)%historySize]
		if s.t >= from {
			return s, true
		}
	}
	return sample{}, false
}

// pointState is a monitoring point: its resolved settings and its state.
type pointState struct {
	src  *sourceState
	cfg  *site.Point
	id   string
	name string

	limit   [4]float64 // by slot HH, H, L, LL
	clearAt [4]float64 // a high condition clears below, a low one above
	gas     bool       // a gas detector: saturation raises its limits
	top     float64    // the range's top (Range.Max), kept here to stay in cache
	// Resolved settings, durations in nanoseconds.
	deadband   float64
	onDelay    int64
	offDelay   int64
	staleAfter int64
	stuckAfter int64 // 0: off
	window     int64 // rate-of-change window
	rise, fall float64

	conds [numSlots]*cond

	// Times below are on the centre's clock (Unix ns), except lastTime, the
	// gateway's time of the newest live reading, which only orders readings.
	seen      bool
	lastTime  int64
	clk       clock // the gateway's clock offset as seen from this point
	dataKnown bool
	lastData  int64 // newest reading that came through (not comm_fail), or the first tick
	hasValue  bool
	value     float64 // the newest good value (the range's top while saturated)
	saturated bool    // the newest reading was above the measuring range
	changedAt int64   // when the good value last changed
	hist      history
	late      *lateBuf   // readings that arrived late, waiting to be evaluated
	db        [4]float64 // the deadband of each limit (used on clears only)
}

func (p *pointState) active(sl slot) bool {
	c := p.conds[sl]
	return c != nil && c.active
}

// firstLevel: at H, L, HH or LL; secondLevel: at HH or LL.
func (p *pointState) firstLevel() bool {
	return p.active(slotH) || p.active(slotL) || p.active(slotHH) || p.active(slotLL)
}

func (p *pointState) secondLevel() bool { return p.active(slotHH) || p.active(slotLL) }

// highFirst: at H or HH, what a vote counts at first level.
func (p *pointState) highFirst() bool { return p.active(slotH) || p.active(slotHH) }

// voteState is a k-of-n group of a source.
type voteState struct {
	cfg           *site.Vote
	name          string
	points        []*pointState
	first, second *cond
}

// sourceState is a major hazard source with its conditions and grade.
type sourceState struct {
	site   *siteState
	cfg    *site.Source
	id     string
	name   string
	policy site.Policy
	// escalate: the source's GB 18218 grade is one of the policy's
	// escalate_source_grades; coal: AQ 6201 power-off limits apply.
	escalate bool
	coal     bool

	points     []*pointState
	byID       map[string]*pointState
	votes      []*voteState
	manyFirst  *cond
	manySecond *cond

	count   [protocol.Red + 1]int // active conditions per grade
	grade   protocol.Grade        // the grade last reported
	changed bool                  // a condition changed since the grade was last reported
}

// top is the most severe grade of the source's active conditions.
func (s *sourceState) top() protocol.Grade {
	for g := protocol.Red; g > protocol.None; g-- {
		if s.count[g] > 0 {
			return g
		}
	}
	return protocol.None
}

// siteState is one site's sources and its points by id.
type siteState struct {
	// occ is when the change being evaluated happened (OccurredAt of the
	// events it causes, Unix ns), set before each reading and tick.
	occ     int64
	id      string
	cfg     *site.Site
	points  map[string]*pointState
	sources []*sourceState
	byID    map[string]*sourceState
}

// Times outside these bounds cannot be held as Unix nanoseconds; readings
// and ticks with such times are refused as invalid.
var (
	minTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

func timeOK(t time.Time) bool { return !t.Before(minTime) && !t.After(maxTime) }
