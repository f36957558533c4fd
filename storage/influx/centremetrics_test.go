package influx

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/storage"
)

func testAppendMetrics(t *testing.T, d *testenv.Influxd) {
	s := openT(t, fastOptions(d.URL(), d.Bucket(), t.TempDir()))
	grade := func(at time.Time, v float64) storage.Metric {
		return storage.Metric{Name: "hazardwatch_source_grade", Labels: map[string]string{"site": "metrics-site", "source": "nh3-tanks", "node": ""}, Time: at, Value: v}
	}
	err := s.AppendMetrics(context.Background(), []storage.Metric{
		grade(t0, 0),
		{Name: "", Time: t0, Value: 1},
		{Name: Measurement, Time: t0, Value: 1},
		{Name: "hazardwatch_x", Labels: map[string]string{"_measurement": "y"}, Time: t0, Value: 1},
		{Name: "hazardwatch_x", Value: 1},
		{Name: "hazardwatch_x", Time: t0, Value: math.Inf(1)},
		grade(t0.Add(5*time.Second), 3),
	})
	var rej *storage.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("AppendMetrics = %v, want a *storage.RejectedError", err)
	}
	want := map[int]string{1: storage.RejectInvalid, 2: storage.RejectInvalid, 3: storage.RejectInvalid, 4: storage.RejectInvalid, 5: storage.RejectNotNumber}
	if len(rej.Rejected) != len(want) {
		t.Errorf("rejected %+v, want indexes %v", rej.Rejected, want)
	}
	for _, r := range rej.Rejected {
		if want[r.Index] != r.Reason {
			t.Errorf("metric %d rejected as %q, want %q", r.Index, r.Reason, want[r.Index])
		}
	}

	// InfluxDB itself holds the two grades under the metric's name, tagged
	// with its non-empty labels.
	series := d.Series(`SELECT "value", "site", "node" FROM "hazardwatch_source_grade" WHERE "source" = 'nh3-tanks' AND time >= 0`)
	if len(series) != 1 || len(series[0]) != 2 {
		t.Fatalf("stored grades = %v, want one series of two points", series)
	}
	rows := series[0]
	if rows[0][1] != 0.0 || rows[1][1] != 3.0 || rows[0][2] != "metrics-site" || rows[0][3] != nil {
		t.Errorf("stored grades = %v, want values 0 and 3, site metrics-site, no node tag", rows)
	}
}

// TestAppendMetricsSpillsWhileInfluxDown checks metrics take the readings'
// durable path: with InfluxDB unreachable they are spilled, not lost.
func TestAppendMetricsSpillsWhileInfluxDown(t *testing.T) {
	s := openT(t, fastOptions(deadURL(t), "hw/autogen", t.TempDir()))
	err := s.AppendMetrics(context.Background(), []storage.Metric{
		{Name: "hazardwatch_source_grade", Labels: map[string]string{"site": "a", "source": "b"}, Time: t0, Value: 2},
		{Name: "hazardwatch_ingest_connected", Time: t0, Value: 1},
	})
	if err != nil {
		t.Fatalf("AppendMetrics with InfluxDB down = %v, want nil (spilled)", err)
	}
	if records, points := s.SpillDepth(); records != 1 || points != 2 {
		t.Errorf("spill depth = %d records, %d points; want 1 record of 2 points", records, points)
	}
}
