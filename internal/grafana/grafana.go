// Package grafana builds HazardWatch's Grafana wall displays from site
// files, one dashboard per site, with the Grafana foundation SDK's builders
// so the output follows Grafana's dashboard schema:
//
//   - a status grid of the site's major hazard sources coloured by grade,
//     the alarm counts by grade and the grade history;
//   - per hazard source, a gauge of each point coloured by its L/LL/H/HH
//     limits and trends of its points grouped by kind and unit;
//   - ingest health: points reporting, points not good, missing gateway
//     messages, the centre's broker connection, readings stored and
//     messages rejected.
//
// Readings come from the store's schema (docs/storage.md); grades, alarm
// counts and ingest health from the metrics the centre records into the
// same store ("Centre metrics" there), since Grafana cannot scrape
// /metrics. Queries are PromQL for HazardWatch's Prometheus query API over
// the embedded store, or Flux for InfluxDB 2.x. docs/grafana.md describes
// the dashboards and the provisioning in configs/grafana.
package grafana

//lint:file-ignore SA1019 the classic dashboard schema (dashboard.Dashboard) is what Grafana's file provisioning loads; the SDK's dashboardv2 needs Grafana's experimental dashboard API.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
)

// Datasource says which store, and so which query language, a dashboard
// reads.
type Datasource string

// Data sources.
const (
	// Prometheus is HazardWatch's Prometheus query API over the embedded
	// store (docs/query-api.md): PromQL.
	Prometheus Datasource = "prometheus"
	// Influx is InfluxDB 2.x: Flux.
	Influx Datasource = "influx"
)

// Datasources lists the data sources dashboards can be built for.
var Datasources = []Datasource{Prometheus, Influx}

// ParseDatasource reads "prometheus" or "influx".
func ParseDatasource(s string) (Datasource, error) {
	for _, d := range Datasources {
		if string(d) == s {
			return d, nil
		}
	}
	return "", fmt.Errorf("unknown data source %q: want prometheus or influx", s)
}

// UIDs of the data sources provisioned by configs/grafana/provisioning;
// the dashboards refer to them.
const (
	PrometheusUID = "hazardwatch-prometheus"
	FluxUID       = "hazardwatch-influx-flux"
	InfluxQLUID   = "hazardwatch-influx-influxql"
)

// DefaultBucket is the InfluxDB bucket Flux queries read.
const DefaultBucket = "hazardwatch"

// Options choose the data source of the dashboards.
type Options struct {
	Datasource Datasource // default Prometheus
	Bucket     string     // InfluxDB bucket; default DefaultBucket
}

// Timing of the queries.
const (
	// metricsWindow is how far back a recorded centre metric (recorded
	// every 5 s) is still current; past it the centre counts as silent and
	// its panels show no data instead of an old grade.
	metricsWindow = time.Minute
	// freshMargin is added to a point's stale time before its gauge stops
	// showing its last value, for ingest lag and clock skew between the
	// gateway and Grafana.
	freshMargin = 10 * time.Second
	// refresh is the wall display's refresh interval.
	refresh = "10s"
)

// JSON returns the dashboard of a site as indented JSON ending in a newline,
// the form committed in configs/grafana/dashboards.
func JSON(s *site.Site, opts Options) ([]byte, error) {
	d, err := Build(s, opts)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("grafana dashboard of site %s: %w", s.ID, err)
	}
	return append(b, '\n'), nil
}

// FileName is the name of a site's dashboard file.
func FileName(s *site.Site) string { return s.ID + ".json" }

// UID is a site's dashboard uid: Grafana allows at most 40 characters, so
// a long site id is shortened with a hash of it.
func UID(siteID string, ds Datasource) string {
	prefix := "hw-prom-"
	if ds == Influx {
		prefix = "hw-flux-"
	}
	if len(prefix)+len(siteID) <= 40 {
		return prefix + siteID
	}
	sum := sha256.Sum256([]byte(siteID))
	return prefix + siteID[:40-len(prefix)-9] + "-" + hex.EncodeToString(sum[:4])
}

// Build returns the wall-display dashboard of a site.
func Build(s *site.Site, opts Options) (dashboard.Dashboard, error) {
	if opts.Datasource == "" {
		opts.Datasource = Prometheus
	}
	q, err := queriesFor(opts)
	if err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("grafana dashboard of site %s: %w", s.ID, err)
	}
	b := &builder{site: s, q: q, ds: q.datasource(), d: dashboard.NewDashboardBuilder("HazardWatch · "+s.Name).
		Uid(UID(s.ID, opts.Datasource)).
		Description(fmt.Sprintf("Wall display of site %s generated from %s by `hazardwatch grafana -datasource %s`; regenerate it rather than edit it.",
			s.ID, filepath.Base(s.File), opts.Datasource)).
		Tags([]string{"hazardwatch", s.ID}).
		Refresh(refresh).
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair)}
	b.overview()
	for i := range s.Sources {
		b.source(&s.Sources[i])
	}
	b.health()
	d, err := b.d.Build()
	if err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("grafana dashboard of site %s: %w", s.ID, err)
	}
	return d, nil
}

// queriesFor picks the query language of the options' data source.
func queriesFor(opts Options) (queries, error) {
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	switch opts.Datasource {
	case Prometheus, "":
		return promQueries{}, nil
	case Influx:
		return fluxQueries{bucket: opts.Bucket}, nil
	}
	return nil, fmt.Errorf("unknown data source %q", opts.Datasource)
}

// freshness is how long a point's last reading is shown: its stale time as
// the rules engine reckons it, plus freshMargin.
func freshness(s *site.Site, pt *site.Point) time.Duration {
	return rules.StaleAfter(s, pt) + freshMargin
}

// pollInterval is how often a point is sent at most: the trend's minimum
// step, so an interval never falls between two readings.
func pollInterval(s *site.Site, pt *site.Point) time.Duration {
	poll := time.Second
	if dev := s.Device(pt.Modbus.Device); dev != nil && dev.PollInterval > 0 {
		poll = dev.PollInterval.D()
	}
	if pt.Report != nil && pt.Report.Heartbeat.D() > poll {
		poll = pt.Report.Heartbeat.D()
	}
	return poll
}

// duration writes d in a form both PromQL and Flux read: whole seconds, or
// milliseconds.
func duration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// gradeColours are the colours of the grades on the wall, none first.
var gradeColours = [...]string{"green", "blue", "yellow", "orange", "red"}

// gradeMappings show a grade number as its Chinese name in its colour.
func gradeMappings() []dashboard.ValueMapping {
	vm := dashboard.NewValueMap()
	for g := protocol.None; g <= protocol.Red; g++ {
		text, colour := g.Chinese(), gradeColours[g]
		vm.Options[fmt.Sprint(int(g))] = dashboard.ValueMappingResult{Text: &text, Color: &colour, Index: ptr(int32(g))}
	}
	return []dashboard.ValueMapping{{ValueMap: vm}}
}

// Colours of a point's value against its limits.
const (
	colourNormal      = "green"
	colourFirstLevel  = "yellow" // past H or L (一级报警)
	colourSecondLevel = "red"    // past HH or LL (二级报警 / 断电)
)

// limitSteps colours a point's value by its limits: second-level red below
// LL and from HH, first-level yellow between LL and L and from H, green in
// between. Steps at equal limits keep the more severe colour above.
func limitSteps(l site.Limits) []dashboard.Threshold {
	base := colourNormal
	switch {
	case l.LL != nil:
		base = colourSecondLevel
	case l.L != nil:
		base = colourFirstLevel
	}
	steps := []dashboard.Threshold{{Value: nil, Color: base}}
	if l.LL != nil {
		c := colourNormal
		if l.L != nil {
			c = colourFirstLevel
		}
		steps = append(steps, dashboard.Threshold{Value: ptr(*l.LL), Color: c})
	}
	if l.L != nil {
		steps = append(steps, dashboard.Threshold{Value: ptr(*l.L), Color: colourNormal})
	}
	if l.H != nil {
		steps = append(steps, dashboard.Threshold{Value: ptr(*l.H), Color: colourFirstLevel})
	}
	if l.HH != nil {
		steps = append(steps, dashboard.Threshold{Value: ptr(*l.HH), Color: colourSecondLevel})
	}
	return steps
}

// unit is Grafana's unit id for a site file's unit; others are shown as
// they are written.
func unit(u string) string {
	switch u {
	case "%":
		return "percent"
	case "°C":
		return "celsius"
	case "ppm":
		return "ppm"
	case "":
		return "none"
	}
	return "suffix:" + u
}

var gradeNumeralsZH = [...]string{"", "一", "二", "三", "四"}

// sourceTitle names a hazard source with its GB 18218 grade.
func sourceTitle(src *site.Source) string {
	if src.Grade >= 1 && src.Grade <= 4 {
		return fmt.Sprintf("%s（%s）· %s级重大危险源", src.Name, src.ID, gradeNumeralsZH[src.Grade])
	}
	return fmt.Sprintf("%s（%s）", src.Name, src.ID)
}

func ptr[T any](v T) *T { return &v }
