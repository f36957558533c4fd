package gateway_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/gateway"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/simulators"
	"github.com/hazardwatch/hazardwatch/site"
)

// busSite puts a gas detector (unit 1) and, when withAbsent, a second
// detector (unit 2) on one RS-485 line, both at the site defaults' shape:
// timeout equal to the poll interval, so that two tries take longer than
// the time the line has between two polls of unit 1.
func busSite(t *testing.T, port string, withAbsent bool) *site.Site {
	t.Helper()
	text := fmt.Sprintf(`id: bus-%d
name: bus test
gateways:
  - id: gw1
    devices:
      - {id: gas1, transport: rtu, unit_id: 1, poll_interval: 300ms, timeout: 300ms, retries: 1, serial: {port: %[2]s, baud_rate: 19200}}
`, rand.Uint64(), port)
	if withAbsent {
		text += fmt.Sprintf("      - {id: gas2, transport: rtu, unit_id: 2, poll_interval: 300ms, timeout: 300ms, retries: 1, serial: {port: %s, baud_rate: 19200}}\n", port)
	}
	text += `sources:
  - id: src
    name: tanks
    type: tank_farm
    grade: 3
    points:
      - {id: g1, name: g1, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: gas1, table: input, address: 0, scale: 0.1}, limits: {h: 40, hh: 80}}
`
	if withAbsent {
		text += "      - {id: g2, name: g2, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: gas2, table: input, address: 0, scale: 0.1}, limits: {h: 40, hh: 80}}\n"
	}
	s, err := site.Parse("bus.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAbsentUnitKeepsHealthyUnitsInterval runs a gateway on a
// pseudo-terminal RS-485 line where unit 2 never answers. Each of unit 2's
// polls would hold the line for 600 ms (two 300 ms timeouts) if it were
// polled like a healthy unit; the healthy unit 1 must keep its 300 ms
// interval anyway.
func TestAbsentUnitKeepsHealthyUnitsInterval(t *testing.T) {
	master, port, err := simulators.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulators.New(busSite(t, port, false), simulators.WithoutNoise())
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	if err := sim.ServeRTU(port, master); err != nil {
		master.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	if err := sim.Set("g1", 4.2); err != nil {
		t.Fatal(err)
	}
	pub := &capture{}
	g, err := gateway.New(gateway.Config{Site: busSite(t, port, true), GatewayID: "gw1", DataDir: t.TempDir(), Publisher: pub, MaxBackoff: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	testenv.Eventually(t, "20 polls of unit 1 and 3 probes of the absent unit 2", 30*time.Second, func() bool {
		msgs := pub.snapshot()
		return len(pollTimes(msgs, "g1")) >= 20 && len(pollTimes(msgs, "g2")) >= 3
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	msgs := pub.snapshot()
	healthy, absent := pollTimes(msgs, "g1"), pollTimes(msgs, "g2")
	t0 := healthy[0]
	for i, at := range healthy {
		gap := time.Duration(0)
		if i > 0 {
			gap = at.Sub(healthy[i-1])
		}
		t.Logf("unit 1 reading %2d at +%6.3fs (gap %v)", i, at.Sub(t0).Seconds(), gap.Round(time.Millisecond))
	}
	for _, at := range absent {
		t.Logf("unit 2 probe at +%6.3fs", at.Sub(t0).Seconds())
	}
	// Half an interval of lateness is what the scheduler allows itself. A
	// probe of unit 2 that held the line would start between two readings
	// of unit 1 and leave them 600 ms and more apart. (A late reading with
	// no probe before it is the busy machine's, not unit 2's.)
	late := 0
	for i := 1; i < len(healthy); i++ {
		gap := healthy[i].Sub(healthy[i-1])
		if gap <= 450*time.Millisecond {
			continue
		}
		late++
		for _, p := range absent {
			if p.After(healthy[i-1]) && p.Before(healthy[i]) {
				t.Errorf("unit 1 readings %d and %d are %v apart with unit 2 probed at +%.3fs between them; its interval is 300ms",
					i-1, i, gap, p.Sub(t0).Seconds())
			}
		}
	}
	if late > len(healthy)/4 {
		t.Errorf("%d of %d intervals of unit 1 were late", late, len(healthy)-1)
	}
	for _, m := range msgs {
		for _, r := range m.Readings {
			if r.Point == "g2" && (r.QualityOrGood() != protocol.CommFail || r.Value != nil) {
				t.Fatalf("absent unit's reading %+v, want comm_fail", r)
			}
			if r.Point == "g1" && (r.QualityOrGood() != protocol.Good || r.Value == nil || *r.Value != 4.2) {
				t.Fatalf("healthy unit's reading %+v, want good 4.2", r)
			}
		}
	}
}
