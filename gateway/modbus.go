package gateway

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/goburrow/modbus"
	"github.com/goburrow/serial"

	"github.com/hazardwatch/hazardwatch/site"
)

// link is how one device is reached: its own TCP connection, or its share
// of a serial bus.
type link struct {
	dev *site.Device
	// bus serializes requests on a shared RS-485 line; TCP links have their
	// own.
	bus    *sync.Mutex
	client modbus.Client
	// prepare points the shared handler at this device before a request.
	prepare func()
	close   func() error
}

// serialBus is one RS-485 port shared by every device on it.
type serialBus struct {
	mu      sync.Mutex
	handler *modbus.RTUClientHandler
	client  modbus.Client
}

// newLinks opens one link per device; RTU devices on the same port share one
// handler.
func newLinks(devs []*site.Device) map[string]*link {
	buses := map[string]*serialBus{}
	out := map[string]*link{}
	for _, d := range devs {
		d := d
		if d.Transport == site.TransportRTU && d.Serial != nil {
			b, ok := buses[d.Serial.Port]
			if !ok {
				h := modbus.NewRTUClientHandler(d.Serial.Port)
				h.BaudRate = d.Serial.BaudRate
				h.DataBits = d.Serial.DataBits
				h.Parity = d.Serial.Parity
				h.StopBits = d.Serial.StopBits
				b = &serialBus{handler: h, client: modbus.NewClient(h)}
				buses[d.Serial.Port] = b
			}
			out[d.ID] = &link{dev: d, bus: &b.mu, client: b.client,
				prepare: func() { b.handler.SlaveId = d.UnitID; b.handler.Timeout = d.Timeout.D() },
				close:   b.handler.Close,
			}
			continue
		}
		h := modbus.NewTCPClientHandler(d.Address)
		h.SlaveId = d.UnitID
		h.Timeout = d.Timeout.D()
		h.IdleTimeout = 0
		out[d.ID] = &link{dev: d, bus: &sync.Mutex{}, client: modbus.NewClient(h), prepare: func() {}, close: h.Close}
	}
	return out
}

// read performs one planned read and returns its registers (bits as 0/1).
func (l *link) read(r Read) ([]uint16, error) {
	l.bus.Lock()
	defer l.bus.Unlock()
	l.prepare()
	var (
		data []byte
		err  error
	)
	switch r.Table {
	case site.Coils:
		data, err = l.client.ReadCoils(r.Start, r.Count)
	case site.DiscreteInputs:
		data, err = l.client.ReadDiscreteInputs(r.Start, r.Count)
	case site.HoldingRegisters:
		data, err = l.client.ReadHoldingRegisters(r.Start, r.Count)
	case site.InputRegisters:
		data, err = l.client.ReadInputRegisters(r.Start, r.Count)
	default:
		return nil, fmt.Errorf("device %s: unknown table %q", l.dev.ID, r.Table)
	}
	if err != nil {
		var me *modbus.ModbusError
		if !errors.As(err, &me) {
			// Drop the connection so a late answer cannot be taken for the
			// next request's.
			_ = l.close()
		}
		return nil, &ReadError{Device: l.dev.ID, Table: r.Table, Start: r.Start, Count: r.Count, Err: err}
	}
	out := make([]uint16, r.Count)
	if r.Table.IsBit() {
		if len(data)*8 < int(r.Count) {
			return nil, &ReadError{Device: l.dev.ID, Table: r.Table, Start: r.Start, Count: r.Count, Err: fmt.Errorf("short answer: %d bytes for %d bits", len(data), r.Count)}
		}
		for i := range out {
			out[i] = uint16(data[i/8]>>(uint(i)%8)) & 1
		}
		return out, nil
	}
	if len(data) != 2*int(r.Count) {
		return nil, &ReadError{Device: l.dev.ID, Table: r.Table, Start: r.Start, Count: r.Count, Err: fmt.Errorf("answer of %d bytes for %d registers", len(data), r.Count)}
	}
	for i := range out {
		out[i] = binary.BigEndian.Uint16(data[2*i:])
	}
	return out, nil
}

// ReadError is a failed Modbus read, naming the device and the registers.
type ReadError struct {
	Device string
	Table  site.Table
	Start  uint16
	Count  uint16
	Err    error
}

func (e *ReadError) Error() string {
	return fmt.Sprintf("device %s: read %s %d+%d: %s", e.Device, e.Table, e.Start, e.Count, describe(e.Err))
}

func (e *ReadError) Unwrap() error { return e.Err }

// Exception returns the Modbus exception code of the error, if the device
// answered with one.
func (e *ReadError) Exception() (byte, bool) {
	var me *modbus.ModbusError
	if errors.As(e.Err, &me) {
		return me.ExceptionCode, true
	}
	return 0, false
}

var exceptionNames = map[byte]string{
	1: "illegal function", 2: "illegal data address", 3: "illegal data value",
	4: "server device failure", 5: "acknowledge", 6: "server device busy",
	8: "memory parity error", 10: "gateway path unavailable", 11: "gateway target device failed to respond",
}

func describe(err error) string {
	var me *modbus.ModbusError
	if errors.As(err, &me) {
		return fmt.Sprintf("Modbus exception %d (%s)", me.ExceptionCode, exceptionNames[me.ExceptionCode])
	}
	return err.Error()
}

// errorCode is a short stable label for metrics.
func errorCode(err error) string {
	var me *modbus.ModbusError
	var ne net.Error
	switch {
	case errors.As(err, &me):
		return fmt.Sprintf("exception_%d", me.ExceptionCode)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, serial.ErrTimeout):
		return "timeout"
	default:
		return "io"
	}
}

// isTransport reports whether the device did not answer at all, as opposed
// to answering with an exception.
func isTransport(err error) bool {
	var me *modbus.ModbusError
	return err != nil && !errors.As(err, &me)
}

// backoff is the wait after n consecutive failed polls: the poll interval
// doubled per failure, capped.
func backoff(interval, limit time.Duration, n int) time.Duration {
	d := interval
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, max(limit, interval))
}
