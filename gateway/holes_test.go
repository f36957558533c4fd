package gateway_test

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// holesSite maps a gas controller whose register map has holes: points at
// holding 0, 2–3, 6, 12 and input 0, 5, with unused addresses between
// them that the default max_gap of 8 reads across. extra is added to the
// points (the gateway's copy may map addresses the device lacks).
func holesSite(t *testing.T, addr, extra string) *site.Site {
	t.Helper()
	text := fmt.Sprintf(`id: holes-%d
name: holes test
gateways:
  - id: gw1
    devices:
      - {id: gds, address: %s, unit_id: 1, poll_interval: 500ms, timeout: 500ms}
sources:
  - id: src
    name: tanks
    type: tank_farm
    grade: 3
    points:
      - {id: h0, name: h0, kind: pressure, unit: kPa, range: [0, 1000], modbus: {device: gds, address: 0}}
      - {id: h2, name: h2, kind: pressure, unit: kPa, range: [0, 1000], modbus: {device: gds, address: 2, type: float32}}
      - {id: h6, name: h6, kind: pressure, unit: kPa, range: [0, 1000], modbus: {device: gds, address: 6}}
      - {id: h12, name: h12, kind: pressure, unit: kPa, range: [0, 1000], modbus: {device: gds, address: 12}}
      - {id: i0, name: i0, kind: pressure, unit: kPa, range: [0, 1000], modbus: {device: gds, table: input, address: 0}}
      - {id: i5, name: i5, kind: pressure, unit: kPa, range: [0, 1000], modbus: {device: gds, table: input, address: 5}}
%s`, rand.Uint64(), addr, extra)
	s, err := site.Parse("holes.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHolesOnlyUnmappedPointsFail(t *testing.T) {
	addr := testenv.FreeAddr(t)
	simSite := holesSite(t, addr, "")
	sim := startSim(t, simSite, simulators.WithHoles())
	want := map[string]float64{"h0": 100, "h2": 222.5, "h6": 600, "h12": 12, "i0": 7, "i5": 505}
	for p, v := range want {
		if err := sim.Set(p, v); err != nil {
			t.Fatal(err)
		}
	}
	// The gateway's site file also maps holding 9, which this device does
	// not have: a typo in the table, say.
	gwSite := holesSite(t, addr, "      - {id: ghost, name: ghost, kind: pressure, unit: kPa, range: [0, 1000], modbus: {device: gds, address: 9}}\n")
	reg := prometheus.NewRegistry()
	g, err := gateway.New(gateway.Config{Site: gwSite, GatewayID: "gw1", DataDir: t.TempDir(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	check := func(round int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rows, err := g.PollOnce(ctx)
		if round == 1 && (err == nil || !strings.Contains(err.Error(), "exception 2")) {
			t.Errorf("round %d: PollOnce error %v, want the ghost's exception 2", round, err)
		}
		if len(rows) != 7 {
			t.Fatalf("round %d: %d rows, want 7", round, len(rows))
		}
		for _, r := range rows {
			if r.Point == "ghost" {
				if r.Quality != protocol.CommFail || !strings.Contains(r.Note, "exception 2") || !strings.Contains(r.Note, "check its address and table") {
					t.Errorf("round %d: ghost %+v, want comm_fail naming exception 2 and the advice", round, r)
				}
				continue
			}
			if r.Quality != protocol.Good || r.Value == nil || *r.Value != want[r.Point] {
				t.Errorf("round %d: %s = %+v, want good %v", round, r.Point, r, want[r.Point])
			}
		}
	}
	check(1)
	learnt := pollErrors(t, reg, "gds", "exception_2")
	if learnt == 0 {
		t.Fatal("no exception 2 counted: the simulator served no holes")
	}
	// What the device refuses is remembered: the next polls read around
	// the holes without a single refused request.
	check(2)
	check(3)
	if n := pollErrors(t, reg, "gds", "exception_2"); n != learnt {
		t.Errorf("exception 2 answers went from %v to %v after the holes were learnt", learnt, n)
	}
	holes := g.Holes()
	var points, gaps []string
	for _, h := range holes {
		if h.Point != "" {
			points = append(points, fmt.Sprintf("%s %s %d-%d", h.Point, h.Table, h.From, h.To))
		} else {
			gaps = append(gaps, fmt.Sprintf("%s %d-%d", h.Table, h.From, h.To))
		}
	}
	if len(points) != 1 || points[0] != "ghost holding 9-10" {
		t.Errorf("refused points %v, want [ghost holding 9-10]", points)
	}
	if len(gaps) == 0 {
		t.Errorf("no gaps listed; want the unused ranges read around")
	}
}

func TestHolesAreProbedAgain(t *testing.T) {
	addr := testenv.FreeAddr(t)
	simSite := holesSite(t, addr, "")
	sim := startSim(t, simSite, simulators.WithHoles())
	gwSite := holesSite(t, addr, "      - {id: ghost, name: ghost, kind: pressure, unit: kPa, range: [0, 1000], modbus: {device: gds, address: 9}}\n")
	reg := prometheus.NewRegistry()
	g, err := gateway.New(gateway.Config{Site: gwSite, GatewayID: "gw1", DataDir: t.TempDir(), Registry: reg, ReprobeInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	poll := func() []gateway.Row {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rows, _ := g.PollOnce(ctx)
		return rows
	}
	poll()
	learnt := pollErrors(t, reg, "gds", "exception_2")
	// New firmware maps holding 9 now.
	if err := sim.SetRaw("gds", site.HoldingRegisters, 9, 909); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the ghost read good after a re-probe", 10*time.Second, func() bool {
		for _, r := range poll() {
			if r.Point == "ghost" {
				return r.Quality == protocol.Good && r.Value != nil && *r.Value == 909
			}
		}
		return false
	})
	if n := pollErrors(t, reg, "gds", "exception_2"); n <= learnt {
		t.Errorf("exception 2 answers %v after re-probing, want more than %v (the probe reads across the holes again)", n, learnt)
	}
}
