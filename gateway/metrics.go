package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	polls   *prometheus.CounterVec   // device, result
	errors  *prometheus.CounterVec   // device, code
	latency *prometheus.HistogramVec // device
	spooled prometheus.Counter
	dropped prometheus.Counter
	seq     prometheus.Gauge
	holes   *prometheus.GaugeVec // device

	confirmed, clockOffset prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, siteID, gatewayID string) (*metrics, error) {
	labels := prometheus.Labels{"site": siteID, "gateway": gatewayID}
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hazardwatch_gateway_polls_total", Help: "Device polls by result (ok, partial, failed).", ConstLabels: labels,
		}, []string{"device", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hazardwatch_gateway_poll_errors_total", Help: "Failed Modbus requests by device and code (timeout, refused, io, exception_N).", ConstLabels: labels,
		}, []string{"device", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hazardwatch_gateway_request_seconds", Help: "Modbus request latency, successful requests only.", ConstLabels: labels,
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"device"}),
		spooled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hazardwatch_gateway_messages_spooled_total", Help: "Telemetry messages written durably to the store-and-forward spool.", ConstLabels: labels,
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hazardwatch_gateway_readings_dropped_total", Help: "Readings dropped before reaching the spool (the spool's disk failed, or polling outran it).", ConstLabels: labels,
		}),
		holes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hazardwatch_gateway_refused_points", Help: "Points whose own registers the device refuses (exception 2 or 3 to a read of that point alone): comm_fail until fixed.", ConstLabels: labels,
		}, []string{"device"}),
		confirmed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hazardwatch_gateway_confirmed_seq", Help: "Highest seq the centre confirmed durably stored (end-to-end acknowledgement).", ConstLabels: labels,
		}),
		clockOffset: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hazardwatch_gateway_clock_offset_seconds", Help: "This gateway's clock minus the centre's, from the last live acknowledgement (positive: the gateway is ahead).", ConstLabels: labels,
		}),
		seq: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hazardwatch_gateway_seq", Help: "Sequence number of the last telemetry message built.", ConstLabels: labels,
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.polls, m.errors, m.latency, m.spooled, m.dropped, m.seq, m.holes, m.confirmed, m.clockOffset} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
