package gateway

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/hazardwatch/hazardwatch/site"
)

// client is how one device is reached: its own Modbus TCP connection, or
// its own handle on a serial line (RTU) or on a serial device server (RTU
// over TCP) that it shares with the other units of that line. Requests on
// a shared line are serialized by the line's scheduler; a client is used by
// one goroutine at a time.
type client struct {
	dev *site.Device
	mc  *modbus.ModbusClient
	// open: the port or connection is open; a request that got no answer
	// closes it, so a late answer cannot be taken for the next one's.
	open bool
	// pauseAfterOpen lets slow devices and RS-485 converters settle after
	// the port or connection was (re)opened.
	pauseAfterOpen time.Duration
}

// clientURL is the simonvetter/modbus URL of a device's transport.
func clientURL(d *site.Device) string {
	switch d.Transport {
	case site.TransportRTU:
		return "rtu://" + d.Serial.Port
	case site.TransportRTUOverTCP:
		return "rtuovertcp://" + d.Address
	}
	return "tcp://" + d.Address
}

func newClient(d *site.Device, timeout time.Duration) (*client, error) {
	conf := modbus.ClientConfiguration{URL: clientURL(d), Timeout: timeout, Logger: log.New(io.Discard, "", 0)}
	if conf.Timeout <= 0 {
		conf.Timeout = site.DefaultTimeout
	}
	if d.Serial != nil {
		conf.Speed = uint(d.Serial.BaudRate)
		conf.DataBits = uint(d.Serial.DataBits)
		conf.StopBits = uint(d.Serial.StopBits)
		switch d.Serial.Parity {
		case "E":
			conf.Parity = modbus.PARITY_EVEN
		case "O":
			conf.Parity = modbus.PARITY_ODD
		default:
			conf.Parity = modbus.PARITY_NONE
		}
	}
	mc, err := modbus.NewClient(&conf)
	if err != nil {
		return nil, fmt.Errorf("device %s: Modbus client for %s: %w", d.ID, conf.URL, err)
	}
	return &client{dev: d, mc: mc, pauseAfterOpen: d.PauseAfterOpen.D()}, nil
}

// read performs one planned read of device d and returns its registers
// (bits as 0/1).
func (c *client) read(d *site.Device, r Read) ([]uint16, error) {
	fail := func(err error) error {
		return &ReadError{Device: d.ID, Table: r.Table, Start: r.Start, Count: r.Count, Err: err}
	}
	if !c.open {
		if err := c.mc.Open(); err != nil {
			return nil, fail(&OpenError{URL: clientURL(c.dev), Err: err})
		}
		c.open = true
		if c.pauseAfterOpen > 0 {
			time.Sleep(c.pauseAfterOpen)
		}
	}
	if err := c.mc.SetUnitId(d.UnitID); err != nil {
		return nil, fail(err)
	}
	var (
		regs []uint16
		bits []bool
		err  error
	)
	switch r.Table {
	case site.Coils:
		bits, err = c.mc.ReadCoils(r.Start, r.Count)
	case site.DiscreteInputs:
		bits, err = c.mc.ReadDiscreteInputs(r.Start, r.Count)
	case site.HoldingRegisters:
		regs, err = c.mc.ReadRegisters(r.Start, r.Count, modbus.HOLDING_REGISTER)
	case site.InputRegisters:
		regs, err = c.mc.ReadRegisters(r.Start, r.Count, modbus.INPUT_REGISTER)
	default:
		return nil, fail(fmt.Errorf("unknown table %q", r.Table))
	}
	if err != nil {
		if _, ok := exceptionCode(err); !ok {
			c.close()
		}
		return nil, fail(err)
	}
	if r.Table.IsBit() {
		if len(bits) != int(r.Count) {
			return nil, fail(fmt.Errorf("short answer: %d bits for %d", len(bits), r.Count))
		}
		out := make([]uint16, len(bits))
		for i, b := range bits {
			if b {
				out[i] = 1
			}
		}
		return out, nil
	}
	if len(regs) != int(r.Count) {
		return nil, fail(fmt.Errorf("answer of %d registers for %d", len(regs), r.Count))
	}
	return regs, nil
}

func (c *client) close() {
	if c.open {
		_ = c.mc.Close()
		c.open = false
	}
}

// OpenError is a port or connection that could not be opened.
type OpenError struct {
	URL string
	Err error
}

func (e *OpenError) Error() string { return fmt.Sprintf("open %s: %v", e.URL, e.Err) }
func (e *OpenError) Unwrap() error { return e.Err }

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
func (e *ReadError) Exception() (byte, bool) { return exceptionCode(e.Err) }

// exceptions of simonvetter/modbus by their Modbus exception code.
var exceptionErrors = map[error]byte{
	modbus.ErrIllegalFunction: 1, modbus.ErrIllegalDataAddress: 2, modbus.ErrIllegalDataValue: 3,
	modbus.ErrServerDeviceFailure: 4, modbus.ErrAcknowledge: 5, modbus.ErrServerDeviceBusy: 6,
	modbus.ErrMemoryParityError: 8, modbus.ErrGWPathUnavailable: 10, modbus.ErrGWTargetFailedToRespond: 11,
}

var exceptionNames = map[byte]string{
	1: "illegal function", 2: "illegal data address", 3: "illegal data value",
	4: "server device failure", 5: "acknowledge", 6: "server device busy",
	8: "memory parity error", 10: "gateway path unavailable", 11: "gateway target device failed to respond",
}

// exceptionCode returns the Modbus exception code of an answer.
func exceptionCode(err error) (byte, bool) {
	for e, code := range exceptionErrors {
		if errors.Is(err, e) {
			return code, true
		}
	}
	return 0, false
}

func describe(err error) string {
	if code, ok := exceptionCode(err); ok {
		return fmt.Sprintf("Modbus exception %d (%s)", code, exceptionNames[code])
	}
	var oe *OpenError
	switch {
	case errors.Is(err, modbus.ErrRequestTimedOut):
		return "no answer within the timeout (device off, wrong unit id, wrong baud rate or parity, or wiring)"
	case errors.Is(err, modbus.ErrBadCRC):
		return "bad crc: the answer was garbled (noise, wrong baud rate or parity, or two masters on the line)"
	case errors.As(err, &oe) && errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("%s: connection refused (nothing listens there: wrong address or port, or the device's Modbus server is off)", oe.URL)
	case errors.As(err, &oe) && errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("%s: no such serial port", oe.URL)
	case errors.As(err, &oe) && errors.Is(err, os.ErrPermission):
		return fmt.Sprintf("%s: permission denied (add the gateway's user to the dialout group)", oe.URL)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Sprintf("host name not found: %v", dnsErr)
	}
	return err.Error()
}

// errorCode is a short stable label for metrics.
func errorCode(err error) string {
	var ne net.Error
	if code, ok := exceptionCode(err); ok {
		return fmt.Sprintf("exception_%d", code)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, modbus.ErrRequestTimedOut), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, modbus.ErrBadCRC):
		return "bad_crc"
	default:
		return "io"
	}
}

// isTransport reports whether the device did not answer at all, as opposed
// to answering with an exception.
func isTransport(err error) bool {
	_, exc := exceptionCode(err)
	return err != nil && !exc
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
