package gateway_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hazardwatch/hazardwatch/gateway"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/simulators"
	"github.com/hazardwatch/hazardwatch/site"
)

// freeAddr returns a 127.0.0.1 address nothing listens on right now.
var (
	allTypes  = []site.DataType{site.Int16, site.Uint16, site.Int32, site.Uint32, site.Int64, site.Uint64, site.Float32, site.Float64}
	allOrders = []site.ByteOrder{site.ABCD, site.CDAB, site.BADC, site.DCBA}
)

// typesSite has one point per type × order on device "plc", plus bits, a
// scaled register and current loops, all on free ports.
func typesSite(t *testing.T, plcAddr, gdsAddr string) (*site.Site, map[string]float64, string) {
	t.Helper()
	want := map[string]float64{}
	var b strings.Builder
	fmt.Fprintf(&b, `id: t-%d
name: codec test
gateways:
  - id: gw1
    devices:
      - id: plc
        address: %s
        poll_interval: 500ms
        timeout: 500ms
      - id: gds
        address: %s
        unit_id: 3
        poll_interval: 500ms
        timeout: 500ms
sources:
  - id: src
    name: all types
    type: process_unit
    grade: 3
    points:
`, time.Now().UnixNano(), plcAddr, gdsAddr)
	writeTypesPoints(&b, want)
	s, err := site.Parse("types.yaml", []byte(b.String()))
	if err != nil {
		t.Fatalf("test site: %v", err)
	}
	return s, want, b.String()
}

// writeTypesPoints appends the types sites' points to a site file's
// points list and records each point's wanted value: one point per type ×
// order on device "plc", bits and coils, and on "gds" a scaled gas reading,
// current loops, a reading beyond its range and a faulty float.
func writeTypesPoints(b *strings.Builder, want map[string]float64) {
	point := func(id, modbus string, lo, hi, v float64) {
		fmt.Fprintf(b, "      - {id: %s, name: %s, kind: pressure, unit: kPa, range: [%g, %g], modbus: %s}\n", id, id, lo, hi, modbus)
		want[id] = v
	}
	addr := 0
	for _, typ := range allTypes {
		for _, order := range allOrders {
			lo, v := -500.0, -123.0
			if strings.HasPrefix(string(typ), "uint") {
				lo, v = 0, 321
			}
			scale := "0.5"
			if strings.HasPrefix(string(typ), "float") {
				scale, v = "1", -12.375
			}
			point(fmt.Sprintf("p-%s-%s", typ, strings.ToLower(string(order))),
				fmt.Sprintf("{device: plc, table: holding, address: %d, type: %s, order: %s, scale: %s, offset: 2}", addr, typ, order, scale), lo, 1000, v)
			addr += typ.Registers() + 1 // leave gaps so the planner merges across them
		}
	}
	point("coil-on", "{device: plc, table: coil, address: 3}", 0, 1, 1)
	point("coil-off", "{device: plc, table: coil, address: 4}", 0, 1, 0)
	point("di-on", "{device: plc, table: discrete_input, address: 2000}", 0, 1, 1)
	point("bit-5", "{device: plc, table: holding, address: 500, type: bool, bit: 5}", 0, 1, 1)
	point("bit-6", "{device: plc, table: holding, address: 500, type: bool, bit: 6}", 0, 1, 0)
	point("nh3", "{device: gds, table: input, address: 0, type: uint16, scale: 0.1}", 0, 100, 41.5)
	point("loop-ch4", "{device: gds, table: input, address: 1, type: uint16, current_loop: {raw_at_4ma: 4000, raw_at_20ma: 20000}}", 0, 4, 1.25)
	point("loop-broken", "{device: gds, table: input, address: 2, type: uint16, current_loop: {raw_at_4ma: 4000, raw_at_20ma: 20000}}", 0, 4, 1)
	point("over", "{device: gds, table: input, address: 3, type: uint16, scale: 0.1}", 0, 100, 0)
	point("float-fault", "{device: gds, table: input, address: 4, type: float32, order: CDAB}", 0, 100, 0)
}

// setTypesValues sets every point of a types site to its wanted value and
// the faults the tests expect: a broken current loop, a detector fault and
// 150 ppm on a 0–100 ppm detector.
func setTypesValues(t *testing.T, sim *simulators.Sim, want map[string]float64) {
	t.Helper()
	for id, v := range want {
		if err := sim.Set(id, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := sim.SetFault("loop-broken", simulators.BrokenLoop); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetFault("float-fault", simulators.DetectorFault); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetRaw("gds", site.InputRegisters, 3, 1500); err != nil {
		t.Fatal(err)
	}
}

func startSim(t *testing.T, s *site.Site, opts ...simulators.Option) *simulators.Sim {
	t.Helper()
	sim, err := simulators.New(s, append([]simulators.Option{simulators.WithoutNoise()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func TestPollOnceDecodesEveryTypeAndOrder(t *testing.T) {
	s, want, _ := typesSite(t, testenv.FreeAddr(t), testenv.FreeAddr(t))
	sim := startSim(t, s)
	setTypesValues(t, sim, want)

	reg := prometheus.NewRegistry()
	g, err := gateway.New(gateway.Config{Site: s, GatewayID: "gw1", DataDir: t.TempDir(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := g.PollOnce(context.Background())
	if err != nil {
		t.Fatalf("PollOnce: %v", err)
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows for %d points", len(rows), len(want))
	}
	for _, r := range rows {
		switch r.Point {
		case "loop-broken", "float-fault":
			if r.Quality != protocol.Bad || r.Value != nil || r.Note == "" {
				t.Errorf("%s: %+v, want bad without a value", r.Point, r)
			}
			continue
		case "over":
			if r.Quality != protocol.OverRange || r.Value == nil || math.Abs(*r.Value-150) > 1e-9 {
				t.Errorf("over: %+v, want over_range 150", r)
			}
			continue
		}
		if r.Quality != protocol.Good || r.Value == nil {
			t.Errorf("%s: %s %s (%s)", r.Point, r.Quality, r.Raw, r.Note)
			continue
		}
		if math.Abs(*r.Value-want[r.Point]) > 1e-6 {
			t.Errorf("%s: value %v (raw %s), want %v", r.Point, *r.Value, r.Raw, want[r.Point])
		}
	}
	var sb strings.Builder
	if err := gateway.WriteTable(&sb, rows); err != nil || !strings.Contains(sb.String(), "p-float32-cdab") {
		t.Errorf("table: %v\n%s", err, sb.String())
	}
	// Requests were coalesced: far fewer than one per point.
	if n := testutil.CollectAndCount(reg, "hazardwatch_gateway_request_seconds"); n == 0 {
		t.Error("no request latency recorded")
	}
}

func TestPollOnceReportsDeadDeviceAndException(t *testing.T) {
	plc, gds := testenv.FreeAddr(t), testenv.FreeAddr(t)
	s, _, text := typesSite(t, plc, gds)
	// The simulator serves the GDS as unit 3; the gateway's copy of the site
	// asks for unit 4, so the simulator answers with exception 11. Nothing
	// listens on the PLC's port.
	startSim(t, s, simulators.WithAddress("plc", testenv.FreeAddr(t)))
	text = strings.Replace(text, "unit_id: 3", "unit_id: 4", 1)
	gs, err := site.Parse("gw.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Site: gs, GatewayID: "gw1", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := g.PollOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "device plc") || !strings.Contains(err.Error(), "Modbus exception 11") {
		t.Fatalf("PollOnce error = %v, want one naming device plc and one naming exception 11", err)
	}
	for _, r := range rows {
		if r.Quality != protocol.CommFail || r.Value != nil {
			t.Fatalf("%s: %s, want comm_fail without value", r.Point, r.Quality)
		}
	}
}
