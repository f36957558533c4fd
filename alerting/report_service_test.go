package alerting

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/alerting/report"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
)

// leak runs the ammonia leak through a service on a fake clock: yellow,
// orange, red; acknowledged after 2 min, cleared, disposal filed at 20 min.
func leak(t *testing.T, svc *Service, clk *clock) string {
	t.Helper()
	ctx := context.Background()
	t0 := clk.Now()
	k1, k2 := "jh-chem/nh3-tanks/nh3-gas-1/HH", "jh-chem/nh3-tanks/nh3-gas-2/HH"
	for _, batch := range [][]rules.Event{
		{event(rules.Raised, k1, t0, protocol.Yellow, protocol.None, 85), sourceGradeEvent(protocol.Yellow, protocol.None, t0)},
		{event(rules.Raised, k2, t0.Add(20*time.Second), protocol.Yellow, protocol.None, 88), sourceGradeEvent(protocol.Orange, protocol.Yellow, t0.Add(20*time.Second))},
		{sourceGradeEvent(protocol.Red, protocol.Orange, t0.Add(40*time.Second))},
	} {
		if err := svc.HandleEvents(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	id := svc.Incidents(ctx)[0].ID
	clk.Add(2 * time.Minute)
	if _, err := svc.AckIncident(ctx, id, "zhang.san", ""); err != nil {
		t.Fatal(err)
	}
	t1 := clk.Add(8 * time.Minute)
	if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Cleared, k1, t1, protocol.None, protocol.Yellow, 10),
		event(rules.Cleared, k2, t1, protocol.None, protocol.Yellow, 12), sourceGradeEvent(protocol.None, protocol.Red, t1)}); err != nil {
		t.Fatal(err)
	}
	clk.Add(10 * time.Minute)
	if _, err := svc.DisposeIncident(ctx, id, incident.Disposal{By: "zhang.san", Cause: incident.CauseLeak,
		Found: "1# 罐法兰泄漏", Measures: "关阀、喷淋稀释"}); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestReportShowsTheLeaksTimeToAcknowledgeAndClose(t *testing.T) {
	eachJournal(t, func(t *testing.T, j journal) {
		clk := &clock{t: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)}
		svc, err := New(j.with(Config{TickInterval: -1, Now: clk.Now, Sites: exampleSites(t)}))
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		t0 := clk.Now()
		id := leak(t, svc, clk)
		rep, err := svc.Report(context.Background(), ReportQuery{From: t0.Add(-time.Hour), To: clk.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Incidents) != 1 || rep.Incidents[0].ID != id || rep.Incidents[0].ToAck != 2*time.Minute || rep.Incidents[0].ToClose != 20*time.Minute ||
			rep.Incidents[0].WorstGrade != protocol.Red {
			t.Fatalf("incidents %+v, want the leak acknowledged at 2 min and closed at 20", rep.Incidents)
		}
		if rep.Total.Alarms != 2 || rep.Total.Ack.Median != 2*time.Minute || rep.Total.Close.P90 != 20*time.Minute || rep.Total.Open != 0 {
			t.Errorf("total %+v", rep.Total)
		}
		if len(rep.Sources) != 1 || rep.Sources[0].Name != "液氨储罐区" || len(rep.Officers) != 1 || rep.Officers[0].Key != "zhang.san" {
			t.Errorf("sources %+v officers %+v", rep.Sources, rep.Officers)
		}

		srv := serveAPI(t, svc)
		from, to := t0.Add(-time.Hour).Format(time.RFC3339), clk.Now().Format(time.RFC3339)
		code, body := apiCall(t, srv.URL, "GET", "/api/report?from="+from+"&to="+to, viewerToken, "")
		var got report.Report
		if code != http.StatusOK || json.Unmarshal(body, &got) != nil || len(got.Incidents) != 1 || got.Incidents[0].ToClose != 20*time.Minute {
			t.Errorf("GET /api/report: %d %.300s", code, body)
		}
		code, body = apiCall(t, srv.URL, "GET", "/api/report?format=csv&from="+from+"&to="+to, viewerToken, "")
		recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		if code != http.StatusOK || err != nil || recs[len(recs)-1][0] != "incident" || recs[len(recs)-1][12] != "120" || recs[len(recs)-1][15] != "1200" {
			t.Errorf("CSV report: %d %v %v", code, err, recs[len(recs)-1])
		}
		code, body = apiCall(t, srv.URL, "GET", "/api/report?format=html&lang=en&from="+from+"&to="+to, viewerToken, "")
		if code != http.StatusOK || !strings.Contains(string(body), "2.0 min") || !strings.Contains(string(body), "20.0 min") {
			t.Errorf("HTML report: %d", code)
		}
		for _, bad := range []string{"?format=pdf", "?from=yesterday", "?from=" + to + "&to=" + from} {
			if code, _ := apiCall(t, srv.URL, "GET", "/api/report"+bad, viewerToken, ""); code != http.StatusBadRequest {
				t.Errorf("GET /api/report%s: %d, want 400", bad, code)
			}
		}
		if code, _ := apiCall(t, srv.URL, "GET", "/api/report", "", ""); code != http.StatusUnauthorized {
			t.Errorf("without a token: %d", code)
		}

		// The same from the journal, the service stopped (hazardwatch report).
		svc.Close()
		rep2, err := ReportFromJournal(context.Background(), j.dir, j.dsn, exampleSites(t)(), ReportQuery{From: t0.Add(-time.Hour), To: clk.Now()}, clk.Now())
		if err != nil || len(rep2.Incidents) != 1 || rep2.Incidents[0].ToAck != 2*time.Minute {
			t.Errorf("from the journal: %v %+v", err, rep2.Incidents)
		}
	})
	if _, err := ReportFromJournal(context.Background(), t.TempDir(), "", nil, ReportQuery{}, time.Now()); err == nil || !strings.Contains(err.Error(), "no alerting journal") {
		t.Errorf("an empty dir: %v", err)
	}
}
