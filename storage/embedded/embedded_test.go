package embedded

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/storage"
)

var t0 = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

func openT(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func good(site, point string, at time.Time, v float64) storage.Sample {
	return storage.Sample{Site: site, Source: "src", Point: point, Time: at, Value: v, HasValue: true, Quality: protocol.Good}
}

func mustAppend(t *testing.T, s *Store, samples ...storage.Sample) {
	t.Helper()
	if err := s.Append(context.Background(), samples); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

func rangeAll(t *testing.T, s *Store, site, point string) []storage.Sample {
	t.Helper()
	got, err := s.Range(context.Background(), storage.Point{Site: site, Point: point}, t0.Add(-48*time.Hour), t0.Add(48*time.Hour), 0)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	return got
}

func TestAppendReadBack(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	mustAppend(t, s,
		good("a", "p1", t0, 1.5),
		good("a", "p1", t0.Add(time.Second), 2.5),
		storage.Sample{Site: "a", Source: "src", Point: "p1", Time: t0.Add(2 * time.Second), Quality: protocol.CommFail},
		good("a", "p2", t0, 7),
		storage.Sample{Site: "a", Source: "src", Point: "p2", Time: t0.Add(time.Second), Value: 120, HasValue: true, Quality: protocol.OverRange},
		good("b", "p1", t0, 99),
	)
	got := rangeAll(t, s, "a", "p1")
	if len(got) != 3 {
		t.Fatalf("Range a/p1 = %d samples %+v, want 3", len(got), got)
	}
	if !got[0].HasValue || got[0].Value != 1.5 || got[0].Quality != protocol.Good || !got[0].Time.Equal(t0) || got[0].Source != "src" {
		t.Errorf("first sample = %+v", got[0])
	}
	if got[2].HasValue || got[2].Quality != protocol.CommFail {
		t.Errorf("comm_fail sample = %+v, want no value and quality comm_fail", got[2])
	}

	latest, err := s.Latest(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 2 {
		t.Fatalf("Latest(a) = %+v, want 2 points", latest)
	}
	if latest[0].Point != "p1" || latest[0].Quality != protocol.CommFail || latest[0].HasValue {
		t.Errorf("latest p1 = %+v, want comm_fail without value", latest[0])
	}
	if latest[1].Point != "p2" || latest[1].Quality != protocol.OverRange || latest[1].Value != 120 {
		t.Errorf("latest p2 = %+v, want over_range 120", latest[1])
	}
	all, err := s.Latest(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[2].Site != "b" || all[2].Value != 99 {
		t.Errorf("Latest(all) = %+v, want a/p1, a/p2, b/p1", all)
	}
}

func TestRangeStepKeepsLastOfEachStep(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	var in []storage.Sample
	for i := range 30 { // one per second for 30 s
		in = append(in, good("a", "p", t0.Add(time.Duration(i)*time.Second), float64(i)))
	}
	mustAppend(t, s, in...)
	got, err := s.Range(context.Background(), storage.Point{Site: "a", Point: "p"}, t0, t0.Add(29*time.Second), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{9, 19, 29}
	if len(got) != len(want) {
		t.Fatalf("Range with step = %+v, want values %v", got, want)
	}
	for i, w := range want {
		if got[i].Value != w {
			t.Errorf("step %d value = %v, want %v", i, got[i].Value, w)
		}
	}
	// The bounds are inclusive.
	got, err = s.Range(context.Background(), storage.Point{Site: "a", Point: "p"}, t0.Add(5*time.Second), t0.Add(7*time.Second), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Value != 5 || got[2].Value != 7 {
		t.Errorf("Range [5s, 7s] = %+v, want values 5, 6, 7", got)
	}
}

func TestRangeRejectsBadArguments(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Range(ctx, storage.Point{Site: "a"}, t0, t0.Add(time.Hour), 0); err == nil {
		t.Error("Range without point: no error")
	}
	if _, err := s.Range(ctx, storage.Point{Site: "a", Point: "p"}, t0.Add(time.Hour), t0, 0); err == nil {
		t.Error("Range with end before start: no error")
	}
	if _, err := s.Range(ctx, storage.Point{Site: "a", Point: "p"}, t0, t0.Add(time.Hour), -time.Second); err == nil {
		t.Error("Range with negative step: no error")
	}
}

func TestOutOfOrderAppendLands(t *testing.T) {
	s := openT(t, t.TempDir(), Options{OutOfOrderWindow: 2 * time.Hour})
	defer s.Close()
	mustAppend(t, s, good("a", "p", t0, 10))
	// A store-and-forward replay: readings from an hour ago arrive later.
	mustAppend(t, s, good("a", "p", t0.Add(-time.Hour), 1), good("a", "p", t0.Add(-30*time.Minute), 2))
	got := rangeAll(t, s, "a", "p")
	if len(got) != 3 || got[0].Value != 1 || got[1].Value != 2 || got[2].Value != 10 {
		t.Fatalf("after out-of-order append Range = %+v, want 1, 2, 10", got)
	}
	latest, err := s.Latest(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 1 || latest[0].Value != 10 {
		t.Errorf("Latest = %+v, want the newest (10), not the replayed ones", latest)
	}
}

func TestRejectedSamplesDoNotCostTheOthers(t *testing.T) {
	s := openT(t, t.TempDir(), Options{OutOfOrderWindow: time.Hour})
	defer s.Close()
	mustAppend(t, s, good("a", "p", t0, 10))
	err := s.Append(context.Background(), []storage.Sample{
		good("a", "p", t0.Add(-3*time.Hour), 1), // too old for the window
		good("a", "p", t0.Add(time.Second), 11), // fine
		good("a", "p", t0, 99),                  // another value at a stored time
		good("a", "p", t0.Add(2*time.Second), math.NaN()),
		{Site: "a", Point: "p", Time: t0.Add(3 * time.Second), Quality: "weird"},
		{Point: "p", Time: t0},
		good("a", "p", t0.Add(4*time.Second), 14), // fine
	})
	var rej *storage.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("Append error = %v, want *storage.RejectedError", err)
	}
	reasons := map[int]string{}
	for _, r := range rej.Rejected {
		reasons[r.Index] = r.Reason
	}
	want := map[int]string{0: storage.RejectTooOld, 2: storage.RejectConflict, 3: storage.RejectNotNumber, 4: storage.RejectInvalid, 5: storage.RejectInvalid}
	if fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Errorf("rejected = %v, want %v", reasons, want)
	}
	got := rangeAll(t, s, "a", "p")
	if len(got) != 3 || got[0].Value != 10 || got[1].Value != 11 || got[2].Value != 14 {
		t.Errorf("stored = %+v, want 10, 11, 14", got)
	}
	// The same value again at the same time (a redelivered message) is fine.
	mustAppend(t, s, good("a", "p", t0, 10))
}

func TestReopenAfterCloseKeepsData(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	mustAppend(t, s, good("a", "p", t0, 1), good("a", "p", t0.Add(time.Second), 2))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{})
	defer s.Close()
	got := rangeAll(t, s, "a", "p")
	if len(got) != 2 || got[1].Value != 2 {
		t.Fatalf("after reopen Range = %+v, want 1, 2", got)
	}
	mustAppend(t, s, good("a", "p", t0.Add(2*time.Second), 3))
	if got := rangeAll(t, s, "a", "p"); len(got) != 3 {
		t.Errorf("append after reopen: Range = %+v, want 3 samples", got)
	}
}

// TestCrashHelper is the child process of TestReopenAfterCrashKeepsData: it
// appends samples, says so, and waits to be killed without closing.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv("HAZARDWATCH_CRASH_DIR")
	if dir == "" {
		return // run only as the child of the crash test
	}
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := range 100 {
		if err := s.Append(context.Background(), []storage.Sample{good("a", "p", t0.Add(time.Duration(i)*time.Second), float64(i))}); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
	}
	fmt.Println("committed", 100)
	time.Sleep(time.Minute) // killed long before
	os.Exit(1)
}

func TestReopenAfterCrashKeepsData(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), "HAZARDWATCH_CRASH_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("reading child: %v", err)
	}
	var n int
	if _, err := fmt.Sscanf(line, "committed %d", &n); err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("child said %q", line)
	}
	// SIGKILL: no Close, no deferred flush.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	s := openT(t, dir, Options{})
	defer s.Close()
	got := rangeAll(t, s, "a", "p")
	if len(got) != n {
		t.Fatalf("after crash %d samples, want the %d committed", len(got), n)
	}
	for i, sm := range got {
		if sm.Value != float64(i) {
			t.Fatalf("sample %d = %v, want %d", i, sm.Value, i)
		}
	}
}

func TestQualityCodesRoundTrip(t *testing.T) {
	for _, q := range []protocol.Quality{protocol.Good, protocol.Bad, protocol.CommFail, protocol.OverRange} {
		c, ok := QualityCode(q)
		if !ok || QualityOf(c) != q {
			t.Errorf("quality %s -> %v -> %s", q, c, QualityOf(c))
		}
	}
	if _, ok := QualityCode("weird"); ok {
		t.Error("QualityCode(weird) ok")
	}
}

func TestOpenRejectsNegativeRetention(t *testing.T) {
	if s, err := Open(t.TempDir(), Options{Retention: -time.Hour}); err == nil {
		s.Close()
		t.Error("Open with negative retention: no error")
	}
}

// BenchmarkAppend measures Append of 100-reading batches (a gateway message)
// over 1000 points; samples/s is reported.
func BenchmarkAppend(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 100
	points := make([]string, 1000)
	for i := range points {
		points[i] = "p" + strconv.Itoa(i)
	}
	samples := make([]storage.Sample, batch)
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		for j := range samples {
			samples[j] = good("bench", points[(i*batch+j)%len(points)], at, float64(j))
		}
		if err := s.Append(context.Background(), samples); err != nil {
			b.Fatal(err)
		}
		n += batch
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
}
