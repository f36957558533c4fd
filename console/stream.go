package console

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/storage"
)

// eventBuffer is how far the hub may fall behind the alerting service
// before it re-reads the state for everyone.
const eventBuffer = 4096

// authorised lets through requests whose principal may view. A browser's
// EventSource cannot send an Authorization header: it sends the session
// cookie, which access.Middleware has turned into the principal.
func (c *Console) authorised(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p, ok := access.FromContext(r.Context()); !ok || !p.May(access.View) {
			access.Unauthorized(w, r, access.ErrNoCredentials)
			return
		}
		h(w, r)
	}
}

// client is one connected console.
type client struct {
	out    chan []byte   // encoded frames, in order
	resync chan struct{} // set when out overflowed: send a snapshot
	// scope is the logged-in principal's: the console gets only frames of
	// the sites in it. sees is that test over the site files as they were
	// at the console's last snapshot (so a reload counts). Both are read
	// and set under the hub's mu.
	scope access.Scope
	sees  func(site string) bool
}

// shows tells whether the console is sent a frame of a site.
func (cl *client) shows(site string) bool { return cl.sees == nil || cl.sees(site) }

// stream serves the server-sent events: a snapshot, then changes.
func (c *Console) stream(w http.ResponseWriter, r *http.Request) {
	if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok {
		c.closeOnShutdown(srv)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		http.Error(w, "the centre is shutting down", http.StatusServiceUnavailable)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	w.WriteHeader(http.StatusOK)

	p, _ := access.FromContext(r.Context())
	cl := &client{out: make(chan []byte, c.cfg.ClientBuffer), resync: make(chan struct{}, 1), scope: p.Scope}
	// Registered before the snapshot is taken, so no change falls between
	// the two; a change seen twice is harmless, each carries the state.
	c.hub.register(cl)
	defer c.hub.unregister(cl)
	c.streams.Inc()
	defer c.streams.Dec()

	write := func(b []byte) bool {
		// A browser that stopped reading must not hold the goroutine.
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	first := append([]byte("retry: 3000\n\n"), frame("snapshot", c.hub.snapshot(r.Context(), false, cl))...)
	if !write(first) {
		return
	}
	heartbeat := time.NewTicker(c.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		var b []byte
		select {
		case <-r.Context().Done():
			return
		case <-c.done:
			return
		case <-heartbeat.C:
			b = []byte(": ping\n\n")
		case <-cl.resync:
			for len(cl.out) > 0 {
				<-cl.out
			}
			c.resyncs.Inc()
			b = frame("snapshot", c.hub.snapshot(r.Context(), true, cl))
		case f := <-cl.out:
			// Write what is queued in one go.
			b = f
			for more := true; more && len(b) < 64<<10; {
				select {
				case f := <-cl.out:
					b = append(b, f...)
				default:
					more = false
				}
			}
		}
		if !write(b) {
			return
		}
	}
}

// closeOnShutdown ends the streams when the HTTP server serving them shuts
// down: a stream never goes idle, so a graceful shutdown would otherwise
// wait for it until its deadline.
func (c *Console) closeOnShutdown(srv *http.Server) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.servers == nil {
		c.servers = map[*http.Server]bool{}
	}
	if !c.servers[srv] {
		c.servers[srv] = true
		srv.RegisterOnShutdown(c.Close)
	}
}

// frame encodes one server-sent event.
func frame(event string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		// Every type sent is plain data; this is a bug, not an input.
		panic("console: encode " + event + ": " + err.Error())
	}
	var b bytes.Buffer
	b.Grow(len(data) + len(event) + 16)
	b.WriteString("event: ")
	b.WriteString(event)
	b.WriteString("\ndata: ")
	b.Write(data) // JSON has no raw newlines
	b.WriteString("\n\n")
	return b.Bytes()
}

// hub fans the alerting service's events, and the gateway and data changes
// it notices, out to the connected consoles. It runs only while at least
// one is connected.
type hub struct {
	c       *Console
	mu      sync.Mutex
	clients map[*client]struct{}
	stop    context.CancelFunc
	// view is what the hub last sent of every source: a console's
	// snapshot takes the sources' data state from it (snapshot), so the
	// changes the hub sends afterwards are changes to what that console
	// shows. Guarded by mu, like the broadcasts.
	view *sourceView
	// reload tells the running hub that the site files changed.
	reload chan struct{}
}

// register adds a console. It is called before the console's snapshot is
// taken, so that no change falls between the two; a change seen twice is
// harmless, each carries the state.
func (h *hub) register(cl *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients[cl] = struct{}{}
	if h.stop == nil {
		select {
		case <-h.reload: // the hub reads the site files as it starts
		default:
		}
		events, cancel := h.c.cfg.Alarms.Subscribe(eventBuffer)
		incEvents, cancelInc := h.c.cfg.Alarms.SubscribeIncidents(eventBuffer)
		ctx, stop := context.WithCancel(context.Background())
		h.stop = stop
		h.view = newSourceView(ctx, h.c)
		go h.run(ctx, events, incEvents, func() { cancel(); cancelInc() })
	}
}

// snapshot is a registered console's snapshot: the whole picture, with
// each source's data state as the hub last sent it. The hub compares the
// data state every two polls with its view, not with this console's
// snapshot, so a snapshot that saw fresher data than the view would never
// be corrected (a source shown with data after its data stopped).
//
// It is cut to the console's scope, and from then on the console is sent
// the frames of the sites in that scope only.
func (h *hub) snapshot(ctx context.Context, resync bool, cl *client) Snapshot {
	snap := h.c.snapshot(ctx, resync)
	h.mu.Lock()
	defer h.mu.Unlock()
	cl.sees = cl.scope.Sees(h.c.cfg.Sites())
	if !cl.scope.Whole() {
		snap = cut(snap, cl.shows)
	}
	if h.view == nil {
		return snap
	}
	for i := range snap.Sources {
		if v, ok := h.view.sources[snap.Sources[i].Site+"/"+snap.Sources[i].Source]; ok {
			snap.Sources[i].Data = v.Data
		}
	}
	return snap
}

func (h *hub) unregister(cl *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, cl)
	if len(h.clients) == 0 && h.stop != nil {
		h.stop()
		h.stop = nil
	}
}

// setView replaces the view, unless this hub was stopped (ctx done) and
// a new one owns it.
func (h *hub) setView(ctx context.Context, v *sourceView) {
	h.mu.Lock()
	if ctx.Err() == nil {
		h.view = v
	}
	h.mu.Unlock()
}

// broadcast queues a frame of a site for every console whose scope holds
// the site; one whose queue is full is marked for a fresh snapshot instead
// of blocking the others.
func (h *hub) broadcast(site string, b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.broadcastLocked(site, b)
}

func (h *hub) broadcastLocked(site string, b []byte) {
	for cl := range h.clients {
		if !cl.shows(site) {
			continue
		}
		select {
		case cl.out <- b:
			h.c.frames.Inc()
		default:
			select {
			case cl.resync <- struct{}{}:
			default:
			}
		}
	}
}

// SitesChanged sends every console a fresh snapshot: the site files in
// force changed (a reload), so sources came or went.
func (c *Console) SitesChanged() {
	select {
	case c.hub.reload <- struct{}{}:
	default: // one is pending already
	}
}

func (h *hub) resyncAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cl := range h.clients {
		select {
		case cl.resync <- struct{}{}:
		default:
		}
	}
}

// run follows the alerting service's events and compares the gateways'
// states (every Poll) and the sources' data (every second Poll) with what
// it last sent.
func (h *hub) run(ctx context.Context, events <-chan protocol.AlarmEvent, incEvents <-chan incident.Event, cancel func()) {
	defer func() { cancel() }()
	c := h.c
	live := newLiveView(ctx, c)
	resubscribe := func() {
		// Fallen behind: start again from the state, for everyone.
		c.log.Warn("console: fell behind the alarm or incident events; sending every console a fresh snapshot")
		cancel()
		var cancelAlarms, cancelInc func()
		events, cancelAlarms = c.cfg.Alarms.Subscribe(eventBuffer)
		incEvents, cancelInc = c.cfg.Alarms.SubscribeIncidents(eventBuffer)
		cancel = func() { cancelAlarms(); cancelInc() }
		h.setView(ctx, newSourceView(ctx, c))
		live = newLiveView(ctx, c)
		h.resyncAll()
	}
	gws := map[[2]string]Gateway{}
	for _, g := range gateways(c.cfg.Gateways()) {
		gws[[2]string{g.Site, g.Gateway}] = g
	}
	tick := time.NewTicker(c.cfg.Poll)
	defer tick.Stop()
	for n := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-h.reload:
			h.setView(ctx, newSourceView(ctx, c))
			h.resyncAll()
		case ev, ok := <-incEvents:
			if !ok {
				resubscribe()
				continue
			}
			ch := IncidentChange{Event: ev}
			if inc, found, err := c.cfg.Alarms.Incident(ctx, ev.IncidentID); err == nil && found && inc.State != incident.Closed {
				ch.Incident = &inc
			}
			live.follow(ev)
			h.broadcast(ev.Site, frame("incident", ch))
		case ev, ok := <-events:
			if !ok {
				resubscribe()
				continue
			}
			if ev.Type == protocol.AlarmSourceGradeChanged {
				h.mu.Lock()
				if ctx.Err() != nil { // stopped: a new hub may own the view
					h.mu.Unlock()
					return
				}
				if s, changed := h.view.grade(ev); changed {
					h.broadcastLocked(s.Site, frame("source", s))
				}
				h.mu.Unlock()
				continue
			}
			ch := AlarmChange{Event: ev}
			if a, ok := c.cfg.Alarms.Alarm(ev.AlarmID); ok {
				ch.Alarm = &a
			}
			h.broadcast(ev.Site, frame("alarm", ch))
		case <-tick.C:
			n++
			for _, g := range gateways(c.cfg.Gateways()) {
				k := [2]string{g.Site, g.Gateway}
				if old, ok := gws[k]; !ok || old.State != g.State || !old.Since.Equal(g.Since) {
					gws[k] = g
					h.broadcast(g.Site, frame("gateway", g))
				}
			}
			if n%2 == 0 {
				// Read outside the lock; compared, recorded and sent
				// under it, so a console's snapshot sees the view
				// either before or after these frames, never between.
				samples, known := c.latest(ctx)
				var fresh map[string]bool
				if known {
					fresh = c.freshnessOf(samples, c.cfg.Sites())
					for site, changed := range bySite(live.changes(samples)) {
						h.broadcast(site, frame("live", changed))
					}
				}
				h.mu.Lock()
				if ctx.Err() != nil {
					h.mu.Unlock()
					return
				}
				for _, s := range h.view.data(fresh) {
					h.broadcastLocked(s.Site, frame("source", s))
				}
				h.mu.Unlock()
			}
		}
	}
}

// sourceView is the hub's picture of every source, to send only changes.
type sourceView struct {
	c       *Console
	sources map[string]Source
}

func newSourceView(ctx context.Context, c *Console) *sourceView {
	v := &sourceView{c: c, sources: map[string]Source{}}
	snap := c.snapshot(ctx, false)
	for _, s := range snap.Sources {
		v.sources[s.Site+"/"+s.Source] = s
	}
	return v
}

// grade applies a source grade event.
func (v *sourceView) grade(ev protocol.AlarmEvent) (Source, bool) {
	key := ev.Site + "/" + ev.Source
	s, ok := v.sources[key]
	if !ok {
		// A source added by a reload: take it from the site files.
		if s, ok = v.lookup(key); !ok {
			return Source{}, false
		}
	}
	s.Grade, s.Since = ev.Grade, ev.TS.Time
	if ev.Grade == protocol.None {
		s.Since = time.Time{}
	}
	v.sources[key] = s
	return s, true
}

func (v *sourceView) lookup(key string) (Source, bool) {
	for _, st := range v.c.cfg.Sites() {
		for i := range st.Sources {
			if st.ID+"/"+st.Sources[i].ID == key {
				return sourceOf(st, &st.Sources[i], nil, nil), true
			}
		}
	}
	return Source{}, false
}

// data records the sources' data state and returns those that changed.
func (v *sourceView) data(fresh map[string]bool) []Source {
	if fresh == nil {
		return nil
	}
	var out []Source
	for key, has := range fresh {
		s, ok := v.sources[key]
		if !ok {
			if s, ok = v.lookup(key); !ok {
				continue
			}
			s.Data = !has // sent below as a change
		}
		if s.Data != has {
			s.Data = has
			v.sources[key] = s
			out = append(out, s)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// liveView follows the points of the open incidents and what the hub last
// sent of their readings, to send only the live values that changed.
type liveView struct {
	points map[string][]string  // incident id → its site/point keys
	sent   map[string]LiveValue // site/point → last sent
}

func newLiveView(ctx context.Context, c *Console) *liveView {
	v := &liveView{points: map[string][]string{}, sent: map[string]LiveValue{}}
	for _, inc := range c.cfg.Alarms.Incidents(ctx) {
		v.track(inc.ID, inc.Site, inc.Conditions)
		for _, cd := range inc.Conditions {
			for _, l := range cd.Live {
				v.sent[inc.Site+"/"+l.Point] = LiveValue{Site: inc.Site, Point: l.Point, Value: l.Value, HasValue: l.HasValue, Quality: l.Quality, Time: l.Time}
			}
		}
	}
	return v
}

func (v *liveView) track(id, site string, conds []incident.Condition) {
	var keys []string
	for _, cd := range conds {
		pts := cd.Points
		if cd.Point != "" {
			pts = []string{cd.Point}
		}
		for _, p := range pts {
			keys = append(keys, site+"/"+p)
		}
	}
	v.points[id] = keys
}

// follow keeps the incidents' points up to date from an incident event.
func (v *liveView) follow(ev incident.Event) {
	if ev.State == incident.Closed {
		delete(v.points, ev.IncidentID)
		return
	}
	v.track(ev.IncidentID, ev.Site, ev.Conditions)
}

// changes returns the incidents' points whose newest reading differs from
// the one last sent.
func (v *liveView) changes(samples []storage.Sample) []LiveValue {
	if len(v.points) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, keys := range v.points {
		for _, k := range keys {
			want[k] = true
		}
	}
	var out []LiveValue
	for _, sm := range samples {
		k := sm.Site + "/" + sm.Point
		if !want[k] {
			continue
		}
		lv := LiveValue{Site: sm.Site, Point: sm.Point, Value: sm.Value, HasValue: sm.HasValue, Quality: sm.Quality, Time: sm.Time.UTC()}
		if math.IsNaN(lv.Value) || math.IsInf(lv.Value, 0) {
			lv.Value, lv.HasValue = 0, false
		}
		if old, ok := v.sent[k]; ok && old.Time.Equal(lv.Time) && old.Value == lv.Value && old.Quality == lv.Quality {
			continue
		}
		v.sent[k] = lv
		out = append(out, lv)
	}
	return out
}

// bySite splits live values by their site, for consoles of different
// scopes.
func bySite(values []LiveValue) map[string][]LiveValue {
	out := map[string][]LiveValue{}
	for _, v := range values {
		out[v.Site] = append(out[v.Site], v)
	}
	return out
}

// cut keeps of a snapshot what lies in the sites a console shows.
func cut(snap Snapshot, shows func(site string) bool) Snapshot {
	out := snap
	out.Sites = access.Keep(snap.Sites, func(s Site) string { return s.ID }, shows)
	out.Sources = access.Keep(snap.Sources, func(s Source) string { return s.Site }, shows)
	out.Alarms = access.Keep(snap.Alarms, func(a alerting.Alarm) string { return a.Site }, shows)
	out.Gateways = access.Keep(snap.Gateways, func(g Gateway) string { return g.Site }, shows)
	out.Incidents = access.Keep(snap.Incidents, func(i incident.Incident) string { return i.Site }, shows)
	return out
}
