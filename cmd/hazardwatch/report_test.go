package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
)

// journalWithLeak writes an all-in-one data dir whose journal holds the
// ammonia leak: opened, acknowledged after 3 min, closed at 25 min.
func journalWithLeak(t *testing.T) (dir string, t0 time.Time) {
	t.Helper()
	dir = t.TempDir()
	now := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	t0 = now
	svc, err := alerting.New(alerting.Config{DataDir: filepath.Join(dir, "center", "alerting"), TickInterval: -1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()
	k := "jh-chem/nh3-tanks/nh3-gas-1/HH"
	raise := rules.Event{Type: rules.Raised, Key: k, Site: "jh-chem", Source: "nh3-tanks", Point: "nh3-gas-1", Condition: rules.HH,
		Grade: protocol.Orange, Value: 90.9, Limit: 80, Since: t0, Time: t0}
	grade := rules.Event{Type: rules.SourceGradeChanged, Key: "jh-chem/nh3-tanks", Site: "jh-chem", Source: "nh3-tanks", Grade: protocol.Orange, Time: t0}
	if err := svc.HandleEvents(ctx, []rules.Event{raise, grade}); err != nil {
		t.Fatal(err)
	}
	id := svc.Incidents(ctx)[0].ID
	now = t0.Add(3 * time.Minute)
	if _, err := svc.AckIncident(ctx, id, "zhang.san", ""); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(10 * time.Minute)
	clear, normal := raise, grade
	clear.Type, clear.Grade, clear.PrevGrade, clear.Value, clear.Time = rules.Cleared, protocol.None, protocol.Orange, 5, now
	normal.Grade, normal.PrevGrade, normal.Time = protocol.None, protocol.Orange, now
	if err := svc.HandleEvents(ctx, []rules.Event{clear, normal}); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(25 * time.Minute)
	if _, err := svc.DisposeIncident(ctx, id, incident.Disposal{By: "zhang.san", Cause: incident.CauseLeak, Found: "法兰泄漏", Measures: "关阀"}); err != nil {
		t.Fatal(err)
	}
	return dir, t0
}

func TestReportCommand(t *testing.T) {
	dir, t0 := journalWithLeak(t)
	from, to := t0.Add(-time.Hour).Format(time.RFC3339), t0.Add(time.Hour).Format(time.RFC3339)
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"report", "-data", dir, "-sites", "../../configs/sites", "-from", from, "-to", to}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	recs, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var incidentLine []string
	for _, r := range recs {
		if r[0] == "incident" {
			incidentLine = r
		}
		if r[0] == "kpi" && r[1] == "source" && r[3] != "液氨储罐区" {
			t.Errorf("source row not named from the site file: %v", r)
		}
	}
	if incidentLine == nil || incidentLine[12] != "180" || incidentLine[15] != "1500" || incidentLine[3] != "closed" {
		t.Errorf("incident line %v, want acknowledged after 180 s and closed after 1500 s", incidentLine)
	}

	html := filepath.Join(t.TempDir(), "r.html")
	if code := dispatch([]string{"report", "-data", dir, "-sites", "../../configs/sites", "-from", from, "-to", to, "-format", "html", "-lang", "en", "-out", html}, &out, &errOut); code != 0 {
		t.Fatalf("html: exit %d: %s", code, errOut.String())
	}
	b, err := os.ReadFile(html)
	if err != nil || !strings.Contains(string(b), "3.0 min") || !strings.Contains(string(b), "25.0 min") || !strings.Contains(string(b), "液氨储罐区") {
		t.Errorf("HTML report lacks the times: %v", err)
	}
}

func TestReportCommandErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"report", "-data", t.TempDir()}, 1, "no alerting journal"},
		{[]string{"report", "-from", "yesterday"}, 2, "-from \"yesterday\" is not an RFC 3339 time"},
		{[]string{"report", "-format", "pdf"}, 2, "-format \"pdf\""},
		{[]string{"report", "-from", "2026-12-02T00:00:00Z", "-to", "2026-12-01T00:00:00Z"}, 2, "-from must be before -to"},
	} {
		var out, errOut bytes.Buffer
		if code := dispatch(c.args, &out, &errOut); code != c.code || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", c.args, code, errOut.String(), c.code, c.want)
		}
	}
}
