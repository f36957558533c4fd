package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/simulators"
	"github.com/hazardwatch/hazardwatch/site"
)

const commissionSite = `id: commission
name: commissioning test
gateways:
  - id: gw1
    devices:
      - {id: gds, address: %s, poll_interval: 1s, timeout: 500ms}
sources:
  - id: src
    name: chlorine
    type: storage
    grade: 2
    points:
      - {id: cl2, name: cl2, kind: toxic_gas, gas: Cl2, unit: ppm, range: [0, 10], modbus: {device: gds, table: input, address: 0, type: float32}, limits: {h: 0.3, hh: 0.6}}
      - {id: press, name: press, kind: pressure, unit: kPa, range: [0, 100000], modbus: {device: gds, address: 4, type: uint32}}
      - {id: temp, name: temp, kind: temperature, unit: °C, range: [-40, 200], modbus: {device: gds, address: 10, type: float32}, limits: {h: 60}}
%s`

// TestDryRunTellsTheTruth: full-precision values compared with their
// limits, the addresses the device refuses with the advice that fits, a
// summary per device, and a failing exit when a point cannot be read.
func TestDryRunTellsTheTruth(t *testing.T) {
	addr := testenv.FreeAddr(t)
	simSite, err := site.Parse("c.yaml", []byte(fmt.Sprintf(commissionSite, addr, "")))
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulators.New(simSite, simulators.WithoutNoise(), simulators.WithHoles())
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	for p, v := range map[string]float64{"cl2": 0.45, "press": 54321, "temp": 23.456} {
		if err := sim.Set(p, v); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	ghost := "      - {id: ghost, name: ghost, kind: pressure, unit: kPa, range: [0, 10], modbus: {device: gds, address: 8}}\n"
	if err := os.WriteFile(path, []byte(fmt.Sprintf(commissionSite, addr, ghost)), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	err = run(context.Background(), []string{"-site", path, "-dry-run", "-data", t.TempDir()}, &out, &errs)
	report := out.String()
	t.Logf("report:\n%s", report)
	if err == nil || !strings.Contains(err.Error(), "gds (1)") {
		t.Errorf("dry run error %v, want one naming device gds and its unread point", err)
	}
	for _, want := range []string{
		"54321", "23.456", "0.45", // full precision, as the instrument shows
		"would raise H (≥ 0.3)",
		"point ghost at holding 8+1", "Fix the point's address or table",
		"read around", // the unused holding 6..7 between press and ghost
		"gds: 4 points, 3 good (1 beyond a limit), 1 NOT READ (comm_fail)",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
