package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/internal/center"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
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
	} {
		var out, errOut bytes.Buffer
		if _, err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
}

func TestGeneratedSiteMatchesPublishers(t *testing.T) {
	sites, err := loadSite(t.TempDir(), "gen", 3, 7, 20)
	if err != nil {
		t.Fatal(err)
	}
	s := sites[0]
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
	sites, err := loadSite(dir, siteID, 2, 10, 5)
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
