package codec

import (
	"math"
	"testing"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

func f(v float64) *float64 { return &v }
func bit(b int) *int       { return &b }

// wide is a range that never flags over_range for the raw vectors below.
var wide = site.Range{Min: -1e300, Max: 1e300}

// Known vectors: the registers a device sends for one value in each order.
func TestDecodeTypesAndOrders(t *testing.T) {
	cases := []struct {
		typ   site.DataType
		order site.ByteOrder
		regs  []uint16
		want  float64
	}{
		{site.Uint16, site.ABCD, []uint16{0x1234}, 0x1234},
		{site.Uint16, site.CDAB, []uint16{0x1234}, 0x1234},
		{site.Uint16, site.BADC, []uint16{0x3412}, 0x1234},
		{site.Uint16, site.DCBA, []uint16{0x3412}, 0x1234},
		{site.Int16, site.ABCD, []uint16{0xFFFE}, -2},
		{site.Int16, site.CDAB, []uint16{0xFFFE}, -2},
		{site.Int16, site.BADC, []uint16{0xFEFF}, -2},
		{site.Int16, site.DCBA, []uint16{0xFEFF}, -2},
		{site.Uint32, site.ABCD, []uint16{0x1234, 0x5678}, 0x12345678},
		{site.Uint32, site.CDAB, []uint16{0x5678, 0x1234}, 0x12345678},
		{site.Uint32, site.BADC, []uint16{0x3412, 0x7856}, 0x12345678},
		{site.Uint32, site.DCBA, []uint16{0x7856, 0x3412}, 0x12345678},
		{site.Int32, site.ABCD, []uint16{0xFFFF, 0xFF85}, -123},
		{site.Int32, site.CDAB, []uint16{0xFF85, 0xFFFF}, -123},
		{site.Int32, site.BADC, []uint16{0xFFFF, 0x85FF}, -123},
		{site.Int32, site.DCBA, []uint16{0x85FF, 0xFFFF}, -123},
		{site.Float32, site.ABCD, []uint16{0x3FC0, 0x0000}, 1.5},
		{site.Float32, site.CDAB, []uint16{0x0000, 0x3FC0}, 1.5},
		{site.Float32, site.BADC, []uint16{0xC03F, 0x0000}, 1.5},
		{site.Float32, site.DCBA, []uint16{0x0000, 0xC03F}, 1.5},
		// 64-bit vectors keep to 53 significant bits so float64 holds them exactly.
		{site.Uint64, site.ABCD, []uint16{0x0102, 0x0304, 0x0506, 0x0800}, 0x0102030405060800},
		{site.Uint64, site.CDAB, []uint16{0x0800, 0x0506, 0x0304, 0x0102}, 0x0102030405060800},
		{site.Uint64, site.BADC, []uint16{0x0201, 0x0403, 0x0605, 0x0008}, 0x0102030405060800},
		{site.Uint64, site.DCBA, []uint16{0x0008, 0x0605, 0x0403, 0x0201}, 0x0102030405060800},
		{site.Int64, site.ABCD, []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFC18}, -1000},
		{site.Int64, site.CDAB, []uint16{0xFC18, 0xFFFF, 0xFFFF, 0xFFFF}, -1000},
		{site.Int64, site.BADC, []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0x18FC}, -1000},
		{site.Int64, site.DCBA, []uint16{0x18FC, 0xFFFF, 0xFFFF, 0xFFFF}, -1000},
		{site.Float64, site.ABCD, []uint16{0x4059, 0x0CCC, 0xCCCC, 0xCCCD}, 100.2},
		{site.Float64, site.CDAB, []uint16{0xCCCD, 0xCCCC, 0x0CCC, 0x4059}, 100.2},
		{site.Float64, site.BADC, []uint16{0x5940, 0xCC0C, 0xCCCC, 0xCDCC}, 100.2},
		{site.Float64, site.DCBA, []uint16{0xCDCC, 0xCCCC, 0xCC0C, 0x5940}, 100.2},
	}
	for _, c := range cases {
		t.Run(string(c.typ)+"/"+string(c.order), func(t *testing.T) {
			m := site.Mapping{Table: site.HoldingRegisters, Type: c.typ, Order: c.order, Scale: f(1)}
			got, err := Decode(m, wide, c.regs)
			if err != nil {
				t.Fatal(err)
			}
			if got.Quality != protocol.Good || got.Raw != c.want || got.Value != c.want {
				t.Fatalf("Decode(%04x) = %+v, want raw and value %v, good", c.regs, got, c.want)
			}
			enc := make([]uint16, len(c.regs))
			if err := EncodeRaw(m, c.want, enc); err != nil {
				t.Fatal(err)
			}
			for i := range enc {
				if enc[i] != c.regs[i] {
					t.Fatalf("EncodeRaw(%v) = %04x, want %04x", c.want, enc, c.regs)
				}
			}
		})
	}
}

func TestScaleOffsetAndRange(t *testing.T) {
	m := site.Mapping{Table: site.InputRegisters, Type: site.Uint16, Order: site.ABCD, Scale: f(0.1), Offset: -10}
	rng := site.Range{Min: 0, Max: 100}
	cases := []struct {
		reg     uint16
		value   float64
		quality protocol.Quality
	}{
		{500, 40, protocol.Good},
		{100, 0, protocol.Good},
		{1100, 100, protocol.Good},
		{50, -5, protocol.OverRange},
		{1200, 110, protocol.OverRange},
	}
	for _, c := range cases {
		got, err := Decode(m, rng, []uint16{c.reg})
		if err != nil {
			t.Fatal(err)
		}
		if got.Quality != c.quality || math.Abs(got.Value-c.value) > 1e-9 || !got.HasValue() {
			t.Errorf("Decode(%d) = %+v, want %v %s", c.reg, got, c.value, c.quality)
		}
	}
}

func TestDecimalScaleReadsExactly(t *testing.T) {
	m := site.Mapping{Table: site.InputRegisters, Type: site.Uint16, Order: site.ABCD, Scale: f(0.1)}
	for raw, want := range map[uint16]float64{24: 2.4, 3: 0.3, 415: 41.5, 7: 0.7} {
		got, _ := Decode(m, site.Range{Max: 100}, []uint16{raw})
		if got.Value != want {
			t.Errorf("%d × 0.1 = %v, want exactly %v", raw, got.Value, want)
		}
	}
}

func TestCurrentLoop(t *testing.T) {
	// µA over 0–4 % CH4, as the coal-mine example site reads it.
	m := site.Mapping{Table: site.InputRegisters, Type: site.Uint16, Order: site.ABCD, Scale: f(1),
		CurrentLoop: &site.CurrentLoop{RawAt4mA: 4000, RawAt20mA: 20000}}
	rng := site.Range{Min: 0, Max: 4}
	cases := []struct {
		uA      uint16
		quality protocol.Quality
		value   float64
	}{
		{4000, protocol.Good, 0},
		{12000, protocol.Good, 2},
		{20000, protocol.Good, 4},
		{8000, protocol.Good, 1},
		{3900, protocol.Good, 0},         // 3.9 mA: NE 43 saturation, clamped
		{20400, protocol.OverRange, 4.1}, // 20.4 mA: saturated above the range, as a register path is
		{3799, protocol.Bad, 0},          // below 3.8 mA: broken loop
		{3000, protocol.Bad, 0},
		{0, protocol.Bad, 0},
		{20501, protocol.Bad, 0}, // above 20.5 mA: short circuit
	}
	for _, c := range cases {
		got, err := Decode(m, rng, []uint16{c.uA})
		if err != nil {
			t.Fatal(err)
		}
		if got.Quality != c.quality {
			t.Errorf("%d µA: quality %s, want %s (%s)", c.uA, got.Quality, c.quality, got.Reason)
			continue
		}
		if c.quality == protocol.Bad {
			if got.HasValue() || got.Reason == "" {
				t.Errorf("%d µA: bad reading %+v must carry no value and a reason", c.uA, got)
			}
			continue
		}
		if math.Abs(got.Value-c.value) > 1e-9 {
			t.Errorf("%d µA: value %v, want %v", c.uA, got.Value, c.value)
		}
	}

	// A broken loop encoded at 3.0 mA decodes as bad.
	regs := make([]uint16, 1)
	if err := EncodeCurrent(m, 3.0, regs); err != nil {
		t.Fatal(err)
	}
	if regs[0] != 3000 {
		t.Fatalf("EncodeCurrent(3.0 mA) = %d µA, want 3000", regs[0])
	}
	if got, _ := Decode(m, rng, regs); got.Quality != protocol.Bad {
		t.Fatalf("3.0 mA decoded as %s, want bad", got.Quality)
	}
	if err := EncodeCurrent(site.Mapping{Type: site.Uint16, Scale: f(1)}, 3, regs); err == nil {
		t.Fatal("EncodeCurrent without current_loop: want an error")
	}
}

func TestBits(t *testing.T) {
	coil := site.Mapping{Table: site.Coils, Type: site.Bool}
	for _, want := range []float64{0, 1} {
		regs := []uint16{7}
		if err := Encode(coil, site.Range{Max: 1}, want, regs); err != nil {
			t.Fatal(err)
		}
		got, err := Decode(coil, site.Range{Max: 1}, regs)
		if err != nil || got.Value != want || got.Quality != protocol.Good {
			t.Fatalf("coil %v: got %+v, %v", want, got, err)
		}
	}

	fault := site.Mapping{Table: site.HoldingRegisters, Type: site.Uint16, Order: site.ABCD, Bit: bit(3)}
	got, err := Decode(fault, site.Range{Max: 1}, []uint16{0x0008})
	if err != nil || got.Value != 1 {
		t.Fatalf("bit 3 of 0x0008: %+v %v", got, err)
	}
	got, _ = Decode(fault, site.Range{Max: 1}, []uint16{0xFFF7})
	if got.Value != 0 {
		t.Fatalf("bit 3 of 0xFFF7: %+v", got)
	}
	// Encoding a bit keeps the register's other bits.
	regs := []uint16{0x8001}
	if err := Encode(fault, site.Range{Max: 1}, 1, regs); err != nil || regs[0] != 0x8009 {
		t.Fatalf("set bit 3 of 0x8001 = %04x, %v; want 8009", regs[0], err)
	}
	if err := Encode(fault, site.Range{Max: 1}, 0, regs); err != nil || regs[0] != 0x8001 {
		t.Fatalf("clear bit 3 = %04x, %v; want 8001", regs[0], err)
	}
}

func TestRoundTrip(t *testing.T) {
	types := []site.DataType{site.Int16, site.Uint16, site.Int32, site.Uint32, site.Int64, site.Uint64, site.Float32, site.Float64}
	orders := []site.ByteOrder{site.ABCD, site.CDAB, site.BADC, site.DCBA}
	rng := site.Range{Min: 0, Max: 100}
	for _, typ := range types {
		for _, order := range orders {
			for _, loop := range []bool{false, true} {
				m := site.Mapping{Table: site.HoldingRegisters, Type: typ, Order: order, Scale: f(0.01), Offset: 0}
				if loop {
					m.Scale = f(1)
					m.CurrentLoop = &site.CurrentLoop{RawAt4mA: 4000, RawAt20mA: 20000}
				}
				for _, v := range []float64{0, 12.34, 40, 99.99, 100} {
					regs := make([]uint16, Registers(m))
					if err := Encode(m, rng, v, regs); err != nil {
						t.Fatalf("%s %s loop=%v Encode(%v): %v", typ, order, loop, v, err)
					}
					got, err := Decode(m, rng, regs)
					if err != nil {
						t.Fatal(err)
					}
					tol := 0.006 // integer types hold 0.01 (or 1 µA) steps
					if got.Quality != protocol.Good || math.Abs(got.Value-v) > tol {
						t.Errorf("%s %s loop=%v: %v → %04x → %+v", typ, order, loop, v, regs, got)
					}
				}
			}
		}
	}
}

func TestEncodeRefusesWhatTheTypeCannotHold(t *testing.T) {
	cases := []struct {
		typ site.DataType
		raw float64
	}{
		{site.Uint16, -1}, {site.Uint16, 65536}, {site.Int16, 40000}, {site.Uint32, -1},
		{site.Int32, 1 << 31}, {site.Uint64, -1}, {site.Int64, 1 << 63}, {site.Int16, math.NaN()},
	}
	for _, c := range cases {
		m := site.Mapping{Table: site.HoldingRegisters, Type: c.typ, Order: site.ABCD}
		if err := EncodeRaw(m, c.raw, make([]uint16, Registers(m))); err == nil {
			t.Errorf("EncodeRaw(%s, %v): want an error", c.typ, c.raw)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	m := site.Mapping{Table: site.HoldingRegisters, Type: site.Float32, Order: site.ABCD}
	if _, err := Decode(m, wide, []uint16{1}); err == nil {
		t.Error("short data: want an error")
	}
	m.Order = "XYZW"
	if _, err := Decode(m, wide, []uint16{1, 2}); err == nil {
		t.Error("unknown order: want an error")
	}
	m = site.Mapping{Table: site.HoldingRegisters, Type: "int128", Order: site.ABCD}
	if _, err := Decode(m, wide, []uint16{1}); err == nil {
		t.Error("unknown type: want an error")
	}
	// NaN from a float register is a sensor fault, not a value.
	m = site.Mapping{Table: site.HoldingRegisters, Type: site.Float32, Order: site.ABCD}
	got, err := Decode(m, wide, []uint16{0x7FC0, 0})
	if err != nil || got.Quality != protocol.Bad || got.HasValue() {
		t.Errorf("NaN: %+v %v, want bad without value", got, err)
	}
}
