package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/alerting/report"
	"github.com/hazardwatch/hazardwatch/internal/allinone"
	"github.com/hazardwatch/hazardwatch/site"
)

const reportUsage = `usage: hazardwatch report [flags]

Writes the alarm-quality report (ISA-18.2 / EEMUA 191) of a period from the
alerting journal: per site, hazard source and officer the alarms per 10
minutes, the share of 10-minute periods in flood, the top-10 bad actors,
chattering and stale alarms, the time to acknowledge and to close incidents
(median, p90) and the incidents still open by age. docs/alerting.md explains
every figure.

  hazardwatch report -format html -out report.html          the last 24 h of the demo
  hazardwatch report -data /var/lib/hazardwatch/center -from 2026-12-01T00:00:00+08:00 -to 2026-12-02T00:00:00+08:00
  hazardwatch report -journal postgres://hw@db/hazardwatch -site jh-chem -format csv

The journal is read as it is; a running service may keep writing to it.

flags:`

// reportCmd writes the alarm-quality report. It returns the exit code.
func reportCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", allinone.DefaultDataDir, "data directory of hazardwatch or hazardwatch-ingest (the journal is found in it), or the alerting directory itself")
	journal := fs.String("journal", "", "the shared PostgreSQL journal instead (postgres:// URL; put the password in PGPASSWORD or ~/.pgpass, not here)")
	sitesDir := fs.String("sites", allinone.DefaultSitesDir, "site files, for the names of sites and sources (missing: ids only)")
	fromS := fs.String("from", "", "start of the period, RFC 3339 (default: -last before -to)")
	toS := fs.String("to", "", "end of the period, RFC 3339 (default: now)")
	last := fs.Duration("last", alerting.DefaultReportPeriod, "length of the period when -from is not given")
	siteID := fs.String("site", "", "only this site")
	format := fs.String("format", "csv", "csv, html or json")
	lang := fs.String("lang", "zh", "language of the HTML report: zh or en")
	out := fs.String("out", "", "write to this file instead of standard output")
	fs.Usage = func() {
		fmt.Fprintln(stderr, reportUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hazardwatch report: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	now := time.Now()
	q := alerting.ReportQuery{Site: *siteID, To: now}
	var err error
	if *toS != "" {
		if q.To, err = time.Parse(time.RFC3339, *toS); err != nil {
			fmt.Fprintf(stderr, "hazardwatch report: -to %q is not an RFC 3339 time such as 2026-12-01T08:00:00+08:00\n", *toS)
			return 2
		}
	}
	q.From = q.To.Add(-*last)
	if *fromS != "" {
		if q.From, err = time.Parse(time.RFC3339, *fromS); err != nil {
			fmt.Fprintf(stderr, "hazardwatch report: -from %q is not an RFC 3339 time such as 2026-12-01T00:00:00+08:00\n", *fromS)
			return 2
		}
	}
	if !q.From.Before(q.To) {
		fmt.Fprintln(stderr, "hazardwatch report: -from must be before -to")
		return 2
	}
	if *format != "csv" && *format != "html" && *format != "json" {
		fmt.Fprintf(stderr, "hazardwatch report: -format %q is not csv, html or json\n", *format)
		return 2
	}
	var sites []*site.Site
	if st, err := site.LoadDir(*sitesDir); err == nil {
		sites = st
	} else {
		fmt.Fprintf(stderr, "hazardwatch report: site files in %s not read (%v); the report names sites and sources by id\n", *sitesDir, firstLine(err))
	}
	dir := ""
	if *journal == "" {
		if dir, err = findJournal(*dataDir); err != nil {
			fmt.Fprintln(stderr, "hazardwatch report:", err)
			return 1
		}
	}
	rep, err := alerting.ReportFromJournal(context.Background(), dir, *journal, sites, q, now)
	if err != nil {
		fmt.Fprintln(stderr, "hazardwatch report:", err)
		return 1
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(stderr, "hazardwatch report:", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	switch *format {
	case "html":
		err = report.WriteHTML(w, rep, *lang)
	case "json":
		err = writeJSONReport(w, rep)
	default:
		err = report.WriteCSV(w, rep)
	}
	if err != nil {
		fmt.Fprintln(stderr, "hazardwatch report:", err)
		return 1
	}
	return 0
}

// findJournal finds the alerting journal in a data directory of the
// all-in-one command (center/alerting), of hazardwatch-ingest (alerting),
// or the alerting directory itself.
func findJournal(dir string) (string, error) {
	for _, d := range []string{filepath.Join(dir, "center", "alerting"), filepath.Join(dir, "alerting"), dir} {
		if _, err := os.Stat(filepath.Join(d, alerting.DBFile)); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no alerting journal (%s) in %s, %s or %s; pass -data with the service's data directory, or -journal",
		alerting.DBFile, filepath.Join(dir, "center", "alerting"), filepath.Join(dir, "alerting"), dir)
}

func firstLine(err error) string {
	var ps site.Problems
	if errors.As(err, &ps) && len(ps) > 0 {
		return fmt.Sprintf("%s and %d more", ps[0], len(ps)-1)
	}
	return err.Error()
}

func writeJSONReport(w io.Writer, r report.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
