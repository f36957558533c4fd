// Package center assembles HazardWatch's centre — the embedded time-series
// store, the rules engine, the alerting service and the ingest service —
// and serves their HTTP endpoints. The hazardwatch-ingest command and the
// all-in-one hazardwatch command both run it, so they cannot drift apart.
package center

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/console"
	"github.com/hazardwatch/hazardwatch/ingest"
	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
	"github.com/hazardwatch/hazardwatch/storage/influx"
	"github.com/hazardwatch/hazardwatch/storage/queryapi"
)

// Config sets up a Center. Sites, Broker and DataDir are required.
type Config struct {
	Sites []*site.Site
	// Broker is the MQTT broker URL, e.g. tcp://127.0.0.1:1883.
	Broker string
	// ClientID is the ingest service's MQTT client id; keep it stable so
	// the broker keeps its session. Default hazardwatch-ingest; the alerting
	// publisher connects as ClientID-alerts.
	ClientID string
	// MQTT is the rest of both connections (TLS files, user name and
	// password, backoff; internal/mqttconn); its Broker and ClientID are
	// ignored.
	MQTT mqttconn.Config
	// DataDir holds the time-series store (tsdb/) and the alarm journal
	// (alerting/).
	DataDir string
	// JournalDSN, a postgres:// URL, keeps the alarm journal in PostgreSQL
	// instead of DataDir/alerting, so several ingest nodes can share it
	// (docs/scale-out.md).
	JournalDSN string
	// Shard is this node's share of the sites: from a shared journal it
	// rebuilds the alarms of the sites it owns. The zero value owns all.
	Shard ingest.Shard
	// Retention and OutOfOrderWindow of the embedded store; defaults 30
	// days and 24 hours.
	Retention, OutOfOrderWindow time.Duration
	// Influx, when set, stores readings in InfluxDB (shared by several
	// nodes) instead of the embedded store; its spill defaults to
	// DataDir/influx-spill.
	Influx *influx.Options
	// MaxInFlight bounds the telemetry messages ingest handles at once
	// (ingest.Config.MaxInFlight; zero: its default).
	MaxInFlight int
	// Receivers are the webhooks alarm events are delivered to.
	Receivers []alerting.Receiver
	// Access holds the accounts, machine tokens and session settings: who
	// may use the HTTP endpoints (none configured: nobody but /healthz
	// and /readyz).
	Access access.Config
	// MaxShelve is the longest an alarm may be shelved (default 8 h).
	MaxShelve time.Duration
	// MapTiles is an optional tile server's URL template under the risk
	// map (console.Config.MapTiles); empty: boundaries alone, offline.
	MapTiles string
	// Escalation and Flood tune the alerting service (zero: its defaults).
	Escalation Escalation
	Flood      Flood
	// Incidents tunes the incidents' auto-close (zero: its defaults).
	Incidents Incidents
	// Notification tells people of incidents (zero: the default policy,
	// but no channel, so nobody is told).
	Notification alerting.Notification
	// RecordInterval is how often the centre's own metrics (source grades,
	// alarm counts, ingest health) are recorded into the store for
	// dashboards; default 5s, negative: never.
	RecordInterval time.Duration
	// WrapSink, when set, wraps the alerting sink (the all-in-one command
	// prints each event on the terminal this way).
	WrapSink func(ingest.EventSink) ingest.EventSink
	Logger   *zap.Logger
}

// Center is a running centre. Open it, Run it, Close it.
type Center struct {
	mu        sync.Mutex // guards cfg.Sites, replaced by Reload
	cfg       Config
	log       *zap.Logger
	reg       *prometheus.Registry
	store     storage.Store
	embedded  *embedded.Store // nil with InfluxDB
	engine    *rules.Engine
	alerts    *alerting.Service
	publisher *alerting.MQTTPublisher
	ingest    *ingest.Service
	console   *console.Console
	auth      *access.Authenticator
	rec       *recorder // nil when metrics are not recorded
}

// Open builds every part; nothing is received until Run.
func Open(ctx context.Context, cfg Config) (_ *Center, err error) {
	if len(cfg.Sites) == 0 || cfg.Broker == "" || cfg.DataDir == "" {
		return nil, errors.New("center: sites, broker and data directory are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	c := &Center{cfg: cfg, log: cfg.Logger, reg: prometheus.NewRegistry()}
	c.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// c, not the result (nil on failure), so what was built is closed.
	defer func() {
		if err != nil {
			c.Close()
		}
	}()

	if c.auth, err = access.New(cfg.Access, access.Options{Registerer: c.reg, Logger: cfg.Logger.Named("access")}); err != nil {
		return nil, fmt.Errorf("accounts and tokens: %w", err)
	}
	if len(cfg.Access.Accounts)+len(cfg.Access.Tokens) == 0 {
		cfg.Logger.Warn("no accounts or API tokens configured: every HTTP endpoint but /healthz and /readyz answers 401 (see configs/alerting.yaml)")
	}
	if c.engine, err = rules.New(cfg.Sites); err != nil {
		return nil, fmt.Errorf("rules engine: %w", err)
	}
	if cfg.Influx != nil {
		opts := *cfg.Influx
		if opts.SpillDir == "" {
			opts.SpillDir = filepath.Join(cfg.DataDir, "influx-spill")
		}
		opts.Logger, opts.Registerer = cfg.Logger.Named("influx"), c.reg
		st, err := influx.Open(opts)
		if err != nil {
			return nil, err
		}
		c.store = st // not before: a nil *influx.Store in the interface would not be nil
	} else {
		c.embedded, err = embedded.Open(filepath.Join(cfg.DataDir, "tsdb"), embedded.Options{
			Retention: cfg.Retention, OutOfOrderWindow: cfg.OutOfOrderWindow, Registerer: c.reg})
		if err != nil {
			return nil, err
		}
		c.store = c.embedded
	}
	connectCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pubConn := cfg.MQTT
	pubConn.Broker, pubConn.ClientID = cfg.Broker, clientID(cfg)+"-alerts"
	c.publisher, err = alerting.NewMQTTPublisher(connectCtx, pubConn, cfg.Logger.Named("alerting"))
	if err != nil {
		return nil, err
	}
	alertCfg := alerting.Config{
		DataDir: filepath.Join(cfg.DataDir, "alerting"), Publisher: c.publisher, Receivers: cfg.Receivers,
		MaxShelve: cfg.MaxShelve, Logger: cfg.Logger.Named("alerting"), Registerer: c.reg,
		JournalDSN: cfg.JournalDSN, Node: clientID(cfg), OwnsSite: cfg.Shard.Owns,
		Notification: cfg.Notification,
	}
	cfg.Escalation.apply(&alertCfg)
	cfg.Flood.apply(&alertCfg)
	cfg.Incidents.apply(&alertCfg)
	// Incidents name their sources and points from the site files and
	// show the points' live values from the ingest service's newest
	// readings (the store's before ingest runs, during the restore).
	alertCfg.Sites = c.sites
	latest := &lateLatest{store: c.store}
	alertCfg.Latest = latest
	c.alerts, err = alerting.New(alertCfg)
	if err != nil {
		return nil, err
	}
	sink := c.setUpRecording(c.alerts)
	if cfg.WrapSink != nil {
		sink = cfg.WrapSink(sink)
	}
	if err := c.restoreRules(ctx, sink); err != nil {
		return nil, err
	}
	c.ingest, err = ingest.New(ingest.Config{
		Sites: cfg.Sites, Broker: cfg.Broker, ClientID: clientID(cfg), MQTT: cfg.MQTT, Store: c.store,
		Evaluator: c.engine, Sink: sink, Logger: cfg.Logger.Named("ingest"), Registry: c.reg, MaxInFlight: cfg.MaxInFlight,
	})
	if err != nil {
		return nil, err
	}
	c.seedLatest(ctx)
	latest.ingest.Store(c.ingest)
	c.console, err = console.New(console.Config{Sites: c.sites, Alarms: c.alerts, Gateways: c.ingest.GatewayStates, MapTiles: cfg.MapTiles,
		Readings: c.ingest, Registerer: c.reg, Logger: cfg.Logger.Named("console")})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// seedLatest gives the ingest service the store's newest readings, so the
// console knows which sources have data right after a restart. A store
// that does not answer (InfluxDB down) only delays that until readings
// arrive.
func (c *Center) seedLatest(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	samples, err := c.store.Latest(ctx, "")
	if err != nil {
		c.log.Warn("newest readings from the store for the console's no-data state", zap.Error(err))
		return
	}
	c.ingest.SeedLatest(samples)
}

// restoreRules hands the rules engine the conditions the alarm journal
// holds active, so that after a restart a reading still past its limit
// continues the alarm instead of raising it again, a first level held too
// long counts from when it began, and an alarm whose point or limit left
// the site files is cleared (its Cleared event goes to sink).
func (c *Center) restoreRules(ctx context.Context, sink ingest.EventSink) error {
	var active []rules.Event
	for _, a := range c.alerts.ActiveAlarms() {
		if !a.Active {
			continue // returned to normal, waiting only for acknowledgement
		}
		active = append(active, rules.Event{Type: rules.Raised, Key: a.ID, Site: a.Site, Source: a.Source,
			Point: a.Point, Condition: rules.Condition(a.Condition), Grade: a.Grade, Value: a.Value,
			Limit: a.Limit, Since: a.Since, Points: a.Points, Time: a.Changed})
	}
	events := c.engine.Restore(active, time.Now(), nil)
	c.log.Info("rules restored from the alarm journal", zap.Int("active_conditions", len(active)), zap.Int("events", len(events)))
	if len(events) == 0 {
		return nil
	}
	if err := sink.HandleEvents(ctx, events); err != nil {
		return fmt.Errorf("restore rules: hand %d events to alerting: %w", len(events), err)
	}
	return nil
}

func clientID(cfg Config) string {
	if cfg.ClientID == "" {
		return ingest.DefaultClientID
	}
	return cfg.ClientID
}

// Run receives and evaluates until ctx is done, then drains to the
// alerting service.
func (c *Center) Run(ctx context.Context) error {
	defer c.recordMetrics(ctx)()
	return c.ingest.Run(ctx)
}

// Close closes every part that Open built, in reverse order.
func (c *Center) Close() {
	if c.alerts != nil {
		if err := c.alerts.Close(); err != nil {
			c.log.Error("close alerting", zap.Error(err))
		}
	}
	if c.publisher != nil {
		c.publisher.Close()
	}
	if c.store != nil {
		if err := c.store.Close(); err != nil {
			c.log.Error("close store", zap.Error(err))
		}
	}
}

// Reload switches to new site files while running (see ingest.Reload):
// the state of points that still exist is kept, alarms of removed points
// are cleared. When the files are refused, nothing changes.
func (c *Center) Reload(sites []*site.Site) error {
	if err := c.ingest.Reload(sites); err != nil {
		return err
	}
	c.mu.Lock()
	c.cfg.Sites = sites
	c.mu.Unlock()
	c.console.SitesChanged()
	return nil
}

// sites returns the site files in force.
func (c *Center) sites() []*site.Site {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Sites
}

// Store is where readings are stored, for queries.
func (c *Center) Store() storage.Store { return c.store }

// Embedded is the embedded store, or nil when readings go to InfluxDB.
func (c *Center) Embedded() *embedded.Store { return c.embedded }

// Alerting is the alerting service.
func (c *Center) Alerting() *alerting.Service { return c.alerts }

// SourceStatus is one hazard source on the status page.
type SourceStatus struct {
	Site     string         `json:"site"`
	Source   string         `json:"source"`
	Name     string         `json:"name"`
	GB18218  int            `json:"gb18218_grade"`
	Grade    protocol.Grade `json:"grade"`
	GradeZH  string         `json:"grade_zh"`
	SiteName string         `json:"site_name"`
}

// Status is what the status page and GET /api/status show.
type Status struct {
	Sources  []SourceStatus         `json:"sources"`
	Alarms   []alerting.Alarm       `json:"alarms"`
	Gateways []ingest.GatewayStatus `json:"gateways"`
	Rejected []ingest.DeadLetter    `json:"rejected"`
	Time     protocol.Time          `json:"time"`
}

// Status returns every hazard source's grade, the present alarms, the
// gateways' states and the latest rejected messages.
func (c *Center) Status() Status {
	grades := map[string]protocol.Grade{}
	for _, g := range c.alerts.SourceGrades() {
		grades[g.Site+"/"+g.Source] = g.Grade
	}
	st := Status{Alarms: c.alerts.ActiveAlarms(), Gateways: c.ingest.GatewayStates(), Rejected: c.ingest.DeadLetters(), Time: protocol.Time{Time: time.Now()}}
	for _, s := range c.sites() {
		for _, src := range s.Sources {
			g := grades[s.ID+"/"+src.ID]
			st.Sources = append(st.Sources, SourceStatus{Site: s.ID, SiteName: s.Name, Source: src.ID, Name: src.Name,
				GB18218: src.Grade, Grade: g, GradeZH: g.Chinese()})
		}
	}
	sort.SliceStable(st.Sources, func(i, j int) bool { return st.Sources[i].Grade > st.Sources[j].Grade })
	return st
}

// StreamPaths are the Handler's long-lived answers (the console's
// server-sent events): an HTTP server gives them no write deadline
// (httpserve.Limits.Streams).
var StreamPaths = []string{"/api/stream"}

// Registerer is where the centre's metrics are registered (served on
// /metrics), for the HTTP server's own.
func (c *Center) Registerer() prometheus.Registerer { return c.reg }

// Handler serves /metrics, /healthz, /readyz, /api/status, /api/gateways,
// /api/deadletters, the alarm API (/api/alarms …, see docs/alerting.md),
// the readings API (/api/points/…) and, over the embedded store, the
// Prometheus query API (/api/v1/…; see docs/query-api.md), the officers'
// console at / with its event stream /api/stream (docs/console.md), the
// login at /api/session, and the plain self-refreshing status page at
// /status.
//
// Everything needs a session or an API token (access.Guard, closed by
// default) except the health checks, which say only ok or not, the login,
// and the console's page and static files, which hold no data.
func (c *Center) Handler() http.Handler {
	mux := http.NewServeMux()
	view := func(h http.Handler) http.Handler { return access.Require(access.View, h) }
	mux.Handle("GET /metrics", view(promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !c.ingest.Connected() {
			// No URL: this answer is public and a URL may name hosts or users.
			http.Error(w, "not connected to the MQTT broker", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/api/session", c.auth.SessionHandler())
	// Every answer is cut to the caller's scope (docs/regions.md).
	mux.Handle("GET /api/status", view(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Status().cut(c.sees(r))) })))
	mux.Handle("GET /api/gateways", view(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, Status{Gateways: c.ingest.GatewayStates()}.cut(c.sees(r)).Gateways)
	})))
	mux.Handle("GET /api/deadletters", view(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, Status{Rejected: c.ingest.DeadLetters()}.cut(c.sees(r)).Rejected)
	})))
	mux.Handle("/api/points/", view(queryapi.ReadingsOf(c.store, c.sites, c.sitesOf)))
	if c.embedded != nil {
		// Grafana's Prometheus data source points at the centre itself.
		mux.Handle("/api/v1/", view(queryapi.Prometheus(c.embedded.Queryable(), c.sitesOf)))
	}
	regions := c.overviewHandler()
	mux.Handle("GET /api/sources", regions)
	mux.Handle("GET /api/regions", regions)
	mux.Handle("/api/", c.alerts.Handler())
	con := c.console.Handler()
	mux.Handle("GET /{$}", con)
	mux.Handle("GET /report", con)
	mux.Handle("GET /regions", con)
	mux.Handle("GET /wall", con)
	mux.Handle("GET /console/", con)
	mux.Handle("/api/stream", con)
	mux.Handle("/api/stream/", con)
	mux.Handle("GET /status", view(http.HandlerFunc(c.statusPage)))
	return c.auth.Middleware(c.auth.Guard(mux, Public))
}

// Public tells the requests that need no credential: the health checks,
// the login, and the console's pages and static files (the login form; the
// pages hold no data, they read it from the guarded APIs).
func Public(r *http.Request) bool {
	switch p := r.URL.Path; {
	case p == "/healthz" || p == "/readyz" || p == "/api/session":
		return true
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return p == "/" || p == "/regions" || p == "/wall" || strings.HasPrefix(p, "/console/")
	}
	return false
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}

// lateLatest answers the newest readings from the ingest service's memory
// once it runs, from the store before (the restore at start).
type lateLatest struct {
	store  alerting.LatestReader
	ingest atomic.Pointer[ingest.Service]
}

var _ alerting.LatestPointsReader = (*lateLatest)(nil) // incidents read their points alone

func (l *lateLatest) Latest(ctx context.Context, site string) ([]storage.Sample, error) {
	if in := l.ingest.Load(); in != nil {
		return in.Latest(ctx, site)
	}
	return l.store.Latest(ctx, site)
}

// LatestOf answers a few points from the ingest service's memory; before
// it runs, the store's newest readings of the whole site (the caller
// takes the points it asked for).
func (l *lateLatest) LatestOf(ctx context.Context, site string, points []string) ([]storage.Sample, error) {
	if in := l.ingest.Load(); in != nil {
		return in.LatestOf(ctx, site, points)
	}
	return l.store.Latest(ctx, site)
}
