package simulators

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	gbmodbus "github.com/goburrow/modbus"

	"github.com/hazardwatch/hazardwatch/site"
)

func TestCRC16(t *testing.T) {
	// The worked example of the Modbus serial line guide: read 10 holding
	// registers of slave 1 is 01 03 00 00 00 0A C5 CD.
	if got := crc16([]byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x0A}); got != 0xCDC5 {
		t.Fatalf("crc16 = %04X, want CDC5 (sent C5 CD)", got)
	}
}

// rtuSite has two RTU devices on one bus (port) at 19200 baud: a
// transmitter (unit 1) and a gas controller (unit 2).
func rtuSite(t *testing.T, port string) *site.Site {
	t.Helper()
	text := fmt.Sprintf(`id: rtu-sim
name: RTU bus
gateways:
  - id: gw1
    devices:
      - {id: tx, transport: rtu, unit_id: 1, timeout: 300ms, serial: {port: %[1]s, baud_rate: 19200}}
      - {id: gds, transport: rtu, unit_id: 2, timeout: 300ms, serial: {port: %[1]s, baud_rate: 19200}}
sources:
  - id: src
    name: tank
    type: storage
    grade: 3
    points:
      - {id: pt, name: pressure, kind: pressure, unit: kPa, range: [0, 1000], modbus: {device: tx, table: holding, address: 10, type: float32, order: CDAB}}
      - {id: valve, name: valve, kind: pressure, unit: kPa, range: [0, 1], modbus: {device: tx, table: coil, address: 3}}
      - {id: nh3, name: ammonia, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: gds, table: input, address: 0, type: uint16, scale: 0.1}}
      - {id: fault, name: detector fault, kind: pressure, unit: kPa, range: [0, 1], modbus: {device: gds, table: discrete_input, address: 7}}
`, port)
	s, err := site.Parse("rtu.yaml", []byte(text))
	if err != nil {
		t.Fatalf("test site: %v", err)
	}
	return s
}

// servePTY builds a calm simulator of rtuSite on a fresh pty pair and
// returns it with the slave's path.
func servePTY(t *testing.T) (*Sim, string) {
	t.Helper()
	master, slave, err := OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	s := rtuSite(t, slave)
	sim, err := New(s, WithoutNoise())
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	if err := sim.ServeRTU(slave, master); err != nil {
		master.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim, slave
}

func rtuClient(t *testing.T, port string, unit byte) (gbmodbus.Client, *gbmodbus.RTUClientHandler) {
	t.Helper()
	h := gbmodbus.NewRTUClientHandler(port)
	h.BaudRate, h.DataBits, h.Parity, h.StopBits = 19200, 8, "N", 1
	h.SlaveId = unit
	h.Timeout = 300 * time.Millisecond
	t.Cleanup(func() { h.Close() })
	return gbmodbus.NewClient(h), h
}

func TestServeRTUAnswersEachUnitOnOneBus(t *testing.T) {
	sim, port := servePTY(t)
	for id, v := range map[string]float64{"pt": 612.25, "valve": 1, "nh3": 41.5, "fault": 1} {
		if err := sim.Set(id, v); err != nil {
			t.Fatal(err)
		}
	}
	c, h := rtuClient(t, port, 1)

	b, err := c.ReadHoldingRegisters(10, 2)
	if err != nil {
		t.Fatalf("unit 1 holding 10+2: %v", err)
	}
	// CDAB: the low word first.
	bits := uint32(binary.BigEndian.Uint16(b[2:]))<<16 | uint32(binary.BigEndian.Uint16(b))
	if got := math.Float32frombits(bits); got != 612.25 {
		t.Errorf("pt = %v (% x), want 612.25", got, b)
	}
	if b, err = c.ReadCoils(0, 8); err != nil || len(b) != 1 || b[0] != 1<<3 {
		t.Errorf("unit 1 coils 0+8 = % x, %v; want 08", b, err)
	}

	h.SlaveId = 2
	if b, err = c.ReadInputRegisters(0, 1); err != nil || binary.BigEndian.Uint16(b) != 415 {
		t.Errorf("unit 2 input 0 = % x, %v; want 415", b, err)
	}
	if b, err = c.ReadDiscreteInputs(7, 1); err != nil || len(b) != 1 || b[0] != 1 {
		t.Errorf("unit 2 discrete input 7 = % x, %v; want 01", b, err)
	}
	// Unit 2 has no holding registers: exception 2.
	_, err = c.ReadHoldingRegisters(10, 2)
	var me *gbmodbus.ModbusError
	if !errors.As(err, &me) || me.ExceptionCode != 2 {
		t.Errorf("unit 2 holding 10+2: %v, want exception 2 (illegal data address)", err)
	}

	// A unit id nobody has: silence, then the bus still works.
	h.SlaveId = 9
	if _, err = c.ReadInputRegisters(0, 1); err == nil || errors.As(err, &me) {
		t.Errorf("unit 9: %v, want a timeout", err)
	}
	h.SlaveId = 1
	if _, err = c.WriteSingleRegister(40, 0xBEEF); err != nil {
		t.Fatalf("write unit 1 holding 40: %v", err)
	}
	if _, err = c.WriteMultipleRegisters(41, 2, []byte{0, 1, 0, 2}); err != nil {
		t.Fatalf("write unit 1 holding 41+2: %v", err)
	}
	if b, err = c.ReadHoldingRegisters(40, 3); err != nil || fmt.Sprintf("% x", b) != "be ef 00 01 00 02" {
		t.Errorf("unit 1 holding 40+3 = % x, %v; want be ef 00 01 00 02", b, err)
	}

	st, ok := sim.RTUStats(port)
	if !ok || st.Answered < 7 || st.Exceptions != 1 || st.Frames != st.Answered+1 {
		t.Errorf("stats %+v: want 7+ answers, 1 exception and one unanswered frame", st)
	}
}

func TestServeRTUCorruptCRCAndSilence(t *testing.T) {
	sim, port := servePTY(t)
	c, h := rtuClient(t, port, 2)
	if err := sim.CorruptCRC("gds", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadInputRegisters(0, 1); err == nil || !strings.Contains(err.Error(), "crc") {
		t.Errorf("corrupt answer: %v, want a crc error", err)
	}
	if err := sim.CorruptCRC("gds", false); err != nil {
		t.Fatal(err)
	}
	if err := sim.Silence("tx", true); err != nil {
		t.Fatal(err)
	}
	h.SlaveId = 1
	if _, err := c.ReadHoldingRegisters(10, 2); err == nil {
		t.Error("a silenced device answered")
	}
	h.SlaveId = 2
	if _, err := c.ReadInputRegisters(0, 1); err != nil {
		t.Errorf("gds after tx went silent: %v", err)
	}
	if err := sim.CorruptCRC("nope", true); err == nil {
		t.Error("CorruptCRC of an unknown device succeeded")
	}
}

// frame appends a request's CRC.
func frame(b ...byte) []byte { return binary.LittleEndian.AppendUint16(b, crc16(b)) }

func TestServeRTUDropsBadFramesAndResynchronizes(t *testing.T) {
	sim, port := servePTY(t)
	if err := sim.Set("nh3", 12.5); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(port, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc, _ := f.SyscallConn()
	var rawErr error
	if err := sc.Control(func(fd uintptr) { rawErr = makeRaw(int(fd)) }); err != nil || rawErr != nil {
		t.Fatal(err, rawErr)
	}
	stats := func() RTUStats { st, _ := sim.RTUStats(port); return st }
	eventually := func(what string, cond func(RTUStats) bool) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); !cond(stats()); {
			if time.Now().After(end) {
				t.Fatalf("%s: stats %+v", what, stats())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	write := func(b []byte) {
		t.Helper()
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	read := func(n int) []byte {
		t.Helper()
		out := make([]byte, n)
		f.SetReadDeadline(time.Now().Add(3 * time.Second))
		for got := 0; got < n; {
			m, err := f.Read(out[got:])
			if err != nil {
				t.Fatalf("read answer after % x: %v", out[:got], err)
			}
			got += m
		}
		return out
	}
	good := frame(2, 4, 0, 0, 0, 1)
	want := fmt.Sprintf("% x", frame(2, 4, 2, 0, 125))

	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 0xFF
	write(bad)
	eventually("bad CRC counted", func(s RTUStats) bool { return s.BadCRC == 1 })
	write(frame(3, 4, 0, 0, 0, 1)) // unit 3: nobody
	eventually("frame for unit 3 seen", func(s RTUStats) bool { return s.Frames == 1 })
	write([]byte{2, 0x2B, 0x0E}) // a function it cannot delimit
	eventually("garbage dropped", func(s RTUStats) bool { return s.Garbage == 3 })
	// A request cut short by silence is dropped, not glued to the next.
	write(good[:5])
	eventually("partial frame dropped", func(s RTUStats) bool { return s.Garbage == 8 })
	// A request arriving in pieces within the silence is answered.
	write(good[:3])
	write(good[3:])
	if got := fmt.Sprintf("% x", read(7)); got != want {
		t.Errorf("answer % s, want %s", got, want)
	}
	// Two requests in one write are both answered, in order.
	write(append(append([]byte(nil), good...), frame(2, 2, 0, 7, 0, 1)...))
	both := fmt.Sprintf("% x", read(7+6))
	if wantBoth := want + " " + fmt.Sprintf("% x", frame(2, 2, 1, 0)); both != wantBoth {
		t.Errorf("answers %s, want %s", both, wantBoth)
	}
	// Too many registers for one request (the client library would not
	// send it): exception 3, illegal data value.
	write(frame(2, 4, 0, 0, 0, 126))
	if got, want := fmt.Sprintf("% x", read(5)), fmt.Sprintf("% x", frame(2, 0x84, 3)); got != want {
		t.Errorf("answer to 126 registers % s, want %s", got, want)
	}
	// An answer is counted once written, so the count may trail the read.
	eventually("5 frames, 4 answered, 1 exception", func(s RTUStats) bool {
		return s.Answered == 4 && s.Exceptions == 1 && s.Frames == 5
	})
}

func TestServeRTUNeedsRTUDevicesOnThePort(t *testing.T) {
	master, slave, err := OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if !strings.HasPrefix(slave, "/dev/pts/") {
		t.Errorf("slave path %q", slave)
	}
	sim, err := New(rtuSite(t, slave), WithoutNoise())
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if err := sim.ServeRTU("/dev/ttyS9", master); err == nil || !strings.Contains(err.Error(), "/dev/ttyS9") {
		t.Errorf("ServeRTU on a port without devices: %v", err)
	}
	if sim.Addr("tx") != "" {
		t.Errorf("an RTU device has a TCP address %q", sim.Addr("tx"))
	}
}
