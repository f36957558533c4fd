package gateway

import (
	"fmt"
	"testing"

	"github.com/hazardwatch/hazardwatch/site"
)

func pt(id string, table site.Table, addr uint16, typ site.DataType) *site.PointRef {
	return &site.PointRef{Point: &site.Point{ID: id, Modbus: site.Mapping{Table: table, Address: addr, Type: typ}}}
}

func describePlan(reads []Read) string {
	s := ""
	for _, r := range reads {
		s += fmt.Sprintf("%s %d+%d [", r.Table, r.Start, r.Count)
		for i, p := range r.Points {
			if i > 0 {
				s += " "
			}
			s += p.Point.ID
		}
		s += "] "
	}
	return s
}

func TestPlan(t *testing.T) {
	H, I, C := site.HoldingRegisters, site.InputRegisters, site.Coils
	cases := []struct {
		name   string
		points []*site.PointRef
		maxGap int
		want   string
	}{
		{"empty", nil, 8, ""},
		{"neighbours merge", []*site.PointRef{pt("b", H, 2, site.Float32), pt("a", H, 0, site.Float32), pt("c", H, 4, site.Float32)}, 0,
			"holding 0+6 [a b c] "},
		{"gap within max_gap merges", []*site.PointRef{pt("a", H, 0, site.Float32), pt("b", H, 10, site.Float32)}, 8,
			"holding 0+12 [a b] "},
		{"gap over max_gap splits", []*site.PointRef{pt("a", H, 0, site.Float32), pt("b", H, 11, site.Float32)}, 8,
			"holding 0+2 [a] holding 11+2 [b] "},
		{"tables apart", []*site.PointRef{pt("i", I, 0, site.Uint16), pt("h", H, 0, site.Uint16), pt("c", C, 0, site.Bool)}, 8,
			"coil 0+1 [c] holding 0+1 [h] input 0+1 [i] "},
		{"125 register limit", []*site.PointRef{pt("a", H, 0, site.Float64), pt("b", H, 122, site.Float64), pt("c", H, 123, site.Uint16)}, 124,
			"holding 0+4 [a] holding 122+4 [b c] "},
		{"exactly 125 fits", []*site.PointRef{pt("a", H, 0, site.Uint16), pt("b", H, 124, site.Uint16)}, 124,
			"holding 0+125 [a b] "},
		{"shared register", []*site.PointRef{pt("x", H, 5, site.Uint16), pt("y", H, 5, site.Uint16)}, 0,
			"holding 5+1 [x y] "},
		{"bits up to 2000", []*site.PointRef{pt("a", C, 0, site.Bool), pt("b", C, 100, site.Bool), pt("c", C, 2000, site.Bool)}, 124,
			"coil 0+101 [a b] coil 2000+1 [c] "},
		{"top of address space", []*site.PointRef{pt("a", H, 65532, site.Float64)}, 8,
			"holding 65532+4 [a] "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := describePlan(Plan(c.points, c.maxGap))
			if got != c.want {
				t.Fatalf("Plan = %q\nwant   %q", got, c.want)
			}
		})
	}
}

func TestPlanCoversEveryPoint(t *testing.T) {
	var points []*site.PointRef
	for i := 0; i < 300; i++ {
		points = append(points, pt(fmt.Sprint(i), site.HoldingRegisters, uint16(i*3%700), site.Float32))
	}
	reads := Plan(points, 8)
	seen := 0
	for _, r := range reads {
		if r.Count > MaxRegistersPerRead {
			t.Fatalf("read of %d registers", r.Count)
		}
		for _, p := range r.Points {
			if _, err := r.Slice(make([]uint16, r.Count), p.Point.Modbus); err != nil {
				t.Fatal(err)
			}
			seen++
		}
	}
	if seen != len(points) {
		t.Fatalf("plan covers %d of %d points", seen, len(points))
	}
}
