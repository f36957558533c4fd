package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hazardwatch/hazardwatch/ingest"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// TokenEnv names the environment variable holding the bearer token the
// load tool sends to the centre (never a flag: it would show in ps).
const TokenEnv = "HAZARDWATCH_TOKEN"

// centre is a running hazardwatch-ingest reached over HTTP.
type centre struct {
	base  string
	token string
	http  *http.Client
}

func newCentre(base string) *centre {
	return &centre{base: strings.TrimSuffix(base, "/"), token: os.Getenv(TokenEnv), http: &http.Client{Timeout: 60 * time.Second}}
}

func (c *centre) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("centre at %s: %w", c.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = " (set " + TokenEnv + " to an API token of the centre)"
		}
		return nil, &statusError{code: resp.StatusCode, msg: fmt.Sprintf("centre GET %s: %s: %s%s", path, resp.Status, strings.TrimSpace(string(b)), hint)}
	}
	return resp, nil
}

// statusError is an answer of the centre other than 200.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func (c *centre) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.get(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("centre GET %s: %w", path, err)
	}
	return nil
}

// metrics reads the sum of each named metric's series from /metrics
// (counters, gauges), selecting series whose labels contain match.
func (c *centre) metrics(ctx context.Context, match string, names ...string) (map[string]float64, error) {
	resp, err := c.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		labels := ""
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name, labels = name[:i], name[i:]
			if j := strings.LastIndexByte(line, '}'); j >= 0 {
				rest = strings.TrimSpace(line[j+1:])
			}
		}
		if !want[name] || (match != "" && labels != "" && !strings.Contains(labels, match)) {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			out[name] += v
		}
	}
	return out, sc.Err()
}

// Metric names the load tool reads from the centre.
const (
	mReadings = "hazardwatch_ingest_readings_total"
	mRejected = "hazardwatch_ingest_rejected_total"
	mGaps     = "hazardwatch_ingest_gap_messages_total"
	mCPU      = "process_cpu_seconds_total"
	mRSS      = "process_resident_memory_bytes"
)

// brokerLimits is what the load tool knows of the broker's queue limits.
type brokerLimits struct {
	known                    bool
	maxQueued, maxInflight   int64
	maxQueuedBytes           int64
	source                   string
	defaultsAssumedForAbsent bool
}

// readMosquittoConf reads the queue limits from a Mosquitto configuration
// file; absent settings are Mosquitto's defaults.
func readMosquittoConf(path string) (brokerLimits, error) {
	l := brokerLimits{known: true, maxQueued: 1000, maxInflight: 20, source: path, defaultsAssumedForAbsent: true}
	f, err := os.Open(path)
	if err != nil {
		return l, fmt.Errorf("broker configuration: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		v, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "max_queued_messages":
			l.maxQueued = v
		case "max_inflight_messages":
			l.maxInflight = v
		case "max_queued_bytes":
			l.maxQueuedBytes = v
		}
	}
	return l, sc.Err()
}

// stateLimits prints what the broker's queue limits mean for this run.
func stateLimits(w io.Writer, o options, l brokerLimits) {
	msgs := int64(float64(o.gateways) * o.rate * o.duration.Seconds())
	if !l.known {
		fmt.Fprintf(w, "broker      queue limits not given (-mosquitto-conf): Mosquitto's defaults are max_queued_messages 1000 and max_inflight_messages 20 per client;\n"+
			"            if the centre falls more than the queue limit behind, the broker drops readings (reported below as dropped by the broker)\n")
		return
	}
	unlimited := func(n int64) string {
		if n <= 0 {
			return "unlimited"
		}
		return strconv.FormatInt(n, 10)
	}
	fmt.Fprintf(w, "broker      %s: max_queued_messages %s, max_inflight_messages %s, max_queued_bytes %s per client\n",
		l.source, unlimited(l.maxQueued), unlimited(l.maxInflight), unlimited(l.maxQueuedBytes))
	if l.maxInflight > 0 && l.maxInflight < ingest.DefaultMaxInFlight {
		fmt.Fprintf(w, "            max_inflight_messages %d is below the centre's default -max-in-flight %d: the broker, not the centre, limits how fast a backlog drains\n", l.maxInflight, ingest.DefaultMaxInFlight)
	}
	if l.maxQueued > 0 && l.maxQueued < msgs {
		fmt.Fprintf(w, "            this run publishes %d messages: a backlog of more than %d of them at the centre makes the broker drop readings\n", msgs, l.maxQueued)
	}
}

// gatewayStatus is what GET /api/gateways lists.
type gatewayStatus struct {
	Site, Gateway, State string
}

// runRemote publishes to a running centre and verifies, through its query
// API, that every reading was stored once.
func runRemote(ctx context.Context, o options, stdout io.Writer) (*report, error) {
	c := newCentre(o.target)
	var latest struct {
		Points []struct{ Point string } `json:"points"`
	}
	if err := c.getJSON(ctx, "/api/points/latest?site="+url.QueryEscape(o.siteID), &latest); err != nil {
		var se *statusError
		if !errors.As(err, &se) || se.code != http.StatusNotFound {
			return nil, err
		}
		return nil, fmt.Errorf("%w\n  the centre must load the generated site: hazardwatch-load -write-site DIR -site-id %s -gateways %d -points %d, then hazardwatch-ingest -sites DIR",
			err, o.siteID, o.gateways, o.points)
	}
	probePoints := 0
	for _, p := range latest.Points {
		if strings.HasPrefix(p.Point, "probe-") {
			probePoints++
		}
	}
	if n := len(latest.Points) - probePoints; n != o.gateways*o.points {
		return nil, fmt.Errorf("the centre's site %s has %d points, this run %d × %d: write the site with the same -gateways and -points and reload the centre",
			o.siteID, n, o.gateways, o.points)
	}
	if probePoints < o.alarmProbes {
		return nil, fmt.Errorf("the centre's site %s has %d alarm probe points, this run -alarm-probes %d: write the site with the same -alarm-probes and reload the centre",
			o.siteID, probePoints, o.alarmProbes)
	}
	id := runID()
	var pr *prober
	var closeAfter time.Duration
	if o.alarmProbes > 0 {
		var err error
		if pr, closeAfter, err = remoteProber(ctx, c, o, id); err != nil {
			return nil, err
		}
		defer pr.close()
	}
	limits := brokerLimits{}
	if o.mosquittoConf != "" {
		var err error
		if limits, err = readMosquittoConf(o.mosquittoConf); err != nil {
			return nil, err
		}
	}
	stateLimits(stdout, o, limits)

	l := newLedger(o.gateways, o.points)
	f, err := connectFleet(ctx, o, l, id)
	if err != nil {
		return nil, err
	}
	defer f.close()
	if err := waitOnline(ctx, c, o, f); err != nil {
		return nil, err
	}
	if pr != nil {
		if err := pr.connect(ctx); err != nil {
			return nil, err
		}
	}
	match := `site="` + o.siteID + `"`
	before, err := c.metrics(ctx, "", mReadings, mRejected, mCPU)
	if err != nil {
		return nil, err
	}
	gaps0, err := c.metrics(ctx, match, mGaps)
	if err != nil {
		return nil, err
	}
	from := time.Now().Add(-time.Second)
	start := time.Now()

	var peakRSS float64
	var lastStored float64
	lastChange := start
	poll := func() (int64, time.Duration) {
		m, err := c.metrics(ctx, "", mReadings, mRSS)
		if err != nil {
			return int64(lastStored), 0
		}
		peakRSS = max(peakRSS, m[mRSS])
		// The centre counts the probes' readings too; they are not the
		// background's.
		n := m[mReadings] - before[mReadings]
		if pr != nil {
			n -= float64(pr.sentReadings.Load())
		}
		if n != lastStored {
			lastStored, lastChange = n, time.Now()
		}
		return int64(lastStored), 0
	}
	stopPoll := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stopPoll:
				return
			case <-time.After(250 * time.Millisecond):
				poll()
			}
		}
	}()
	probed := pr.start(ctx, start, o.duration)
	f.publish(ctx, o.duration, stdout, poll)
	published := time.Since(start)
	probeErr := <-probed
	sent := f.sent()
	drain(ctx, o.drain, sent, func() int64 { n, _ := poll(); return n })
	if pr != nil {
		probeErr = errors.Join(probeErr, pr.waitAcks())
		pr.waitOpened(ctx)
	}
	close(stopPoll)
	<-polled
	poll()
	to := time.Now().Add(time.Second)
	after, err := c.metrics(ctx, "", mReadings, mRejected, mCPU)
	if err != nil {
		return nil, err
	}
	gaps1, err := c.metrics(ctx, match, mGaps)
	if err != nil {
		return nil, err
	}

	var counts struct {
		Total  int64            `json:"total"`
		Points map[string]int64 `json:"points"`
	}
	q := url.Values{"site": {o.siteID}, "from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}
	if err := c.getJSON(ctx, "/api/points/counts?"+q.Encode(), &counts); err != nil {
		return nil, fmt.Errorf("verify through the query API: %w", err)
	}
	t := l.tally()
	rep := &report{Sent: t.sent, Publishing: published, Procs: 0,
		Rejected:  int64(after[mRejected] - before[mRejected]),
		Remote:    o.target,
		CentreCPU: time.Duration((after[mCPU] - before[mCPU]) * float64(time.Second)), CentrePeakRSS: int64(peakRSS),
		GapMessages: int64(gaps1[mGaps] - gaps0[mGaps]),
	}
	rep.PublishErrors, _ = publishErrors(f.pubs)
	// Every message carries every point of its gateway, once.
	for g, p := range f.pubs {
		msgs := p.sentReadings.Load() / int64(o.points)
		for i := range o.points {
			n := counts.Points[pointID(g, i)]
			rep.Stored += min(n, msgs)
			if n > msgs {
				rep.Duplicated += n - msgs
			}
		}
	}
	rep.Lost = rep.Sent - rep.Stored
	rep.Elapsed = lastChange.Sub(start)
	if rep.Elapsed > 0 {
		rep.StoreRate = lastStored / rep.Elapsed.Seconds()
	}
	rep.SendRate = float64(sent) / published.Seconds()
	if t.sent != sent {
		return rep, fmt.Errorf("ledger holds %d readings but the publishers sent %d", t.sent, sent)
	}
	if pr != nil {
		rep.Alarms = pr.result()
		if probeErr != nil {
			return rep, probeErr
		}
		if err := finishProbes(ctx, pr, rep.Alarms, closeAfter); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// remoteProber readies the alarm probes of a -target run: the receiver of
// the centre's alerting file, listening where it says (or at
// -webhook-listen), and no incident open on a probe source, which would
// swallow the probe's notification (incidents are one per source). It
// returns the centre's auto-close time too.
func remoteProber(ctx context.Context, c *centre, o options, id string) (*prober, time.Duration, error) {
	rc, closeAfter, err := readProbeReceiver(o.alertingFile)
	if err != nil {
		return nil, 0, err
	}
	var open []struct{ Source, State string }
	if err := c.getJSON(ctx, "/api/incidents?site="+url.QueryEscape(o.siteID), &open); err != nil {
		return nil, 0, fmt.Errorf("open incidents of the probes' sources: %w", err)
	}
	for _, inc := range open {
		if i, ok := probeIndex(inc.Source); ok && i < o.alarmProbes {
			return nil, 0, fmt.Errorf("the centre has an incident open on probe source %s (from an earlier run?): it would not notify this run's probe; "+
				"wait for it to close (incidents.auto_close_after of the alerting file) or start the centre with a fresh -data", inc.Source)
		}
	}
	pr, err := newProber(o.mqtt, o.siteID, o.alarmProbes, rc.Secret, o.alarmTimeout, id)
	if err != nil {
		return nil, 0, err
	}
	u, _ := url.Parse(rc.URL) // checked by readProbeReceiver
	if err := pr.listen(cmp.Or(o.webhookListen, u.Host), u.Path); err != nil {
		pr.close()
		return nil, 0, err
	}
	pr.url = rc.URL // as the centre POSTs
	return pr, closeAfter, nil
}

// finishProbes brings the probes back inside their limits so the next run
// finds their sources free, and waits for their incidents to close when
// the centre closes them soon (the written alerting file: 1 s).
func finishProbes(ctx context.Context, pr *prober, r *alarmReport, closeAfter time.Duration) error {
	const longest = 10 * time.Second
	wait := time.Duration(0)
	if closeAfter >= 0 && closeAfter <= longest {
		// The centre's alerting tick (1 s) closes them, then the POST.
		wait = closeAfter + 5*time.Second
	}
	closed, cleared, last, err := pr.clearProbes(ctx, wait)
	if err != nil {
		return fmt.Errorf("clear the alarm probes: %w", err)
	}
	r.Cleared, r.Closed, r.LastClosed, r.CloseAfter = cleared, closed, last, closeAfter
	return nil
}

// probeIndex is the probe of a probe source id.
func probeIndex(source string) (int, bool) {
	var i int
	if _, err := fmt.Sscanf(source, "probe-%04d", &i); err != nil || i < 1 || source != probeSourceID(i-1) {
		return 0, false
	}
	return i - 1, true
}

// waitOnline announces the gateways until the centre lists them online,
// so no telemetry is published before its subscription is in place.
func waitOnline(ctx context.Context, c *centre, o options, f *fleet) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, p := range f.pubs {
			if err := p.announce(); err != nil {
				return err
			}
		}
		var st []gatewayStatus
		if err := c.getJSON(ctx, "/api/gateways", &st); err != nil {
			return err
		}
		online := 0
		for _, g := range st {
			if g.Site == o.siteID && g.State == protocol.Online {
				online++
			}
		}
		if online >= len(f.pubs) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the centre did not see the gateways online within 30s: is it subscribed to the same broker?")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// publishOnly publishes the load and waits for the broker's PUBACKs, with
// no centre: the way to queue a backlog for a consumer that connects later
// (scripts/bench-vs-telegraf.sh), the same payloads for every consumer.
func publishOnly(ctx context.Context, o options, stdout io.Writer) error {
	l := newLedger(o.gateways, o.points)
	f, err := connectFleet(ctx, o, l, runID())
	if err != nil {
		return err
	}
	defer f.close()
	start := time.Now()
	f.publish(ctx, o.duration, io.Discard, func() (int64, time.Duration) { return 0, 0 })
	elapsed := time.Since(start)
	n, err := publishErrors(f.pubs)
	fmt.Fprintf(stdout, "published   %d readings (%d messages of %d) in %v, %.0f readings/s; %d not acknowledged by the broker\n",
		f.sent(), f.sent()/int64(o.points), o.points, elapsed.Round(time.Millisecond), float64(f.sent())/elapsed.Seconds(), n)
	if err != nil {
		return fmt.Errorf("%d messages not acknowledged by the broker: %w", n, err)
	}
	return nil
}
