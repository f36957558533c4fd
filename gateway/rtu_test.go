package gateway_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hazardwatch/hazardwatch/gateway"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/simulators"
	"github.com/hazardwatch/hazardwatch/site"
)

// rtuTypesSite is typesSite on one RS-485 bus: "plc" (unit 1) carries one
// point per type × order, bits and a scaled register, "gds" (unit 2) a
// scaled gas reading and current loops, both on the serial port port.
// extraDevices and extraPoints are YAML lines added to the gateway's copy.
func rtuTypesSite(t *testing.T, port, extraDevices, extraPoints string) (*site.Site, map[string]float64) {
	t.Helper()
	want := map[string]float64{}
	var b strings.Builder
	fmt.Fprintf(&b, `id: rtu-%d
name: RTU codec test
gateways:
  - id: gw1
    devices:
      - {id: plc, transport: rtu, unit_id: 1, poll_interval: 500ms, timeout: 500ms, serial: {port: %[2]s, baud_rate: 19200}}
      - {id: gds, transport: rtu, unit_id: 2, poll_interval: 500ms, timeout: 500ms, serial: {port: %[2]s, baud_rate: 19200}}
%[3]ssources:
  - id: src
    name: all types
    type: process_unit
    grade: 3
    points:
`, time.Now().UnixNano(), port, extraDevices)
	writeTypesPoints(&b, want)
	b.WriteString(extraPoints)
	s, err := site.Parse("rtu-types.yaml", []byte(b.String()))
	if err != nil {
		t.Fatalf("test site: %v", err)
	}
	return s, want
}

// startRTUSim serves the site's bus on a fresh pty pair with every point
// at its wanted value (and the faults typesSite's test sets); it returns
// the simulator and the pty's slave path, the gateway's serial port.
func startRTUSim(t *testing.T) (*simulators.Sim, string, map[string]float64) {
	t.Helper()
	master, port, err := simulators.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	s, want := rtuTypesSite(t, port, "", "")
	sim, err := simulators.New(s, simulators.WithoutNoise())
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	if err := sim.ServeRTU(port, master); err != nil {
		master.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	setTypesValues(t, sim, want)
	return sim, port, want
}

// checkRow asserts the value of one row of the types site.
func checkRow(t *testing.T, r gateway.Row, want map[string]float64) {
	t.Helper()
	switch r.Point {
	case "loop-broken", "float-fault":
		if r.Quality != protocol.Bad || r.Value != nil || r.Note == "" {
			t.Errorf("%s: %+v, want bad without a value", r.Point, r)
		}
		return
	case "over":
		if r.Quality != protocol.OverRange || r.Value == nil || math.Abs(*r.Value-150) > 1e-9 {
			t.Errorf("over: %+v, want over_range 150", r)
		}
		return
	}
	if r.Quality != protocol.Good || r.Value == nil {
		t.Errorf("%s/%s: %s %s (%s)", r.Device, r.Point, r.Quality, r.Raw, r.Note)
		return
	}
	if math.Abs(*r.Value-want[r.Point]) > 1e-6 {
		t.Errorf("%s: value %v (raw %s), want %v", r.Point, *r.Value, r.Raw, want[r.Point])
	}
}

func pollOnce(t *testing.T, s *site.Site) ([]gateway.Row, error) {
	t.Helper()
	return pollOnceWith(t, s, nil)
}

func pollOnceWith(t *testing.T, s *site.Site, reg prometheus.Registerer) ([]gateway.Row, error) {
	t.Helper()
	g, err := gateway.New(gateway.Config{Site: s, GatewayID: "gw1", DataDir: t.TempDir(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return g.PollOnce(ctx)
}

func TestPollOnceRTUDecodesEveryTypeAndOrder(t *testing.T) {
	sim, port, want := startRTUSim(t)
	s, _ := rtuTypesSite(t, port, "", "")
	rows, err := pollOnce(t, s)
	if err != nil {
		t.Fatalf("PollOnce: %v", err)
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows for %d points", len(rows), len(want))
	}
	devices := map[string]int{}
	for _, r := range rows {
		devices[r.Device]++
		checkRow(t, r, want)
	}
	if devices["plc"] != 37 || devices["gds"] != 5 {
		t.Errorf("rows per device %v, want plc 37, gds 5", devices)
	}
	// Both devices were read over the one line; nothing was garbled.
	st, ok := sim.RTUStats(port)
	if !ok || st.Answered < 5 || st.BadCRC != 0 || st.Garbage != 0 || st.Exceptions != 0 {
		t.Errorf("bus stats %+v, want 5+ clean answers", st)
	}
}

func TestPollOnceRTUDeadUnitAndIllegalAddress(t *testing.T) {
	_, port, want := startRTUSim(t)
	// The gateway's site has a third device, unit 3, which nothing serves,
	// and a gas point at an input register the controller does not have.
	s, _ := rtuTypesSite(t, port,
		fmt.Sprintf("      - {id: dead, transport: rtu, unit_id: 3, poll_interval: 500ms, timeout: 500ms, retries: 0, serial: {port: %s, baud_rate: 19200}}\n", port),
		`      - {id: dead-1, name: dead-1, kind: pressure, unit: kPa, range: [0, 10], modbus: {device: dead, table: holding, address: 0, type: uint16}}
      - {id: dead-2, name: dead-2, kind: pressure, unit: kPa, range: [0, 10], modbus: {device: dead, table: coil, address: 0}}
      - {id: ghost, name: ghost, kind: toxic_gas, gas: H2S, unit: ppm, range: [0, 100], modbus: {device: gds, table: input, address: 900, type: uint16}}
`)
	reg := prometheus.NewRegistry()
	rows, err := pollOnceWith(t, s, reg)
	if err == nil || !strings.Contains(err.Error(), "device dead") || !strings.Contains(err.Error(), "Modbus exception 2 (illegal data address)") {
		t.Fatalf("PollOnce error = %v, want one naming device dead and one naming exception 2", err)
	}
	if len(rows) != len(want)+3 {
		t.Fatalf("%d rows for %d points", len(rows), len(want)+3)
	}
	for _, r := range rows {
		switch r.Point {
		case "dead-1", "dead-2":
			if r.Quality != protocol.CommFail || r.Value != nil || !strings.Contains(r.Note, "device dead") {
				t.Errorf("%s: %+v, want comm_fail naming device dead", r.Point, r)
			}
		case "ghost":
			if r.Quality != protocol.CommFail || r.Value != nil || !strings.Contains(r.Note, "input 900+1: Modbus exception 2 (illegal data address)") {
				t.Errorf("ghost: %+v, want comm_fail naming exception 2 at input 900", r)
			}
		default:
			checkRow(t, r, want)
		}
	}
	// A unit that does not answer counts as a timeout, not an I/O error.
	for _, c := range []struct {
		device, code string
		n            float64
	}{{"dead", "timeout", 1}, {"dead", "io", 0}, {"gds", "exception_2", 1}} {
		if got := pollErrors(t, reg, c.device, c.code); got != c.n {
			t.Errorf("poll errors of %s with code %s: %v, want %v", c.device, c.code, got, c.n)
		}
	}
}

// pollErrors is hazardwatch_gateway_poll_errors_total{device,code}.
func pollErrors(t *testing.T, reg prometheus.Gatherer, device, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hazardwatch_gateway_poll_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["device"] == device && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestPollOnceRTUCorruptAnswersSpareTheOtherDevice(t *testing.T) {
	sim, port, want := startRTUSim(t)
	s, _ := rtuTypesSite(t, port, "", "")
	if err := sim.CorruptCRC("gds", true); err != nil {
		t.Fatal(err)
	}
	rows, err := pollOnce(t, s)
	if err == nil || !strings.Contains(err.Error(), "device gds") || !strings.Contains(err.Error(), "crc") {
		t.Fatalf("PollOnce error = %v, want one naming device gds and the crc", err)
	}
	for _, r := range rows {
		if r.Device == "gds" {
			if r.Quality != protocol.CommFail || r.Value != nil || !strings.Contains(r.Note, "crc") {
				t.Errorf("%s: %+v, want comm_fail naming the crc", r.Point, r)
			}
			continue
		}
		checkRow(t, r, want)
	}
	// The line heals: the next poll reads both devices again.
	if err := sim.CorruptCRC("gds", false); err != nil {
		t.Fatal(err)
	}
	rows, err = pollOnce(t, s)
	if err != nil {
		t.Fatalf("PollOnce after the line healed: %v", err)
	}
	for _, r := range rows {
		checkRow(t, r, want)
	}
}

func TestRunRTUSharesTheBus(t *testing.T) {
	sim, port, want := startRTUSim(t)
	s, _ := rtuTypesSite(t, port,
		fmt.Sprintf("      - {id: dead, transport: rtu, unit_id: 3, poll_interval: 300ms, timeout: 300ms, retries: 0, serial: {port: %s, baud_rate: 19200}}\n", port),
		"      - {id: dead-1, name: dead-1, kind: pressure, unit: kPa, range: [0, 10], modbus: {device: dead, table: holding, address: 0, type: uint16}}\n")
	pub := &capture{}
	g, err := gateway.New(gateway.Config{Site: s, GatewayID: "gw1", DataDir: t.TempDir(), Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	// Three devices poll the one line at once; requests interleaved on it
	// would garble frames, which the simulator counts.
	testenv.Eventually(t, "6 polls of each live device and one of the dead", 20*time.Second, func() bool {
		msgs := pub.snapshot()
		return len(pollTimes(msgs, "nh3")) >= 6 && len(pollTimes(msgs, "p-float64-dcba")) >= 6 && len(pollTimes(msgs, "dead-1")) >= 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, m := range pub.snapshot() {
		for _, r := range m.Readings {
			switch r.Point {
			case "dead-1":
				if r.QualityOrGood() != protocol.CommFail || r.Value != nil {
					t.Fatalf("unit 3 reading %+v, want comm_fail without value", r)
				}
			case "loop-broken", "float-fault", "over":
			default:
				if r.QualityOrGood() != protocol.Good || r.Value == nil || math.Abs(*r.Value-want[r.Point]) > 1e-6 {
					t.Fatalf("reading %+v, want good %v", r, want[r.Point])
				}
			}
		}
	}
	st, _ := sim.RTUStats(port)
	if st.BadCRC != 0 || st.Garbage != 0 || st.Exceptions != 0 || st.Answered < 12 {
		t.Errorf("bus stats %+v, want 12+ clean answers", st)
	}
}
