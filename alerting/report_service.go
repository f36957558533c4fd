package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/alerting/report"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// ReportQuery selects the alarm-quality report's period and sites.
type ReportQuery struct {
	From, To time.Time
	// Site limits the report to one site; empty: all. Keep, when set,
	// limits it to the sites it accepts (the caller's scope).
	Site string
	Keep func(site string) bool
}

// DefaultReportPeriod is the period of a report when none is asked for:
// the last 24 hours.
const DefaultReportPeriod = 24 * time.Hour

// Report computes the alarm-quality report (alerting/report) from the
// journal, every node's sites.
func (s *Service) Report(ctx context.Context, q ReportQuery) (report.Report, error) {
	var sites []*site.Site
	if s.cfg.Sites != nil {
		sites = s.cfg.Sites()
	}
	return makeReport(ctx, s.store, sites, q, s.cfg.Now())
}

// ReportFromJournal computes the report from a journal without running the
// service (the hazardwatch report command): SQLite in dataDir, or the
// PostgreSQL journal at dsn. sites name the rows; nil leaves ids.
func ReportFromJournal(ctx context.Context, dataDir, dsn string, sites []*site.Site, q ReportQuery, now time.Time) (report.Report, error) {
	if dataDir == "" && dsn == "" {
		return report.Report{}, fmt.Errorf("report: name the journal: a data dir or a postgres:// DSN")
	}
	if dsn == "" {
		if _, err := os.Stat(filepath.Join(dataDir, DBFile)); err != nil {
			return report.Report{}, fmt.Errorf("report: no alerting journal in %s: %w", dataDir, err)
		}
	}
	st, err := openStore(dataDir, dsn, "", nil)
	if err != nil {
		return report.Report{}, err
	}
	defer st.Close()
	return makeReport(ctx, st, sites, q, now)
}

func makeReport(ctx context.Context, st *store, sites []*site.Site, q ReportQuery, now time.Time) (report.Report, error) {
	if q.To.IsZero() {
		q.To = now
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-DefaultReportPeriod)
	}
	keep := func(siteID string) bool {
		return (q.Site == "" || siteID == q.Site) && (q.Keep == nil || q.Keep(siteID))
	}
	in := report.Input{From: q.From, To: q.To, Now: now, SiteNames: map[string]string{}, SourceNames: map[string]string{}}
	for _, s := range sites {
		in.SiteNames[s.ID] = s.Name
		for _, src := range s.Sources {
			in.SourceNames[s.ID+"/"+src.ID] = src.Name
		}
	}
	var err error
	if in.Events, err = st.reportEvents(ctx, q.From, q.To, keep); err != nil {
		return report.Report{}, err
	}
	opened, err := st.incidents(ctx, IncidentQuery{From: q.From, To: q.To, Limit: 1 << 20})
	if err != nil {
		return report.Report{}, err
	}
	for _, inc := range opened {
		if keep(inc.Site) {
			in.Incidents = append(in.Incidents, inc)
		}
	}
	if in.Open, err = st.notClosedIncidents(ctx, keep); err != nil {
		return report.Report{}, err
	}
	return report.Make(in)
}

// reportEvents returns the raised, acknowledged and cleared events in
// [from, to], oldest first.
func (s *store) reportEvents(ctx context.Context, from, to time.Time, keep func(string) bool) ([]protocol.AlarmEvent, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT site, event FROM journal WHERE ts >= ? AND ts <= ? AND type IN (?, ?, ?) ORDER BY seq`),
		from.UnixMilli(), to.UnixMilli(), string(protocol.AlarmRaised), string(protocol.AlarmAcknowledged), string(protocol.AlarmCleared))
	if err != nil {
		return nil, fmt.Errorf("read the journal for the report from %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []protocol.AlarmEvent
	for rows.Next() {
		var siteID string
		var b []byte
		if err := rows.Scan(&siteID, &b); err != nil {
			return nil, fmt.Errorf("read the journal for the report from %s: %w", s.path, err)
		}
		if !keep(siteID) {
			continue
		}
		var e protocol.AlarmEvent
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("journaled event in %s: %w", s.path, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// reportHandlers serves GET /api/report?from=&to=&site=&format=json|csv|html&lang=zh|en.
func (s *Service) reportHandlers(mux *http.ServeMux, view func(http.HandlerFunc) http.Handler) {
	mux.Handle("GET /api/report", view(func(w http.ResponseWriter, r *http.Request) {
		from, to, err := timeRange(r)
		if err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		if !from.IsZero() && !to.IsZero() && !from.Before(to) {
			httpError(w, http.StatusBadRequest, fmt.Errorf("from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339)))
			return
		}
		q := r.URL.Query()
		format := q.Get("format")
		if format == "" {
			format = "json"
		}
		if format != "json" && format != "csv" && format != "html" {
			httpError(w, http.StatusBadRequest, fmt.Errorf("format %q is not json, csv or html", format))
			return
		}
		rep, err := s.Report(r.Context(), ReportQuery{From: from, To: to, Site: q.Get("site"),
			Keep: func(siteID string) bool { return s.mayView(r, siteID) }})
		if err != nil {
			s.reply(w, nil, err)
			return
		}
		name := "hazardwatch-report-" + strings.ReplaceAll(rep.To.UTC().Format("20060102T1504"), ":", "")
		switch format {
		case "csv":
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
			err = report.WriteCSV(w, rep)
		case "html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			err = report.WriteHTML(w, rep, q.Get("lang"))
		default:
			writeJSON(w, http.StatusOK, rep)
		}
		if err != nil {
			s.log.Error("write the report", zap.Error(err))
		}
	}))
}
