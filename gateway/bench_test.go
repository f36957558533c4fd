package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hazardwatch/hazardwatch/gateway"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/simulators"
	"github.com/hazardwatch/hazardwatch/site"
)

const (
	benchDevices         = 20
	benchPointsPerDevice = 100
)

// benchSite is one gateway with benchDevices TCP devices, each with
// benchPointsPerDevice holding-register points alternating uint16 (one
// register) and float32 CDAB (two), packed so the plan reads 150
// registers a device in two requests. addr gives each device's address.
func benchSite(b *testing.B, addr func(device string) string) *site.Site {
	b.Helper()
	var y strings.Builder
	y.WriteString("id: bench\nname: poll benchmark\ngateways:\n  - id: gw\n    devices:\n")
	for d := range benchDevices {
		id := fmt.Sprintf("dev%02d", d)
		fmt.Fprintf(&y, "      - {id: %s, address: %q, poll_interval: 2s, timeout: 2s, retries: 0}\n", id, addr(id))
	}
	y.WriteString("sources:\n  - id: tanks\n    name: tanks\n    type: tank_farm\n    grade: 3\n    points:\n")
	for d := range benchDevices {
		reg := 0
		for p := range benchPointsPerDevice {
			if p%2 == 0 {
				fmt.Fprintf(&y, "      - {id: d%02d-p%03d, name: level, kind: level, unit: \"%%\", range: [0, 100], modbus: {device: dev%02d, address: %d, type: uint16, scale: 0.01}}\n", d, p, d, reg)
				reg++
			} else {
				fmt.Fprintf(&y, "      - {id: d%02d-p%03d, name: pressure, kind: pressure, unit: MPa, range: [0, 2.5], modbus: {device: dev%02d, address: %d, type: float32, order: CDAB}}\n", d, p, d, reg)
				reg += 2
			}
		}
	}
	s, err := site.Parse("bench.yaml", []byte(y.String()))
	if err != nil {
		b.Fatalf("benchmark site: %v", err)
	}
	return s
}

// BenchmarkPoll measures one gateway polling every point of 20 simulated
// Modbus TCP devices once (PollOnce, devices concurrently), over real
// sockets on 127.0.0.1.
func BenchmarkPoll(b *testing.B) {
	// The simulators listen on ports the system picks; the gateway's site
	// then names those ports.
	simSite := benchSite(b, func(string) string { return "127.0.0.1:1" })
	opts := []simulators.Option{simulators.WithoutNoise()}
	for _, d := range simSite.Gateways[0].Devices {
		opts = append(opts, simulators.WithAddress(d.ID, "127.0.0.1:0"))
	}
	sim, err := simulators.New(simSite, opts...)
	if err != nil {
		b.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	s := benchSite(b, sim.Addr)

	registers, requests := 0, 0
	for _, d := range s.Gateways[0].Devices {
		for _, r := range gateway.Plan(s.PointsOfDevice(d.ID), site.DefaultMaxGap) {
			registers += int(r.Count)
			requests++
		}
	}
	g, err := gateway.New(gateway.Config{Site: s, GatewayID: "gw", DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// The first poll connects to every device; it also proves every point
	// reads good, so the loop measures real reads, not failures.
	rows, err := g.PollOnce(ctx)
	if err != nil {
		b.Fatalf("first poll: %v", err)
	}
	if len(rows) != benchDevices*benchPointsPerDevice {
		b.Fatalf("first poll gave %d rows, want %d", len(rows), benchDevices*benchPointsPerDevice)
	}
	for _, r := range rows {
		if r.Quality != protocol.Good {
			b.Fatalf("first poll: %s/%s is %s (%s), want good", r.Device, r.Point, r.Quality, r.Note)
		}
	}

	b.ReportAllocs()
	for b.Loop() {
		rows, err := g.PollOnce(ctx)
		if err != nil {
			b.Fatalf("poll: %v", err)
		}
		if len(rows) != benchDevices*benchPointsPerDevice {
			b.Fatalf("poll gave %d rows", len(rows))
		}
	}
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(registers)*float64(b.N)/secs, "registers/s")
	b.ReportMetric(float64(len(rows))*float64(b.N)/secs, "readings/s")
	b.ReportMetric(float64(requests)*float64(b.N)/secs, "requests/s")
}
