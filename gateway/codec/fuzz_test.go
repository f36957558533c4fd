package codec

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

var fuzzTypes = []site.DataType{site.Bool, site.Int16, site.Uint16, site.Int32, site.Uint32, site.Int64, site.Uint64, site.Float32, site.Float64}
var fuzzOrders = []site.ByteOrder{site.ABCD, site.CDAB, site.BADC, site.DCBA, "bogus"}
var fuzzTables = []site.Table{site.HoldingRegisters, site.InputRegisters, site.Coils, site.DiscreteInputs}

// FuzzDecode feeds any mapping choice and any number of registers: Decode
// must return an error or a consistent result, never panic.
func FuzzDecode(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint8(0), int8(-1), 1.0, 0.0, false, 0.0, 100.0, []byte{0x12, 0x34})
	f.Add(uint8(7), uint8(1), uint8(1), int8(-1), 0.1, -5.0, true, 0.0, 4.0, []byte{0x0f, 0xa0, 0, 0})
	f.Add(uint8(1), uint8(2), uint8(0), int8(3), 1.0, 0.0, false, 0.0, 1.0, []byte{0xff})
	f.Fuzz(func(t *testing.T, ti, oi, tbi uint8, b int8, scale, offset float64, loop bool, lo, hi float64, data []byte) {
		m := site.Mapping{
			Table:  fuzzTables[int(tbi)%len(fuzzTables)],
			Type:   fuzzTypes[int(ti)%len(fuzzTypes)],
			Order:  fuzzOrders[int(oi)%len(fuzzOrders)],
			Scale:  &scale,
			Offset: offset,
		}
		if b >= 0 {
			bb := int(b)
			m.Bit = &bb
		}
		if loop {
			m.CurrentLoop = &site.CurrentLoop{RawAt4mA: 4000, RawAt20mA: 20000}
		}
		regs := make([]uint16, len(data)/2)
		for i := range regs {
			regs[i] = binary.BigEndian.Uint16(data[2*i:])
		}
		res, err := Decode(m, site.Range{Min: lo, Max: hi}, regs)
		if err != nil {
			return
		}
		if !res.Quality.Valid() {
			t.Fatalf("invalid quality %q", res.Quality)
		}
		if res.HasValue() && (math.IsNaN(res.Value) || math.IsInf(res.Value, 0)) {
			t.Fatalf("%s result carries non-finite value %v", res.Quality, res.Value)
		}
		if res.Quality == protocol.Bad && res.Reason == "" {
			t.Fatal("bad result without a reason")
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	benches := []struct {
		name string
		m    site.Mapping
		regs []uint16
	}{
		{"uint16-scaled", site.Mapping{Table: site.InputRegisters, Type: site.Uint16, Order: site.ABCD, Scale: f(0.1)}, []uint16{412}},
		{"float32-CDAB", site.Mapping{Table: site.HoldingRegisters, Type: site.Float32, Order: site.CDAB, Scale: f(1)}, []uint16{0, 0x4248}},
		{"float64-DCBA", site.Mapping{Table: site.HoldingRegisters, Type: site.Float64, Order: site.DCBA, Scale: f(1)}, []uint16{0xCDCC, 0xCCCC, 0xCC0C, 0x5940}},
		{"current-loop", site.Mapping{Table: site.InputRegisters, Type: site.Uint16, Order: site.ABCD, Scale: f(1),
			CurrentLoop: &site.CurrentLoop{RawAt4mA: 4000, RawAt20mA: 20000}}, []uint16{8000}},
	}
	rng := site.Range{Min: 0, Max: 1000}
	for _, bc := range benches {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Decode(bc.m, rng, bc.regs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
