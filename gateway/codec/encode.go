package codec

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/hazardwatch/hazardwatch/site"
)

// Encode writes an engineering value into dst the way a device holding it
// would: dst has Registers(m) elements. For a bit of a register only that
// bit of dst[0] changes, so neighbouring bits survive. A value that the
// type cannot hold is an error, not a silent wrap-around.
func Encode(m site.Mapping, rng site.Range, value float64, dst []uint16) error {
	if err := checkDst(m, dst); err != nil {
		return err
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		if m.Type == site.Float32 || m.Type == site.Float64 {
			if m.CurrentLoop == nil && !m.Table.IsBit() && m.Bit == nil {
				return EncodeRaw(m, value, dst)
			}
		}
		return fmt.Errorf("encode %s at %s %d: value is not a finite number", m.Type, m.Table, m.Address)
	}
	if m.Table.IsBit() || m.Bit != nil {
		on := value != 0
		switch {
		case m.Table.IsBit():
			dst[0] = 0
			if on {
				dst[0] = 1
			}
		case *m.Bit < 0 || *m.Bit > 15:
			return fmt.Errorf("encode %s %d: bit %d is not 0 to 15", m.Table, m.Address, *m.Bit)
		case on:
			dst[0] |= 1 << uint(*m.Bit)
		default:
			dst[0] &^= 1 << uint(*m.Bit)
		}
		return nil
	}
	if m.CurrentLoop != nil {
		if rng.Span() == 0 {
			return fmt.Errorf("encode %s %d: current loop over an empty range", m.Table, m.Address)
		}
		mA := LoopMin + (value-rng.Min)/rng.Span()*(LoopMax-LoopMin)
		return EncodeCurrent(m, mA, dst)
	}
	return EncodeRaw(m, (value-m.Offset)/scaleOf(m), dst)
}

// EncodeCurrent writes a loop current in mA into dst, for a current_loop
// mapping. Values outside 4–20 mA simulate a faulty transmitter: 3.0 mA is
// a broken wire, 22 mA a short circuit (NAMUR NE 43).
func EncodeCurrent(m site.Mapping, mA float64, dst []uint16) error {
	cl := m.CurrentLoop
	if cl == nil {
		return fmt.Errorf("encode %s %d: mapping has no current_loop", m.Table, m.Address)
	}
	x := cl.RawAt4mA + (mA-LoopMin)/(LoopMax-LoopMin)*(cl.RawAt20mA-cl.RawAt4mA)
	return EncodeRaw(m, (x-m.Offset)/scaleOf(m), dst)
}

// EncodeRaw writes a raw number (before scale and offset) of the mapping's
// type into dst in its byte order. Integer types round to the nearest
// integer and refuse numbers they cannot hold.
func EncodeRaw(m site.Mapping, raw float64, dst []uint16) error {
	if err := checkDst(m, dst); err != nil {
		return err
	}
	where := func(err error) error {
		return fmt.Errorf("encode %g as %s at %s %d: %w", raw, m.Type, m.Table, m.Address, err)
	}
	isInt := m.Type != site.Float32 && m.Type != site.Float64
	if isInt && (math.IsNaN(raw) || math.IsInf(raw, 0)) {
		return where(fmt.Errorf("not a finite number"))
	}
	r := math.Round(raw)
	inRange := func(lo, hi float64) error {
		if r < lo || r > hi {
			return where(fmt.Errorf("outside the type's range [%g, %g]", lo, hi))
		}
		return nil
	}
	var buf [8]byte
	b := buf[:2*len(dst)]
	switch m.Type {
	case site.Int16:
		if err := inRange(math.MinInt16, math.MaxInt16); err != nil {
			return err
		}
		binary.BigEndian.PutUint16(b, uint16(int16(r)))
	case site.Uint16, site.Bool:
		if err := inRange(0, math.MaxUint16); err != nil {
			return err
		}
		binary.BigEndian.PutUint16(b, uint16(r))
	case site.Int32:
		if err := inRange(math.MinInt32, math.MaxInt32); err != nil {
			return err
		}
		binary.BigEndian.PutUint32(b, uint32(int32(r)))
	case site.Uint32:
		if err := inRange(0, math.MaxUint32); err != nil {
			return err
		}
		binary.BigEndian.PutUint32(b, uint32(r))
	case site.Int64:
		// 2^63 itself does not fit; float64 cannot name MaxInt64 exactly.
		if r < math.MinInt64 || r >= 1<<63 {
			return where(fmt.Errorf("outside the int64 range"))
		}
		binary.BigEndian.PutUint64(b, uint64(int64(r)))
	case site.Uint64:
		if r < 0 || r >= 1<<64 {
			return where(fmt.Errorf("outside the uint64 range"))
		}
		binary.BigEndian.PutUint64(b, uint64(r))
	case site.Float32:
		binary.BigEndian.PutUint32(b, math.Float32bits(float32(raw)))
	case site.Float64:
		binary.BigEndian.PutUint64(b, math.Float64bits(raw))
	default:
		return where(fmt.Errorf("unknown type"))
	}
	if err := fromBigEndian(m.Order, b, dst); err != nil {
		return where(err)
	}
	return nil
}

func checkDst(m site.Mapping, dst []uint16) error {
	if n := Registers(m); len(dst) != n {
		return fmt.Errorf("encode %s at %s %d: %d registers given, want %d", m.Type, m.Table, m.Address, len(dst), n)
	}
	return nil
}
