package influx

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of write errors, the "kind" label of hazardwatch_influx_write_errors_total.
const (
	ErrKindUnreachable = "unreachable" // connection refused, DNS, reset
	ErrKindTimeout     = "timeout"     // no answer within RequestTimeout
	ErrKindServer      = "server"      // 5xx
	ErrKindThrottled   = "throttled"   // 429
	ErrKindAuth        = "auth"        // 401, 403: token or user:password wrong
	ErrKindNotFound    = "not_found"   // 404: bucket or database missing
	ErrKindBadData     = "bad_data"    // 400, 413, 422: InfluxDB refuses the points
	ErrKindOther       = "other"       // any other status
	ErrKindSpillFull   = "spill_full"  // InfluxDB unavailable and the spill at its limit
	ErrKindSpillIO     = "spill_io"    // the spill could not be written or read
)

type metrics struct {
	writeLatency  *prometheus.HistogramVec
	batchLines    prometheus.Histogram
	pointsWritten prometheus.Counter
	replayed      prometheus.Counter
	spilledPoints prometheus.Counter
	writeErrors   *prometheus.CounterVec
	rejected      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, sp *spill) *metrics {
	m := &metrics{
		writeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hazardwatch_influx_write_seconds",
			Help:    "Latency of write requests to InfluxDB, by path (direct from Append, replay from the spill) and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"path", "outcome"}),
		batchLines: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hazardwatch_influx_batch_points",
			Help:    "Points per batch the senders wrote or spilled (lines of several Append calls together).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		pointsWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hazardwatch_influx_points_written_total",
			Help: "Points InfluxDB acknowledged directly from Append.",
		}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hazardwatch_influx_replayed_points_total",
			Help: "Points InfluxDB acknowledged from the spill.",
		}),
		spilledPoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hazardwatch_influx_spilled_points_total",
			Help: "Points written to the local spill because InfluxDB could not take them.",
		}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hazardwatch_influx_write_errors_total",
			Help: "Failed writes to InfluxDB or the spill, by kind.",
		}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hazardwatch_influx_rejected_points_total",
			Help: "Points refused for good (invalid sample, or InfluxDB answered 4xx for it), by reason.",
		}, []string{"reason"}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.writeLatency, m.batchLines, m.pointsWritten, m.replayed, m.spilledPoints, m.writeErrors, m.rejected,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hazardwatch_influx_spill_bytes",
			Help: "Bytes in the spill not yet acknowledged by InfluxDB.",
		}, func() float64 { b, _, _, _ := sp.depth(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hazardwatch_influx_spill_records",
			Help: "Records (Append calls) in the spill not yet acknowledged by InfluxDB.",
		}, func() float64 { _, r, _, _ := sp.depth(); return float64(r) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hazardwatch_influx_spill_points",
			Help: "Points in the spill not yet acknowledged by InfluxDB.",
		}, func() float64 { _, _, l, _ := sp.depth(); return float64(l) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hazardwatch_influx_spill_oldest_age_seconds",
			Help: "Age of the oldest spilled record not yet acknowledged by InfluxDB; 0 when the spill is empty.",
		}, func() float64 {
			_, _, _, oldest := sp.depth()
			if oldest.IsZero() {
				return 0
			}
			return time.Since(oldest).Seconds()
		}),
	)
	return m
}
