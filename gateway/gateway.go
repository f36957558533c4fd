package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/gateway/codec"
	"github.com/hazardwatch/hazardwatch/gateway/forward"
	"github.com/hazardwatch/hazardwatch/internal/queue"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// Config is what a gateway needs; Site, GatewayID and DataDir are required.
type Config struct {
	Site      *site.Site
	GatewayID string
	// DataDir holds the gateway's state (the telemetry sequence number).
	DataDir string
	// Publisher sends telemetry. When nil, Run connects to MQTT with the
	// MQTT settings and disconnects when it returns; a Publisher given
	// here belongs to the caller.
	Publisher Publisher
	MQTT      MQTTConfig
	// Registry receives the gateway's metrics; nil: not registered.
	Registry prometheus.Registerer
	Logger   *zap.Logger
	// BatchDelay is how long readings gather before a message goes out;
	// default 50ms (alarms must not wait for a batch).
	BatchDelay time.Duration
	// MaxBatch caps the readings per message; default 1000.
	MaxBatch int
	// MaxBackoff caps the wait before re-polling a failed device; default
	// 30s.
	MaxBackoff time.Duration
	// PublishTimeout bounds one publish attempt; default 10s.
	PublishTimeout time.Duration
	// SpoolMaxBytes bounds the store-and-forward spool on disk (in
	// DataDir/spool); when full, the oldest messages are dropped, counted
	// and logged. Default 512 MiB.
	SpoolMaxBytes int64
	// ReplayRate caps how many backlog messages per second are replayed
	// after an outage, beside live data; default 50.
	ReplayRate float64
	// DrainTimeout is how long Run waits at shutdown for the spool to
	// empty; what is left is sent at the next start. Default 3s.
	DrainTimeout time.Duration
	// ReprobeInterval is how often the addresses a device refused are
	// forgotten and probed again; default 10m.
	ReprobeInterval time.Duration
	// AckTimeout is how long sent messages may wait for the centre's
	// end-to-end acknowledgement before they are sent again; default 30s.
	AckTimeout time.Duration
	// PubackOnly drops messages from the spool at the broker's PUBACK,
	// without waiting for the centre's acknowledgement: only for a centre
	// that does not publish acknowledgements yet. Default false.
	PubackOnly bool
}

// Gateway polls one gateway's Modbus devices and publishes their readings.
type Gateway struct {
	cfg     Config
	gw      *site.Gateway
	devices []*deviceState
	lines   []*line
	met     *metrics
	log     *zap.Logger
	out     chan []protocol.Reading

	acks     ackState
	spool    atomic.Pointer[queue.Queue] // while Run runs
	statusMu sync.Mutex                  // guards deviceState.status*
}

// deviceState is one device as its line's goroutine polls it.
type deviceState struct {
	dev        *site.Device
	points     []*site.PointRef
	gap        int
	plan       []Read
	holes      *holes
	client     *client
	line       *line
	exceptions *exceptions

	interval, timeout time.Duration
	retries           int
	next              time.Time // when the next poll is due
	fails             int       // consecutive polls without any answer
	deferred          time.Time // since when a probe waits for room on the line

	statusFails, statusRefused int // copies for Status, under statusMu
}

// New checks the configuration, plans every device's reads and opens the
// sequence state. Nothing connects until Run or PollOnce.
func New(cfg Config) (*Gateway, error) {
	if cfg.Site == nil {
		return nil, errors.New("gateway: no site")
	}
	gw := cfg.Site.Gateway(cfg.GatewayID)
	if gw == nil {
		var ids []string
		for _, g := range cfg.Site.Gateways {
			ids = append(ids, g.ID)
		}
		return nil, fmt.Errorf("gateway: site %s has no gateway %q (it has: %s)", cfg.Site.ID, cfg.GatewayID, strings.Join(ids, ", "))
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.BatchDelay <= 0 {
		cfg.BatchDelay = 50 * time.Millisecond
	}
	if cfg.MaxBatch <= 0 || cfg.MaxBatch > protocol.MaxReadings {
		cfg.MaxBatch = 1000
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 3 * time.Second
	}
	if cfg.ReprobeInterval <= 0 {
		cfg.ReprobeInterval = DefaultReprobeInterval
	}
	g := &Gateway{cfg: cfg, gw: gw, log: cfg.Logger.With(zap.String("site", cfg.Site.ID), zap.String("gateway", gw.ID))}
	now := time.Now()
	for i := range gw.Devices {
		d := &gw.Devices[i]
		pts := cfg.Site.PointsOfDevice(d.ID)
		ds := &deviceState{dev: d, points: pts, gap: site.DefaultMaxGap, holes: newHoles(now), exceptions: newExceptions(pts),
			interval: d.PollInterval.D(), timeout: d.Timeout.D(), retries: site.DefaultRetries}
		if d.MaxGap != nil {
			ds.gap = *d.MaxGap
		}
		if d.Retries != nil {
			ds.retries = *d.Retries
		}
		if ds.interval <= 0 {
			ds.interval = site.DefaultPollInterval
		}
		if ds.timeout <= 0 {
			ds.timeout = site.DefaultTimeout
		}
		c, err := newClient(d)
		if err != nil {
			return nil, fmt.Errorf("gateway %s: %w", gw.ID, err)
		}
		ds.client = c
		ds.replan()
		g.devices = append(g.devices, ds)
	}
	g.lines = newLines(g.devices)
	met, err := newMetrics(cfg.Registry, cfg.Site.ID, gw.ID)
	if err != nil {
		return nil, fmt.Errorf("gateway %s: register metrics: %w", gw.ID, err)
	}
	g.met = met
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("gateway %s: no data directory for the sequence state", gw.ID)
	}
	return g, nil
}

// Row is one line of the commissioning table.
type Row struct {
	Device  string
	Point   string
	Where   string   // table and address, e.g. "holding 2 float32 CDAB"
	Raw     string   // registers as read, hex; empty when not read
	Value   *float64 // engineering value, when the quality carries one
	Unit    string
	Quality protocol.Quality
	Note    string // why the quality is not good
}

// PollOnce reads every device once, concurrently, and returns one row per
// point, by device then point. The error joins every device's failures;
// rows are complete even then (failed points are comm_fail).
func (g *Gateway) PollOnce(ctx context.Context) ([]Row, error) {
	var (
		mu   sync.Mutex
		rows []Row
		errs []error
		wg   sync.WaitGroup
	)
	for _, l := range g.lines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, d := range l.units {
				r, _, err := g.pollDevice(ctx, d, always)
				mu.Lock()
				rows = append(rows, r...)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Device != rows[j].Device {
			return rows[i].Device < rows[j].Device
		}
		return rows[i].Point < rows[j].Point
	})
	return rows, errors.Join(errs...)
}

// WriteTable prints rows as an aligned table.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tPOINT\tREGISTERS\tRAW\tVALUE\tUNIT\tQUALITY\tNOTE")
	for _, r := range rows {
		v := "-"
		if r.Value != nil {
			v = FormatValue(*r.Value)
		}
		raw := r.Raw
		if raw == "" {
			raw = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Device, r.Point, r.Where, raw, v, r.Unit, r.Quality, r.Note)
	}
	return tw.Flush()
}

// pollDevice reads all planned blocks of a device once. It returns the rows
// and readings of every point of the device and an error describing any
// failure; failed reports whether the device did not answer at all.
func (g *Gateway) pollDevice(ctx context.Context, d *deviceState, gate attemptGate) ([]Row, bool, error) {
	var (
		rows    []Row
		errs    []error
		failed  bool
		silent  error // set once the device has not answered: skip the rest
		learned bool
	)
	g.maybeReprobe(d, time.Now())
	for _, p := range d.points {
		if err, ok := d.holes.refused[p.Point.ID]; ok {
			rows = append(rows, g.failRow(d, p, fmt.Errorf("%w; %s", err, adviceRefused)))
		}
	}
	answered, exceptions := 0, 0
	for _, r := range d.plan {
		if silent != nil {
			for _, p := range r.Points {
				rows = append(rows, g.failRow(d, p, silent))
			}
			continue
		}
		results, l := g.readSplitting(ctx, d, r, gate)
		learned = learned || l
		for _, res := range results {
			if res.err != nil {
				errs = append(errs, res.err)
				if isTransport(res.err) {
					silent = res.err
				} else {
					exceptions++
				}
				note := res.err
				if _, refused := d.holes.refused[res.read.Points[0].Point.ID]; refused {
					note = fmt.Errorf("%w; %s", res.err, adviceRefused)
				}
				for _, p := range res.read.Points {
					rows = append(rows, g.failRow(d, p, note))
				}
				continue
			}
			answered++
			for _, p := range res.read.Points {
				rows = append(rows, g.decodeRow(d, res.read, p, res.data))
			}
		}
	}
	if learned {
		d.replan()
		g.logHoles(d)
	}
	// A device that answered only with exceptions did answer.
	failed = len(d.plan) > 0 && answered == 0 && exceptions == 0 && silent != nil
	switch {
	case failed:
		g.met.polls.WithLabelValues(d.dev.ID, "failed").Inc()
	case len(errs) > 0:
		g.met.polls.WithLabelValues(d.dev.ID, "partial").Inc()
	default:
		g.met.polls.WithLabelValues(d.dev.ID, "ok").Inc()
	}
	return rows, failed, errors.Join(errs...)
}

// adviceRefused is what the commissioning engineer should check for a
// point whose own registers the device refuses.
const adviceRefused = "the device refuses this point's own registers: check its address and table in the site file against the device's register map"

// readWithRetries repeats a read the device did not answer up to the
// device's retries more times, as the line's gate allows; an exception
// answer is final.
func (g *Gateway) readWithRetries(ctx context.Context, d *deviceState, r Read, gate attemptGate) ([]uint16, error) {
	var err error
	for attempt := 0; attempt <= d.retries; attempt++ {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("device %s: poll cancelled: %w", d.dev.ID, ctx.Err())
		}
		if !gate(attempt > 0) {
			break
		}
		d.line.beforeRequest()
		t0 := time.Now()
		var data []uint16
		data, err = d.client.read(r)
		d.line.afterRequest()
		if err == nil {
			g.met.latency.WithLabelValues(d.dev.ID).Observe(time.Since(t0).Seconds())
			return data, nil
		}
		g.met.errors.WithLabelValues(d.dev.ID, errorCode(err)).Inc()
		if !isTransport(err) {
			break
		}
	}
	return nil, err
}

func where(m site.Mapping) string {
	s := fmt.Sprintf("%s %d %s", m.Table, m.Address, m.Type)
	if m.Type.Registers() > 1 && !m.Table.IsBit() {
		s += " " + string(m.Order)
	}
	if m.Bit != nil {
		s += fmt.Sprintf(" bit %d", *m.Bit)
	}
	return s
}

func (g *Gateway) failRow(d *deviceState, p *site.PointRef, err error) Row {
	return Row{Device: d.dev.ID, Point: p.Point.ID, Where: where(p.Point.Modbus), Unit: p.Point.Unit,
		Quality: protocol.CommFail, Note: err.Error()}
}

func (g *Gateway) decodeRow(d *deviceState, r Read, p *site.PointRef, data []uint16) Row {
	m := p.Point.Modbus
	row := Row{Device: d.dev.ID, Point: p.Point.ID, Where: where(m), Unit: p.Point.Unit}
	regs, err := r.Slice(data, m)
	if err == nil {
		parts := make([]string, len(regs))
		for i, v := range regs {
			parts[i] = fmt.Sprintf("%04X", v)
		}
		row.Raw = strings.Join(parts, " ")
		var res codec.Result
		res, err = codec.Decode(m, p.Point.Range, regs)
		if err == nil {
			row.Quality, row.Note = res.Quality, res.Reason
			if res.HasValue() {
				v := res.Value
				row.Value = &v
			}
			return row
		}
	}
	// The data cannot be decoded at all: a mapping or device problem,
	// shown as a faulty sensor rather than as a number.
	row.Quality, row.Note = protocol.Bad, fmt.Sprintf("point %s: %v", p.Point.ID, err)
	return row
}

func readingsOf(rows []Row, at time.Time) []protocol.Reading {
	ts := &protocol.Time{Time: at}
	out := make([]protocol.Reading, len(rows))
	for i, r := range rows {
		out[i] = protocol.Reading{Point: r.Point, Value: r.Value, Quality: r.Quality, TS: ts}
		if r.Quality == protocol.Good {
			out[i].Quality = "" // good is the default on the wire
		}
	}
	return out
}

// Run polls every device on its own goroutine and publishes their readings
// until ctx is cancelled; it then stops polling, spools what was read,
// gives the forwarder a moment to send it and disconnects cleanly.
//
// Every message is written durably to the spool before it is published and
// leaves it only once the broker acknowledged it, so readings survive a
// broker outage, a kill -9 or a power cut of the gateway.
func (g *Gateway) Run(ctx context.Context) error {
	pub := g.cfg.Publisher
	if pub == nil {
		mp, err := ConnectMQTT(g.cfg.MQTT, g.cfg.Site.ID, g.gw.ID, g.log)
		if err != nil {
			return fmt.Errorf("gateway %s: %w", g.gw.ID, err)
		}
		defer mp.Close()
		pub = mp
	}
	sp, err := queue.Open(filepath.Join(g.cfg.DataDir, "spool"), queue.Options{MaxBytes: g.cfg.SpoolMaxBytes, Logger: g.log.Named("spool")})
	if err != nil {
		return fmt.Errorf("gateway %s: open store-and-forward spool: %w", g.gw.ID, err)
	}
	defer sp.Close()
	var reg prometheus.Registerer
	if g.cfg.Registry != nil {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"site": g.cfg.Site.ID, "gateway": g.gw.ID}, g.cfg.Registry)
	}
	g.spool.Store(sp)
	defer g.spool.Store(nil)
	acks, endToEnd := pub.(AckSource)
	endToEnd = endToEnd && !g.cfg.PubackOnly
	var fw *forward.Forwarder
	ackTopic := protocol.AckTopic(g.cfg.Site.ID, g.gw.ID)
	subscribe := func() {
		err := acks.SubscribeAcks(ackTopic, func(a protocol.Ack, retained bool) { g.onAck(a, retained, sp.LastID(), fw.Confirm) })
		if err != nil {
			g.log.Warn("cannot subscribe to the centre's acknowledgements yet; retried when messages wait too long", zap.Error(err))
		}
	}
	fw, err = forward.New(forward.Config{Spool: sp, Publisher: pub, ReplayRate: g.cfg.ReplayRate,
		PublishTimeout: g.cfg.PublishTimeout, Logger: g.log.Named("forward"), Registerer: reg,
		EndToEnd: endToEnd, AckTimeout: g.cfg.AckTimeout, OnResend: func() {
			if endToEnd {
				go subscribe()
			}
		}})
	if err != nil {
		return fmt.Errorf("gateway %s: %w", g.gw.ID, err)
	}
	if endToEnd {
		go subscribe()
	}
	fwCtx, stopForwarding := context.WithCancel(context.WithoutCancel(ctx))
	defer stopForwarding()
	fwDone := make(chan struct{})
	go func() {
		defer close(fwDone)
		if err := fw.Run(fwCtx); err != nil {
			g.log.Error("forwarder stopped", zap.Error(err))
		}
	}()

	// Room for several polls of every device while the spool syncs.
	g.out = make(chan []protocol.Reading, 64*max(1, len(g.devices)))
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	var wg sync.WaitGroup
	for _, l := range g.lines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.runLine(pollCtx, l)
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	g.log.Info("gateway running", zap.Int("devices", len(g.devices)))
	g.publishLoop(sp, done)
	for _, d := range g.devices {
		d.client.close()
	}
	g.drain(sp)
	stopForwarding()
	<-fwDone
	g.log.Info("gateway stopped")
	return nil
}

// drain waits, bounded, for the forwarder to empty the spool.
func (g *Gateway) drain(sp *queue.Queue) {
	deadline := time.Now().Add(g.cfg.DrainTimeout)
	for {
		n, _ := sp.Depth()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			g.log.Info("messages left in the spool for the next start", zap.Int("messages", n))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// emit hands a poll's rows, filtered by report-by-exception, to the
// publish loop.
func (g *Gateway) emit(d *deviceState, rows []Row, at time.Time) {
	rows = d.exceptions.filter(rows, at)
	if len(rows) == 0 {
		return
	}
	select {
	case g.out <- readingsOf(rows, at):
	default:
		g.met.dropped.Add(float64(len(rows)))
	}
}

// publishLoop batches readings into telemetry messages and spools them,
// until the pollers are done and everything read has been spooled.
func (g *Gateway) publishLoop(sp *queue.Queue, pollersDone <-chan struct{}) {
	var pending []protocol.Reading
	var flushAt <-chan time.Time
	flush := func() {
		for len(pending) > 0 {
			n := min(len(pending), g.cfg.MaxBatch)
			g.spoolBatch(sp, pending[:n])
			pending = pending[n:]
		}
		pending = nil
		flushAt = nil
	}
	for {
		select {
		case rs := <-g.out:
			if len(pending) == 0 {
				flushAt = time.After(g.cfg.BatchDelay)
			}
			pending = append(pending, rs...)
			if len(pending) >= g.cfg.MaxBatch {
				flush()
			}
		case <-flushAt:
			flush()
		case <-pollersDone:
			for {
				select {
				case rs := <-g.out:
					pending = append(pending, rs...)
					continue
				default:
				}
				break
			}
			flush()
			return
		}
	}
}

// spoolBatch turns a batch into one or more telemetry messages and writes
// them durably to the spool, from which the forwarder publishes them.
func (g *Gateway) spoolBatch(sp *queue.Queue, rs []protocol.Reading) {
	// The message's seq is its id in the spool: ids rise by one per
	// committed record across restarts and a failed append uses none, so
	// a message the gateway built has no gap before it. This loop is the
	// spool's only writer, so the next id is known before the append.
	seq := sp.LastID() + 1
	msg := protocol.Telemetry{V: protocol.Version, Site: g.cfg.Site.ID, Gateway: g.gw.ID, Seq: seq, TS: protocol.Time{Time: time.Now()}, Readings: rs}
	payload, err := msg.Encode()
	if err != nil {
		if len(rs) > 1 {
			// Too large: split.
			g.spoolBatch(sp, rs[:len(rs)/2])
			g.spoolBatch(sp, rs[len(rs)/2:])
			return
		}
		g.log.Error("cannot encode telemetry; reading dropped", zap.Error(err))
		g.met.dropped.Inc()
		return
	}
	m := forward.Message{Topic: protocol.TelemetryTopic(g.cfg.Site.ID, g.gw.ID), QoS: 1, Payload: payload}
	id, err := forward.Enqueue(sp, m)
	if err != nil {
		g.log.Error("cannot write telemetry to the spool; readings dropped", zap.Uint64("seq", seq), zap.Int("readings", len(rs)), zap.Error(err))
		g.met.dropped.Add(float64(len(rs)))
		return
	}
	if id != seq {
		g.log.Error("spool id differs from the message's seq: is another process writing the spool?", zap.Uint64("seq", seq), zap.Uint64("spool_id", id))
	}
	g.met.spooled.Inc()
	g.met.seq.Set(float64(seq))
}
