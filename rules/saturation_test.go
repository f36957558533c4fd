package rules

import (
	"testing"

	"github.com/hazardwatch/hazardwatch/gateway/codec"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// TestSaturationSameGradingFromEveryPath: a leak that saturates a
// 0–100 ppm NH3 head (HH 80 ppm) raises H, HH and a range fault whether the
// detector is read as a register (over_range above the range) or over a
// 4–20 mA loop (a saturated transmitter at 20.3 mA, NAMUR NE 43), as the
// gateway's codec decodes them. A loop in NE 43's failure band is a sensor
// fault only.
func TestSaturationSameGradingFromEveryPath(t *testing.T) {
	rng := site.Range{Min: 0, Max: 100}
	register := site.Mapping{Table: site.InputRegisters, Type: site.Uint16, Order: site.ABCD}
	loop := site.Mapping{Table: site.InputRegisters, Type: site.Uint16, Order: site.ABCD,
		CurrentLoop: &site.CurrentLoop{RawAt4mA: 4000, RawAt20mA: 20000}}
	for _, tc := range []struct {
		name   string
		m      site.Mapping
		raw    uint16
		wantHH bool
	}{
		{"register 150 ppm", register, 150, true},
		{"4-20 mA at 20.3 mA", loop, 20300, true},
		{"4-20 mA at 21.5 mA, NE 43 failure band", loop, 21500, false},
		{"4-20 mA at 3.2 mA, broken loop", loop, 3200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := codec.Decode(tc.m, rng, []uint16{tc.raw})
			if err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, testSite)
			h.read(0, "g1", 5)
			for s := 1; s <= 4; s++ {
				h.quality(float64(s), "g1", res.Quality, res.Value)
				h.tick(float64(s) + 0.5)
			}
			if count(h.all, Raised, "t/nh3/g1/fault") != 1 {
				t.Errorf("%s (%s %v): no fault raised:\n%s", tc.name, res.Quality, res.Value, dump(h.all))
			}
			if got := count(h.all, Raised, keyHH) == 1 && count(h.all, Raised, keyH) == 1; got != tc.wantHH {
				t.Errorf("%s (%s %v): H and HH raised %v, want %v:\n%s", tc.name, res.Quality, res.Value, got, tc.wantHH, dump(h.all))
			}
			if tc.wantHH && h.e.SourceGrade("t", "nh3") != protocol.Yellow {
				t.Errorf("source grade %v, want yellow (HH)", h.e.SourceGrade("t", "nh3"))
			}
		})
	}
}
