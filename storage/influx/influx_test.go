package influx

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/storage"
)

var t0 = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

// fastOptions are Options for tests: short timeouts and backoff so
// recovery happens within the test's deadlines.
func fastOptions(url, bucket, spillDir string) Options {
	return Options{
		URL: url, Bucket: bucket, SpillDir: spillDir,
		FlushInterval:  50 * time.Millisecond,
		RequestTimeout: 2 * time.Second,
		RetryInitial:   50 * time.Millisecond,
		RetryMax:       300 * time.Millisecond,
	}
}

// TestAgainstInfluxd runs the tests that need a running InfluxDB on one
// shared server, each with its own sites; tests that stop the server start
// their own.
func TestAgainstInfluxd(t *testing.T) {
	d := testenv.NewInfluxd(t, "hw")
	// The 400 test runs last: the string "value" it leaves in an old shard
	// makes InfluxDB 1.8's Flux reader drop float values of queries whose
	// range spans that shard (docs/storage.md, limitations).
	for _, tc := range []struct {
		name string
		test func(*testing.T, *testenv.Influxd)
	}{
		{"AppendReadBack", testAppendReadBack},
		{"RangeStepKeepsLastOfEachStep", testRangeStepKeepsLastOfEachStep},
		{"InvalidSamplesRejectedOthersStored", testInvalidSamplesRejectedOthersStored},
		{"QuotingKeepsIdsLiteral", testQuotingKeepsIdsLiteral},
		{"AppendMetrics", testAppendMetrics},
		{"SpillSurvivesKill", testSpillSurvivesKill},
		{"BadDataDoesNotBlockSpill", testBadDataDoesNotBlockSpill},
	} {
		name, test := tc.name, tc.test
		t.Run(name, func(t *testing.T) { test(t, d) })
	}
}

// deadURL is an InfluxDB address where nothing listens.
func deadURL(t testing.TB) string {
	return "http://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
}

func openT(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func good(site, point string, at time.Time, v float64) storage.Sample {
	return storage.Sample{Site: site, Gateway: "gw1", Source: "src", Point: point, Time: at, Value: v, HasValue: true, Quality: protocol.Good}
}

func mustAppend(t testing.TB, s *Store, samples ...storage.Sample) {
	t.Helper()
	if err := s.Append(context.Background(), samples); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

// count asks InfluxDB itself, through InfluxQL, how many readings
// measurement reading holds for a site: its values plus its bad and
// comm_fail qualities (the readings without a value).
func count(t testing.TB, d *testenv.Influxd, site string) int {
	t.Helper()
	n := 0
	for _, q := range []string{
		fmt.Sprintf(`SELECT count("value") FROM "reading" WHERE "site" = '%s'`, site),
		fmt.Sprintf(`SELECT count("quality") FROM "reading" WHERE "site" = '%s' AND ("quality" = 'bad' OR "quality" = 'comm_fail')`, site),
	} {
		if rows := d.Rows(q); len(rows) > 0 {
			n += int(rows[0][1].(float64))
		}
	}
	return n
}

// values returns site/point's stored values by time through InfluxQL.
func values(t testing.TB, d *testenv.Influxd, site, point string) map[int64]float64 {
	t.Helper()
	out := make(map[int64]float64)
	for _, v := range d.Rows(fmt.Sprintf(`SELECT "value" FROM "reading" WHERE "site" = '%s' AND "point" = '%s'`, site, point) + ` AND time >= 0`) {
		at, err := time.Parse(time.RFC3339Nano, v[0].(string))
		if err != nil {
			t.Fatalf("parse time %v: %v", v[0], err)
		}
		if f, ok := v[1].(float64); ok {
			out[at.UnixMilli()] = f
		}
	}
	return out
}

// TestSlowInfluxSpills points the store at a socket that accepts and
// never answers: Append gives up after RequestTimeout and spills.
func TestSlowInfluxSpills(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	opts := fastOptions("http://"+l.Addr().String(), "db/rp", t.TempDir())
	opts.RequestTimeout = 200 * time.Millisecond
	opts.Registerer = prometheus.NewRegistry()
	s := openT(t, opts)
	mustAppend(t, s, good("slow", "p", t0, 1), good("slow", "p", t0.Add(time.Second), 2))
	if _, points := s.SpillDepth(); points != 2 {
		t.Errorf("spilled points = %d, want 2", points)
	}
	if v := testutil.ToFloat64(s.m.writeErrors.WithLabelValues(ErrKindTimeout)); v == 0 {
		t.Errorf("write errors {kind=timeout} = 0 after a request to a silent server")
	}
}

func testAppendReadBack(t *testing.T, d *testenv.Influxd) {
	s := openT(t, fastOptions(d.URL(), d.Bucket(), t.TempDir()))
	ctx := context.Background()
	mustAppend(t, s,
		good("a", "p1", t0, 1.5),
		good("a", "p1", t0.Add(time.Second), 2.5),
		storage.Sample{Site: "a", Source: "src", Point: "p1", Time: t0.Add(2 * time.Second), Quality: protocol.CommFail},
		good("a", "p2", t0, 7),
		storage.Sample{Site: "a", Source: "src", Point: "p2", Time: t0.Add(time.Second), Value: 120, HasValue: true, Quality: protocol.OverRange},
		good("b", "p1", t0, 99),
	)
	got, err := s.Range(ctx, storage.Point{Site: "a", Point: "p1"}, t0.Add(-time.Hour), t0.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("Range a/p1 = %+v, want 3 samples", got)
	}
	if !got[0].HasValue || got[0].Value != 1.5 || got[0].Quality != protocol.Good || !got[0].Time.Equal(t0) ||
		got[0].Source != "" || got[0].Gateway != "" { // no source or gateway tag: no query needs them
		t.Errorf("first sample = %+v", got[0])
	}
	if got[2].HasValue || got[2].Quality != protocol.CommFail || !got[2].Time.Equal(t0.Add(2*time.Second)) {
		t.Errorf("comm_fail sample = %+v, want no value and quality comm_fail", got[2])
	}

	latest, err := s.Latest(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 2 {
		t.Fatalf("Latest(a) = %+v, want 2 points", latest)
	}
	if latest[0].Point != "p1" || latest[0].Quality != protocol.CommFail || latest[0].HasValue || !latest[0].Time.Equal(t0.Add(2*time.Second)) {
		t.Errorf("latest p1 = %+v, want comm_fail without value at t0+2s", latest[0])
	}
	if latest[1].Point != "p2" || latest[1].Quality != protocol.OverRange || latest[1].Value != 120 {
		t.Errorf("latest p2 = %+v, want over_range 120", latest[1])
	}
	all, err := s.Latest(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var ab []storage.Sample
	for _, sm := range all {
		if sm.Site == "a" || sm.Site == "b" {
			ab = append(ab, sm)
		}
	}
	if len(ab) != 3 || ab[2].Site != "b" || ab[2].Value != 99 {
		t.Errorf("Latest(all) sites a, b = %+v, want a/p1, a/p2, b/p1=99", ab)
	}
	counts, err := s.Count(ctx, "a", t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 2 || counts["p1"] != 3 || counts["p2"] != 2 {
		t.Errorf("Count(a) = %v, want p1: 3 (two good, one comm_fail), p2: 2 (good, over_range)", counts)
	}

	// Older versions wrote quality="good" on every good reading.
	d.WriteLines(fmt.Sprintf("reading,site=old,point=p value=1,quality=\"good\" %d\nreading,site=old,point=p value=2,quality=\"good\" %d",
		t0.UnixMilli(), t0.Add(time.Second).UnixMilli()))
	if counts, err := s.Count(ctx, "old", t0.Add(-time.Hour), t0.Add(time.Hour)); err != nil || counts["p"] != 2 {
		t.Errorf("Count(old) = %v, %v; want p: 2", counts, err)
	}
	if latest, err := s.Latest(ctx, "old"); err != nil || len(latest) != 1 || latest[0].Quality != protocol.Good || latest[0].Value != 2 {
		t.Errorf("Latest(old) = %+v, %v; want p good 2", latest, err)
	}
}

func testRangeStepKeepsLastOfEachStep(t *testing.T, d *testenv.Influxd) {
	s := openT(t, fastOptions(d.URL(), d.Bucket(), t.TempDir()))
	var samples []storage.Sample
	for i := range 10 { // one every 10s over 100s
		samples = append(samples, good("step", "p", t0.Add(time.Duration(i)*10*time.Second), float64(i)))
	}
	samples[9].HasValue, samples[9].Quality = false, protocol.CommFail
	mustAppend(t, s, samples...)
	got, err := s.Range(context.Background(), storage.Point{Site: "step", Point: "p"}, t0, t0.Add(100*time.Second), 30*time.Second)

	if err != nil {
		t.Fatal(err)
	}
	// Windows [0,30) [30,60) [60,90) [90,120): last readings at 20s, 50s, 80s, 90s.
	want := []struct {
		at    time.Duration
		value float64
		has   bool
	}{{20 * time.Second, 2, true}, {50 * time.Second, 5, true}, {80 * time.Second, 8, true}, {90 * time.Second, 0, false}}
	if len(got) != len(want) {
		t.Fatalf("Range step 30s = %+v, want %d samples", got, len(want))
	}
	for i, w := range want {
		if !got[i].Time.Equal(t0.Add(w.at)) || got[i].HasValue != w.has || (w.has && got[i].Value != w.value) {
			t.Errorf("step %d = %+v, want at t0+%s value %v (has %v)", i, got[i], w.at, w.value, w.has)
		}
	}
	if got[3].Quality != protocol.CommFail {
		t.Errorf("last step quality = %q, want comm_fail", got[3].Quality)
	}
}

func TestRangeRejectsBadArguments(t *testing.T) {
	s := openT(t, fastOptions("http://127.0.0.1:1", "db/rp", t.TempDir()))
	ctx := context.Background()
	p := storage.Point{Site: "a", Point: "p"}
	for name, err := range map[string]error{
		"no point":      func() error { _, err := s.Range(ctx, storage.Point{Site: "a"}, t0, t0, 0); return err }(),
		"to < from":     func() error { _, err := s.Range(ctx, p, t0, t0.Add(-time.Second), 0); return err }(),
		"negative step": func() error { _, err := s.Range(ctx, p, t0, t0, -time.Second); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: Range gave no error", name)
		}
	}
}

func testInvalidSamplesRejectedOthersStored(t *testing.T, d *testenv.Influxd) {
	s := openT(t, fastOptions(d.URL(), d.Bucket(), t.TempDir()))
	err := s.Append(context.Background(), []storage.Sample{
		good("inv", "p", t0, 1),
		good("inv", "p", t0.Add(time.Second), math.NaN()),
		{Site: "inv", Point: "p", Time: t0.Add(2 * time.Second), Quality: "weird"},
		good("inv", "", t0, 1),
		good("inv", "p", t0.Add(3*time.Second), 4),
		// The contract pairs quality and value; the schema counts on it.
		{Site: "inv", Point: "p", Time: t0.Add(4 * time.Second), Quality: protocol.Good},
		{Site: "inv", Point: "p", Time: t0.Add(5 * time.Second), Quality: protocol.Bad, Value: 3, HasValue: true},
	})
	var rej *storage.RejectedError
	if !errors.As(err, &rej) || len(rej.Rejected) != 5 {
		t.Fatalf("Append = %v, want RejectedError for 5 samples", err)
	}
	for i, want := range []int{1, 2, 3, 5, 6} {
		if got := rej.Rejected[i].Index; got != want {
			t.Errorf("rejection %d is of sample %d, want %d", i, got, want)
		}
	}
	if rej.Rejected[0].Index != 1 || rej.Rejected[0].Reason != storage.RejectNotNumber {
		t.Errorf("first rejection = %+v, want index 1 not_a_number", rej.Rejected[0])
	}
	if n := count(t, d, "inv"); n != 2 {
		t.Errorf("stored %d readings, want 2", n)
	}
}

func testQuotingKeepsIdsLiteral(t *testing.T, d *testenv.Influxd) {
	s := openT(t, fastOptions(d.URL(), d.Bucket(), t.TempDir()))
	odd := `si"te ${x} \ ,=`
	mustAppend(t, s, good(odd, "p 1", t0, 3), good("other", "p 1", t0, 4))
	latest, err := s.Latest(context.Background(), odd)
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 1 || latest[0].Site != odd || latest[0].Point != "p 1" || latest[0].Value != 3 {
		t.Fatalf("Latest(%q) = %+v", odd, latest)
	}
}

// TestOutageSpillsThenReplaysOnce stops InfluxDB while appends continue:
// they all succeed (spilled), and after the restart every sample is in
// InfluxDB exactly once.
func TestOutageSpillsThenReplaysOnce(t *testing.T) {
	d := testenv.NewInfluxd(t, "hw")
	reg := prometheus.NewRegistry()
	opts := fastOptions(d.URL(), d.Bucket(), t.TempDir())
	opts.RequestTimeout = 500 * time.Millisecond
	opts.BatchSize = 7 // several replay batches
	opts.Registerer = reg
	s := openT(t, opts)

	const perPhase = 40
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	appendRange := func(from, to int) {
		for i := from; i < to; i += 4 {
			var batch []storage.Sample
			for j := i; j < min(i+4, to); j++ {
				batch = append(batch, good("out", "p", at(j), float64(j)))
			}
			mustAppend(t, s, batch...)
		}
	}
	appendRange(0, perPhase)
	d.Stop()
	appendRange(perPhase, 2*perPhase)
	// Every point appended while InfluxDB is down is spilled; on a busy
	// machine a first-phase write slower than RequestTimeout is too.
	if records, points := s.SpillDepth(); points < perPhase || points > 2*perPhase || records == 0 {
		t.Fatalf("spill holds %d records, %d points while InfluxDB is down, want the %d appended meanwhile (and at most the %d before)", records, points, perPhase, perPhase)
	}
	if v := testutil.ToFloat64(s.m.writeErrors.WithLabelValues(ErrKindUnreachable)); v == 0 {
		t.Errorf("write errors {kind=unreachable} = 0 after writing to a stopped InfluxDB")
	}
	d.Start()
	// Appends after the restart go behind the spilled ones.
	appendRange(2*perPhase, 3*perPhase)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, d, "out"); n != 3*perPhase {
		t.Fatalf("InfluxDB holds %d readings, want %d", n, 3*perPhase)
	}
	vals := values(t, d, "out", "p")
	for i := range 3 * perPhase {
		if v, ok := vals[at(i).UnixMilli()]; !ok || v != float64(i) {
			t.Errorf("reading %d: stored %v (present %v), want %d", i, v, ok, i)
		}
	}
	if v := testutil.ToFloat64(s.m.replayed); v < perPhase {
		t.Errorf("replayed points = %v, want at least %d", v, perPhase)
	}
	if v := testutil.ToFloat64(s.m.pointsWritten) + testutil.ToFloat64(s.m.replayed); v != 3*perPhase {
		t.Errorf("written %v + replayed %v = %v, want %d", testutil.ToFloat64(s.m.pointsWritten), testutil.ToFloat64(s.m.replayed), v, 3*perPhase)
	}
	if b, r, _, oldest := s.spill.depth(); b != 0 || r != 0 || !oldest.IsZero() {
		t.Errorf("spill after replay: %d bytes, %d records, oldest %v; want empty", b, r, oldest)
	}
	if _, records, lines, _ := s.spill.depth(); records != 0 || lines != 0 {
		t.Errorf("spill keeps %d records (%d points) after everything was acknowledged", records, lines)
	}
}

// TestBadDataDoesNotBlockSpill spills a reading InfluxDB refuses with 400
// (field type conflict) between good ones: the replay counts it as
// rejected and delivers the rest.
func testBadDataDoesNotBlockSpill(t *testing.T, d *testenv.Influxd) {
	// In the shard of year 2000, "value" is a string: float values there conflict.
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	d.WriteLines(fmt.Sprintf("reading,site=x,point=poison value=\"text\",quality=\"good\" %d\n", old.UnixMilli()))

	// Spill through a store whose InfluxDB is unreachable, then replay
	// the spill with a store on the real one.
	spillDir := t.TempDir()
	down := openT(t, fastOptions(deadURL(t), d.Bucket(), spillDir))
	mustAppend(t, down, good("bad", "p", t0, 1), good("bad", "p", old.Add(time.Second), 2), good("bad", "p", t0.Add(time.Second), 3))
	mustAppend(t, down, good("bad", "p", t0.Add(2*time.Second), 4))
	if err := down.Close(); err != nil {
		t.Fatal(err)
	}
	opts := fastOptions(d.URL(), d.Bucket(), spillDir)
	opts.Registerer = prometheus.NewRegistry()
	s := openT(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, d, "bad"); n != 3 {
		t.Errorf("InfluxDB holds %d readings of site bad, want the 3 good ones", n)
	}
	if v := testutil.ToFloat64(s.m.rejected.WithLabelValues(RejectInflux)); v != 1 {
		t.Errorf("rejected points {reason=%s} = %v, want 1", RejectInflux, v)
	}
	if v := testutil.ToFloat64(s.m.writeErrors.WithLabelValues(ErrKindBadData)); v == 0 {
		t.Errorf("write errors {kind=bad_data} = 0")
	}

	// A direct Append reports the refused sample and stores the others.
	err := s.Append(ctx, []storage.Sample{good("bad", "q", t0, 5), good("bad", "q", old.Add(2*time.Second), 6)})
	var rej *storage.RejectedError
	if !errors.As(err, &rej) || len(rej.Rejected) != 1 || rej.Rejected[0].Index != 1 || rej.Rejected[0].Reason != RejectInflux {
		t.Fatalf("direct Append with a conflicting sample = %v, want RejectedError for sample 1", err)
	}
	if n := count(t, d, "bad"); n != 4 {
		t.Errorf("InfluxDB holds %d readings of site bad, want 4", n)
	}
}

func TestSpillFullRefusesAppend(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := fastOptions(deadURL(t), "db/rp", t.TempDir())
	opts.SpillMaxBytes = 600
	opts.Registerer = reg
	s := openT(t, opts)
	var err error
	n := 0
	for ; n < 100 && err == nil; n++ {
		err = s.Append(context.Background(), []storage.Sample{good("full", "p", t0.Add(time.Duration(n)*time.Second), 1)})
	}
	if !errors.Is(err, ErrSpillFull) {
		t.Fatalf("Append after %d spilled samples = %v, want ErrSpillFull", n, err)
	}
	if n < 2 {
		t.Errorf("spill refused already the first sample")
	}
	if v := testutil.ToFloat64(s.m.writeErrors.WithLabelValues(ErrKindSpillFull)); v != 1 {
		t.Errorf("write errors {kind=spill_full} = %v, want 1", v)
	}
	if b, _, _, _ := s.spill.depth(); b > opts.SpillMaxBytes {
		t.Errorf("spill holds %d bytes, over its %d limit", b, opts.SpillMaxBytes)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, name := range []string{"hazardwatch_influx_spill_bytes", "hazardwatch_influx_spill_records", "hazardwatch_influx_spill_oldest_age_seconds"} {
		if !seen[name] {
			t.Errorf("metric %s not registered", name)
		}
	}
}

const crashEnv = "HAZARDWATCH_INFLUX_CRASH_SPILL"

// TestCrashHelper is the subprocess of TestSpillSurvivesKill: it appends to
// a store whose InfluxDB is down, printing each acknowledged index, until
// it is killed.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		return // only meaningful as the subprocess
	}
	s, err := Open(fastOptions(os.Getenv(crashEnv+"_URL"), "hw/autogen", dir))
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		if err := s.Append(context.Background(), []storage.Sample{good("crash", "p", t0.Add(time.Duration(i)*time.Millisecond), float64(i))}); err != nil {
			fmt.Println("append:", err)
			os.Exit(1)
		}
		fmt.Println(i)
	}
}

// TestSpillSurvivesKill kills a process appending to the spill with
// SIGKILL, tears the tail of its last segment, and checks that a new Store
// on the same spill delivers every acknowledged sample to InfluxDB once.
func testSpillSurvivesKill(t *testing.T, d *testenv.Influxd) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir, crashEnv+"_URL="+deadURL(t))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		i, err := strconv.Atoi(sc.Text())
		if err != nil {
			t.Fatalf("crash helper said %q", sc.Text())
		}
		acked = i
		if acked >= 200 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if acked < 200 {
		t.Fatalf("crash helper acknowledged only up to %d before ending", acked)
	}

	// A torn record, as a crash mid-write leaves it.
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no spill segment after the crash")
	}
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 'r', 'e', 'a'}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s := openT(t, fastOptions(d.URL(), d.Bucket(), dir))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n := count(t, d, "crash")
	// The killed process may have spilled one more record than it printed.
	if n != acked+1 && n != acked+2 {
		t.Fatalf("InfluxDB holds %d readings after replay, want %d acknowledged (or one more in flight)", n, acked+1)
	}
	vals := values(t, d, "crash", "p")
	for i := 0; i <= acked; i++ {
		if v, ok := vals[t0.Add(time.Duration(i)*time.Millisecond).UnixMilli()]; !ok || v != float64(i) {
			t.Fatalf("acknowledged reading %d: stored %v (present %v)", i, v, ok)
		}
	}
}

// TestReopenResumesFromCursor acknowledges part of a segment, reopens, and
// checks that only the rest is left to replay.
func TestReopenResumesFromCursor(t *testing.T) {
	dir := t.TempDir()
	sp, _, err := openSpill(dir, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := sp.append([]string{fmt.Sprintf("reading,site=a,point=p quality=\"good\" %d", i)}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	b, ok, err := sp.next(2)
	if err != nil || !ok || len(b.lines) != 2 {
		t.Fatalf("next(2) = %+v, %v, %v", b, ok, err)
	}
	if err := sp.ack(b); err != nil {
		t.Fatal(err)
	}
	if err := sp.close(); err != nil {
		t.Fatal(err)
	}
	sp2, warnings, err := openSpill(dir, 1<<20, nil)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("reopen: %v %v", err, warnings)
	}
	_, records, lines, _ := sp2.depth()
	if records != 3 || lines != 3 {
		t.Fatalf("after reopen: %d records %d lines, want 3", records, lines)
	}
	b, ok, err = sp2.next(100)
	if err != nil || !ok || len(b.lines) != 3 || !strings.HasSuffix(b.lines[0], " 2") {
		t.Fatalf("next after reopen = %+v, %v, %v; want lines 2..4", b.lines, ok, err)
	}
}

// TestCorruptRecordTruncated flips a byte inside the last record: Open
// keeps the records before it.
func TestCorruptRecordTruncated(t *testing.T) {
	dir := t.TempDir()
	sp, _, err := openSpill(dir, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := sp.append([]string{fmt.Sprintf("reading,site=a,point=p quality=\"good\" %d", i)}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	_ = sp.close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments %v, want one", segs)
	}
	raw, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-3] ^= 0xff // inside the third record's payload
	if err := os.WriteFile(segs[0], raw, 0o640); err != nil {
		t.Fatal(err)
	}
	sp2, _, err := openSpill(dir, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp2.close()
	if _, records, lines, _ := sp2.depth(); records != 2 || lines != 2 {
		t.Errorf("after reopening: %d records, %d lines; want the 2 intact ones", records, lines)
	}
}

// TestLegacySpillMigrated opens a spill directory an earlier version left
// (NNNN.spill segments): its records are replayed from the queue.
func TestLegacySpillMigrated(t *testing.T) {
	dir := t.TempDir()
	var seg []byte
	for i := range 3 {
		payload := binary.LittleEndian.AppendUint64(nil, uint64(time.Now().UnixMilli()))
		payload = append(payload, fmt.Sprintf("reading,site=a,point=p quality=\"good\" %d\nreading,site=a,point=q quality=\"good\" %d", i, i)...)
		seg = binary.LittleEndian.AppendUint32(seg, uint32(len(payload)))
		seg = binary.LittleEndian.AppendUint32(seg, crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
		seg = append(seg, payload...)
	}
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.spill"), seg, 0o640); err != nil {
		t.Fatal(err)
	}
	sp, warnings, err := openSpill(dir, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	if len(warnings) != 1 || !strings.Contains(warnings[0], "migrated 3 records (6 points)") {
		t.Errorf("warnings = %q, want one saying 3 records were migrated", warnings)
	}
	b, ok, err := sp.next(100)
	if err != nil || !ok || len(b.lines) != 6 || b.lines[5] != `reading,site=a,point=q quality="good" 2` {
		t.Fatalf("next = %q, %v, %v; want the 6 lines in order", b.lines, ok, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.spill")); len(left) != 0 {
		t.Errorf("legacy segments left after migration: %v", left)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"no url":         {Bucket: "b", SpillDir: t.TempDir()},
		"no bucket":      {URL: "http://127.0.0.1:1", SpillDir: t.TempDir()},
		"no spill dir":   {URL: "http://127.0.0.1:1", Bucket: "b"},
		"negative batch": {URL: "http://127.0.0.1:1", Bucket: "b", SpillDir: t.TempDir(), BatchSize: -1},
	} {
		if s, err := Open(o); err == nil {
			s.Close()
			t.Errorf("%s: Open accepted %+v", name, o)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	d := testenv.NewInfluxd(b, "hw")
	s := openT(b, fastOptions(d.URL(), d.Bucket(), b.TempDir()))
	const perAppend = 100
	batch := make([]storage.Sample, perAppend)
	for i := 0; b.Loop(); i++ {
		for j := range batch {
			batch[j] = good("bench", "p"+strconv.Itoa(j), t0.Add(time.Duration(i)*time.Second), float64(i))
		}
		if err := s.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perAppend)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkAppendSpilled measures Append while InfluxDB is unreachable:
// every call is one fsynced spill record.
func BenchmarkAppendSpilled(b *testing.B) {
	opts := fastOptions(deadURL(b), "db/rp", b.TempDir())
	opts.RetryInitial, opts.RetryMax = time.Hour, time.Hour // keep the replay out of the way
	s := openT(b, opts)
	const perAppend = 100
	batch := make([]storage.Sample, perAppend)
	for i := 0; b.Loop(); i++ {
		for j := range batch {
			batch[j] = good("bench", "p"+strconv.Itoa(j), t0.Add(time.Duration(i)*time.Second), float64(i))
		}
		if err := s.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perAppend)/b.Elapsed().Seconds(), "samples/s")
}

// TestConcurrentAppendsShareBatches appends from many goroutines at once
// and checks they went out in fewer requests than calls, and all landed.
func TestConcurrentAppendsShareBatches(t *testing.T) {
	d := testenv.NewInfluxd(t, "hw")
	reg := prometheus.NewRegistry()
	opts := fastOptions(d.URL(), d.Bucket(), t.TempDir())
	opts.BatchWait = 50 * time.Millisecond
	opts.Registerer = reg
	s := openT(t, opts)
	const calls, per = 40, 25
	errs := make(chan error, calls)
	for c := range calls {
		go func() {
			batch := make([]storage.Sample, per)
			for i := range batch {
				batch[i] = good("conc", fmt.Sprintf("p%d", i), t0.Add(time.Duration(c)*time.Second), float64(c))
			}
			errs <- s.Append(context.Background(), batch)
		}()
	}
	for range calls {
		if err := <-errs; err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if n := count(t, d, "conc"); n != calls*per {
		t.Fatalf("InfluxDB holds %d readings of site conc, want %d", n, calls*per)
	}
	batches := testutil.CollectAndCount(reg, "hazardwatch_influx_batch_points")
	var sent uint64
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "hazardwatch_influx_batch_points" {
			sent = mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if batches != 1 || sent == 0 || sent >= calls {
		t.Fatalf("%d batches for %d concurrent Append calls, want fewer batches than calls", sent, calls)
	}
}
