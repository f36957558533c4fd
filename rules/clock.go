package rules

// Gateway clocks are not to be trusted: field gateways run without NTP,
// lag, lead, drift and jump. The engine therefore runs every timer (stale,
// on/off-delays, held, stuck, rate windows, chattering) on the centre's
// clock, and uses a reading's own time only to order a point's readings
// and to measure the time between them. A point's readings are placed on
// the centre's clock by an offset estimate: offset = received − reading
// time, the smallest seen recently (the transit delay is never negative,
// so the smallest is the closest to the clock offset). docs/rules.md
// ("Time") explains the design.

// clockWindow: the offset is the smallest of the last one to two windows,
// so a drifting clock is followed within two windows and a single slow
// message never moves it.
const clockWindow = int64(60e9)

// clock estimates the offset between a gateway's clock and the centre's.
type clock struct {
	known     bool
	off       int64 // received − reading time, ns: the estimate
	cur, prev int64 // smallest offset in the current and the previous window
	winStart  int64 // start of the current window, centre time

	// A gateway whose clock jumps back sends readings that look late (older
	// than the newest, or delayed far more than usual) but arrive steadily
	// with one consistent offset; after a third of stale_after of such
	// readings with no live one in between, the clock is taken to have
	// changed (a backlog's offsets shrink or grow by the replay's pace).
	cand      bool
	candOff   int64
	candStart int64
	candLast  int64 // reading time of the last candidate reading
}

// reset makes off the estimate, as for a first reading.
func (c *clock) reset(off, rc int64) {
	c.known, c.off, c.cur, c.prev, c.winStart = true, off, off, off, rc
	c.cand = false
}

// note feeds the offset of a live reading received at rc.
func (c *clock) note(off, rc int64) {
	if rc-c.winStart >= clockWindow {
		c.prev, c.cur, c.winStart = c.cur, off, rc
	} else if off < c.cur {
		c.cur = off
	}
	c.off = min(c.prev, c.cur)
	c.cand = false
}

// jumped notes a late reading and reports whether the gateway's clock has
// evidently been set back: the late readings have kept one offset (within
// tol) and their own order for at least after of centre time.
func (c *clock) jumped(off, rc, rt, tol, after int64) bool {
	if c.cand && rt > c.candLast && off-c.candOff <= tol && c.candOff-off <= tol {
		c.candLast = rt
		return rc-c.candStart >= after
	}
	c.cand, c.candOff, c.candStart, c.candLast = true, off, rc, rt
	return false
}
