package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/hazardwatch/hazardwatch/internal/center"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/simulators"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
)

// process is a HazardWatch command running as its own process, so the test
// can kill -9 it as a power cut would.
type process struct {
	cmd  *exec.Cmd
	log  string // its stderr, kept for the failure report
	done chan struct{}
}

// buildCommand builds cmd/name once into a temp dir.
func buildCommand(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	build := exec.Command("go", "build", "-o", bin, "github.com/hazardwatch/hazardwatch/cmd/"+name)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}

// startProcess runs bin with args, its output appended to logFile.
func startProcess(t *testing.T, bin, logFile string, args ...string) *process {
	t.Helper()
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", filepath.Base(bin), err)
	}
	p := &process{cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill(t) })
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s (pid %d) did not die within 30s of SIGKILL", filepath.Base(p.cmd.Path), p.cmd.Process.Pid)
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// seqWatcher is a QoS 1 persistent-session subscriber on the gateway's
// telemetry topic: what the broker delivered, by seq.
type seqWatcher struct {
	mu       sync.Mutex
	bySeq    map[uint64]protocol.Telemetry
	payloads map[uint64][]byte
	dups     int
	bad      []string
}

func (w *seqWatcher) handle(_ mqtt.Client, m mqtt.Message) {
	msg, err := protocol.DecodeTelemetry(m.Payload())
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.bad = append(w.bad, fmt.Sprintf("telemetry on %s does not decode: %v", m.Topic(), err))
		return
	}
	if prev, seen := w.payloads[msg.Seq]; seen {
		w.dups++
		if !bytes.Equal(prev, m.Payload()) {
			w.bad = append(w.bad, fmt.Sprintf("seq %d delivered twice with different contents", msg.Seq))
		}
		return
	}
	w.bySeq[msg.Seq] = msg
	w.payloads[msg.Seq] = append([]byte(nil), m.Payload()...)
}

// highest returns the highest seq received and whether every seq from 1
// to it was received.
func (w *seqWatcher) highest() (top uint64, complete bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for s := range w.bySeq {
		top = max(top, s)
	}
	return top, top > 0 && uint64(len(w.bySeq)) == top
}

// newestReading is the time of the newest reading received.
func (w *seqWatcher) newestReading() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var newest time.Time
	for _, m := range w.bySeq {
		for _, r := range m.Readings {
			if at := r.At(m.TS); at.After(newest) {
				newest = at
			}
		}
	}
	return newest
}

// readingTimes lists, in order, the distinct times (in milliseconds, as
// stored) point was read at in the messages with seqs up to upTo.
func (w *seqWatcher) readingTimes(point string, upTo uint64) []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[int64]bool{}
	var out []int64
	for seq, m := range w.bySeq {
		if seq > upTo {
			continue
		}
		for _, r := range m.Readings {
			if ms := r.At(m.TS).UnixMilli(); r.Point == point && !seen[ms] {
				seen[ms] = true
				out = append(out, ms)
			}
		}
	}
	slices.Sort(out)
	return out
}

// metricValue reads one sample of a Prometheus text exposition: the line
// of name whose labels contain every one of labels.
func metricValue(t *testing.T, exposition, name string, labels ...string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		matches := true
		for _, l := range labels {
			matches = matches && strings.Contains(line, l)
		}
		if !matches {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v
	}
	t.Fatalf("the centre's /metrics has no %s%v", name, labels)
	return 0
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := getAuthorised(url + "/metrics")
	if err != nil {
		t.Fatalf("scrape the centre: %v", err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatalf("read the centre's metrics: %v", err)
	}
	return b.String()
}

// TestNoReadingLostAcrossBrokerOutageAndGatewayKill runs the gateway as its
// own process against a private Mosquitto, stops the broker for a few
// seconds while the gateway keeps polling into its spool, kills the
// gateway with SIGKILL in the middle of the outage, then brings both back.
// Every message the gateway built must reach the centre (seqs 1..N with
// no gap) and every reading in them must be stored exactly once —
// including those taken while the broker was down.
func TestNoReadingLostAcrossBrokerOutageAndGatewayKill(t *testing.T) {
	const (
		siteID, gwID, point = "jh-chem", "gw-tank", "nh3-gas-1"
		within              = 60 * time.Second
	)
	broker := testenv.Mosquitto(t)
	bin := buildCommand(t, "hazardwatch-gateway")

	// The example tank farm on free ports, polled every 200ms for more
	// messages in the few seconds the test runs.
	dir := tankFarmOnFreePorts(t)
	siteFile := filepath.Join(dir, "tank-farm.yaml")
	text, err := os.ReadFile(siteFile)
	if err != nil {
		t.Fatal(err)
	}
	fast := strings.NewReplacer("poll_interval: 1s", "poll_interval: 200ms", "poll_interval: 2s", "poll_interval: 200ms",
		"timeout: 500ms", "timeout: 200ms", "timeout: 800ms", "timeout: 200ms").Replace(string(text)) // a timeout fits in its poll interval
	if fast == string(text) {
		t.Fatal("example site's poll intervals changed; update the test")
	}
	if err := os.WriteFile(siteFile, []byte(fast), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := site.Load(siteFile)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulators.New(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	// The centre, in this process, with a persistent MQTT session.
	ctx, cancel := context.WithCancel(context.Background())
	c, err := center.Open(ctx, center.Config{Sites: []*site.Site{s}, Broker: broker.URL(), ClientID: "e2e-outage-ingest", DataDir: t.TempDir(), Access: e2eAccess()})
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-runDone:
			if err != nil {
				t.Errorf("centre stopped with: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("centre did not stop within 30s of cancel")
		}
		c.Close()
	}()
	api := httptest.NewServer(c.Handler())
	defer api.Close()
	testenv.Eventually(t, "the centre connected to the broker", within, func() bool {
		resp, err := http.Get(api.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// What the broker delivers of the gateway's telemetry, seen from a
	// second persistent QoS 1 subscriber.
	w := &seqWatcher{bySeq: map[uint64]protocol.Telemetry{}, payloads: map[uint64][]byte{}}
	watcher := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("e2e-outage-watcher").
		SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(time.Second).
		SetDefaultPublishHandler(w.handle))
	if tok := watcher.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect watcher: %v", tok.Error())
	}
	defer watcher.Disconnect(100)
	if tok := watcher.Subscribe(protocol.TelemetryTopic(siteID, gwID), 1, w.handle); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe watcher: %v", tok.Error())
	}

	dataDir := t.TempDir()
	logFile := filepath.Join(t.TempDir(), "gateway.log")
	args := []string{"-site", siteFile, "-gateway", gwID, "-broker", broker.URL(), "-data", dataDir, "-metrics", ""}
	defer func() {
		if t.Failed() {
			out, _ := os.ReadFile(logFile)
			t.Logf("gateway log:\n%s", out)
		}
	}()

	// Normal running.
	gw := startProcess(t, bin, logFile, args...)
	testenv.Eventually(t, "telemetry flowing before the outage", within, func() bool {
		top, _ := w.highest()
		return top >= 5
	})
	time.Sleep(3 * time.Second)
	beforeOutage, _ := w.highest()

	// The broker goes down; the gateway keeps polling into its spool and
	// is killed in the middle of the outage.
	broker.Stop()
	outageStart := time.Now()
	time.Sleep(4 * time.Second)
	if gw.exited() {
		t.Fatal("the gateway exited by itself during the broker outage")
	}
	gw.kill(t)
	outageEnd := time.Now()
	broker.Start()

	// The gateway comes back on the same data dir, with its spool.
	restart := time.Now()
	gw = startProcess(t, bin, logFile, args...)
	var last uint64
	testenv.Eventually(t, "every seq from 1 delivered and live data after the backlog", within, func() bool {
		top, complete := w.highest()
		// Live data read after the restart, past every seq built before
		// the kill: the spool drained and the gateway kept going.
		if !complete || top <= beforeOutage || !w.newestReading().After(restart) {
			return false
		}
		last = top
		return true
	})
	// More live data keeps following the highest seq.
	testenv.Eventually(t, "live data after the recovery", within, func() bool {
		top, complete := w.highest()
		return complete && top > last+3
	})
	if gw.exited() {
		t.Fatal("the restarted gateway exited")
	}

	w.mu.Lock()
	for _, b := range w.bad {
		t.Error(b)
	}
	dups := w.dups
	w.mu.Unlock()

	// Every reading of the point in messages 1..last is stored exactly
	// once, in time order, including those taken while the broker was
	// down. One goroutine polls the point, so its readings rise with seq:
	// later messages hold only later readings.
	taken := w.readingTimes(point, last)
	if len(taken) == 0 {
		t.Fatalf("no %s reading in messages 1..%d", point, last)
	}
	var stored []int64
	testenv.Eventually(t, "the centre stored every reading of "+point, within, func() bool {
		pts, err := c.Store().Range(context.Background(), storage.Point{Site: siteID, Point: point},
			time.UnixMilli(taken[0]).Add(-time.Minute), time.UnixMilli(taken[len(taken)-1]), 0)
		if err != nil {
			t.Fatalf("query the stored %s series: %v", point, err)
		}
		stored = stored[:0]
		for _, p := range pts {
			stored = append(stored, p.Time.UnixMilli())
		}
		return slices.Equal(stored, taken) || len(stored) > len(taken)
	})
	if !slices.Equal(stored, taken) {
		t.Errorf("%s: %d readings stored, %d taken; first difference: %s", point, len(stored), len(taken), firstDifference(stored, taken))
	}
	if missing := metricValue(t, scrape(t, api.URL), "hazardwatch_ingest_missing_messages", `site="`+siteID+`"`, `gateway="`+gwID+`"`); missing != 0 {
		t.Errorf("centre reports %v messages of %s missing", missing, gwID)
	}
	// The centre saw no seq given up, and every hole the backlog left
	// behind live data was filled.
	m := scrape(t, api.URL)
	if lost := metricValue(t, m, "hazardwatch_ingest_gap_lost_messages_total"); lost != 0 {
		t.Errorf("centre gave up %v messages as lost", lost)
	}
	opened := metricValue(t, m, "hazardwatch_ingest_gap_messages_total")
	filled := metricValue(t, m, "hazardwatch_ingest_gap_filled_messages_total")
	if opened != filled {
		t.Errorf("centre saw %v messages missing but only %v filled later", opened, filled)
	}

	inOutage := 0
	for _, ms := range taken {
		at := time.UnixMilli(ms)
		if at.After(outageStart) && at.Before(outageEnd) {
			inOutage++
		}
	}
	if inOutage == 0 {
		t.Errorf("no %s reading taken between the broker stopping (%s) and the gateway kill (%s) arrived", point,
			outageStart.Format(protocol.TimeFormat), outageEnd.Format(protocol.TimeFormat))
	}
	t.Logf("seqs 1..%d delivered (%d before the outage, %d duplicate deliveries); %d %s readings stored, %d taken during the outage; gaps opened %v, filled %v",
		last, beforeOutage, dups, len(stored), point, inOutage, opened, filled)
}

// firstDifference describes where two sorted lists of millisecond times
// part.
func firstDifference(stored, taken []int64) string {
	for i := range min(len(stored), len(taken)) {
		if stored[i] != taken[i] {
			return fmt.Sprintf("at #%d stored %s, taken %s", i, time.UnixMilli(stored[i]).UTC().Format(protocol.TimeFormat),
				time.UnixMilli(taken[i]).UTC().Format(protocol.TimeFormat))
		}
	}
	return fmt.Sprintf("one list is a prefix of the other (stored %d, taken %d)", len(stored), len(taken))
}
