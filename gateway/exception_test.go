package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

func TestReportByException(t *testing.T) {
	s, err := site.Parse("rbe.yaml", []byte(`id: s
name: S
gateways: [{id: gw, devices: [{id: d, address: "127.0.0.1:1502", poll_interval: 1s}]}]
sources:
  - id: src
    name: Src
    type: tank_farm
    grade: 3
    points:
      - {id: level, name: L, kind: level, unit: "%", range: [0, 100], modbus: {device: d, address: 0}, report: {deadband: 0.5, heartbeat: 10s}}
      - {id: gas, name: G, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: d, address: 1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Point("level").Point.StaleAfter; got == nil || got.D() != 30*time.Second {
		t.Errorf("stale_after of a point reported by exception = %v, want 3 heartbeats", got)
	}
	e := newExceptions(s.PointsOfDevice("d"))
	t0 := time.Unix(1000, 0)
	row := func(point string, v float64, q protocol.Quality) Row {
		r := Row{Point: point, Quality: q}
		if q == protocol.Good {
			r.Value = protocol.F(v)
		}
		return r
	}
	steps := []struct {
		at    time.Duration
		level float64
		q     protocol.Quality
		sent  bool
	}{
		{0, 50, protocol.Good, true},                   // first reading always goes
		{1 * time.Second, 50.2, protocol.Good, false},  // inside the deadband
		{2 * time.Second, 49.6, protocol.Good, false},  // 0.4 from the last sent
		{3 * time.Second, 50.5, protocol.Good, true},   // moved 0.5
		{4 * time.Second, 0, protocol.CommFail, true},  // quality changed
		{5 * time.Second, 0, protocol.CommFail, false}, // same quality, no value
		{6 * time.Second, 50.5, protocol.Good, true},   // back to good
		{15 * time.Second, 50.6, protocol.Good, false}, // 9 s since sent
		{16 * time.Second, 50.6, protocol.Good, true},  // heartbeat: 10 s
	}
	for i, st := range steps {
		out := e.filter([]Row{row("level", st.level, st.q), row("gas", 1, protocol.Good)}, t0.Add(st.at))
		var names []string
		for _, r := range out {
			names = append(names, r.Point)
		}
		got := strings.Join(names, ",")
		want := "gas"
		if st.sent {
			want = "level,gas"
		}
		if got != want {
			t.Errorf("step %d (%v, %v %v): sent %q, want %q", i, st.at, st.level, st.q, got, want)
		}
	}
}

func TestReportOptionsChecked(t *testing.T) {
	_, err := site.Parse("rbe.yaml", []byte(`id: s
name: S
gateways: [{id: gw, devices: [{id: d, address: "127.0.0.1:1502", poll_interval: 5s}]}]
sources:
  - id: src
    name: Src
    type: tank_farm
    grade: 3
    points:
      - {id: level, name: L, kind: level, unit: "%", range: [0, 100], modbus: {device: d, address: 0}, report: {deadband: -1, heartbeat: 1s}}
`))
	if err == nil || !strings.Contains(err.Error(), "report.deadband") || !strings.Contains(err.Error(), "report.heartbeat") {
		t.Errorf("bad report options: %v", err)
	}
}
