package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus metrics, all prefixed
// hazardwatch_ingest_.
type metrics struct {
	messages     prometheus.Counter
	readings     prometheus.Counter
	rejected     *prometheus.CounterVec
	duplicates   prometheus.Counter
	gaps         prometheus.Counter
	gapsFilled   prometheus.Counter
	gapsLost     prometheus.Counter
	seqResets    prometheus.Counter
	overRange    prometheus.Counter
	missing      *prometheus.GaugeVec
	late         prometheus.Counter
	storeErrors  prometheus.Counter
	storeLatency prometheus.Histogram
	lag          prometheus.Histogram
	events       prometheus.Counter
	queueFull    prometheus.Counter
	dropped      prometheus.Counter
	sinkErrors   prometheus.Counter
	connected    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "hazardwatch", Subsystem: "ingest", Name: name, Help: help})
	}
	m := &metrics{
		messages:   counter("messages_total", "MQTT messages received."),
		readings:   counter("readings_total", "Readings stored."),
		rejected:   prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "hazardwatch", Subsystem: "ingest", Name: "rejected_total", Help: "Messages or readings refused, by reason."}, []string{"reason"}),
		duplicates: counter("duplicates_total", "Messages dropped because their seq was already seen."),
		gaps:       counter("gap_messages_total", "Messages found missing when a gateway's seq jumped ahead."),
		gapsFilled: counter("gap_filled_messages_total", "Missing messages that arrived later (store-and-forward backlog)."),
		gapsLost:   counter("gap_lost_messages_total", "Missing messages given up as lost."),
		seqResets:  counter("seq_resets_total", "Times a gateway's seq jumped too far ahead to be a gap and was taken as a new start."),
		overRange:  counter("over_range_readings_total", "Good readings outside their point's measuring range, stored as over_range."),
		missing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "hazardwatch", Subsystem: "ingest", Name: "missing_messages",
			Help: "Messages of a gateway not seen yet below its newest seq."}, []string{"site", "gateway"}),
		late:        counter("late_readings_total", "Readings older than what the rules already saw of their point (a backlog), evaluated apart as late data."),
		storeErrors: counter("store_errors_total", "Failed store appends (retried)."),
		storeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "hazardwatch", Subsystem: "ingest", Name: "store_write_seconds",
			Help: "Time to append one message's readings to the store.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "hazardwatch", Subsystem: "ingest", Name: "lag_seconds",
			Help: "From a reading's time to its being stored.", Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600}}),
		events:     counter("events_total", "Rule events produced."),
		queueFull:  counter("event_queue_full_total", "Times the event queue to the alerting sink was full."),
		dropped:    counter("events_dropped_total", "Rule events dropped because the alerting sink did not keep up."),
		sinkErrors: counter("sink_errors_total", "Event batches the alerting sink failed to handle."),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "hazardwatch", Subsystem: "ingest", Name: "connected",
			Help: "1 while connected to the MQTT broker."}),
	}
	for _, c := range []prometheus.Collector{m.messages, m.readings, m.rejected, m.duplicates, m.gaps, m.gapsFilled, m.gapsLost, m.seqResets, m.overRange, m.missing, m.late, m.storeErrors,
		m.storeLatency, m.lag, m.events, m.queueFull, m.dropped, m.sinkErrors, m.connected} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
