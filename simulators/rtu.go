package simulators

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/goburrow/serial"

	"github.com/hazardwatch/hazardwatch/site"
)

// Modbus function codes the RTU slave answers.
const (
	fnReadCoils              = 1
	fnReadDiscreteInputs     = 2
	fnReadHoldingRegisters   = 3
	fnReadInputRegisters     = 4
	fnWriteSingleCoil        = 5
	fnWriteSingleRegister    = 6
	fnWriteMultipleCoils     = 15
	fnWriteMultipleRegisters = 16
)

// Modbus exception codes.
const (
	excIllegalFunction    = 1
	excIllegalDataAddress = 2
	excIllegalDataValue   = 3
)

// rtuMaxFrame is the longest Modbus RTU frame (serial line spec, 2.5.1).
const rtuMaxFrame = 256

// RTUStats counts what a serial bus saw, for tests and the command's log.
type RTUStats struct {
	Frames     int // well-formed requests, for any unit id
	Answered   int // requests answered (with data or an exception)
	Exceptions int // of those, exception answers
	BadCRC     int // requests dropped for a wrong checksum
	Garbage    int // bytes dropped as not a request (unknown function, overlong)
}

// rtuServer is the slave side of one serial bus: every RTU device of the
// site on that port, by unit id, answering on one line.
type rtuServer struct {
	sim     *Sim
	port    string
	conn    io.ReadWriteCloser
	devices map[uint8]*simDevice
	// gap is how long a partial frame may wait for its next byte before it
	// is dropped: the serial line's 3.5-character silence, with room for a
	// busy machine.
	gap time.Duration

	mu    sync.Mutex
	stats RTUStats

	done    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
}

// ServeRTU answers Modbus RTU requests on conn for every RTU device of the
// site whose serial port is port (as the site file names the bus), each by
// its unit id, as slaves on a multi-drop RS-485 line do: a request for
// another unit id, or with a wrong CRC, gets no answer; a read of registers
// the device does not have gets exception 2 (illegal data address).
//
// Frames are delimited by function code and length rather than by the
// 3.5-character silence, which a pseudo-terminal does not keep; a partial
// frame is still dropped after a silence, so the line resynchronizes.
// Functions 1–4 (reads), 5, 6, 15 and 16 (writes) are answered, from the
// same register memory as the TCP devices; others get exception 1.
//
// conn is typically the master from OpenPTY, or a serial port from
// OpenSerial. ServeRTU returns at once; the Sim owns conn from then on and
// closes it on Close.
func (s *Sim) ServeRTU(port string, conn io.ReadWriteCloser) error {
	if conn == nil {
		return fmt.Errorf("simulator: serve RTU bus %s: no connection", port)
	}
	srv := &rtuServer{sim: s, port: port, conn: conn, devices: map[uint8]*simDevice{}, done: make(chan struct{})}
	baud := 0
	for _, d := range s.devices {
		if d.dev.Transport != site.TransportRTU || d.dev.Serial == nil || d.dev.Serial.Port != port {
			continue
		}
		if other, dup := srv.devices[d.dev.UnitID]; dup {
			return fmt.Errorf("simulator: RTU bus %s: devices %s and %s share unit id %d", port, other.dev.ID, d.dev.ID, d.dev.UnitID)
		}
		srv.devices[d.dev.UnitID] = d
		baud = d.dev.Serial.BaudRate
	}
	if len(srv.devices) == 0 {
		return fmt.Errorf("simulator: site %s has no RTU device on serial port %q", s.site.ID, port)
	}
	srv.gap = 50 * time.Millisecond
	if baud > 0 {
		// 3.5 characters of 11 bits each, far below the floor at usual rates.
		srv.gap = max(srv.gap, time.Duration(3.5*11*float64(time.Second)/float64(baud)))
	}
	s.mu.Lock()
	select {
	case <-s.stop:
		s.mu.Unlock()
		return fmt.Errorf("simulator: serve RTU bus %s: simulator is closed", port)
	default:
	}
	s.buses = append(s.buses, srv)
	s.mu.Unlock()
	srv.wg.Add(1)
	go srv.serve()
	return nil
}

// ServeRTUOverTCP answers the RTU bus named port as a serial device server
// in transparent mode does: on addr (host:port; ":0" for a free port),
// Modbus RTU frames over each TCP connection a gateway opens. It returns
// the address it listens on; Close stops it.
func (s *Sim) ServeRTUOverTCP(port, addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("simulator: RTU over TCP for bus %s: %w", port, err)
	}
	// Fail now, not at the first connection, when the bus has no device.
	found := false
	for _, d := range s.devices {
		found = found || d.dev.Transport == site.TransportRTU && d.dev.Serial != nil && d.dev.Serial.Port == port
	}
	if !found {
		ln.Close()
		return "", fmt.Errorf("simulator: site %s has no RTU device on serial port %q", s.site.ID, port)
	}
	go func() {
		<-s.stop
		ln.Close()
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if err := s.ServeRTU(port, c); err != nil {
				c.Close()
				return
			}
		}
	}()
	return ln.Addr().String(), nil
}

// OpenSerial opens a real serial port (e.g. /dev/ttyUSB0) with the line
// settings of the site's bus named port, for ServeRTU.
func (s *Sim) OpenSerial(port, path string) (io.ReadWriteCloser, error) {
	for _, d := range s.devices {
		if d.dev.Transport != site.TransportRTU || d.dev.Serial == nil || d.dev.Serial.Port != port {
			continue
		}
		c := d.dev.Serial
		conn, err := serial.Open(&serial.Config{Address: path, BaudRate: c.BaudRate, DataBits: c.DataBits, StopBits: c.StopBits, Parity: c.Parity, Timeout: 100 * time.Millisecond})
		if err != nil {
			return nil, fmt.Errorf("simulator: open serial port %s for bus %s: %w", path, port, err)
		}
		return conn, nil
	}
	return nil, fmt.Errorf("simulator: site %s has no RTU device on serial port %q", s.site.ID, port)
}

// RTUStats reports what the bus on port has seen so far.
func (s *Sim) RTUStats(port string) (RTUStats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.buses {
		if b.port == port {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.stats, true
		}
	}
	return RTUStats{}, false
}

// CorruptCRC makes an RTU device answer with a wrong checksum (or a right
// one again, with on false), as a noisy line or a failing transceiver does.
func (s *Sim) CorruptCRC(deviceID string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[deviceID]
	if !ok || d.dev.Transport != site.TransportRTU {
		return fmt.Errorf("simulator: corrupt CRC: unknown RTU device %q", deviceID)
	}
	d.corruptCRC = on
	return nil
}

// stop closes the line, which ends a pending read, and waits for serve.
func (b *rtuServer) stop() {
	b.stopped.Do(func() {
		close(b.done)
		_ = b.conn.Close()
	})
	b.wg.Wait()
}

func (b *rtuServer) closed() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// serve reads requests until the line is closed.
func (b *rtuServer) serve() {
	defer b.wg.Done()
	deadline, _ := b.conn.(interface{ SetReadDeadline(time.Time) error })
	var (
		buf   = make([]byte, 0, 2*rtuMaxFrame)
		chunk = make([]byte, rtuMaxFrame)
	)
	for !b.closed() {
		if deadline != nil {
			// Wait for ever for a frame to begin, a silence's length for
			// one to go on.
			var t time.Time
			if len(buf) > 0 {
				t = time.Now().Add(b.gap)
			}
			_ = deadline.SetReadDeadline(t)
		}
		n, err := b.conn.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if err != nil {
			if b.closed() {
				return
			}
			// A silence (deadline or the port's own timeout) ends a partial
			// frame; so does the other end going away.
			b.drop(len(buf), false)
			buf = buf[:0]
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, serial.ErrTimeout) {
				continue
			}
			if _, isNet := b.conn.(net.Conn); isNet && errors.Is(err, io.EOF) {
				return // the gateway hung up (RTU over TCP): this connection is done
			}
			if errors.Is(err, syscall.EIO) || errors.Is(err, io.EOF) {
				// A pty master reads EIO while no gateway has the slave
				// open: wait for one.
				select {
				case <-b.done:
					return
				case <-time.After(10 * time.Millisecond):
				}
				continue
			}
			b.sim.logger.Printf("simulator: RTU bus %s: read: %v", b.port, err)
			select {
			case <-b.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		buf = b.frames(buf)
	}
}

// drop counts bytes thrown away as not a request.
func (b *rtuServer) drop(n int, badCRC bool) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if badCRC {
		b.stats.BadCRC++
		return
	}
	b.stats.Garbage += n
}

// frames handles every complete request at the front of buf and returns
// what is left of it: the start of the next frame.
func (b *rtuServer) frames(buf []byte) []byte {
	for len(buf) > 0 {
		n, ok := requestLength(buf)
		if !ok {
			// Not a request we know how to delimit: the rest of what
			// arrived together cannot be split, so drop it all.
			b.drop(len(buf), false)
			return buf[:0]
		}
		if n == 0 || len(buf) < n {
			return buf // wait for more
		}
		frame := buf[:n]
		if crc16(frame[:n-2]) != binary.LittleEndian.Uint16(frame[n-2:]) {
			// A wrong checksum means the boundaries are suspect too.
			b.drop(len(buf), true)
			return buf[:0]
		}
		b.handle(frame[:n-2])
		buf = append(buf[:0], buf[n:]...)
	}
	return buf
}

// requestLength is the length of the request frame at the front of buf by
// its function code: 0 while too little has arrived to tell, false for a
// function whose requests cannot be delimited.
func requestLength(buf []byte) (int, bool) {
	if len(buf) < 2 {
		return 0, true
	}
	switch buf[1] {
	case fnReadCoils, fnReadDiscreteInputs, fnReadHoldingRegisters, fnReadInputRegisters, fnWriteSingleCoil, fnWriteSingleRegister:
		return 8, true // unit, function, address, quantity or value, CRC
	case fnWriteMultipleCoils, fnWriteMultipleRegisters:
		if len(buf) < 7 {
			return 0, true
		}
		return 7 + int(buf[6]) + 2, true
	}
	return 0, false
}

// handle answers one request (unit id, function, data; CRC checked).
func (b *rtuServer) handle(req []byte) {
	b.mu.Lock()
	b.stats.Frames++
	b.mu.Unlock()
	unit, fn := req[0], req[1]
	if unit == 0 {
		// Broadcast: every slave acts on a write, none answers.
		for _, d := range b.devices {
			b.apply(d, fn, req[2:])
		}
		return
	}
	d, ok := b.devices[unit]
	if !ok {
		return // another slave's request, or nobody's: the line stays quiet
	}
	b.sim.mu.Lock()
	silent, corrupt := d.silent, d.corruptCRC
	b.sim.mu.Unlock()
	if silent {
		return
	}
	pdu, exc := b.apply(d, fn, req[2:])
	var resp []byte
	if exc != 0 {
		resp = []byte{unit, fn | 0x80, exc}
	} else {
		resp = append([]byte{unit, fn}, pdu...)
	}
	sum := crc16(resp)
	if corrupt {
		sum ^= 0xA5A5
	}
	resp = binary.LittleEndian.AppendUint16(resp, sum)
	if _, err := b.conn.Write(resp); err != nil && !b.closed() {
		b.sim.logger.Printf("simulator: RTU bus %s: answer unit %d: %v", b.port, unit, err)
		return
	}
	b.mu.Lock()
	b.stats.Answered++
	if exc != 0 {
		b.stats.Exceptions++
	}
	b.mu.Unlock()
}

// apply carries out one request on a device's memory and returns the
// answer's data after the function code, or an exception code.
func (b *rtuServer) apply(d *simDevice, fn byte, data []byte) ([]byte, byte) {
	if len(data) < 4 || (fn != fnWriteMultipleCoils && fn != fnWriteMultipleRegisters && len(data) != 4) {
		return nil, excIllegalDataValue
	}
	addr := binary.BigEndian.Uint16(data)
	qty := binary.BigEndian.Uint16(data[2:])
	b.sim.mu.Lock()
	defer b.sim.mu.Unlock()
	switch fn {
	case fnReadCoils, fnReadDiscreteInputs:
		table := site.Coils
		if fn == fnReadDiscreteInputs {
			table = site.DiscreteInputs
		}
		if qty < 1 || qty > 2000 {
			return nil, excIllegalDataValue
		}
		if !d.has(table, addr, qty) || b.sim.holes && !d.hasAll(table, addr, qty) {
			return nil, excIllegalDataAddress
		}
		out := make([]byte, 1+(int(qty)+7)/8)
		out[0] = byte(len(out) - 1)
		for i := range int(qty) {
			if d.regs[table][addr+uint16(i)] != 0 {
				out[1+i/8] |= 1 << (i % 8)
			}
		}
		return out, 0
	case fnReadHoldingRegisters, fnReadInputRegisters:
		table := site.HoldingRegisters
		if fn == fnReadInputRegisters {
			table = site.InputRegisters
		}
		if qty < 1 || qty > 125 {
			return nil, excIllegalDataValue
		}
		if !d.has(table, addr, qty) || b.sim.holes && !d.hasAll(table, addr, qty) {
			return nil, excIllegalDataAddress
		}
		out := []byte{byte(2 * qty)}
		for i := range qty {
			out = binary.BigEndian.AppendUint16(out, d.regs[table][addr+i])
		}
		return out, 0
	case fnWriteSingleCoil:
		if qty != 0xFF00 && qty != 0 {
			return nil, excIllegalDataValue
		}
		d.regs[site.Coils][addr] = qty >> 15
		return data, 0
	case fnWriteSingleRegister:
		d.regs[site.HoldingRegisters][addr] = qty
		return data, 0
	case fnWriteMultipleCoils, fnWriteMultipleRegisters:
		if len(data) < 5 {
			return nil, excIllegalDataValue
		}
		values := data[5:]
		if fn == fnWriteMultipleCoils {
			if qty < 1 || qty > 1968 || len(values) != (int(qty)+7)/8 {
				return nil, excIllegalDataValue
			}
			if int(addr)+int(qty) > 1<<16 {
				return nil, excIllegalDataAddress
			}
			for i := range int(qty) {
				d.regs[site.Coils][addr+uint16(i)] = uint16(values[i/8]>>(i%8)) & 1
			}
		} else {
			if qty < 1 || qty > 123 || len(values) != 2*int(qty) {
				return nil, excIllegalDataValue
			}
			if int(addr)+int(qty) > 1<<16 {
				return nil, excIllegalDataAddress
			}
			for i := range int(qty) {
				d.regs[site.HoldingRegisters][addr+uint16(i)] = binary.BigEndian.Uint16(values[2*i:])
			}
		}
		return data[:4], 0
	}
	return nil, excIllegalFunction
}

// has reports whether a read of qty from addr is one the device answers:
// it must not run past the last address, and it must touch at least one
// register the device has (one its site maps, or one written). A real
// device's map has holes a gateway may read across; a read that hits
// nothing at all is a misconfigured address.
func (d *simDevice) has(table site.Table, addr, qty uint16) bool {
	if int(addr)+int(qty) > 1<<16 {
		return false
	}
	tab := d.regs[table]
	for i := range qty {
		if _, ok := tab[addr+i]; ok {
			return true
		}
	}
	return false
}

// hasAll reports whether every address of a read is one the device has
// (WithHoles).
func (d *simDevice) hasAll(table site.Table, addr, qty uint16) bool {
	if int(addr)+int(qty) > 1<<16 {
		return false
	}
	tab := d.regs[table]
	for i := range qty {
		if _, ok := tab[addr+i]; !ok {
			return false
		}
	}
	return true
}

// crc16 is the Modbus RTU checksum (CRC-16/MODBUS: polynomial 0xA001
// reflected, initial 0xFFFF), sent low byte first.
func crc16(data []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range data {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}
