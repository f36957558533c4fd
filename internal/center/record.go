package center

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/ingest"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/storage"
)

// The centre records its own hazardwatch_* counters and gauges — among
// them the hazard source series below — into the store every
// RecordInterval and at once when a source's grade changes, so Grafana
// (which cannot scrape /metrics) reads grades, alarm counts and ingest
// health from the same data source as the readings (docs/storage.md,
// "Centre metrics").
const (
	// SourceGradeMetric is a hazard source's grade: 0 normal, 1 blue,
	// 2 yellow, 3 orange, 4 red.
	SourceGradeMetric = "hazardwatch_source_grade"
	// SourceAlarmsMetric counts a source's present alarms (any state but
	// normal) by grade.
	SourceAlarmsMetric = "hazardwatch_source_alarms"
	// SourceUnackedMetric counts a source's alarms not yet acknowledged
	// (unacked or rtn_unacked).
	SourceUnackedMetric = "hazardwatch_source_unacked_alarms"
	// NodeLabel names the ingest node (its MQTT client id) on every
	// recorded series, so nodes sharing an InfluxDB do not overwrite each
	// other's figures.
	NodeLabel = "node"
	// DefaultRecordInterval is how often the metrics are recorded.
	DefaultRecordInterval = 5 * time.Second
	// recordedPrefix selects the metrics recorded: HazardWatch's own, not
	// the Go runtime's or the TSDB's.
	recordedPrefix = "hazardwatch_"
)

var (
	sourceGradeDesc = prometheus.NewDesc(SourceGradeMetric,
		"Grade of a major hazard source: 0 normal, 1 blue, 2 yellow, 3 orange, 4 red.", []string{"site", "source"}, nil)
	sourceAlarmsDesc = prometheus.NewDesc(SourceAlarmsMetric,
		"Alarms of a major hazard source not in the normal state, by grade.", []string{"site", "source", "grade"}, nil)
	sourceUnackedDesc = prometheus.NewDesc(SourceUnackedMetric,
		"Alarms of a major hazard source waiting for acknowledgement.", []string{"site", "source"}, nil)
)

// sourceCollector reads every hazard source's grade and alarms at scrape
// time; sources of the site files at normal are reported too, so a panel
// shows 0 rather than nothing.
type sourceCollector struct{ c *Center }

func (sc sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sourceGradeDesc
	ch <- sourceAlarmsDesc
	ch <- sourceUnackedDesc
}

func (sc sourceCollector) Collect(ch chan<- prometheus.Metric) {
	grades := map[string]protocol.Grade{}
	for _, g := range sc.c.alerts.SourceGrades() {
		grades[g.Site+"/"+g.Source] = g.Grade
	}
	type counts struct {
		byGrade [protocol.Red + 1]int
		unacked int
	}
	alarms := map[string]*counts{}
	for _, a := range sc.c.alerts.ActiveAlarms() {
		k := a.Site + "/" + a.Source
		if alarms[k] == nil {
			alarms[k] = &counts{}
		}
		if a.Grade.Valid() {
			alarms[k].byGrade[a.Grade]++
		}
		if a.State == protocol.StateUnacked || a.State == protocol.StateRTNUnacked {
			alarms[k].unacked++
		}
	}
	for _, s := range sc.c.sites() {
		for _, src := range s.Sources {
			k := s.ID + "/" + src.ID
			n := alarms[k]
			if n == nil {
				n = &counts{}
			}
			ch <- prometheus.MustNewConstMetric(sourceGradeDesc, prometheus.GaugeValue, float64(grades[k]), s.ID, src.ID)
			for g := protocol.Blue; g <= protocol.Red; g++ {
				ch <- prometheus.MustNewConstMetric(sourceAlarmsDesc, prometheus.GaugeValue, float64(n.byGrade[g]), s.ID, src.ID, g.String())
			}
			ch <- prometheus.MustNewConstMetric(sourceUnackedDesc, prometheus.GaugeValue, float64(n.unacked), s.ID, src.ID)
		}
	}
}

// recorder copies gathered metrics into the store.
type recorder struct {
	gatherer prometheus.Gatherer
	store    storage.MetricAppender
	node     string
	interval time.Duration
	kick     chan struct{}
	log      *zap.Logger
}

// setUpRecording registers the hazard source metrics and, when the store
// keeps metrics and recording is on, returns sink wrapped so a source's
// grade change is recorded at once.
func (c *Center) setUpRecording(sink ingest.EventSink) ingest.EventSink {
	c.reg.MustRegister(sourceCollector{c})
	store, ok := c.store.(storage.MetricAppender)
	if !ok || c.cfg.RecordInterval < 0 {
		return sink
	}
	interval := c.cfg.RecordInterval
	if interval == 0 {
		interval = DefaultRecordInterval
	}
	c.rec = &recorder{gatherer: c.reg, store: store, node: clientID(c.cfg), interval: interval,
		kick: make(chan struct{}, 1), log: c.log.Named("record")}
	return gradeChangeSink{EventSink: sink, kick: c.rec.trigger}
}

// recordMetrics starts recording until ctx is done; the returned func
// stops it and waits, so the store is not closed under a write.
func (c *Center) recordMetrics(ctx context.Context) (stop func()) {
	if c.rec == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { c.rec.run(ctx) })
	return func() { cancel(); wg.Wait() }
}

func (r *recorder) run(ctx context.Context) {
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	for {
		r.record(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-r.kick:
		}
	}
}

// trigger asks for a recording now without waiting for it.
func (r *recorder) trigger() {
	select {
	case r.kick <- struct{}{}:
	default: // one is pending already
	}
}

func (r *recorder) record(ctx context.Context, now time.Time) {
	families, err := r.gatherer.Gather()
	if err != nil {
		// Gather returns what it could collect beside the error.
		r.log.Warn("gathering metrics to record", zap.Error(err))
	}
	metrics := recordable(families, r.node, now)
	if err := r.store.AppendMetrics(ctx, metrics); err != nil && ctx.Err() == nil {
		r.log.Warn("recording metrics into the store", zap.Int("metrics", len(metrics)), zap.Error(err))
	}
}

// recordable turns the hazardwatch_* counters and gauges of families into
// storage metrics at now, labelled with node. Histograms and summaries are
// left to /metrics: their buckets would multiply the series for little
// use on a wall display.
func recordable(families []*dto.MetricFamily, node string, now time.Time) []storage.Metric {
	var out []storage.Metric
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), recordedPrefix) {
			continue
		}
		for _, m := range f.GetMetric() {
			var v float64
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				v = m.GetUntyped().GetValue()
			default:
				continue
			}
			labels := map[string]string{NodeLabel: node}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out = append(out, storage.Metric{Name: f.GetName(), Labels: labels, Time: now, Value: v})
		}
	}
	return out
}

// gradeChangeSink passes events on and asks for a recording when one of
// them changed a hazard source's grade, so the wall display follows within
// its own refresh rather than the recording interval.
type gradeChangeSink struct {
	ingest.EventSink
	kick func()
}

func (s gradeChangeSink) HandleEvents(ctx context.Context, events []rules.Event) error {
	err := s.EventSink.HandleEvents(ctx, events)
	for _, e := range events {
		if e.Type == rules.SourceGradeChanged {
			s.kick()
			break
		}
	}
	return err
}
