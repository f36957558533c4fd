package alerting

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hazardwatch/hazardwatch/protocol"
)

type metrics struct {
	active           *prometheus.GaugeVec
	timeToAck        prometheus.Histogram
	events           *prometheus.CounterVec
	delivered        *prometheus.CounterVec
	deliveryFailures *prometheus.CounterVec
	publishFailures  prometheus.Counter
	invalidEvents    prometheus.Counter
	held             prometheus.Counter
}

const ns, sub = "hazardwatch", "alerting"

func newMetrics(reg prometheus.Registerer, s *store, receivers []Receiver) *metrics {
	m := &metrics{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "active_alarms",
			Help: "Alarms not in the normal state, by grade and state."}, []string{"grade", "state"}),
		timeToAck: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "time_to_acknowledge_seconds",
			Help:    "Time from an alarm's annunciation to its acknowledgement.",
			Buckets: []float64{10, 30, 60, 120, 300, 600, 1800, 3600}}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_total",
			Help: "Alarm events journaled, by type."}, []string{"type"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "deliveries_total",
			Help: "Alarm events delivered to webhook receivers."}, []string{"receiver"}),
		deliveryFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "delivery_failures_total",
			Help: "Failed webhook delivery attempts, by receiver."}, []string{"receiver"}),
		publishFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "publish_failures_total",
			Help: "Alarm events or source grades not published on MQTT."}),
		invalidEvents: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "invalid_events_total",
			Help: "Rules events refused as malformed."}),
		held: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "flood_held_events_total",
			Help: "Alarm events held back from webhook receivers during a flood (journaled, published, and summarised)."}),
	}
	for _, r := range receivers {
		m.delivered.WithLabelValues(r.Name)
		m.deliveryFailures.WithLabelValues(r.Name)
	}
	reg.MustRegister(m.active, m.timeToAck, m.events, m.delivered, m.deliveryFailures, m.publishFailures, m.invalidEvents, m.held,
		&outboxCollector{store: s, receivers: receivers})
	return m
}

// setActive recounts the active alarms gauge.
func (m *metrics) setActive(alarms map[string]*Alarm) {
	m.active.Reset()
	for _, g := range []protocol.Grade{protocol.Blue, protocol.Yellow, protocol.Orange, protocol.Red} {
		for _, st := range []protocol.AlarmState{protocol.StateUnacked, protocol.StateAcked, protocol.StateRTNUnacked, protocol.StateShelved, protocol.StateOutOfService} {
			m.active.WithLabelValues(g.String(), string(st))
		}
	}
	for _, a := range alarms {
		m.active.WithLabelValues(a.Grade.String(), string(a.state())).Inc()
	}
}

// outboxCollector reads the outbox depth and age at scrape time.
type outboxCollector struct {
	store     *store
	receivers []Receiver
}

var (
	outboxDepthDesc = prometheus.NewDesc(ns+"_"+sub+"_outbox_depth", "Alarm events waiting for delivery, by receiver.", []string{"receiver"}, nil)
	outboxAgeDesc   = prometheus.NewDesc(ns+"_"+sub+"_outbox_oldest_age_seconds", "Age of the oldest undelivered alarm event, by receiver.", []string{"receiver"}, nil)
)

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxDepthDesc
	ch <- outboxAgeDesc
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stats, err := c.store.outboxStats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(outboxDepthDesc, err)
		return
	}
	now := time.Now()
	for _, r := range c.receivers {
		st := stats[r.Name]
		age := 0.0
		if st.Depth > 0 {
			age = now.Sub(st.Oldest).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(outboxDepthDesc, prometheus.GaugeValue, float64(st.Depth), r.Name)
		ch <- prometheus.MustNewConstMetric(outboxAgeDesc, prometheus.GaugeValue, age, r.Name)
	}
}
