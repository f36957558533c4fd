package center

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
)

func TestRecordableKeepsHazardWatchCountersAndGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "hazardwatch_ingest_readings_total", Help: "h"})
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hazardwatch_ingest_missing_messages", Help: "h"}, []string{"site", "gateway"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hazardwatch_ingest_lag_seconds", Help: "h"})
	other := prometheus.NewGauge(prometheus.GaugeOpts{Name: "go_goroutines_x", Help: "h"})
	reg.MustRegister(c, g, h, other)
	c.Add(7)
	g.WithLabelValues("jh-chem", "gw-tank").Set(3)
	h.Observe(1)
	other.Set(9)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	got := recordable(families, "node-1", now)
	if len(got) != 2 {
		t.Fatalf("recordable = %+v, want the counter and the gauge only", got)
	}
	byName := map[string]int{}
	for i, m := range got {
		byName[m.Name] = i
		if !m.Time.Equal(now) || m.Labels[NodeLabel] != "node-1" {
			t.Errorf("%s: time %v, labels %v; want %v and node node-1", m.Name, m.Time, m.Labels, now)
		}
	}
	if m := got[byName["hazardwatch_ingest_readings_total"]]; m.Value != 7 || len(m.Labels) != 1 {
		t.Errorf("counter recorded as %+v, want 7 with only the node label", m)
	}
	if m := got[byName["hazardwatch_ingest_missing_messages"]]; m.Value != 3 || m.Labels["site"] != "jh-chem" || m.Labels["gateway"] != "gw-tank" {
		t.Errorf("gauge recorded as %+v, want 3 with its site and gateway", m)
	}
}

type fakeSink struct {
	got [][]rules.Event
	err error
}

func (f *fakeSink) HandleEvents(_ context.Context, evs []rules.Event) error {
	f.got = append(f.got, evs)
	return f.err
}

func TestGradeChangeSinkKicksOnlyOnSourceGradeChanges(t *testing.T) {
	inner := &fakeSink{err: errors.New("journal full")}
	kicks := 0
	s := gradeChangeSink{EventSink: inner, kick: func() { kicks++ }}
	if err := s.HandleEvents(context.Background(), []rules.Event{{Type: rules.Raised}, {Type: rules.Cleared}}); err != inner.err {
		t.Errorf("HandleEvents = %v, want the inner sink's error", err)
	}
	if kicks != 0 {
		t.Errorf("point events kicked a recording %d times", kicks)
	}
	_ = s.HandleEvents(context.Background(), []rules.Event{{Type: rules.SourceGradeChanged}, {Type: rules.Raised}, {Type: rules.SourceGradeChanged}})
	if kicks != 1 {
		t.Errorf("a batch with grade changes kicked %d recordings, want 1", kicks)
	}
	if len(inner.got) != 2 || len(inner.got[1]) != 3 {
		t.Errorf("inner sink got %+v, want both batches whole", inner.got)
	}
}

// promValue runs an instant PromQL query through the centre's Prometheus
// API, as Grafana does, and returns each series' value by its source label.
func promValue(t *testing.T, srv *httptest.Server, query string) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/query?query="+url.QueryEscape(query), nil)
	req.Header.Set("Authorization", "Bearer "+testViewerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ans struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.Status != "success" {
		t.Fatalf("query %s: %s %v", query, body, err)
	}
	out := map[string]float64{}
	for _, r := range ans.Data.Result {
		v, _ := strconv.ParseFloat(r.Value[1].(string), 64)
		out[r.Metric["source"]+r.Metric["__name__"]] = v
	}
	return out
}

// TestCentreRecordsSourceGradesIntoStore: a running centre records every
// hazard source's grade into its store, and a grade change is recorded at
// once (the interval here is an hour), readable through the Prometheus
// API Grafana uses.
func TestCentreRecordsSourceGradesIntoStore(t *testing.T) {
	broker := testenv.Mosquitto(t)
	raw, err := os.ReadFile("../../configs/sites/tank-farm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(context.Background(), Config{Sites: loadSite(t, string(raw)), Broker: broker.URL(), DataDir: t.TempDir(),
		ClientID: "record-test", RecordInterval: time.Hour, Access: testAccess(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()

	grades := func() map[string]float64 { return promValue(t, srv, `hazardwatch_source_grade{node="record-test"}`) }
	testenv.Eventually(t, "both sources recorded at normal", 20*time.Second, func() bool {
		g := grades()
		v1, ok1 := g["nh3-tankshazardwatch_source_grade"]
		v2, ok2 := g["lpg-tankshazardwatch_source_grade"]
		return ok1 && ok2 && v1 == 0 && v2 == 0
	})

	// The leak's events go to alerting through the grade-change sink, as
	// Open wires it in front of the ingest service.
	evs := leak(c, time.Now(), 95)
	if err := (gradeChangeSink{EventSink: c.alerts, kick: c.rec.trigger}).HandleEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	var want protocol.Grade
	for _, g := range c.alerts.SourceGrades() {
		if g.Source == "nh3-tanks" {
			want = g.Grade
		}
	}
	if want == protocol.None {
		t.Fatalf("a minute at 95 ppm left nh3-tanks at normal: %+v", c.alerts.SourceGrades())
	}
	testenv.Eventually(t, "nh3-tanks recorded at "+want.String(), 20*time.Second, func() bool {
		return grades()["nh3-tankshazardwatch_source_grade"] == float64(want)
	})
	present := 0
	for _, a := range c.alerts.ActiveAlarms() {
		if a.Source == "nh3-tanks" {
			present++
		}
	}
	alarms := promValue(t, srv, `sum by (source) (hazardwatch_source_alarms{site="jh-chem"})`)
	if alarms["nh3-tanks"] != float64(present) || alarms["lpg-tanks"] != 0 {
		t.Errorf("recorded alarms by source = %v, want nh3-tanks %d and lpg-tanks 0", alarms, present)
	}
	if got := promValue(t, srv, `hazardwatch_ingest_connected{node="record-test"}`); len(got) != 1 {
		t.Errorf("ingest health not recorded: hazardwatch_ingest_connected = %v", got)
	}
}
