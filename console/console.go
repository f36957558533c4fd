// Package console is HazardWatch's officers' console: a web page, embedded
// in the binary and served by the centre itself, that shows every hazard
// source coloured by its grade, the live alarm list, the gateways and the
// points' trends, and through which officers acknowledge and shelve alarms
// (through the alarm API of package alerting).
//
// The page is plain HTML, CSS and JavaScript with no build step and nothing
// loaded from elsewhere: a command centre's network is closed. It gets its
// data from one server-sent events stream, GET /api/stream: a snapshot
// first, then every alarm event, hazard source change and gateway change as
// it happens. See docs/console.md.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/ingest"
	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
)

//go:embed assets
var assets embed.FS

// Alarms is what the console needs of the alerting service.
type Alarms interface {
	ActiveAlarms() []alerting.Alarm
	Alarm(id string) (alerting.Alarm, bool)
	SourceGrades() []protocol.SourceGrade
	Subscribe(buffer int) (<-chan protocol.AlarmEvent, func())
	// The incidents: one per hazard source out of normal.
	Incidents(ctx context.Context) []incident.Incident
	Incident(ctx context.Context, id string) (incident.Incident, bool, error)
	SubscribeIncidents(buffer int) (<-chan incident.Event, func())
}

// LatestReader returns the newest reading of each point of a site (every
// site when site is empty): a storage.Querier, or the ingest service's
// copy in memory.
type LatestReader interface {
	Latest(ctx context.Context, site string) ([]storage.Sample, error)
}

// Config sets up a Console. Sites, Alarms and Gateways are required.
type Config struct {
	// Sites returns the site files in force.
	Sites  func() []*site.Site
	Alarms Alarms
	// Gateways returns the gateways' last known states.
	Gateways func() []ingest.GatewayStatus
	// Readings tells which hazard sources have recent data; nil: all.
	Readings LatestReader
	// Registerer takes the console's metrics; nil keeps them private.
	Registerer prometheus.Registerer
	Logger     *zap.Logger
	// Heartbeat is how often an idle stream gets a comment line, so that
	// proxies do not close it (default 15 s).
	Heartbeat time.Duration
	// Poll is how often gateway states are compared with the last ones
	// sent (default 1 s); data freshness is checked every second Poll.
	Poll time.Duration
	// ClientBuffer is how many frames a slow browser may fall behind
	// before it is sent a fresh snapshot instead (default 256).
	ClientBuffer int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MapTiles, when set, is a tile server's URL template drawn under the
	// risk map's county boundaries, e.g.
	// https://tiles.example.gov.cn/{z}/{x}/{y}.png (Web Mercator, 256 px
	// tiles); empty: the map needs no tile server. The pages may load
	// images from its origin, and nothing else from elsewhere.
	MapTiles string
}

// Console serves the officers' console and its event stream.
type Console struct {
	cfg     Config
	log     *zap.Logger
	hub     *hub
	streams prometheus.Gauge
	resyncs prometheus.Counter
	frames  prometheus.Counter
	static  http.Handler
	// tileOrigin is " " and the map tiles' origin, for the pages' CSP.
	tileOrigin string

	mu      sync.Mutex
	closed  bool
	done    chan struct{}         // closed by Close: every stream ends
	servers map[*http.Server]bool // whose shutdown closes the console
}

// New checks the configuration and prepares a Console; nothing runs until
// the first stream connects.
func New(cfg Config) (*Console, error) {
	if cfg.Sites == nil || cfg.Alarms == nil || cfg.Gateways == nil {
		return nil, errors.New("console config: sites, alarms and gateways are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.ClientBuffer <= 0 {
		cfg.ClientBuffer = 256
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, fmt.Errorf("console assets: %w", err)
	}
	c := &Console{cfg: cfg, log: cfg.Logger, done: make(chan struct{}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "hazardwatch", Subsystem: "console", Name: "streams",
			Help: "Officers' consoles connected to the event stream."}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "hazardwatch", Subsystem: "console", Name: "resyncs_total",
			Help: "Fresh snapshots sent to consoles that fell behind the events."}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "hazardwatch", Subsystem: "console", Name: "frames_total",
			Help: "Events sent to consoles (counted once per console)."}),
		static: http.StripPrefix("/console/", http.FileServerFS(sub)),
	}
	if cfg.MapTiles != "" {
		u, err := url.Parse(cfg.MapTiles)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.Contains(cfg.MapTiles, "{z}") {
			return nil, fmt.Errorf("console config: map tiles %q: want an http(s) URL template with {z}, {x} and {y}", cfg.MapTiles)
		}
		c.tileOrigin = " " + u.Scheme + "://" + u.Host
	}
	for _, m := range []prometheus.Collector{c.streams, c.resyncs, c.frames} {
		if err := cfg.Registerer.Register(m); err != nil {
			return nil, fmt.Errorf("console metrics: %w", err)
		}
	}
	c.hub = &hub{c: c, clients: map[*client]struct{}{}, reload: make(chan struct{}, 1)}
	return c, nil
}

// Close ends every open stream and refuses new ones, so that an HTTP
// server's graceful shutdown is not held up by consoles that never hang up.
func (c *Console) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
}

// Handler serves the console:
//
//	GET  /                     the officers' board (with its login form)
//	GET  /regions              the regions overview: risk map and roll-up
//	GET  /wall                 the same for a command centre's wall screen
//	GET  /report               the alarm-quality report (GET /api/report)
//	GET  /console/…            its scripts, styles and dictionary
//	GET  /api/stream           the event stream (server-sent events)
//	GET  /api/stream/snapshot  the stream's first event as plain JSON
//
// The stream needs a principal in the request's context
// (access.Middleware: the session cookie that POST /api/session sets, or
// a bearer token); the page logs in through /api/session.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.page("index.html"))
	mux.HandleFunc("GET /regions", c.page("regions.html"))
	mux.HandleFunc("GET /wall", c.page("wall.html"))
	mux.HandleFunc("GET /report", c.page("report.html"))
	mux.HandleFunc("GET /console/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache") // a new release is picked up at once
		c.static.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /api/stream", c.authorised(c.stream))
	mux.HandleFunc("GET /api/map", c.authorised(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"tiles": c.cfg.MapTiles})
	}))
	mux.HandleFunc("GET /api/stream/snapshot", c.authorised(func(w http.ResponseWriter, r *http.Request) {
		p, _ := access.FromContext(r.Context())
		writeJSON(w, http.StatusOK, c.scopedSnapshot(r.Context(), p.Scope))
	}))
	return mux
}

// page serves one of the console's pages: the officers' board (index),
// the regions overview or the wall view.
func (c *Console) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { c.servePage(w, name) }
}

func (c *Console) servePage(w http.ResponseWriter, name string) {
	page, err := assets.ReadFile("assets/" + name)
	if err != nil {
		http.Error(w, "console page missing from the build", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	// Everything the page needs comes from here; nothing else may run.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:"+c.tileOrigin+"; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(page)
}

// Site is one site on the board.
type Site struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Source is one hazard source on the board.
type Source struct {
	Site    string         `json:"site"`
	Source  string         `json:"source"`
	Name    string         `json:"name"`
	Type    string         `json:"type"`
	GB18218 int            `json:"gb18218_grade"`
	Grade   protocol.Grade `json:"grade"`
	// Since is when the source reached its grade (zero when normal).
	Since time.Time `json:"since,omitzero"`
	// Data is false when none of the source's points has a reading
	// within its stale time: the board shows it grey.
	Data bool `json:"data"`
}

// Gateway is one gateway's state.
type Gateway struct {
	Site    string    `json:"site"`
	Gateway string    `json:"gateway"`
	State   string    `json:"state"`
	Since   time.Time `json:"since,omitzero"`
	Updated time.Time `json:"updated"`
}

// Snapshot is the stream's first event: the whole picture.
type Snapshot struct {
	Time     time.Time        `json:"time"`
	Resync   bool             `json:"resync,omitempty"`
	Sites    []Site           `json:"sites"`
	Sources  []Source         `json:"sources"`
	Alarms   []alerting.Alarm `json:"alarms"`
	Gateways []Gateway        `json:"gateways"`
	// Incidents are the incidents not closed, worst first, with their
	// points' live values.
	Incidents []incident.Incident `json:"incidents"`
}

// IncidentChange is an incident event with the incident after it;
// Incident is nil once it closed.
type IncidentChange struct {
	Event    incident.Event     `json:"event"`
	Incident *incident.Incident `json:"incident"`
}

// LiveValue is a point's newest reading, sent (event live) when it changes
// for a point of an open incident.
type LiveValue struct {
	Site     string           `json:"site"`
	Point    string           `json:"point"`
	Value    float64          `json:"value"`
	HasValue bool             `json:"has_value"`
	Quality  protocol.Quality `json:"quality"`
	Time     time.Time        `json:"time"`
}

// AlarmChange is an alarm event with the alarm's state after it; Alarm is
// nil when the alarm left the list (back to normal).
type AlarmChange struct {
	Event protocol.AlarmEvent `json:"event"`
	Alarm *alerting.Alarm     `json:"alarm"`
}

func (c *Console) snapshot(ctx context.Context, resync bool) Snapshot {
	sites := c.cfg.Sites()
	fresh := c.freshness(ctx, sites)
	grades := map[string]protocol.SourceGrade{}
	for _, g := range c.cfg.Alarms.SourceGrades() {
		grades[g.Site+"/"+g.Source] = g
	}
	snap := Snapshot{Time: c.cfg.Now(), Resync: resync, Alarms: c.cfg.Alarms.ActiveAlarms(), Gateways: gateways(c.cfg.Gateways()),
		Incidents: c.cfg.Alarms.Incidents(ctx)}
	for _, s := range sites {
		snap.Sites = append(snap.Sites, Site{ID: s.ID, Name: s.Name})
		for i := range s.Sources {
			src := sourceOf(s, &s.Sources[i], grades, fresh)
			snap.Sources = append(snap.Sources, src)
		}
	}
	return snap
}

// scopedSnapshot is the snapshot cut to a scope.
func (c *Console) scopedSnapshot(ctx context.Context, scope access.Scope) Snapshot {
	snap := c.snapshot(ctx, false)
	if scope.Whole() {
		return snap
	}
	return cut(snap, scope.Sees(c.cfg.Sites()))
}

func sourceOf(s *site.Site, src *site.Source, grades map[string]protocol.SourceGrade, fresh map[string]bool) Source {
	key := s.ID + "/" + src.ID
	out := Source{Site: s.ID, Source: src.ID, Name: src.Name, Type: string(src.Type), GB18218: src.Grade, Data: fresh == nil || fresh[key]}
	if g, ok := grades[key]; ok {
		out.Grade, out.Since = g.Grade, g.Since.Time
	}
	return out
}

func gateways(st []ingest.GatewayStatus) []Gateway {
	out := make([]Gateway, 0, len(st))
	for _, g := range st {
		out = append(out, Gateway{Site: g.Site, Gateway: g.Gateway, State: g.State, Since: g.Since, Updated: g.Updated})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Site != out[j].Site {
			return out[i].Site < out[j].Site
		}
		return out[i].Gateway < out[j].Gateway
	})
	return out
}

// freshness tells, per site/source, whether any of its points has a
// reading within the point's stale time, as the rules engine counts it
// (its stale_after, else rules.StalePolls polls of its device, at least
// rules.MinStaleAfter). A reading marked comm_fail is no data. nil means
// unknown: there is no store to ask, or it did not answer.
func (c *Console) freshness(ctx context.Context, sites []*site.Site) map[string]bool {
	samples, ok := c.latest(ctx)
	if !ok {
		return nil
	}
	return c.freshnessOf(samples, sites)
}

// latest reads the newest reading of every point; false when there is no
// store to ask or it did not answer.
func (c *Console) latest(ctx context.Context) ([]storage.Sample, bool) {
	if c.cfg.Readings == nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	samples, err := c.cfg.Readings.Latest(ctx, "")
	if err != nil {
		c.log.Warn("console: latest readings for the no-data state", zap.Error(err))
		return nil, false
	}
	return samples, true
}

func (c *Console) freshnessOf(samples []storage.Sample, sites []*site.Site) map[string]bool {
	newest := make(map[[2]string]time.Time, len(samples))
	for _, s := range samples {
		if s.Quality != protocol.CommFail {
			newest[[2]string{s.Site, s.Point}] = s.Time
		}
	}
	now := c.cfg.Now()
	out := map[string]bool{}
	for _, s := range sites {
		for _, src := range s.Sources {
			ok := false
			for i := range src.Points {
				pt := &src.Points[i]
				if t, seen := newest[[2]string{s.ID, pt.ID}]; seen && now.Sub(t) <= rules.StaleAfter(s, pt) {
					ok = true
					break
				}
			}
			out[s.ID+"/"+src.ID] = ok
		}
	}
	return out
}
