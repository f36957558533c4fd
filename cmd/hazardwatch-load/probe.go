package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// Alarm probes measure alarm latency under load: while the background load
// runs, a probe gateway publishes, at known moments, one reading that raises
// an alarm at once on a hazard source of its own (incidents are one per
// source, so each probe opens a new incident and is notified), and the
// tool receives the centre's webhook to the command platform. A probe's
// latency is the webhook's arrival minus the moment just before its
// publish, both read from this process's (monotonic) clock.

// Ids of the probes in the generated site; none can clash with the
// background's gw-NNNN, tanks-NNNN and gNNNN-pMMMM.
const (
	probeGatewayID = "gw-probe"
	probeDeviceID  = "dev-probe"
	maxProbes      = 1000
	// probeValue is above the probe points' h 40 ppm and below their hh
	// 80: H alone raises, blue by the default policy and one step up,
	// yellow, on a GB 18218 grade-2 source; a yellow incident may close by
	// itself once normal, so the probes' sources are free for the next run.
	probeValue      = 50.0
	probeClearValue = 10.0
	// receiverName is this tool's receiver in the centre's alerting file.
	receiverName = "hazardwatch-load"
	webhookPath  = "/hazardwatch/events"
)

func probeSourceID(i int) string { return fmt.Sprintf("probe-%04d", i+1) }
func probePointID(i int) string  { return fmt.Sprintf("probe-%04d-nh3", i+1) }

// writeProbeSources adds the probes' sources to a site's sources: one
// point each, read by the probe gateway's device. on_delay and off_delay
// 0s (a gas point's default is 2 s) make the first reading past the limit
// raise and the first back inside clear, so the measured path has no
// deliberate wait; stale: none keeps a probe point that reports only
// during runs from raising data-loss alarms between them.
func writeProbeSources(b *strings.Builder, probes int) {
	for i := range probes {
		fmt.Fprintf(b, "  - id: %s\n    name: alarm probe %d\n    type: tank_farm\n    grade: 2\n    policy: {stale: none}\n    points:\n", probeSourceID(i), i+1)
		fmt.Fprintf(b, "      - {id: %s, name: probe NH3 detector %d, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], "+
			"modbus: {device: %s, table: input, address: %d, type: uint16, scale: 0.1}, limits: {h: 40, hh: 80}, on_delay: 0s, off_delay: 0s, stale_after: 1h}\n",
			probePointID(i), i+1, probeDeviceID, i)
	}
}

// probeAt is when probe i of n is published, counted from the start of
// publishing: evenly through the middle 60 % of the run, where the
// background load is steady.
func probeAt(i, n int, d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.2 + 0.6*(float64(i)+0.5)/float64(n)))
}

// prober is the probe gateway and the webhook receiver of one run.
type prober struct {
	n       int
	site    string
	secret  string // the receiver's signing secret; empty: unsigned
	timeout time.Duration
	client  mqtt.Client

	seq          uint64
	lastTS       time.Time
	acks         []mqtt.Token
	sentReadings atomic.Int64 // probe and clearing readings handed to the client

	mu        sync.Mutex
	published []time.Time // when each probe was published; zero: not yet
	opened    []time.Time // when its incident's opened event arrived; zero: not yet
	received  []time.Time // the event's ts: when the centre's ingest took the probe's message
	closed    []time.Time // when its incident's closed event arrived
	bySource  map[string]int
	early     int // opened events of a probe source before its probe: an earlier run's
	other     int // webhooks of no probe (background alarms, other sites)
	badSig    int // bodies whose signature did not verify
	badBody   int // bodies that are no CloudEvent
	wake      chan struct{}

	srv *http.Server
	url string // where the receiver listens, as the centre must POST
}

func newProber(conn mqttconn.Config, siteID string, n int, secret string, timeout time.Duration, runID string) (*prober, error) {
	p := &prober{n: n, site: siteID, secret: secret, timeout: timeout,
		published: make([]time.Time, n), opened: make([]time.Time, n), received: make([]time.Time, n), closed: make([]time.Time, n),
		bySource: make(map[string]int, n), wake: make(chan struct{}, 1)}
	for i := range n {
		p.bySource[probeSourceID(i)] = i
	}
	conn.ClientID = fmt.Sprintf("hazardwatch-load-%s-%s-%s", runID, siteID, probeGatewayID)
	client, err := mqttconn.New(conn, nil, func(o *mqtt.ClientOptions) {
		o.SetCleanSession(true).SetOrderMatters(false).SetWriteTimeout(pubTimeout)
	})
	if err != nil {
		return nil, err
	}
	p.client = client
	return p, nil
}

// listen starts the webhook receiver on addr (host:port; port 0 picks a
// free one) at path.
func (p *prober) listen(addr, path string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("webhook receiver: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(cmp.Or(path, "/"), p)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	p.url = "http://" + ln.Addr().String() + path
	go func() { _ = p.srv.Serve(ln) }()
	return nil
}

// connect connects the probe gateway and announces it online.
func (p *prober) connect(ctx context.Context) error {
	tok := p.client.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("probe gateway %s: connect: %w", probeGatewayID, err)
		}
	case <-ctx.Done():
		return fmt.Errorf("probe gateway %s: connect: %w", probeGatewayID, ctx.Err())
	}
	st := p.client.Publish(protocol.StateTopic(p.site, probeGatewayID), 1, false, protocol.EncodeState(protocol.Online, time.Now()))
	if !st.WaitTimeout(pubTimeout) {
		return fmt.Errorf("probe gateway %s: state not acknowledged within %v", probeGatewayID, pubTimeout)
	}
	if err := st.Error(); err != nil {
		return fmt.Errorf("probe gateway %s: publish state: %w", probeGatewayID, err)
	}
	return nil
}

func (p *prober) close() {
	p.client.Disconnect(250)
	if p.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = p.srv.Shutdown(ctx)
	}
}

// start runs the probes' schedule (run) in the background; the channel
// gives its outcome. A nil prober (no probes) is done at once.
func (p *prober) start(ctx context.Context, start time.Time, d time.Duration) <-chan error {
	ch := make(chan error, 1)
	if p == nil {
		ch <- nil
		return ch
	}
	go func() { ch <- p.run(ctx, start, d) }()
	return ch
}

// run publishes the probes on their schedule from start; it returns after
// the last one (or when ctx ends).
func (p *prober) run(ctx context.Context, start time.Time, d time.Duration) error {
	for i := range p.n {
		t := time.NewTimer(time.Until(start.Add(probeAt(i, p.n, d))))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		if err := p.publish([]int{i}, probeValue, true); err != nil {
			return err
		}
	}
	return nil
}

// publish sends one message of the probe gateway with the given probes'
// points at value; mark records the moment as the probes' publish time,
// taken before the client is called so no webhook can come before it.
func (p *prober) publish(probes []int, value float64, mark bool) error {
	p.seq++
	msg := protocol.Telemetry{V: protocol.Version, Site: p.site, Gateway: probeGatewayID, Seq: p.seq,
		TS: protocol.Time{Time: risingTS(&p.lastTS, time.Now())}}
	values := make([]float64, len(probes))
	for k, i := range probes {
		values[k] = value
		msg.Readings = append(msg.Readings, protocol.Reading{Point: probePointID(i), Value: &values[k]})
	}
	payload, err := msg.Encode()
	if err != nil {
		return fmt.Errorf("probe gateway %s: encode seq %d: %w", probeGatewayID, p.seq, err)
	}
	if mark {
		at := time.Now()
		p.mu.Lock()
		for _, i := range probes {
			p.published[i] = at
		}
		p.mu.Unlock()
	}
	p.acks = append(p.acks, p.client.Publish(protocol.TelemetryTopic(p.site, probeGatewayID), 1, false, payload))
	p.sentReadings.Add(int64(len(probes)))
	return nil
}

// waitAcks waits for the broker's PUBACK of every probe message sent.
func (p *prober) waitAcks() error {
	var errs []error
	for _, tok := range p.acks {
		if !tok.WaitTimeout(pubTimeout) {
			errs = append(errs, fmt.Errorf("probe gateway %s: no PUBACK within %v", probeGatewayID, pubTimeout))
		} else if err := tok.Error(); err != nil {
			errs = append(errs, fmt.Errorf("probe gateway %s: publish: %w", probeGatewayID, err))
		}
	}
	p.acks = p.acks[:0]
	return errors.Join(errs...)
}

// ServeHTTP is the webhook receiver: it checks the signature (docs/
// alerting.md, "Webhooks") and notes the incident events of the probes'
// sources.
func (p *prober) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if p.secret != "" && !alerting.VerifySignature(p.secret, body, r.Header.Get(alerting.SignatureHeader)) {
		p.note(func() { p.badSig++ })
		http.Error(w, "signature does not verify with this receiver's secret", http.StatusUnauthorized)
		return
	}
	var ce struct {
		Type string `json:"type"`
		Data struct {
			Site   string    `json:"site"`
			Source string    `json:"source"`
			TS     time.Time `json:"ts"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ce); err != nil {
		p.note(func() { p.badBody++ })
		http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
		return
	}
	p.note(func() {
		i, ok := p.bySource[ce.Data.Source]
		if !ok || ce.Data.Site != p.site {
			p.other++
			return
		}
		switch ce.Type {
		case alerting.IncidentCloudEventType(incident.TypeOpened):
			switch {
			case p.published[i].IsZero():
				p.early++
			case p.opened[i].IsZero():
				p.opened[i], p.received[i] = at, ce.Data.TS
			}
		case alerting.IncidentCloudEventType(incident.TypeClosed):
			if !p.opened[i].IsZero() && p.closed[i].IsZero() {
				p.closed[i] = at
			}
		}
	})
	w.WriteHeader(http.StatusNoContent)
}

// note changes the receiver's state under its lock and wakes a waiter.
func (p *prober) note(f func()) {
	p.mu.Lock()
	f()
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// waitFor waits until done (checked under the lock) or the deadline.
func (p *prober) waitFor(ctx context.Context, deadline time.Time, done func() bool) bool {
	for {
		p.mu.Lock()
		ok := done()
		p.mu.Unlock()
		if ok {
			return true
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return false
		}
		t := time.NewTimer(min(wait, 100*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-p.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// waitOpened waits until every published probe's incident was notified,
// or the timeout has passed since the last probe was published.
func (p *prober) waitOpened(ctx context.Context) {
	p.mu.Lock()
	var last time.Time
	for _, t := range p.published {
		if t.After(last) {
			last = t
		}
	}
	p.mu.Unlock()
	p.waitFor(ctx, last.Add(p.timeout), func() bool {
		for i := range p.n {
			if !p.published[i].IsZero() && p.opened[i].IsZero() {
				return false
			}
		}
		return true
	})
}

// clearProbes brings every published probe back inside its limits, so
// its incident goes normal and, after the centre's auto-close time,
// closes; it waits up to wait for the closed events of those notified, so
// the receiver's outbox at the centre is empty when this tool stops
// listening. It returns how many of them closed of how many were
// notified, and when the last closed, counted from the clearing reading.
func (p *prober) clearProbes(ctx context.Context, wait time.Duration) (closed, notifiedN int, last time.Duration, err error) {
	var published, notified []int
	p.mu.Lock()
	for i := range p.n {
		if !p.published[i].IsZero() {
			published = append(published, i)
		}
		if !p.opened[i].IsZero() {
			notified = append(notified, i)
		}
	}
	p.mu.Unlock()
	if len(published) == 0 {
		return 0, 0, 0, nil
	}
	clearedAt := time.Now()
	if err := p.publish(published, probeClearValue, false); err != nil {
		return 0, 0, 0, err
	}
	if err := p.waitAcks(); err != nil {
		return 0, 0, 0, err
	}
	count := func() int {
		n := 0
		for _, i := range notified {
			if !p.closed[i].IsZero() {
				n++
			}
		}
		return n
	}
	p.waitFor(ctx, clearedAt.Add(wait), func() bool { return count() == len(notified) })
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, i := range notified {
		if !p.closed[i].IsZero() {
			last = max(last, p.closed[i].Sub(clearedAt))
		}
	}
	return count(), len(notified), last, nil
}

// alarmReport is what the probes measured.
type alarmReport struct {
	Probes    int    // probes published
	Arrived   int    // notified within the timeout
	Missing   []int  // probes not notified within the timeout
	Receiver  string // the receiver's URL
	Signed    bool   // signatures were checked
	Timeout   time.Duration
	Latencies []time.Duration // of those arrived, sorted

	P50, P90, P99, Max time.Duration
	// The same split at the incident event's ts, when the centre's
	// ingest took the probe's message (after decoding, before storing):
	// ToCentre is publish → ts (the broker, ingest's MQTT connection and
	// the lanes' queue), InCentre ts → webhook (store, rules, journal,
	// outbox, POST). Wall clocks of one machine; the ts is the centre's.
	ToCentre, InCentre quantiles
	Early, Other       int
	BadSignatures      int
	BadBodies          int

	// Cleared probes were brought back inside their limits after the
	// run (-target); Closed of their incidents closed while the tool
	// waited, the last LastClosed after the clearing reading. CloseAfter
	// is the centre's auto-close time (negative: never).
	Cleared, Closed        int
	LastClosed, CloseAfter time.Duration
}

// quantiles are a few of a latency distribution.
type quantiles struct{ P50, P90, P99, Max time.Duration }

func quantilesOf(v []time.Duration) quantiles {
	if len(v) == 0 {
		return quantiles{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return quantiles{nearestRank(s, 0.50), nearestRank(s, 0.90), nearestRank(s, 0.99), s[len(s)-1]}
}

// result computes the report; a probe whose webhook came later than the
// timeout counts as missing.
func (p *prober) result() *alarmReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &alarmReport{Receiver: p.url, Signed: p.secret != "", Timeout: p.timeout,
		Early: p.early, Other: p.other, BadSignatures: p.badSig, BadBodies: p.badBody}
	var to, in []time.Duration
	for i := range p.n {
		if p.published[i].IsZero() {
			continue
		}
		r.Probes++
		lat := p.opened[i].Sub(p.published[i])
		if p.opened[i].IsZero() || lat > p.timeout {
			r.Missing = append(r.Missing, i)
			continue
		}
		r.Latencies = append(r.Latencies, lat)
		if !p.received[i].IsZero() {
			to = append(to, p.received[i].Sub(p.published[i]))
			in = append(in, p.opened[i].Sub(p.received[i]))
		}
	}
	slices.Sort(r.Latencies)
	r.Arrived = len(r.Latencies)
	q := quantilesOf(r.Latencies)
	r.P50, r.P90, r.P99, r.Max = q.P50, q.P90, q.P99, q.Max
	r.ToCentre, r.InCentre = quantilesOf(to), quantilesOf(in)
	return r
}

// nearestRank is the q quantile of sorted values: the smallest value with
// at least q of them at or below it (exact, for the probes' few values).
func nearestRank(sorted []time.Duration, q float64) time.Duration {
	k := int(float64(len(sorted))*q + 0.999999)
	return sorted[min(max(k, 1), len(sorted))-1]
}

// err is the run's failure as the probes tell it, or nil.
func (r *alarmReport) err() error {
	var errs []error
	if r.Probes == 0 {
		errs = append(errs, errors.New("no alarm probe was published: is -duration long enough?"))
	}
	if n := len(r.Missing); n > 0 {
		hint := ""
		if r.Arrived == 0 {
			hint = fmt.Sprintf(": no probe's incident reached the webhook at all; is the centre's receiver %s pointing at %s (hazardwatch-load -write-alerting) and does the centre load that alerting file?", receiverName, r.Receiver)
		}
		errs = append(errs, fmt.Errorf("%d of %d alarm probes were not notified to the webhook within %v (first: %s)%s",
			n, r.Probes, r.Timeout, probeSourceID(r.Missing[0]), hint))
	}
	if r.BadSignatures > 0 {
		errs = append(errs, fmt.Errorf("%d webhooks had a signature (%s) that does not verify with the receiver's secret: the centre's alerting file and this run's differ",
			r.BadSignatures, alerting.SignatureHeader))
	}
	return errors.Join(errs...)
}

func (r *alarmReport) print(w io.Writer) {
	sig := "signatures checked"
	if !r.Signed {
		sig = "unsigned: the receiver has no secret"
	}
	fmt.Fprintf(w, "alarms      %d probes, %d notified within %v to %s (%s)\n", r.Probes, r.Arrived, r.Timeout, r.Receiver, sig)
	if r.Arrived > 0 {
		fmt.Fprintf(w, "alarm lat   p50 %v  p90 %v  p99 %v  max %v  (probe published → incident opened webhook received, one clock)\n",
			ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max))
		fmt.Fprintf(w, "  to centre p50 %v  p90 %v  p99 %v  max %v  (published → the event's ts: broker, ingest's MQTT queue, decode)\n",
			ms(r.ToCentre.P50), ms(r.ToCentre.P90), ms(r.ToCentre.P99), ms(r.ToCentre.Max))
		fmt.Fprintf(w, "  in centre p50 %v  p90 %v  p99 %v  max %v  (the event's ts → webhook: store, rules, journal, outbox, POST)\n",
			ms(r.InCentre.P50), ms(r.InCentre.P90), ms(r.InCentre.P99), ms(r.InCentre.Max))
	}
	if n := len(r.Missing); n > 0 {
		ids := make([]string, 0, min(n, 5))
		for _, i := range r.Missing[:min(n, 5)] {
			ids = append(ids, probeSourceID(i))
		}
		more := ""
		if n > 5 {
			more = " …"
		}
		fmt.Fprintf(w, "            %d probes NOT notified within %v: %s%s\n", n, r.Timeout, strings.Join(ids, " "), more)
	}
	if r.Early > 0 {
		fmt.Fprintf(w, "            %d opened events of probe sources came before their probe (an earlier run's, left in the centre's outbox)\n", r.Early)
	}
	if r.Other > 0 {
		fmt.Fprintf(w, "            %d webhooks of other sources (not probes)\n", r.Other)
	}
	if r.BadSignatures > 0 || r.BadBodies > 0 {
		fmt.Fprintf(w, "            refused: %d with a bad signature, %d not CloudEvents\n", r.BadSignatures, r.BadBodies)
	}
	if r.Cleared > 0 {
		fmt.Fprintf(w, "            probes cleared after the run: %d of %d incidents closed, the last %v after the clearing reading\n", r.Closed, r.Cleared, r.LastClosed.Round(time.Millisecond))
	}
	if open := r.Cleared - r.Closed; open > 0 {
		when := "never by themselves (incidents.no_auto_close)"
		if r.CloseAfter >= 0 {
			when = "after incidents.auto_close_after " + r.CloseAfter.String()
		}
		fmt.Fprintf(w, "            %d probe incidents are still open at the centre: they close %s, and a run before then is refused\n", open, when)
	}
}
