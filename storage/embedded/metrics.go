package embedded

import (
	"context"
	"fmt"
	"math"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/hazardwatch/hazardwatch/storage"
)

var _ storage.MetricAppender = (*Store)(nil)

// AppendMetrics stores the centre's own metrics as series named by each
// metric's Name with its Labels, in one transaction committed through the
// write-ahead log. Refused metrics are listed in a *storage.RejectedError;
// the others are stored.
func (s *Store) AppendMetrics(ctx context.Context, metrics []storage.Metric) error {
	if len(metrics) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append metrics to embedded store: %w", err)
	}
	app := s.db.Appender(ctx)
	var rejected []storage.Rejected
	for i, m := range metrics {
		lset, err := metricLabels(m)
		if err != nil {
			rejected = append(rejected, storage.Rejected{Index: i, Reason: storage.RejectInvalid, Err: err})
			continue
		}
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			rejected = append(rejected, storage.Rejected{Index: i, Reason: storage.RejectNotNumber,
				Err: fmt.Errorf("metric %s: value %v is not a finite number", lset, m.Value)})
			continue
		}
		if _, err := app.Append(0, lset, m.Time.UnixMilli(), m.Value); err != nil {
			if reason, ok := sampleReason(err); ok {
				rejected = append(rejected, storage.Rejected{Index: i, Reason: reason, Err: fmt.Errorf("metric %s: %w", lset, err)})
				continue
			}
			_ = app.Rollback() // the append error is the one worth reporting
			return fmt.Errorf("append metric %s to embedded store %s: %w", lset, s.dir, err)
		}
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("commit %d metrics to embedded store %s: %w", len(metrics), s.dir, err)
	}
	if len(rejected) > 0 {
		return &storage.RejectedError{Rejected: rejected}
	}
	return nil
}

// metricLabels checks a metric's name, labels and time and returns its
// label set.
func metricLabels(m storage.Metric) (labels.Labels, error) {
	if !model.LegacyValidation.IsValidMetricName(m.Name) {
		return labels.EmptyLabels(), fmt.Errorf("metric name %q is not a valid Prometheus metric name", m.Name)
	}
	if m.Time.IsZero() {
		return labels.EmptyLabels(), fmt.Errorf("metric %s: no time", m.Name)
	}
	b := labels.NewScratchBuilder(len(m.Labels) + 1)
	b.Add(model.MetricNameLabel, m.Name)
	for k, v := range m.Labels {
		if k == model.MetricNameLabel || !model.LegacyValidation.IsValidLabelName(k) {
			return labels.EmptyLabels(), fmt.Errorf("metric %s: label name %q is not allowed", m.Name, k)
		}
		if v == "" {
			continue // Prometheus treats an empty label as an absent one
		}
		b.Add(k, v)
	}
	b.Sort()
	return b.Labels(), nil
}
