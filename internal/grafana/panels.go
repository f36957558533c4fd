//lint:file-ignore SA1019 the classic dashboard schema (dashboard.Dashboard) is what Grafana's file provisioning loads; the SDK's dashboardv2 needs Grafana's experimental dashboard API.

package grafana

import (
	"fmt"
	"slices"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/gauge"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// gridWidth is the width of Grafana's dashboard grid.
const gridWidth = 24

// builder lays out one site's dashboard. Every panel gets an explicit
// position and id, so the output does not depend on the SDK's automatic
// layout.
type builder struct {
	site *site.Site
	q    queries
	ds   common.DataSourceRef
	d    *dashboard.DashboardBuilder

	nextID     uint32
	x, y, rowH uint32
}

func (b *builder) id() uint32 {
	b.nextID++
	return b.nextID
}

// place returns the position of a w×h panel, wrapping to a new line when it
// does not fit on this one.
func (b *builder) place(w, h uint32) dashboard.GridPos {
	if b.x+w > gridWidth {
		b.newline()
	}
	pos := dashboard.GridPos{X: b.x, Y: b.y, W: w, H: h}
	b.x += w
	b.rowH = max(b.rowH, h)
	return pos
}

func (b *builder) newline() {
	b.y += b.rowH
	b.x, b.rowH = 0, 0
}

func (b *builder) row(title string) {
	b.newline()
	pos := dashboard.GridPos{X: 0, Y: b.y, W: gridWidth, H: 1}
	b.d.WithRow(dashboard.NewRowBuilder(title).Id(b.id()).GridPos(pos))
	b.y++
}

// refID names the i-th query of a panel: A, B, … Z, AA, AB, …
func refID(i int) string {
	s := ""
	for i++; i > 0; i = (i - 1) / 26 {
		s = string(rune('A'+(i-1)%26)) + s
	}
	return s
}

func displayName(name string) []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{{Id: "displayName", Value: name}}
}

func thresholds(steps []dashboard.Threshold) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(steps)
}

func lastValue() *common.ReduceDataOptionsBuilder {
	return common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)
}

// overview: the hazard sources by grade, the alarm counts and the grade
// history.
func (b *builder) overview() {
	b.row("重大危险源 · Hazard sources")
	grid := stat.NewPanelBuilder().Id(b.id()).Title("危险源预警等级 · Grade of each hazard source").
		Description("The grade HazardWatch's rules give each major hazard source now. 无数据 (no data): the centre recorded no grade in the last minute.").
		Datasource(b.ds).GridPos(b.place(gridWidth, 5)).
		Mappings(gradeMappings()).
		Thresholds(thresholds([]dashboard.Threshold{{Color: "text"}})).
		ColorMode(common.BigValueColorModeBackground).GraphMode(common.BigValueGraphModeNone).
		TextMode(common.BigValueTextModeValueAndName).JustifyMode(common.BigValueJustifyModeCenter).
		Orientation(common.VizOrientationAuto).ReduceOptions(lastValue()).
		NoValue("无数据")
	timeline := statetimeline.NewPanelBuilder().Id(b.id()).Title("预警等级历史 · Grade history").
		Description("Each hazard source's worst grade per interval.").
		Datasource(b.ds).GridPos(dashboard.GridPos{}).
		Mappings(gradeMappings()).
		Thresholds(thresholds([]dashboard.Threshold{{Color: "text"}})).
		ShowValue(common.VisibilityModeNever).MergeValues(true).Interval("10s").
		Legend(common.NewVizLegendOptionsBuilder().ShowLegend(false)).Tooltip(tooltip())
	for i := range b.site.Sources {
		src := &b.site.Sources[i]
		ref := refID(i)
		grid.WithTarget(b.q.target(b.q.grade(b.site.ID, src.ID, true), ref)).OverrideByQuery(ref, displayName(src.Name))
		timeline.WithTarget(b.q.target(b.q.grade(b.site.ID, src.ID, false), ref)).OverrideByQuery(ref, displayName(src.Name))
	}
	b.d.WithPanel(grid)

	b.d.WithPanel(b.alarmCounts(b.site.ID, "报警 · Alarms", 12, 6))
	b.d.WithPanel(timeline.GridPos(b.place(12, 6)))
}

// alarmCounts: a site's alarms not in the normal state, by grade, and
// those waiting for acknowledgement.
func (b *builder) alarmCounts(siteID, title string, w, h uint32) *stat.PanelBuilder {
	alarms := stat.NewPanelBuilder().Id(b.id()).Title(title).
		Description("Alarms of this site not in the normal state, by grade, and those waiting for acknowledgement (未确认). 无数据: the centre recorded nothing in the last minute.").
		Datasource(b.ds).GridPos(b.place(w, h)).
		ColorMode(common.BigValueColorModeBackground).GraphMode(common.BigValueGraphModeNone).
		TextMode(common.BigValueTextModeValueAndName).JustifyMode(common.BigValueJustifyModeCenter).
		ReduceOptions(lastValue()).Decimals(0).NoValue("无数据").
		Thresholds(thresholds([]dashboard.Threshold{{Color: "text"}}))
	for i, g := range []protocol.Grade{protocol.Red, protocol.Orange, protocol.Yellow, protocol.Blue} {
		ref := refID(i)
		alarms.WithTarget(b.q.target(b.q.alarms(siteID, g.String()), ref)).
			OverrideByQuery(ref, append(displayName(g.Chinese()), dashboard.DynamicConfigValue{Id: "thresholds",
				Value: dashboard.ThresholdsConfig{Mode: dashboard.ThresholdsModeAbsolute, Steps: []dashboard.Threshold{{Color: "text"}, {Value: ptr(1.0), Color: gradeColours[g]}}}}))
	}
	ref := refID(4)
	alarms.WithTarget(b.q.target(b.q.alarms(siteID, ""), ref)).
		OverrideByQuery(ref, append(displayName("未确认 · Unacknowledged"), dashboard.DynamicConfigValue{Id: "thresholds",
			Value: dashboard.ThresholdsConfig{Mode: dashboard.ThresholdsModeAbsolute, Steps: []dashboard.Threshold{{Color: "text"}, {Value: ptr(1.0), Color: "red"}}}}))
	return alarms
}

// source: a gauge per point and trends by kind and unit.
func (b *builder) source(src *site.Source) {
	b.row(sourceTitle(src))
	for i := range src.Points {
		pt := &src.Points[i]
		fresh := freshness(b.site, pt)
		g := gauge.NewPanelBuilder().Id(b.id()).Title(pt.Name).
			Description(fmt.Sprintf("%s/%s/%s (%s%s): the newest reading, coloured by its limits (%s). 无数据: no good reading within %s (its stale time plus %s), or the sensor is at fault or out of communication.",
				b.site.ID, src.ID, pt.ID, pt.Kind, gasOf(pt), limitsText(pt.Limits), fresh, freshMargin)).
			Datasource(b.ds).GridPos(b.place(4, 6)).
			Unit(unit(pt.Unit)).Min(pt.Range.Min).Max(pt.Range.Max).
			Thresholds(thresholds(limitSteps(pt.Limits))).
			ShowThresholdMarkers(true).ShowThresholdLabels(false).Orientation(common.VizOrientationAuto).
			ReduceOptions(lastValue()).NoValue("无数据").
			WithTarget(b.q.target(b.q.value(b.site.ID, pt, fresh), "A")).
			OverrideByQuery("A", displayName(pt.Name))
		b.d.WithPanel(g)
	}
	b.newline()
	for _, group := range trendGroups(src) {
		first := group[0]
		t := timeseries.NewPanelBuilder().Id(b.id()).Title(trendTitle(first)).
			Description("Each point's worst value per interval: the highest, or the lowest for a point with only low limits. Dashed lines: the limits, when the points share them.").
			Datasource(b.ds).GridPos(b.place(12, 8)).
			Unit(unit(first.Unit)).Interval(duration(maxPoll(b.site, group))).
			Legend(common.NewVizLegendOptionsBuilder().ShowLegend(true).DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom)).
			LineWidth(1).FillOpacity(0).ShowPoints(common.VisibilityModeNever).Tooltip(tooltip())
		if sameLimits(group) {
			t.Thresholds(thresholds(limitSteps(first.Limits))).
				ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))
		}
		if sameRange(group) {
			t.Min(first.Range.Min).Max(first.Range.Max)
		}
		for i, pt := range group {
			ref := refID(i)
			t.WithTarget(b.q.target(b.q.trend(b.site.ID, pt), ref)).OverrideByQuery(ref, displayName(pt.Name))
		}
		b.d.WithPanel(t)
	}
}

// health: is the site's data arriving, and is the centre taking it.
func (b *builder) health() {
	b.row("采集健康 · Ingest health")
	total, window := 0, time.Duration(0)
	for i := range b.site.Sources {
		for j := range b.site.Sources[i].Points {
			total++
			window = max(window, freshness(b.site, &b.site.Sources[i].Points[j]))
		}
	}
	count := func(title, desc string, q query, steps []dashboard.Threshold, noValue string) {
		b.d.WithPanel(stat.NewPanelBuilder().Id(b.id()).Title(title).Description(desc).
			Datasource(b.ds).GridPos(b.place(6, 5)).
			ColorMode(common.BigValueColorModeBackground).GraphMode(common.BigValueGraphModeNone).
			ReduceOptions(lastValue()).Decimals(0).NoValue(noValue).
			Thresholds(thresholds(steps)).
			WithTarget(b.q.target(q, "A")))
	}
	count("上报测点 · Points reporting",
		fmt.Sprintf("Points of this site with a reading in the last %s, of the %d in its site file.", window, total),
		b.q.reporting(b.site.ID, window),
		[]dashboard.Threshold{{Color: "red"}, {Value: ptr(float64(total)), Color: "green"}}, "0")
	count("异常测点 · Points not good",
		fmt.Sprintf("Points whose newest reading in the last %s is bad, comm_fail or over_range.", window),
		b.q.notGood(b.site.ID, window),
		[]dashboard.Threshold{{Color: "green"}, {Value: ptr(1.0), Color: "red"}}, "0")
	count("缺失报文 · Missing gateway messages",
		"Messages of this site's gateways not received yet below their newest sequence number (a store-and-forward backlog still to come, or lost).",
		b.q.missing(b.site.ID),
		[]dashboard.Threshold{{Color: "green"}, {Value: ptr(1.0), Color: "orange"}}, "0")
	b.d.WithPanel(stat.NewPanelBuilder().Id(b.id()).Title("MQTT 连接 · Centre connected").
		Description("Whether every ingest node is connected to the MQTT broker. 无数据: the centre recorded nothing in the last minute.").
		Datasource(b.ds).GridPos(b.place(6, 5)).
		ColorMode(common.BigValueColorModeBackground).GraphMode(common.BigValueGraphModeNone).
		ReduceOptions(lastValue()).NoValue("无数据").
		Mappings(connectedMappings()).
		Thresholds(thresholds([]dashboard.Threshold{{Color: "red"}, {Value: ptr(1.0), Color: "green"}})).
		WithTarget(b.q.target(b.q.connected(), "A")))

	b.d.WithPanel(timeseries.NewPanelBuilder().Id(b.id()).Title("入库读数 · Readings stored per second").
		Description("Readings of this site stored per second, averaged over each minute.").
		Datasource(b.ds).GridPos(b.place(12, 7)).Unit("reqps").Min(0).
		Legend(common.NewVizLegendOptionsBuilder().ShowLegend(false)).Tooltip(tooltip()).
		WithTarget(b.q.target(b.q.readingsRate(b.site.ID), "A")).OverrideByQuery("A", displayName(b.site.ID)))
	b.d.WithPanel(timeseries.NewPanelBuilder().Id(b.id()).Title("拒收 · Rejected per minute").
		Description("Messages or readings the ingest service refused, per minute, by reason (all sites of the centre; see the dead letters at /api/deadletters).").
		Datasource(b.ds).GridPos(b.place(12, 7)).Unit("short").Min(0).
		Legend(common.NewVizLegendOptionsBuilder().ShowLegend(true).DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom)).Tooltip(tooltip()).
		WithTarget(b.q.target(b.q.rejectedRate(), "A")))
}

func tooltip() *common.VizTooltipOptionsBuilder {
	return common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)
}

func connectedMappings() []dashboard.ValueMapping {
	vm := dashboard.NewValueMap()
	vm.Options["0"] = dashboard.ValueMappingResult{Text: ptr("断开 · disconnected"), Color: ptr("red"), Index: ptr(int32(0))}
	vm.Options["1"] = dashboard.ValueMappingResult{Text: ptr("已连接 · connected"), Color: ptr("green"), Index: ptr(int32(1))}
	return []dashboard.ValueMapping{{ValueMap: vm}}
}

// trendGroups groups a source's points by kind and unit, in site-file order.
func trendGroups(src *site.Source) [][]*site.Point {
	var groups [][]*site.Point
	for i := range src.Points {
		pt := &src.Points[i]
		j := slices.IndexFunc(groups, func(g []*site.Point) bool { return g[0].Kind == pt.Kind && g[0].Unit == pt.Unit })
		if j < 0 {
			groups = append(groups, []*site.Point{pt})
			continue
		}
		groups[j] = append(groups[j], pt)
	}
	return groups
}

var kindTitles = map[site.Kind]string{
	site.CombustibleGas: "可燃气体 · Combustible gas",
	site.ToxicGas:       "有毒气体 · Toxic gas",
	site.Oxygen:         "氧气 · Oxygen",
	site.Methane:        "甲烷 · Methane",
	site.Pressure:       "压力 · Pressure",
	site.Level:          "液位 · Level",
	site.Temperature:    "温度 · Temperature",
	site.Flow:           "流量 · Flow",
}

func trendTitle(pt *site.Point) string {
	t := kindTitles[pt.Kind]
	if t == "" {
		t = string(pt.Kind)
	}
	if pt.Gas != "" {
		t += " " + pt.Gas
	}
	if pt.Unit != "" {
		t += " (" + pt.Unit + ")"
	}
	return t
}

func gasOf(pt *site.Point) string {
	if pt.Gas == "" {
		return ""
	}
	return " " + pt.Gas
}

func limitsText(l site.Limits) string {
	s := ""
	for _, lim := range []struct {
		name string
		v    *float64
	}{{"LL", l.LL}, {"L", l.L}, {"H", l.H}, {"HH", l.HH}} {
		if lim.v != nil {
			if s != "" {
				s += ", "
			}
			s += fmt.Sprintf("%s %g", lim.name, *lim.v)
		}
	}
	if s == "" {
		return "no limits"
	}
	return s
}

func sameLimits(group []*site.Point) bool {
	eq := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	for _, pt := range group[1:] {
		a, b := pt.Limits, group[0].Limits
		if !eq(a.LL, b.LL) || !eq(a.L, b.L) || !eq(a.H, b.H) || !eq(a.HH, b.HH) {
			return false
		}
	}
	return true
}

func sameRange(group []*site.Point) bool {
	for _, pt := range group[1:] {
		if pt.Range != group[0].Range {
			return false
		}
	}
	return true
}

func maxPoll(s *site.Site, group []*site.Point) time.Duration {
	var d time.Duration
	for _, pt := range group {
		d = max(d, pollInterval(s, pt))
	}
	return d
}
