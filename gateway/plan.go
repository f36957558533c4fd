package gateway

import (
	"fmt"
	"sort"

	"github.com/hazardwatch/hazardwatch/gateway/codec"
	"github.com/hazardwatch/hazardwatch/site"
)

// Modbus limits on one read request.
const (
	MaxRegistersPerRead = 125
	MaxBitsPerRead      = 2000
)

// Read is one Modbus read request of a plan: Count registers (or bits) of
// Table from Start, covering Points.
type Read struct {
	Table  site.Table
	Start  uint16
	Count  uint16
	Points []*site.PointRef
}

// End is one past the last address read.
func (r Read) End() int { return int(r.Start) + int(r.Count) }

// Slice returns the registers of one point out of the data of this read.
func (r Read) Slice(data []uint16, m site.Mapping) ([]uint16, error) {
	off := int(m.Address) - int(r.Start)
	n := codec.Registers(m)
	if off < 0 || off+n > len(data) {
		return nil, fmt.Errorf("point at %s %d (%d registers) is outside the read %s %d+%d (%d returned)", m.Table, m.Address, n, r.Table, r.Start, r.Count, len(data))
	}
	return data[off : off+n], nil
}

// Plan groups a device's points by table, sorts them by address and
// coalesces neighbours into as few reads as Modbus allows: at most 125
// registers or 2000 bits per read, merging two blocks when the unused run
// between them is at most maxGap addresses. Points that share or overlap
// registers share a read. The result is ordered by table, then address.
func Plan(points []*site.PointRef, maxGap int) []Read { return planAround(points, maxGap, nil) }

// planAround is Plan that never lets a read run across a barrier: an
// address b of a table where the device refused a read spanning from below
// b to b or above (a hole in its register map, or a device that takes
// fewer registers per read).
func planAround(points []*site.PointRef, maxGap int, barriers map[site.Table]map[uint16]bool) []Read {
	if maxGap < 0 {
		maxGap = 0
	}
	byTable := map[site.Table][]*site.PointRef{}
	for _, p := range points {
		t := p.Point.Modbus.Table
		byTable[t] = append(byTable[t], p)
	}
	var reads []Read
	for _, t := range []site.Table{site.Coils, site.DiscreteInputs, site.HoldingRegisters, site.InputRegisters} {
		ps := byTable[t]
		if len(ps) == 0 {
			continue
		}
		limit := MaxRegistersPerRead
		if t.IsBit() {
			limit = MaxBitsPerRead
		}
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].Point.Modbus.Address < ps[j].Point.Modbus.Address })
		var cur *Read
		for _, p := range ps {
			start := int(p.Point.Modbus.Address)
			end := start + codec.Registers(p.Point.Modbus)
			if cur != nil {
				gap := start - cur.End()
				newEnd := max(end, cur.End())
				if gap <= maxGap && newEnd-int(cur.Start) <= limit && !crosses(barriers[t], int(cur.Start), start) {
					cur.Count = uint16(newEnd - int(cur.Start))
					cur.Points = append(cur.Points, p)
					continue
				}
				reads = append(reads, *cur)
			}
			cur = &Read{Table: t, Start: uint16(start), Count: uint16(end - start), Points: []*site.PointRef{p}}
		}
		reads = append(reads, *cur)
	}
	return reads
}

// crosses reports whether a read from start that takes in address to would
// span a barrier b with start < b <= to.
func crosses(barriers map[uint16]bool, start, to int) bool {
	for b := range barriers {
		if int(b) > start && int(b) <= to {
			return true
		}
	}
	return false
}

// subRead is the smallest read covering points, all of one table.
func subRead(t site.Table, points []*site.PointRef) Read {
	start, end := int(points[0].Point.Modbus.Address), 0
	for _, p := range points {
		start = min(start, int(p.Point.Modbus.Address))
		end = max(end, int(p.Point.Modbus.Address)+codec.Registers(p.Point.Modbus))
	}
	return Read{Table: t, Start: uint16(start), Count: uint16(end - start), Points: points}
}
