package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/ingest"
	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
)

// runEmbedded builds the centre's pipeline the way internal/center does —
// embedded store, rules engine, alerting with an in-memory journal, ingest —
// but with the recorder between ingest and the store, then drives the load
// through the broker and reports.
func runEmbedded(ctx context.Context, o options, stdout, stderr io.Writer) (rep *report, err error) {
	dir, err := os.MkdirTemp("", "hazardwatch-load-*")
	if err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	defer os.RemoveAll(dir)
	siteDir := filepath.Join(dir, "sites")
	if err := os.Mkdir(siteDir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", siteDir, err)
	}
	sites, err := loadSite(siteDir, o.siteID, o.gateways, o.points, o.rate, o.alarmProbes)
	if err != nil {
		return nil, err
	}
	log := zap.NewNop()
	if o.debug {
		log = zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(stderr), zap.WarnLevel))
	}

	store, err := embedded.Open(filepath.Join(dir, "tsdb"), embedded.Options{})
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close embedded store: %w", cerr)
		}
	}()
	engine, err := rules.New(sites)
	if err != nil {
		return nil, fmt.Errorf("rules for the generated site: %w", err)
	}
	id := runID()
	// As internal/center wires it: incidents name their sources from the
	// site files and show live values from ingest's newest readings.
	latest := &ingestLatest{}
	alertCfg := alerting.Config{Logger: log.Named("alerting"), Sites: func() []*site.Site { return sites }, Latest: latest}
	var pr *prober
	if o.alarmProbes > 0 {
		// The probes' path is the centre's: a journal on disk (SQLite,
		// synchronous commits) and a signed webhook to this receiver.
		secret := newSecret()
		if pr, err = newProber(o.mqtt, o.siteID, o.alarmProbes, secret, o.alarmTimeout, id); err != nil {
			return nil, err
		}
		defer pr.close()
		if err := pr.listen(cmp.Or(o.webhookListen, "127.0.0.1:0"), webhookPath); err != nil {
			return nil, err
		}
		alertCfg.DataDir = filepath.Join(dir, "alerting")
		alertCfg.Receivers = []alerting.Receiver{{Name: receiverName, URL: pr.url, Secret: secret}}
	}
	alerts, err := alerting.New(alertCfg)
	if err != nil {
		return nil, fmt.Errorf("open alerting: %w", err)
	}
	defer alerts.Close()

	l := newLedger(o.gateways, o.points)
	rec := &recorder{next: store, ledger: l}
	reg := prometheus.NewRegistry()
	ingestID := "hazardwatch-load-" + id + "-ingest"
	svc, err := ingest.New(ingest.Config{Sites: sites, Broker: o.mqtt.Broker, ClientID: ingestID, MQTT: o.mqtt, Store: rec,
		Evaluator: engine, Sink: alerts, Logger: log.Named("ingest"), Registry: reg})
	if err != nil {
		return nil, err
	}
	latest.svc.Store(svc)
	ictx, stopIngest := context.WithCancel(ctx)
	ingestDone := make(chan error, 1)
	go func() { ingestDone <- svc.Run(ictx) }()
	defer func() {
		stopIngest()
		if rerr := <-ingestDone; rerr != nil && err == nil {
			err = rerr
		}
		forgetSession(o.mqtt, ingestID)
	}()

	f, err := connectFleet(ctx, o, l, id)
	if err != nil {
		return nil, err
	}
	defer f.close()
	if err := waitSubscribed(ctx, svc, f, ingestDone); err != nil {
		return nil, err
	}
	if pr != nil {
		if err := pr.connect(ctx); err != nil {
			return nil, err
		}
	}

	cpu0, start := cpuTime(), time.Now()
	probed := pr.start(ctx, start, o.duration)
	f.publish(ctx, o.duration, stdout, rec.progress)
	published := time.Since(start)
	probeErr := <-probed
	sent := f.sent()
	drain(ctx, o.drain, sent, func() int64 {
		n, _ := rec.progress()
		return n + counterSum(reg, "hazardwatch_ingest_rejected_total")
	})
	var alarms *alarmReport
	if pr != nil {
		probeErr = errors.Join(probeErr, pr.waitAcks())
		pr.waitOpened(ctx)
		alarms = pr.result()
	}
	cpu := cpuTime() - cpu0

	t := l.tally()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	pubErrs, _ := publishErrors(f.pubs)
	rep = &report{
		Sent: t.sent, Stored: t.distinct, Lost: t.sent - t.distinct, Duplicated: t.duplicated,
		Rejected: counterSum(reg, "hazardwatch_ingest_rejected_total"), Unexpected: rec.unexpected, PublishErrors: pubErrs,
		GapMessages: counterSum(reg, "hazardwatch_ingest_gap_messages_total"),
		Publishing:  published, Procs: runtime.GOMAXPROCS(0),
		P50: rec.hist.quantile(0.50), P90: rec.hist.quantile(0.90), P99: rec.hist.quantile(0.99), Max: rec.hist.max,
		LatencyNote: "reading ts, in ms, → durable in the embedded store", CPU: cpu, PeakRSSKB: peakRSSKB(),
		Alarms: alarms,
	}
	if !rec.last.IsZero() {
		rep.Elapsed = rec.last.Sub(start)
		rep.StoreRate = float64(t.distinct) / rep.Elapsed.Seconds()
	}
	rep.SendRate = float64(sent) / published.Seconds()
	if t.sent != sent {
		return rep, fmt.Errorf("ledger holds %d readings but the publishers sent %d", t.sent, sent)
	}
	if probeErr != nil {
		return rep, probeErr
	}
	return rep, nil
}

// ingestLatest gives alerting the ingest service's newest readings once
// the service exists (it is made after alerting, which it feeds).
type ingestLatest struct {
	svc atomic.Pointer[ingest.Service]
}

var _ alerting.LatestPointsReader = (*ingestLatest)(nil)

func (l *ingestLatest) Latest(ctx context.Context, site string) ([]storage.Sample, error) {
	if s := l.svc.Load(); s != nil {
		return s.Latest(ctx, site)
	}
	return nil, nil
}

func (l *ingestLatest) LatestOf(ctx context.Context, site string, points []string) ([]storage.Sample, error) {
	if s := l.svc.Load(); s != nil {
		return s.LatestOf(ctx, site, points)
	}
	return nil, nil
}

// waitSubscribed returns once ingest receives the gateways' state messages,
// so no telemetry is published before its subscription is in place.
func waitSubscribed(ctx context.Context, svc *ingest.Service, f *fleet, ingestDone <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, p := range f.pubs {
			if err := p.announce(); err != nil {
				return err
			}
		}
		wait := time.Now().Add(time.Second)
		for time.Now().Before(wait) {
			online := 0
			for _, st := range svc.GatewayStates() {
				if st.State == protocol.Online {
					online++
				}
			}
			if online == len(f.pubs) {
				return nil
			}
			select {
			case err := <-ingestDone:
				return fmt.Errorf("ingest stopped before subscribing: %w", err)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		if time.Now().After(deadline) {
			return errors.New("ingest did not receive the gateways' state within 30s: is it subscribed to the broker?")
		}
	}
}

// drain waits until done() reaches want, or for quiet without progress.
func drain(ctx context.Context, quiet time.Duration, want int64, done func() int64) {
	last, since := done(), time.Now()
	for last < want && time.Since(since) < quiet {
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
		if n := done(); n != last {
			last, since = n, time.Now()
		}
	}
}

// counterSum adds up every series of a counter in reg.
func counterSum(reg *prometheus.Registry, name string) int64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return int64(sum)
}

// forgetSession ends the persistent session ingest left on the broker, so
// a shared broker does not keep queueing the load site's messages for it.
func forgetSession(conn mqttconn.Config, clientID string) {
	conn.ClientID, conn.ConnectTimeout = clientID, 5*time.Second
	c, err := mqttconn.New(conn, nil, func(o *mqtt.ClientOptions) { o.SetCleanSession(true).SetConnectRetry(false) })
	if err != nil {
		return
	}
	if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		c.Disconnect(100)
	}
}
