package gateway

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/gateway/codec"
	"github.com/hazardwatch/hazardwatch/site"
)

// DefaultReprobeInterval is how often the holes learnt in a device's
// register map are forgotten and probed again.
const DefaultReprobeInterval = 10 * time.Minute

// holes is what a device taught the gateway about its register map: where
// a coalesced read must not run across (it answered exception 2 or 3 to a
// read spanning unused addresses, or to a long read), and which points it
// refuses outright. Used by the device's poll goroutine only.
type holes struct {
	barriers map[site.Table]map[uint16]bool
	gaps     []Hole           // the ranges behind the barriers, for the commissioning report
	refused  map[string]error // point id → the device's answer
	since    time.Time        // when the map was last probed from scratch
}

// Hole is a range of addresses a device refused to read across, or the
// registers of a point it refuses.
type Hole struct {
	Device string
	Table  site.Table
	From   uint16 // first address refused
	To     uint16 // one past the last
	Point  string // the point whose registers these are; empty for a gap between points
	Err    error  // the device's answer
}

func newHoles(now time.Time) *holes {
	return &holes{barriers: map[site.Table]map[uint16]bool{}, refused: map[string]error{}, since: now}
}

func (h *holes) empty() bool { return len(h.barriers) == 0 && len(h.refused) == 0 }

func (h *holes) addBarrier(t site.Table, at uint16, gap Hole) {
	if h.barriers[t] == nil {
		h.barriers[t] = map[uint16]bool{}
	}
	if !h.barriers[t][at] {
		h.barriers[t][at] = true
		h.gaps = append(h.gaps, gap)
	}
}

// replan plans the device's reads around what it refused.
func (d *deviceState) replan() {
	readable := make([]*site.PointRef, 0, len(d.points))
	for _, p := range d.points {
		if _, bad := d.holes.refused[p.Point.ID]; !bad {
			readable = append(readable, p)
		}
	}
	d.plan = planAround(readable, d.gap, d.holes.barriers)
}

// readResult is the outcome of one read of a device's poll.
type readResult struct {
	read Read
	data []uint16
	err  error
}

// readSplitting performs a planned read; when the device refuses it with
// exception 2 (illegal data address) or 3 (illegal data value), it halves
// the read, down to single points, to find what the device refuses, and
// records the holes. learned reports whether the device's map changed.
func (g *Gateway) readSplitting(ctx context.Context, d *deviceState, r Read, gate attemptGate) (out []readResult, learned bool) {
	data, err := g.readWithRetries(ctx, d, r, gate)
	if err == nil {
		return []readResult{{read: r, data: data}}, false
	}
	code, ok := exceptionCode(err)
	if !ok || (code != 2 && code != 3) {
		return []readResult{{read: r, err: err}}, false
	}
	left, right, ok := split(r)
	if !ok {
		for _, p := range r.Points {
			d.holes.refused[p.Point.ID] = err
		}
		return []readResult{{read: r, err: err}}, true
	}
	lo, _ := g.readSplitting(ctx, d, left, gate)
	hi, _ := g.readSplitting(ctx, d, right, gate)
	d.holes.addBarrier(r.Table, right.Start, Hole{Device: d.dev.ID, Table: r.Table, From: uint16(min(left.End(), int(right.Start))), To: right.Start, Err: err})
	return append(lo, hi...), true
}

// split halves a read's points at an address boundary: points that start
// at the same address stay together. ok is false for a read of one
// address.
func split(r Read) (left, right Read, ok bool) {
	ps := append([]*site.PointRef(nil), r.Points...)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Point.Modbus.Address < ps[j].Point.Modbus.Address })
	var starts []uint16
	for i, p := range ps {
		if i == 0 || p.Point.Modbus.Address != ps[i-1].Point.Modbus.Address {
			starts = append(starts, p.Point.Modbus.Address)
		}
	}
	if len(starts) < 2 {
		return Read{}, Read{}, false
	}
	at := starts[len(starts)/2]
	i := sort.Search(len(ps), func(i int) bool { return ps[i].Point.Modbus.Address >= at })
	return subRead(r.Table, ps[:i]), subRead(r.Table, ps[i:]), true
}

// maybeReprobe forgets a device's holes once ReprobeInterval passed, so a
// device whose firmware or configuration changed is read in full again.
func (g *Gateway) maybeReprobe(d *deviceState, now time.Time) {
	if d.holes.empty() {
		d.holes.since = now // nothing to re-probe; the clock starts at the first hole
		return
	}
	if now.Sub(d.holes.since) < g.cfg.ReprobeInterval {
		return
	}
	g.log.Info("re-probing the addresses the device refused", zap.String("device", d.dev.ID), zap.Int("refused_points", len(d.holes.refused)), zap.Int("gaps", len(d.holes.gaps)))
	d.holes = newHoles(now)
	d.replan()
}

// logHoles reports what a device refuses once it was learnt.
func (g *Gateway) logHoles(d *deviceState) {
	for _, h := range d.holesList() {
		if h.Point != "" {
			g.log.Warn("device refuses a point's registers; the point is comm_fail until the site file or the device is fixed", zap.String("device", d.dev.ID),
				zap.String("point", h.Point), zap.String("registers", fmt.Sprintf("%s %d+%d", h.Table, h.From, h.To-h.From)), zap.String("answer", describe(h.Err)))
		} else {
			g.log.Info("hole in the device's register map: reading around it", zap.String("device", d.dev.ID),
				zap.String("unused", fmt.Sprintf("%s %d..%d", h.Table, h.From, int(h.To)-1)), zap.String("answer", describe(h.Err)))
		}
	}
	g.met.holes.WithLabelValues(d.dev.ID).Set(float64(len(d.holes.refused)))
}

// holesList is what the device refuses, points first, then gaps.
func (d *deviceState) holesList() []Hole {
	var out []Hole
	for _, p := range d.points {
		if err, ok := d.holes.refused[p.Point.ID]; ok {
			m := p.Point.Modbus
			out = append(out, Hole{Device: d.dev.ID, Table: m.Table, From: m.Address, To: m.Address + uint16(max(1, codec.Registers(m))), Point: p.Point.ID, Err: err})
		}
	}
	return append(out, d.holes.gaps...)
}

// Holes lists what the devices refused in the polls so far: points whose
// own registers they refuse, and unused ranges read around. For the
// commissioning report, after PollOnce; not safe while Run polls.
func (g *Gateway) Holes() []Hole {
	var out []Hole
	for _, d := range g.devices {
		out = append(out, d.holesList()...)
	}
	return out
}
