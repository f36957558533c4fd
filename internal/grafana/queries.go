package grafana

import (
	"fmt"
	"strings"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"

	"github.com/hazardwatch/hazardwatch/internal/center"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
	"github.com/hazardwatch/hazardwatch/storage/influx"
)

// query is one panel query before its refId is set.
type query struct {
	text    string
	instant bool // the newest value only, not a series over the range
}

// queries write the wall display's queries in one language. A "current"
// query answers nothing once its data is older than it allows, so a panel
// shows "no data" rather than a stale figure.
type queries interface {
	datasource() common.DataSourceRef
	target(q query, refID string) cog.Builder[variants.Dataquery]

	// grade is a hazard source's grade, now or its worst per interval.
	grade(siteID, source string, instant bool) query
	// value is a point's newest value while fresh and not bad or
	// comm_fail.
	value(siteID string, pt *site.Point, fresh time.Duration) query
	// trend is a point's worst value per interval: the lowest for a point
	// with only low limits, otherwise the highest.
	trend(siteID string, pt *site.Point) query
	// alarms counts the site's present alarms of a grade, or waiting for
	// acknowledgement when grade is "".
	alarms(siteID, grade string) query
	// reporting counts the site's points with a reading within window;
	// notGood those whose newest reading there is not good.
	reporting(siteID string, window time.Duration) query
	notGood(siteID string, window time.Duration) query
	// missing counts gateway messages of the site not received yet.
	missing(siteID string) query
	// connected is 1 while every ingest node is connected to the broker.
	connected() query
	// readingsRate is readings stored per second for the site.
	readingsRate(siteID string) query
	// rejectedRate is messages or readings refused per minute, by reason.
	rejectedRate() query
}

// lowOnly reports whether a point has low limits and no high ones, so its
// worst value is its lowest.
func lowOnly(pt *site.Point) bool {
	return (pt.Limits.L != nil || pt.Limits.LL != nil) && pt.Limits.H == nil && pt.Limits.HH == nil
}

// promQueries are PromQL for HazardWatch's Prometheus query API.
type promQueries struct{}

func (promQueries) datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr(PrometheusUID)}
}

func (p promQueries) target(q query, refID string) cog.Builder[variants.Dataquery] {
	b := prometheus.NewDataqueryBuilder().Expr(q.text).RefId(refID).Datasource(p.datasource())
	if q.instant {
		return b.Instant()
	}
	return b.Range()
}

var promMetricsWindow = duration(metricsWindow)

func (promQueries) grade(siteID, source string, instant bool) query {
	sel := fmt.Sprintf(`%s{site=%q, source=%q}`, center.SourceGradeMetric, siteID, source)
	if instant {
		return query{fmt.Sprintf(`max(last_over_time(%s[%s]))`, sel, promMetricsWindow), true}
	}
	return query{fmt.Sprintf(`max(max_over_time(%s[$__interval]))`, sel), false}
}

func (promQueries) value(siteID string, pt *site.Point, fresh time.Duration) query {
	w := duration(fresh)
	// A bad or comm_fail reading has no value sample: without the unless,
	// the gauge would go on showing the last good value.
	return query{fmt.Sprintf(`last_over_time(%s{site=%q, point=%q}[%s]) unless on(site, source, point) (last_over_time(%s{site=%q, point=%q}[%s]) > 0 < 3)`,
		embedded.ValueMetric, siteID, pt.ID, w, embedded.QualityMetric, siteID, pt.ID, w), true}
}

func (promQueries) trend(siteID string, pt *site.Point) query {
	fn := "max_over_time"
	if lowOnly(pt) {
		fn = "min_over_time"
	}
	return query{fmt.Sprintf(`%s(%s{site=%q, point=%q}[$__interval])`, fn, embedded.ValueMetric, siteID, pt.ID), false}
}

func (promQueries) alarms(siteID, grade string) query {
	if grade == "" {
		return query{fmt.Sprintf(`sum(last_over_time(%s{site=%q}[%s]))`, center.SourceUnackedMetric, siteID, promMetricsWindow), true}
	}
	return query{fmt.Sprintf(`sum(last_over_time(%s{site=%q, grade=%q}[%s]))`, center.SourceAlarmsMetric, siteID, grade, promMetricsWindow), true}
}

func (promQueries) reporting(siteID string, window time.Duration) query {
	return query{fmt.Sprintf(`count(last_over_time(%s{site=%q}[%s])) or vector(0)`, embedded.QualityMetric, siteID, duration(window)), true}
}

func (promQueries) notGood(siteID string, window time.Duration) query {
	return query{fmt.Sprintf(`count(last_over_time(%s{site=%q}[%s]) > 0) or vector(0)`, embedded.QualityMetric, siteID, duration(window)), true}
}

func (promQueries) missing(siteID string) query {
	// No series until a gateway's seq first jumped: none missing.
	return query{fmt.Sprintf(`sum(last_over_time(hazardwatch_ingest_missing_messages{site=%q}[%s])) or vector(0)`, siteID, promMetricsWindow), true}
}

func (promQueries) connected() query {
	return query{fmt.Sprintf(`min(last_over_time(hazardwatch_ingest_connected[%s]))`, promMetricsWindow), true}
}

func (promQueries) readingsRate(siteID string) query {
	// Every reading stores one quality sample.
	return query{fmt.Sprintf(`sum(count_over_time(%s{site=%q}[1m])) / 60`, embedded.QualityMetric, siteID), false}
}

func (promQueries) rejectedRate() query {
	return query{`sum by (reason) (rate(hazardwatch_ingest_rejected_total[5m])) * 60`, false}
}

// fluxQueries are Flux for InfluxDB 2.x; v.timeRangeStart, v.timeRangeStop
// and v.windowPeriod are set by Grafana.
type fluxQueries struct{ bucket string }

func (fluxQueries) datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: ptr("influxdb"), Uid: ptr(FluxUID)}
}

func (f fluxQueries) target(q query, refID string) cog.Builder[variants.Dataquery] {
	return fluxQueryBuilder{fluxQuery{RefID: refID, Datasource: f.datasource(), Query: q.text}}
}

// fluxString quotes s as a Flux string literal.
func fluxString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `${`, `\${`).Replace(s) + `"`
}

// from starts a query over the last window, or over the dashboard's range
// when window is 0, filtered by the predicate's conditions.
func (f fluxQueries) from(window time.Duration, conds ...string) string {
	rng := "range(start: v.timeRangeStart, stop: v.timeRangeStop)"
	if window > 0 {
		rng = "range(start: -" + duration(window) + ")"
	}
	return fmt.Sprintf("from(bucket: %s)\n  |> %s\n  |> filter(fn: (r) => %s)", fluxString(f.bucket), rng, strings.Join(conds, " and "))
}

func eq(column, value string) string { return fmt.Sprintf("r.%s == %s", column, fluxString(value)) }

func measurement(name string) string { return eq("_measurement", name) }

func (f fluxQueries) grade(siteID, source string, instant bool) query {
	from := f.from(0, measurement(center.SourceGradeMetric), eq("site", siteID), eq("source", source))
	if instant {
		from = f.from(metricsWindow, measurement(center.SourceGradeMetric), eq("site", siteID), eq("source", source))
		return query{from + "\n  |> last()\n  |> group()\n  |> max()", true}
	}
	return query{from + "\n  |> group()\n  |> aggregateWindow(every: v.windowPeriod, fn: max, createEmpty: false)", false}
}

func (f fluxQueries) value(siteID string, pt *site.Point, fresh time.Duration) query {
	// The newest reading within the window, shown only if it is good or
	// over_range: a bad or comm_fail reading has a quality and no value,
	// and some Flux versions read the pivoted gap as 0 rather than null.
	// Good readings have no quality (older data may say good).
	return query{f.from(fresh, measurement(influx.Measurement), eq("site", siteID), eq("point", pt.ID)) + `
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> sort(columns: ["_time"])
  |> last(column: "_time")
  |> filter(fn: (r) => exists r.value and (not exists r.quality or r.quality == "good" or r.quality == "over_range"))
  |> keep(columns: ["_time", "value"])`, true}
}

func (f fluxQueries) trend(siteID string, pt *site.Point) query {
	fn := "max"
	if lowOnly(pt) {
		fn = "min"
	}
	return query{f.from(0, measurement(influx.Measurement), eq("site", siteID), eq("point", pt.ID), eq("_field", influx.FieldValue)) +
		"\n  |> group()\n  |> aggregateWindow(every: v.windowPeriod, fn: " + fn + ", createEmpty: false)", false}
}

func (f fluxQueries) alarms(siteID, grade string) query {
	if grade == "" {
		return query{f.from(metricsWindow, measurement(center.SourceUnackedMetric), eq("site", siteID)) + "\n  |> last()\n  |> group()\n  |> sum()", true}
	}
	return query{f.from(metricsWindow, measurement(center.SourceAlarmsMetric), eq("site", siteID), eq("grade", grade)) + "\n  |> last()\n  |> group()\n  |> sum()", true}
}

// newest is, per point of a site, its newest reading in the window
// (both fields' last rows, the later wins and a quality row wins a tie),
// with _value 1 when that reading is not good, else 0. Each field is its
// own stream: a predicate comparing _value with a string would not
// type-check on the float tables, nor would tables of both types merge.
func (f fluxQueries) newest(siteID string, window time.Duration) string {
	rows := func(field string) string { return f.readings(window, siteID, field) + "\n  |> last()" }
	return fmt.Sprintf(`values = %s
  |> map(fn: (r) => ({r with _value: 0}))
qualities = %s
  |> map(fn: (r) => ({r with _value: if r._value == "good" then 0 else 1}))
union(tables: [values, qualities])
  |> group(columns: ["point"])
  |> sort(columns: ["_time", "_value"])
  |> last()`, rows(influx.FieldValue), rows(influx.FieldQuality))
}

func (f fluxQueries) reporting(siteID string, window time.Duration) query {
	return query{f.newest(siteID, window) + "\n  |> group()\n  |> count()", true}
}

func (f fluxQueries) notGood(siteID string, window time.Duration) query {
	return query{f.newest(siteID, window) + "\n  |> filter(fn: (r) => r._value == 1)\n  |> group()\n  |> count()", true}
}

func (f fluxQueries) missing(siteID string) query {
	return query{f.from(metricsWindow, measurement("hazardwatch_ingest_missing_messages"), eq("site", siteID)) + "\n  |> last()\n  |> group()\n  |> sum()", true}
}

func (f fluxQueries) connected() query {
	return query{f.from(metricsWindow, measurement("hazardwatch_ingest_connected")) + "\n  |> last()\n  |> group()\n  |> min()", true}
}

func (f fluxQueries) readingsRate(siteID string) query {
	// A site's readings are its values and its bad and comm_fail
	// qualities (the readings without a value), counted per minute in two
	// streams (see newest) and summed.
	perMinute := "\n  |> group()\n  |> aggregateWindow(every: 1m, fn: count, createEmpty: true)"
	return query{fmt.Sprintf(`values = %s%s
unvalued = %s
  |> filter(fn: (r) => r._value == "bad" or r._value == "comm_fail")%s
union(tables: [values, unvalued])
  |> group(columns: ["_time"])
  |> sum()
  |> group()
  |> sort(columns: ["_time"])
  |> map(fn: (r) => ({r with _value: float(v: r._value) / 60.0}))`,
		f.readings(0, siteID, influx.FieldValue), perMinute, f.readings(0, siteID, influx.FieldQuality), perMinute), false}
}

// readings is one field of a site's readings over the window (the
// dashboard's range when 0).
func (f fluxQueries) readings(window time.Duration, siteID, field string) string {
	return f.from(window, measurement(influx.Measurement), eq("site", siteID), eq("_field", field))
}

func (f fluxQueries) rejectedRate() query {
	return query{f.from(0, measurement("hazardwatch_ingest_rejected_total")) + `
  |> derivative(unit: 1m, nonNegative: true)
  |> group(columns: ["reason"])
  |> aggregateWindow(every: v.windowPeriod, fn: sum, createEmpty: false)`, false}
}

// fluxQuery is a query of Grafana's InfluxDB data source in Flux mode; the
// SDK has no InfluxDB query type, so this one implements its Dataquery.
type fluxQuery struct {
	RefID      string               `json:"refId"`
	Datasource common.DataSourceRef `json:"datasource"`
	Query      string               `json:"query"`
}

func (fluxQuery) ImplementsDataqueryVariant() {}

func (fluxQuery) DataqueryType() string { return "influxdb" }

func (q fluxQuery) Validate() error {
	if q.Query == "" {
		return fmt.Errorf("flux query %s: empty", q.RefID)
	}
	return nil
}

func (q fluxQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(fluxQuery)
	return ok && o.RefID == q.RefID && o.Query == q.Query &&
		deref(o.Datasource.Type) == deref(q.Datasource.Type) && deref(o.Datasource.Uid) == deref(q.Datasource.Uid)
}

type fluxQueryBuilder struct{ q fluxQuery }

func (b fluxQueryBuilder) Build() (variants.Dataquery, error) {
	if err := b.q.Validate(); err != nil {
		return nil, err
	}
	return b.q, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
