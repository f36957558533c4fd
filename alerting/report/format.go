package report

import (
	"embed"
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"time"
)

// CSVHeader is the first line of WriteCSV. Every line has every column;
// section says which part of the report it belongs to (kpi, bad_actor,
// chattering, stale, open_by_age, incident) and which columns it fills.
var CSVHeader = []string{"section", "scope", "key", "name", "alarms", "per_10min", "peak_10min", "flood_share", "chattering", "stale",
	"incidents", "ack_n", "ack_median_s", "ack_p90_s", "close_n", "close_median_s", "close_p90_s", "open_incidents", "count", "share"}

// WriteCSV writes the report as one CSV table (UTF-8, comma, header line).
func WriteCSV(w io.Writer, r Report) error {
	cw := csv.NewWriter(w)
	line := func(vals map[string]string) {
		rec := make([]string, len(CSVHeader))
		for i, h := range CSVHeader {
			rec[i] = vals[h]
		}
		_ = cw.Write(rec) // errors surface at Flush
	}
	_ = cw.Write(CSVHeader)
	rows := append([]Row{r.Total}, r.Sites...)
	rows = append(append(rows, r.Sources...), r.Officers...)
	for _, row := range rows {
		line(map[string]string{"section": "kpi", "scope": row.Scope, "key": row.Key, "name": row.Name, "alarms": itoa(row.Alarms),
			"per_10min": ftoa(row.PerPeriod), "peak_10min": itoa(row.Peak), "flood_share": ftoa(row.FloodShare),
			"chattering": itoa(row.Chattering), "stale": itoa(row.Stale), "incidents": itoa(row.Incidents),
			"ack_n": itoa(row.Ack.N), "ack_median_s": secs(row.Ack.Median), "ack_p90_s": secs(row.Ack.P90),
			"close_n": itoa(row.Close.N), "close_median_s": secs(row.Close.Median), "close_p90_s": secs(row.Close.P90),
			"open_incidents": itoa(row.Open)})
	}
	for _, b := range r.BadActors {
		line(map[string]string{"section": "bad_actor", "scope": "alarm", "key": b.AlarmID, "count": itoa(b.Count), "share": ftoa(b.Share)})
	}
	for _, b := range r.Chattering {
		line(map[string]string{"section": "chattering", "scope": "alarm", "key": b.AlarmID, "count": itoa(b.Count), "share": ftoa(b.Share)})
	}
	for _, s := range r.Stale {
		line(map[string]string{"section": "stale", "scope": "alarm", "key": s.AlarmID, "name": s.Since.UTC().Format(time.RFC3339), "count": secs(s.For)})
	}
	for _, a := range r.OpenByAge {
		line(map[string]string{"section": "open_by_age", "scope": "age", "key": a.Age, "count": itoa(a.Count)})
	}
	for _, i := range r.Incidents {
		line(map[string]string{"section": "incident", "scope": i.WorstGrade.String(), "key": i.ID, "name": string(i.State),
			"ack_median_s": secs(i.ToAck), "close_median_s": secs(i.ToClose)})
	}
	cw.Flush()
	return cw.Error()
}

func itoa(n int) string     { return strconv.Itoa(n) }
func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }
func secs(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 0, 64)
}

//go:embed report.html.tmpl
var templates embed.FS

var page = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
	"pct":  func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + " %" },
	"num":  func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
	"dur":  Human,
	"ts":   func(t time.Time) string { return t.In(cst).Format("2006-01-02 15:04") },
	"over": func(f float64, limit int) bool { return f > float64(limit) },
	"dict": func(r Row, m int) rowArgs { return rowArgs{R: r, M: m} },
}).ParseFS(templates, "report.html.tmpl"))

// rowArgs hands a row and the manageable rate to the row template.
type rowArgs struct {
	R Row
	M int
}

var cst = time.FixedZone("CST", 8*3600)

// Human writes a duration for people: 45 s, 12 min, 3.5 h, "–" for none.
func Human(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Minute:
		return fmt.Sprintf("%.0f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%.1f min", d.Minutes())
	default:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
}

// WriteHTML writes the report as one self-contained page in lang (zh or
// en).
func WriteHTML(w io.Writer, r Report, lang string) error {
	l, ok := labels[lang]
	if !ok {
		l = labels["zh"]
	}
	return page.Execute(w, struct {
		R                      Report
		L                      map[string]string
		Lang                   string
		FloodAbove, Manageable int
	}{r, l, lang, FloodAbove, Manageable})
}

// labels are the report's words for people.
var labels = map[string]map[string]string{
	"zh": {
		"title": "报警质量报告（ISA-18.2 / EEMUA 191）", "period": "统计期间", "made": "生成时间", "periods": "10 分钟时段数",
		"scope": "范围", "total": "全部", "site": "企业", "source": "危险源", "officer": "值班员",
		"alarms": "报警数", "per10": "每 10 分钟报警", "peak": "10 分钟峰值", "flood": "泛滥时段占比", "chatter": "振荡报警", "stale": "陈旧报警",
		"incidents": "警情数", "ack": "确认用时（中位 / P90）", "close": "关闭用时（中位 / P90）", "open": "未关闭警情",
		"bad": "前 10 位高频报警", "top": "前 10 位占全部报警", "count": "次数", "share": "占比", "alarm": "报警",
		"chatterTitle": "振荡报警（1 分钟内 3 次及以上）", "staleTitle": "陈旧报警（持续超过 24 小时）", "since": "开始", "for": "持续",
		"age": "未关闭警情（按时长）", "list": "警情", "grade": "最高级别", "opened": "发生", "toack": "确认用时", "toclose": "关闭用时",
		"by": "确认 / 处置", "state": "状态", "none": "无",
		"note": "泛滥：10 分钟内超过 %d 条；可管理：每 10 分钟不超过 %d 条（每名值班员约 1 条）。值班员一行按其确认的报警和警情统计。",
	},
	"en": {
		"title": "Alarm quality report (ISA-18.2 / EEMUA 191)", "period": "Period", "made": "Made", "periods": "10-minute periods",
		"scope": "Scope", "total": "All", "site": "Site", "source": "Hazard source", "officer": "Officer",
		"alarms": "Alarms", "per10": "Alarms per 10 min", "peak": "Peak 10 min", "flood": "Periods in flood", "chatter": "Chattering", "stale": "Stale",
		"incidents": "Incidents", "ack": "Time to acknowledge (median / p90)", "close": "Time to close (median / p90)", "open": "Open incidents",
		"bad": "Top 10 bad actors", "top": "Top 10 share of all alarms", "count": "Count", "share": "Share", "alarm": "Alarm",
		"chatterTitle": "Chattering alarms (3 or more within 1 min)", "staleTitle": "Stale alarms (active over 24 h)", "since": "Since", "for": "For",
		"age": "Incidents still open, by age", "list": "Incidents", "grade": "Worst grade", "opened": "Opened", "toack": "To acknowledge", "toclose": "To close",
		"by": "Acknowledged / closed by", "state": "State", "none": "none",
		"note": "Flood: more than %d alarms in 10 minutes; manageable: at most %d per 10 minutes (about 1 per officer). An officer's row counts the alarms and incidents they acknowledged.",
	},
}
