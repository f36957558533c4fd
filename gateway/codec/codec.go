// Package codec turns a point's raw Modbus data into its engineering value
// and quality, and back. It is pure: no I/O, no clock, no state.
//
// Decode applies a site.Mapping in this order: registers → raw number (by
// type and byte order, or one bit) → raw*scale + offset → 4–20 mA mapping
// onto the point's range (current_loop) → quality. Encode is the inverse,
// used by the simulators to serve a value a gateway will decode.
//
// Byte orders name the bytes of the value with A the most significant, as
// site.ByteOrder says. For 64-bit types the same rule extends to eight
// bytes: ABCD is big-endian, CDAB reverses the order of the 16-bit words,
// BADC swaps the two bytes inside each word, DCBA is little-endian. A
// single-register value is byte-swapped by BADC and DCBA.
package codec

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// NAMUR NE 43 signal bands of a 4–20 mA loop.
const (
	LoopMin      = 4.0  // mA at the bottom of the range
	LoopMax      = 20.0 // mA at the top of the range
	LoopFaultLow = 3.8  // below: sensor fault (broken wire, dead head)
	LoopFaultHi  = 20.5 // above: sensor fault (short circuit)
)

// Result is one decoded point.
type Result struct {
	// Raw is the number read from the device, before scale and offset
	// (0 or 1 for a bit).
	Raw float64
	// Value is the engineering value; meaningful only when Quality is good
	// or over_range.
	Value   float64
	Quality protocol.Quality
	// Reason says why the quality is not good, for logs and the
	// commissioning table.
	Reason string
}

// HasValue reports whether the result carries a value.
func (r Result) HasValue() bool {
	return r.Quality.CarriesValue()
}

// Registers is how many 16-bit registers (or bits, for bit tables) a
// mapping reads.
func Registers(m site.Mapping) int {
	if m.Table.IsBit() {
		return 1
	}
	return m.Type.Registers()
}

// Decode turns the registers read for a point into its value and quality.
// For a bit table (coil, discrete input) regs holds one element, 0 or 1.
// An error means the mapping or the data cannot be decoded at all (wrong
// length, unknown type or order); a sensor fault is not an error but a
// Result with quality bad.
func Decode(m site.Mapping, rng site.Range, regs []uint16) (Result, error) {
	n := Registers(m)
	if len(regs) != n {
		return Result{}, fmt.Errorf("decode %s at %s %d: got %d registers, want %d", m.Type, m.Table, m.Address, len(regs), n)
	}
	if m.Table.IsBit() || m.Bit != nil {
		var on bool
		if m.Bit != nil {
			if *m.Bit < 0 || *m.Bit > 15 {
				return Result{}, fmt.Errorf("decode %s %d: bit %d is not 0 to 15", m.Table, m.Address, *m.Bit)
			}
			on = regs[0]&(1<<uint(*m.Bit)) != 0
		} else {
			on = regs[0] != 0
		}
		v := 0.0
		if on {
			v = 1
		}
		return Result{Raw: v, Value: v, Quality: protocol.Good}, nil
	}
	raw, err := rawNumber(m, regs)
	if err != nil {
		return Result{}, err
	}
	res := Result{Raw: raw}
	if math.IsNaN(raw) || math.IsInf(raw, 0) {
		res.Quality, res.Reason = protocol.Bad, "device sent a value that is not a finite number"
		return res, nil
	}
	x := applyScale(raw, scaleOf(m)) + m.Offset
	if cl := m.CurrentLoop; cl != nil {
		if cl.RawAt20mA == cl.RawAt4mA {
			return Result{}, fmt.Errorf("decode %s %d: current_loop raw_at_4ma equals raw_at_20ma", m.Table, m.Address)
		}
		mA := LoopMin + (x-cl.RawAt4mA)*(LoopMax-LoopMin)/(cl.RawAt20mA-cl.RawAt4mA)
		if mA < LoopFaultLow || mA > LoopFaultHi {
			res.Quality, res.Reason = protocol.Bad, fmt.Sprintf("loop current %.2f mA outside NAMUR NE 43 band %.1f–%.1f mA", mA, LoopFaultLow, LoopFaultHi)
			return res, nil
		}
		// NE 43 lets a healthy transmitter saturate slightly past the ends.
		// Below 4 mA it reads the bottom of the range (a detector's zero
		// drifts a little low). Above 20 mA the value is kept above the
		// range's top, so the reading is over_range exactly as a register
		// path above its range is: the centre then knows the concentration
		// is at least the top of the range (docs/rules.md, "Saturation").
		mA = math.Max(mA, LoopMin)
		x = rng.Min + (mA-LoopMin)/(LoopMax-LoopMin)*rng.Span()
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		res.Quality, res.Reason = protocol.Bad, "scaled value is not a finite number"
		return res, nil
	}
	res.Value = x
	res.Quality = protocol.Good
	if rng.Max > rng.Min && (x < rng.Min || x > rng.Max) {
		res.Quality = protocol.OverRange
		res.Reason = fmt.Sprintf("%g outside measuring range [%g, %g]", x, rng.Min, rng.Max)
	}
	return res, nil
}

// applyScale multiplies by the scale; a decimal scale such as 0.1 divides
// by its exact inverse instead, so 24 × 0.1 reads 2.4, not
// 2.4000000000000004.
func applyScale(raw, scale float64) float64 {
	if inv := 1 / scale; math.Abs(inv) > 1 && inv == math.Trunc(inv) {
		return raw / inv
	}
	return raw * scale
}

func scaleOf(m site.Mapping) float64 {
	if m.Scale == nil {
		return 1
	}
	return *m.Scale
}

// rawNumber assembles the type's number from registers in the mapping's
// byte order.
func rawNumber(m site.Mapping, regs []uint16) (float64, error) {
	var buf [8]byte
	b := buf[:2*len(regs)]
	if err := toBigEndian(m.Order, regs, b); err != nil {
		return 0, fmt.Errorf("decode %s at %s %d: %w", m.Type, m.Table, m.Address, err)
	}
	switch m.Type {
	case site.Int16:
		return float64(int16(binary.BigEndian.Uint16(b))), nil
	case site.Uint16, site.Bool:
		return float64(binary.BigEndian.Uint16(b)), nil
	case site.Int32:
		return float64(int32(binary.BigEndian.Uint32(b))), nil
	case site.Uint32:
		return float64(binary.BigEndian.Uint32(b)), nil
	case site.Int64:
		return float64(int64(binary.BigEndian.Uint64(b))), nil
	case site.Uint64:
		return float64(binary.BigEndian.Uint64(b)), nil
	case site.Float32:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
	case site.Float64:
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	}
	return 0, fmt.Errorf("decode at %s %d: unknown type %q", m.Table, m.Address, m.Type)
}

// toBigEndian writes the value's bytes, most significant first, from
// registers sent in the given order. Every order is its own inverse, so
// fromBigEndian is the same permutation.
func toBigEndian(order site.ByteOrder, regs []uint16, out []byte) error {
	n := len(regs)
	for i := range regs {
		var w uint16
		switch order {
		case site.ABCD, "":
			w = regs[i]
		case site.CDAB:
			w = regs[n-1-i]
		case site.BADC:
			w = swap(regs[i])
		case site.DCBA:
			w = swap(regs[n-1-i])
		default:
			return fmt.Errorf("unknown byte order %q", order)
		}
		binary.BigEndian.PutUint16(out[2*i:], w)
	}
	return nil
}

func fromBigEndian(order site.ByteOrder, in []byte, regs []uint16) error {
	n := len(regs)
	for i := range regs {
		w := binary.BigEndian.Uint16(in[2*i:])
		switch order {
		case site.ABCD, "":
			regs[i] = w
		case site.CDAB:
			regs[n-1-i] = w
		case site.BADC:
			regs[i] = swap(w)
		case site.DCBA:
			regs[n-1-i] = swap(w)
		default:
			return fmt.Errorf("unknown byte order %q", order)
		}
	}
	return nil
}

func swap(w uint16) uint16 { return w<<8 | w>>8 }
