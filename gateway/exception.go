package gateway

import (
	"math"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// exceptions filters one device's rows for the points reported by
// exception (site file `report:`): a row goes out when its quality changed,
// its value moved by the deadband or more since it was last sent, or the
// heartbeat passed. Points without `report:` always go out. One per device,
// used by its poll goroutine only.
type exceptions struct {
	rules map[string]*site.Report
	last  map[string]sentReading
}

type sentReading struct {
	value   float64
	quality protocol.Quality
	at      time.Time
}

func newExceptions(points []*site.PointRef) *exceptions {
	e := &exceptions{rules: map[string]*site.Report{}, last: map[string]sentReading{}}
	for _, p := range points {
		if p.Point.Report != nil {
			e.rules[p.Point.ID] = p.Point.Report
		}
	}
	return e
}

// filter returns the rows to send, reusing rows' backing array.
func (e *exceptions) filter(rows []Row, now time.Time) []Row {
	if len(e.rules) == 0 {
		return rows
	}
	out := rows[:0]
	for _, r := range rows {
		rule, ok := e.rules[r.Point]
		if !ok {
			out = append(out, r)
			continue
		}
		v := math.NaN()
		if r.Value != nil {
			v = *r.Value
		}
		prev, sent := e.last[r.Point]
		if sent && r.Quality == prev.quality && now.Sub(prev.at) < rule.Heartbeat.D() && !moved(prev.value, v, rule.Deadband) {
			continue
		}
		e.last[r.Point] = sentReading{value: v, quality: r.Quality, at: now}
		out = append(out, r)
	}
	return out
}

// moved reports whether a value differs from the one last sent by the
// deadband or more (by anything, for a zero deadband); NaN stands for "no
// value".
func moved(prev, v, deadband float64) bool {
	if math.IsNaN(prev) || math.IsNaN(v) {
		return math.IsNaN(prev) != math.IsNaN(v)
	}
	d := math.Abs(v - prev)
	return d > 0 && d >= deadband
}
