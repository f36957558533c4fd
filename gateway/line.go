package gateway

import (
	"context"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/site"
)

// line is one Modbus line and its scheduler: a serial port, or a serial
// device server reached by RTU over TCP, shared by its units; or one
// Modbus TCP device alone. One goroutine polls all units of a line, one
// request at a time, so the line's requests never interleave.
//
// Fairness: each unit keeps its own poll interval, timeout, retries and
// backoff. A unit that stopped answering is probed once per backoff
// period, one attempt, and only when its timeout fits before the next
// healthy unit of the line is due (give or take half that unit's
// interval); a retry of any unit is made on the same terms. So an absent
// or slow unit never pushes a healthy unit's poll out of its interval.
type line struct {
	name  string
	units []*deviceState
	// pause is the silence kept between two requests on the line.
	pause time.Duration
	last  time.Time // end of the last request
}

// attemptGate tells a poll whether one more request attempt (a retry
// when retry is set) may go on the line now.
type attemptGate func(retry bool) bool

func always(bool) bool { return true }

// newLines groups devices into lines: RTU devices by serial port, RTU over
// TCP devices by address; every TCP device is a line of its own.
func newLines(devs []*deviceState) []*line {
	byKey := map[string]*line{}
	var out []*line
	for _, d := range devs {
		key := "tcp " + d.dev.ID
		switch d.dev.Transport {
		case site.TransportRTU:
			key = "rtu " + d.dev.Serial.Port
		case site.TransportRTUOverTCP:
			key = "rtu_over_tcp " + d.dev.Address
		}
		l, ok := byKey[key]
		if !ok {
			l = &line{name: key}
			byKey[key] = l
			out = append(out, l)
		}
		l.units = append(l.units, d)
		l.pause = max(l.pause, d.dev.PauseBetweenRequests.D())
		d.line = l
	}
	return out
}

// beforeRequest keeps the line's pause between requests.
func (l *line) beforeRequest() {
	if l.pause > 0 && !l.last.IsZero() {
		if d := time.Until(l.last.Add(l.pause)); d > 0 {
			time.Sleep(d)
		}
	}
}

func (l *line) afterRequest() { l.last = time.Now() }

// deadline is the latest time the line may stay busy without pushing a
// healthy unit other than u out of its interval.
func (l *line) deadline(u *deviceState) time.Time {
	var dl time.Time
	for _, v := range l.units {
		if v == u || v.fails > 0 {
			continue
		}
		t := v.next.Add(v.interval / 2)
		if dl.IsZero() || t.Before(dl) {
			dl = t
		}
	}
	return dl
}

// fits reports whether a request of u that takes its full timeout would
// end before the line's deadline for u.
func (l *line) fits(u *deviceState, now time.Time) bool {
	dl := l.deadline(u)
	return dl.IsZero() || !now.Add(u.timeout).After(dl)
}

// pick is the unit to poll next: the earliest due; at equal times a
// healthy unit before one that is failing.
func (l *line) pick() *deviceState {
	us := append([]*deviceState(nil), l.units...)
	sort.SliceStable(us, func(i, j int) bool {
		if !us[i].next.Equal(us[j].next) {
			return us[i].next.Before(us[j].next)
		}
		return us[i].fails == 0 && us[j].fails > 0
	})
	return us[0]
}

// run polls the line's units until ctx is done.
func (g *Gateway) runLine(ctx context.Context, l *line) {
	now := time.Now()
	for _, u := range l.units {
		u.next = now
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		u := l.pick()
		if d := time.Until(u.next); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		start := time.Now()
		if u.fails > 0 && !l.fits(u, start) {
			// Probing the absent unit now would make a healthy one late:
			// try again right after the next healthy poll, when the line
			// has the most room. A timeout too long for any room is let
			// through once per MaxBackoff, and said so.
			if u.deferred.IsZero() {
				u.deferred = start
			}
			if start.Sub(u.deferred) < g.cfg.MaxBackoff {
				u.next = l.deadline(u).Add(-u.interval / 2).Add(time.Millisecond)
				continue
			}
			g.log.Warn("probing an absent device although its timeout does not fit between the polls of the healthy devices on its line; lower its timeout",
				zap.String("device", u.dev.ID), zap.String("line", l.name), zap.Duration("timeout", u.timeout))
		}
		u.deferred = time.Time{}
		gate := func(retry bool) bool {
			if !retry {
				return true
			}
			// No retries for a unit already known absent; a healthy
			// unit's retry only when it fits.
			return u.fails == 0 && l.fits(u, time.Now())
		}
		rows, failed, err := g.pollDevice(ctx, u, gate)
		if ctx.Err() != nil {
			return
		}
		g.emit(u, rows, start)
		g.statusMu.Lock()
		u.statusFails, u.statusRefused = u.fails, len(u.holes.refused)
		if failed {
			u.statusFails++
		}
		g.statusMu.Unlock()
		if failed {
			u.fails++
			delay := backoff(u.interval, g.cfg.MaxBackoff, u.fails)
			u.next = start.Add(delay)
			g.log.Warn("device not answering; backing off", zap.String("device", u.dev.ID), zap.Int("failures", u.fails), zap.Duration("next_poll_in", delay), zap.Error(err))
			continue
		}
		if u.fails > 0 {
			g.log.Info("device answering again", zap.String("device", u.dev.ID), zap.Int("after_failures", u.fails))
			u.fails = 0
			u.next = start
		}
		if err != nil {
			g.log.Warn("device poll partly failed", zap.String("device", u.dev.ID), zap.Error(err))
		}
		// Keep the cadence of the slots; skip slots a slow poll missed
		// rather than bunching them up.
		u.next = u.next.Add(u.interval)
		if now := time.Now(); u.next.Before(now) {
			u.next = now.Add(u.interval - now.Sub(u.next)%u.interval)
		}
	}
}
