package gateway_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/simulators"
	"github.com/hazardwatch/hazardwatch/site"
)

// dsSite has two units behind a serial device server: as the simulator
// sees them (an RS-485 bus "line1") or as the gateway reaches them
// (rtu_over_tcp at addr).
func dsSite(t *testing.T, id, addr string) *site.Site {
	t.Helper()
	dev := func(name string, unit int) string {
		if addr == "" {
			return fmt.Sprintf("      - {id: %s, transport: rtu, unit_id: %d, serial: {port: line1, baud_rate: 19200}}\n", name, unit)
		}
		return fmt.Sprintf("      - {id: %s, transport: rtu_over_tcp, address: %q, unit_id: %d, timeout: 500ms}\n", name, addr, unit)
	}
	text := "id: " + id + "\nname: device server test\ngateways:\n  - id: gw1\n    devices:\n" + dev("gas1", 1) + dev("gas2", 2) + `sources:
  - id: src
    name: tanks
    type: tank_farm
    grade: 3
    points:
      - {id: a, name: a, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: gas1, table: input, address: 0, scale: 0.1}}
      - {id: b, name: b, kind: pressure, unit: MPa, range: [0, 2.5], modbus: {device: gas1, address: 4, type: float32, order: CDAB}}
      - {id: c, name: c, kind: toxic_gas, gas: CO, unit: ppm, range: [0, 500], modbus: {device: gas2, table: input, address: 3}}
`
	s, err := site.Parse("ds.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRTUOverTCPThroughADeviceServer(t *testing.T) {
	id := fmt.Sprintf("ds-%d", rand.Uint64())
	sim, err := simulators.New(dsSite(t, id, ""), simulators.WithoutNoise())
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	addr, err := sim.ServeRTUOverTCP("line1", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"a": 12.3, "b": 1.25, "c": 42}
	for p, v := range want {
		if err := sim.Set(p, v); err != nil {
			t.Fatal(err)
		}
	}
	gw := dsSite(t, id, addr)
	for round := range 2 { // the gateway connects anew each round
		rows, err := pollOnce(t, gw)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, r := range rows {
			if r.Quality != protocol.Good || r.Value == nil || *r.Value != want[r.Point] {
				t.Errorf("round %d: %s = %+v, want good %v", round, r.Point, r, want[r.Point])
			}
		}
	}
	if _, err := sim.ServeRTUOverTCP("nope", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("serving a bus the site lacks: %v", err)
	}
}
