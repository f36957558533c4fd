package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/internal/center"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
)

// TestEmbeddedRunLosesNothing runs the tool as a user would, against the
// machine's Mosquitto, and checks the report accounts for every reading.
func TestEmbeddedRunLosesNothing(t *testing.T) {
	siteID := fmt.Sprintf("loadtest-%d", time.Now().UnixNano())
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := run(ctx, []string{"-embedded", "-broker", "tcp://127.0.0.1:1883", "-gateways", "2", "-points", "10",
		"-rate", "5", "-duration", "3s", "-site-id", siteID}, &out, &errOut)
	t.Logf("report:\n%s%s", out.String(), errOut.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	// 2 gateways × 10 points × 5/s × 3 s, give or take a tick each.
	if rep.Sent < 200 || rep.Sent > 400 || rep.Sent%10 != 0 {
		t.Errorf("sent %d readings, want about 300 in whole messages of 10", rep.Sent)
	}
	if rep.Stored != rep.Sent || rep.Lost != 0 || rep.Duplicated != 0 || rep.Rejected != 0 || rep.Unexpected != 0 || rep.PublishErrors != 0 {
		t.Errorf("report %+v: want stored == sent and nothing lost, duplicated, rejected or unexpected", rep)
	}
	if rep.P50 <= 0 || rep.P50 > rep.P99 || rep.P99 > rep.Max {
		t.Errorf("latency p50 %v p99 %v max %v: want 0 < p50 ≤ p99 ≤ max", rep.P50, rep.P99, rep.Max)
	}
	for _, want := range []string{fmt.Sprintf("stored      %d distinct", rep.Sent), "lost        0\n", "duplicated  0\n", "peak RSS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report does not say %q", want)
		}
	}
}

func TestFlagsRefuseNonsense(t *testing.T) {
	for _, args := range [][]string{
		{"-embedded", "-gateways", "0"},
		{"-embedded", "-points", "5000"},
		{"-embedded", "-rate", "NaN"},
		{"-embedded", "-rate", "-1"},
		{"-embedded", "-duration", "0s"},
		{"-gateways", "2"}, // no -embedded
		{"-embedded", "stray"},
		{"-embedded", "-alarm-probes", "-1"},
		{"-embedded", "-alarm-probes", "1001"},
		{"-embedded", "-alarm-probes", "1", "-alarm-timeout", "0s"},
		{"-publish-only", "-alarm-probes", "1"},
		{"-target", "http://127.0.0.1:1", "-alarm-probes", "1"}, // no -alerting
		{"-write-alerting", "/nonexistent/a.yaml"},              // no -webhook-listen
	} {
		var out, errOut bytes.Buffer
		if _, err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
}

func TestGeneratedSiteMatchesPublishers(t *testing.T) {
	sites, err := loadSite(t.TempDir(), "gen", 3, 7, 20, 5)
	if err != nil {
		t.Fatal(err)
	}
	s := sites[0]
	for i := range 5 {
		ref := s.Point(probePointID(i))
		if ref == nil || ref.Device == nil || ref.Device.Gateway != probeGatewayID || ref.Source.ID != probeSourceID(i) || len(ref.Source.Points) != 1 {
			t.Fatalf("probe point %s is not alone on its source %s, read by %s", probePointID(i), probeSourceID(i), probeGatewayID)
		}
		if p := ref.Point; p.OnDelay == nil || *p.OnDelay != 0 || p.OffDelay == nil || *p.OffDelay != 0 || p.Limits.H == nil || !(*p.Limits.H < probeValue) {
			t.Errorf("probe point %s: on_delay %v off_delay %v h %v: want no delays and a limit the probe value passes", p.ID, p.OnDelay, p.OffDelay, p.Limits.H)
		}
	}
	for g := range 3 {
		if s.Gateway(gatewayID(g)) == nil {
			t.Errorf("gateway %s missing", gatewayID(g))
		}
		for p := range 7 {
			ref := s.Point(pointID(g, p))
			if ref == nil || ref.Device == nil || ref.Device.Gateway != gatewayID(g) {
				t.Fatalf("point %s is not read by gateway %s", pointID(g, p), gatewayID(g))
			}
		}
	}
}

// TestLedgerFindsLossAndDuplicates feeds the recorder directly, without
// broker, to see that lost, duplicated and unexpected readings are told
// apart.
func TestLedgerFindsLossAndDuplicates(t *testing.T) {
	l := newLedger(2, 3)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l.sent(0, t0)
	l.sent(0, t0.Add(time.Millisecond))
	l.sent(1, t0)
	rec := &recorder{next: appenderFunc(func([]storage.Sample) error { return nil }), ledger: l}
	sample := func(g, p int, at time.Time) storage.Sample {
		return storage.Sample{Site: "s", Gateway: gatewayID(g), Point: pointID(g, p), Time: at, Value: 1, HasValue: true}
	}
	batch := []storage.Sample{sample(0, 0, t0), sample(0, 1, t0), sample(0, 2, t0), sample(1, 0, t0), sample(1, 1, t0)}
	if err := rec.Append(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	// A duplicate, and a reading at a time gateway 1 never sent.
	if err := rec.Append(context.Background(), []storage.Sample{sample(0, 0, t0), sample(1, 2, t0.Add(time.Second))}); err != nil {
		t.Fatal(err)
	}
	got := l.tally()
	if got != (tally{sent: 9, distinct: 5, duplicated: 1}) {
		t.Errorf("tally %+v, want sent 9 distinct 5 duplicated 1", got)
	}
	if rec.unexpected != 1 || rec.stored != 7 {
		t.Errorf("unexpected %d stored %d, want 1 and 7", rec.unexpected, rec.stored)
	}
}

// TestRecorderSkipsRejected: samples the store refused are not stored.
func TestRecorderSkipsRejected(t *testing.T) {
	l := newLedger(1, 2)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l.sent(0, t0)
	rec := &recorder{next: appenderFunc(func([]storage.Sample) error {
		return &storage.RejectedError{Rejected: []storage.Rejected{{Index: 1, Reason: storage.RejectTooOld}}}
	}), ledger: l}
	err := rec.Append(context.Background(), []storage.Sample{
		{Gateway: gatewayID(0), Point: pointID(0, 0), Time: t0}, {Gateway: gatewayID(0), Point: pointID(0, 1), Time: t0}})
	if err == nil {
		t.Fatal("the store's rejection was not passed on")
	}
	if got := l.tally(); got.distinct != 1 {
		t.Errorf("distinct %d, want 1: the refused sample counted as stored", got.distinct)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*1.02 {
			t.Errorf("quantile %v = %v, want %v within +2%%", c.q, got, c.want)
		}
	}
	for us := uint64(0); us < 1<<20; us += 37 {
		if b := bucketOf(us); bucketUpper(b) < us || (b > 0 && bucketUpper(b-1) >= us) {
			t.Fatalf("%d µs in bucket %d with upper bound %d", us, b, bucketUpper(b))
		}
	}
}

type appenderFunc func([]storage.Sample) error

func (f appenderFunc) Append(_ context.Context, s []storage.Sample) error { return f(s) }

// TestTargetRunVerifiesThroughQueryAPI runs -target against a centre
// serving its HTTP API with a viewer token: every reading is counted
// through /api/points/counts, and the report says so.
func TestTargetRunVerifiesThroughQueryAPI(t *testing.T) {
	b := testenv.Mosquitto(t)
	dir := t.TempDir()
	siteID := fmt.Sprintf("target-%d", time.Now().UnixNano())
	sites, err := loadSite(dir, siteID, 2, 10, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	const token = "hwt_load-test-viewer-token"
	c, err := center.Open(context.Background(), center.Config{Sites: sites, Broker: b.URL(), DataDir: t.TempDir(), ClientID: "load-target-test",
		Access: access.Config{Tokens: []access.Token{{Name: "load", Role: access.Viewer, Hash: access.HashToken(token)}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)

	args := []string{"-target", srv.URL, "-broker", b.URL(), "-gateways", "2", "-points", "10", "-rate", "5", "-duration", "3s", "-drain", "5s", "-site-id", siteID}
	var out, errOut bytes.Buffer
	if _, err := run(ctx, args, &out, &errOut); err == nil || !strings.Contains(err.Error(), TokenEnv) {
		t.Errorf("run without a token: %v; want an error naming %s", err, TokenEnv)
	}
	t.Setenv(TokenEnv, token)
	out.Reset()
	rep, err := run(ctx, args, &out, &errOut)
	t.Logf("report:\n%s%s", out.String(), errOut.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.Sent < 200 || rep.Stored != rep.Sent || rep.Lost != 0 || rep.Duplicated != 0 || rep.PublishErrors != 0 {
		t.Errorf("report %+v: want about 300 sent, all stored once", rep)
	}
	for _, want := range []string{"queue limits not given", fmt.Sprintf("stored      %d distinct readings (counted through %s/api/points/counts)", rep.Sent, srv.URL), "lost        0\n", "centre cpu"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report does not say %q", want)
		}
	}
}

// probeCentre is a centre serving its HTTP API as in
// TestTargetRunVerifiesThroughQueryAPI, with the alerting file's
// receivers, tokens and incident settings, as hazardwatch-ingest -alerting
// loads them.
func probeCentre(t *testing.T, ctx context.Context, brokerURL string, sites []*site.Site, file center.AlertingFile) string {
	t.Helper()
	c, err := center.Open(ctx, center.Config{Sites: sites, Broker: brokerURL, DataDir: t.TempDir(), ClientID: "load-probe-test",
		Access: file.Access, Receivers: file.Receivers, Incidents: file.Incidents})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// writeProbeFiles writes the site and the alerting file as a user would
// (-write-site, -write-alerting) and loads them as the centre does.
func writeProbeFiles(t *testing.T, siteID string, probes int) ([]*site.Site, string, center.AlertingFile) {
	t.Helper()
	dir := t.TempDir()
	sitesDir, alertingPath := filepath.Join(dir, "sites"), filepath.Join(dir, "alerting.yaml")
	var out, errOut bytes.Buffer
	if _, err := run(context.Background(), []string{"-write-site", sitesDir, "-write-alerting", alertingPath, "-webhook-listen", testenv.FreeAddr(t),
		"-site-id", siteID, "-gateways", "2", "-points", "10", "-alarm-probes", strconv.Itoa(probes)}, &out, &errOut); err != nil {
		t.Fatalf("write the files: %v\n%s", err, errOut.String())
	}
	sites, err := site.LoadDir(sitesDir)
	if err != nil {
		t.Fatal(err)
	}
	file, err := center.LoadAlertingFile(alertingPath)
	if err != nil {
		t.Fatal(err)
	}
	return sites, alertingPath, file
}

// TestTargetAlarmProbes measures alarm latency against a centre in the
// manner of the real binary: the alerting file written by the tool, the
// probes' incidents notified to the tool's webhook receiver. A second run
// against the same centre works too: the first cleared its probes and
// waited for their incidents to close.
func TestTargetAlarmProbes(t *testing.T) {
	b := testenv.Mosquitto(t)
	siteID := fmt.Sprintf("probes-%d", time.Now().UnixNano())
	const probes = 4
	t.Setenv(TokenEnv, "hwt_load-probe-test-token")
	sites, alertingPath, file := writeProbeFiles(t, siteID, probes)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := probeCentre(t, ctx, b.URL(), sites, file)

	args := []string{"-target", url, "-broker", b.URL(), "-gateways", "2", "-points", "10", "-rate", "5", "-duration", "2s", "-drain", "5s",
		"-site-id", siteID, "-alarm-probes", strconv.Itoa(probes), "-alerting", alertingPath}
	for round := 1; round <= 2; round++ {
		var out, errOut bytes.Buffer
		rep, err := run(ctx, args, &out, &errOut)
		t.Logf("round %d report:\n%s%s", round, out.String(), errOut.String())
		if err != nil {
			t.Fatalf("round %d: run: %v", round, err)
		}
		if rep.Sent < 100 || rep.Stored != rep.Sent || rep.Lost != 0 || rep.Duplicated != 0 {
			t.Errorf("round %d: report %+v: want every background reading stored once, the probes apart", round, rep)
		}
		a := rep.Alarms
		if a == nil || a.Probes != probes || a.Arrived != probes || len(a.Missing) != 0 || !a.Signed || a.BadSignatures != 0 || a.Early != 0 {
			t.Fatalf("round %d: alarms %+v: want %d probes published and notified, signed", round, a, probes)
		}
		if a.P50 <= 0 || a.P50 > a.P99 || a.P99 > a.Max {
			t.Errorf("round %d: alarm latency p50 %v p99 %v max %v: want 0 < p50 ≤ p99 ≤ max", round, a.P50, a.P99, a.Max)
		}
		if a.Cleared != probes || a.Closed != probes {
			t.Errorf("round %d: %d probes cleared, %d incidents closed; want %d each", round, a.Cleared, a.Closed, probes)
		}
		for _, want := range []string{fmt.Sprintf("alarms      %d probes, %d notified", probes, probes), "alarm lat   p50 ", "(signatures checked)"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("round %d: report does not say %q", round, want)
			}
		}
	}
}

// TestTargetAlarmProbesNotNotified: a centre that does not send the
// webhook to the tool, or signs it with another secret, fails the run
// with an error saying so.
func TestTargetAlarmProbesNotNotified(t *testing.T) {
	b := testenv.Mosquitto(t)
	t.Setenv(TokenEnv, "hwt_load-probe-test-token")
	for _, c := range []struct {
		name   string
		centre func(f *center.AlertingFile)
		want   string
	}{
		{"no receiver", func(f *center.AlertingFile) { f.Receivers = nil }, "no probe's incident reached the webhook at all"},
		{"other secret", func(f *center.AlertingFile) { f.Receivers[0].Secret = "not-the-tool's" }, "does not verify with the receiver's secret"},
	} {
		t.Run(c.name, func(t *testing.T) {
			siteID := fmt.Sprintf("noprobes-%d", time.Now().UnixNano())
			const probes = 2
			sites, alertingPath, file := writeProbeFiles(t, siteID, probes)
			c.centre(&file)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			url := probeCentre(t, ctx, b.URL(), sites, file)
			var out, errOut bytes.Buffer
			rep, err := run(ctx, []string{"-target", url, "-broker", b.URL(), "-gateways", "2", "-points", "10", "-rate", "5", "-duration", "1s",
				"-drain", "5s", "-site-id", siteID, "-alarm-probes", strconv.Itoa(probes), "-alerting", alertingPath, "-alarm-timeout", "2s"}, &out, &errOut)
			t.Logf("report:\n%s%s", out.String(), errOut.String())
			if err == nil || !strings.Contains(err.Error(), "2 of 2 alarm probes were not notified to the webhook within 2s") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("run: %v; want an error that 2 of 2 probes were not notified, saying %q", err, c.want)
			}
			if rep == nil || rep.Lost != 0 || rep.Alarms == nil || rep.Alarms.Arrived != 0 {
				t.Errorf("report %+v: want the background all stored and no probe notified", rep)
			}
			if !strings.Contains(out.String(), "2 probes NOT notified within 2s: probe-0001 probe-0002") {
				t.Errorf("report does not name the probes not notified")
			}
		})
	}
}

// TestEmbeddedAlarmProbes: -embedded wires its own receiver with a fresh
// secret and journals on disk, as the centre does.
func TestEmbeddedAlarmProbes(t *testing.T) {
	b := testenv.Mosquitto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	rep, err := run(ctx, []string{"-embedded", "-broker", b.URL(), "-gateways", "2", "-points", "10", "-rate", "5", "-duration", "2s",
		"-site-id", fmt.Sprintf("embprobes-%d", time.Now().UnixNano()), "-alarm-probes", "3"}, &out, &errOut)
	t.Logf("report:\n%s%s", out.String(), errOut.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.Stored != rep.Sent || rep.Unexpected != 0 {
		t.Errorf("report %+v: the probes' readings must not count as background or unexpected", rep)
	}
	if a := rep.Alarms; a == nil || a.Arrived != 3 || !a.Signed || a.P50 <= 0 || a.P50 > a.P99 || a.P99 > a.Max {
		t.Errorf("alarms %+v: want 3 probes notified, signed, 0 < p50 ≤ p99 ≤ max", a)
	}
}

func TestProbeScheduleAndQuantiles(t *testing.T) {
	const d = 10 * time.Second
	prev := time.Duration(0)
	for i := range 7 {
		at := probeAt(i, 7, d)
		if at <= prev || at < 2*time.Second || at > 8*time.Second {
			t.Errorf("probe %d at %v: want rising, within the middle 60 %% of %v", i, at, d)
		}
		prev = at
	}
	if at := probeAt(0, 1, d); at != 5*time.Second {
		t.Errorf("a single probe at %v, want the middle", at)
	}
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.9: 90 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := nearestRank(lat, q); got != want {
			t.Errorf("nearestRank(%v) = %v, want %v", q, got, want)
		}
	}
	if got := nearestRank(lat[:1], 0.99); got != time.Millisecond {
		t.Errorf("nearestRank of one value = %v", got)
	}
	for _, s := range []string{"probe-0001", "probe-0042"} {
		if i, ok := probeIndex(s); !ok || probeSourceID(i) != s {
			t.Errorf("probeIndex(%s) = %d, %v", s, i, ok)
		}
	}
	for _, s := range []string{"tanks-0001", "probe-1", "probe-0001x", "probe-0000"} {
		if _, ok := probeIndex(s); ok {
			t.Errorf("probeIndex(%s) took it for a probe", s)
		}
	}
}

// TestStateLimitsWarnsOfASmallInflightWindow reads real Mosquitto files:
// the project's, and one with the window of the project's file before
// 2026-12 (100), which caps how fast the centre drains a backlog.
func TestStateLimitsWarnsOfASmallInflightWindow(t *testing.T) {
	o := options{gateways: 50, rate: 10, duration: 30 * time.Second}
	small := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(small, []byte("listener 1883\nmax_queued_messages 0\nmax_inflight_messages 100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		warn bool
	}{{"../../configs/mosquitto/mosquitto.conf", false}, {small, true}} {
		l, err := readMosquittoConf(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		stateLimits(&out, o, l)
		if got := strings.Contains(out.String(), "the broker, not the centre, limits how fast a backlog drains"); got != tc.warn {
			t.Errorf("%s: warning %v, want %v; printed:\n%s", tc.file, got, tc.warn, out.String())
		}
	}
}
