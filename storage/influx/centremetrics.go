package influx

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/hazardwatch/hazardwatch/storage"
)

// FieldMetric is the field holding a centre metric's value; the metric's
// name is the measurement and its labels are tags.
const FieldMetric = "value"

var _ storage.MetricAppender = (*Store)(nil)

// AppendMetrics stores the centre's own metrics, one point each (the
// metric's name as measurement, its labels as tags, field "value"), with
// the same write-or-spill durability as Append.
func (s *Store) AppendMetrics(ctx context.Context, metrics []storage.Metric) error {
	var rejected []storage.Rejected
	lines := make([]string, 0, len(metrics))
	indexOf := make([]int, 0, len(metrics))
	for i := range metrics {
		line, reason, err := encodeMetric(&metrics[i])
		if err != nil {
			rejected = append(rejected, storage.Rejected{Index: i, Reason: reason, Err: err})
			s.m.rejected.WithLabelValues(reason).Inc()
			continue
		}
		lines = append(lines, line)
		indexOf = append(indexOf, i)
	}
	return s.appendLines(ctx, lines, indexOf, rejected, "metrics")
}

// encodeMetric turns a metric into one line of line protocol.
func encodeMetric(m *storage.Metric) (line, reason string, err error) {
	switch {
	case m.Name == "" || m.Name == Measurement:
		return "", storage.RejectInvalid, fmt.Errorf("metric name %q: a name other than %q is required", m.Name, Measurement)
	case m.Time.IsZero():
		return "", storage.RejectInvalid, fmt.Errorf("metric %s: no time", m.Name)
	case math.IsNaN(m.Value) || math.IsInf(m.Value, 0):
		return "", storage.RejectNotNumber, fmt.Errorf("metric %s at %s: value %v is not a number", m.Name, m.Time.Format(time.RFC3339Nano), m.Value)
	}
	p := write.NewPointWithMeasurement(m.Name).AddField(FieldMetric, m.Value).SetTime(m.Time)
	for k, v := range m.Labels {
		if k == "" || k == FieldMetric || strings.HasPrefix(k, "_") {
			return "", storage.RejectInvalid, fmt.Errorf("metric %s: label name %q is not allowed", m.Name, k)
		}
		if v != "" { // an empty tag is an absent one in InfluxDB
			p.AddTag(k, v)
		}
	}
	return strings.TrimSuffix(write.PointToLineProtocol(p, time.Millisecond), "\n"), "", nil
}
