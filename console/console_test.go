package console

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/ingest"
	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
)

const (
	officerToken = "console-officer-token"
	viewerToken  = "console-viewer-token"
)

// gatewayStates is what the ingest service would report, set by the test.
type gatewayStates struct {
	mu sync.Mutex
	st []ingest.GatewayStatus
}

func (g *gatewayStates) get() []ingest.GatewayStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.st)
}

func (g *gatewayStates) set(st ...ingest.GatewayStatus) {
	g.mu.Lock()
	g.st = st
	g.mu.Unlock()
}

type fixture struct {
	con   *Console
	alarm *alerting.Service
	store *embedded.Store
	gws   *gatewayStates
	sites []*site.Site
	srv   *httptest.Server
	auth  *access.Authenticator
}

// handler is the console behind the access middleware, as the centre
// serves it.
func (f *fixture) handler() http.Handler { return f.auth.Middleware(f.con.Handler()) }

const officerPassword = "console-officer-password"

var (
	hashOnce sync.Once
	hash     string
)

func officerPasswordHash(t *testing.T) string {
	t.Helper()
	hashOnce.Do(func() {
		var err error
		if hash, err = access.HashPassword(officerPassword); err != nil {
			t.Fatal(err)
		}
	})
	return hash
}

// newFixture runs a console over a real alerting service (journal in
// memory) and a real embedded store, for the given sites.
func newFixture(t *testing.T, sites []*site.Site, tune func(*Config)) *fixture {
	t.Helper()
	svc, err := alerting.New(alerting.Config{TickInterval: -1, ResendInterval: -1, FloodThreshold: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	f := &fixture{alarm: svc, store: store, gws: &gatewayStates{}, sites: sites}
	cfg := Config{Sites: func() []*site.Site { return sites }, Alarms: svc, Gateways: f.gws.get, Readings: store,
		Heartbeat: time.Hour, Poll: 20 * time.Millisecond}
	if tune != nil {
		tune(&cfg)
	}
	if f.con, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	f.auth, err = access.New(access.Config{
		Accounts: []access.Account{{Name: "li.gong", Role: access.Officer, PasswordHash: officerPasswordHash(t)}},
		Tokens: []access.Token{{Name: "console-officer", Role: access.Officer, Hash: access.HashToken(officerToken)},
			{Name: "wall", Role: access.Viewer, Hash: access.HashToken(viewerToken)}}}, access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.handler())
	t.Cleanup(f.srv.Close)
	t.Cleanup(f.con.Close) // before srv.Close (cleanups run last first): ends the streams
	return f
}

func tankFarm(t testing.TB) []*site.Site {
	t.Helper()
	s, err := site.Load("../configs/sites/tank-farm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return []*site.Site{s}
}

// sse is a server-sent events reader.
type sse struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
	// comments counts comment lines (heartbeats) read.
	comments int
	retry    string
}

type message struct {
	event string
	data  string
}

func openStream(t *testing.T, req *http.Request) *sse {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", req.URL.Path, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("stream content type %q", ct)
	}
	return &sse{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads the next event, within 10 s.
func (s *sse) next() message {
	s.t.Helper()
	type result struct {
		m   message
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var m message
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				ch <- result{err: err}
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if m.event != "" || m.data != "" {
					ch <- result{m: m}
					return
				}
			case strings.HasPrefix(line, ":"):
				s.comments++
			case strings.HasPrefix(line, "event: "):
				m.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				m.data += strings.TrimPrefix(line, "data: ")
			case strings.HasPrefix(line, "retry: "):
				s.retry = strings.TrimPrefix(line, "retry: ")
			default:
				ch <- result{err: fmt.Errorf("not a server-sent events line: %q", line)}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			s.t.Fatalf("read the stream: %v", r.err)
		}
		return r.m
	case <-time.After(10 * time.Second):
		s.t.Fatal("no event on the stream within 10s")
	}
	return message{}
}

// expect reads events until one of the type that satisfies ok, failing on
// more than 50 others.
func expect[T any](s *sse, event string, ok func(T) bool) T {
	s.t.Helper()
	for range 50 {
		m := s.next()
		if m.event != event {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(m.data), &v); err != nil {
			s.t.Fatalf("%s event: %v: %s", event, err, m.data)
		}
		if ok(v) {
			return v
		}
	}
	s.t.Fatalf("no matching %s event among the next 50", event)
	var zero T
	return zero
}

// getAsset GETs a page or asset the console serves without a login and
// returns the answer and its body; anything but 200 fails the test.
func (f *fixture) getAsset(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	return resp, string(body)
}

func (f *fixture) streamRequest(t *testing.T, token string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+"/api/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func raise(key string, g protocol.Grade, at time.Time) rules.Event {
	p := strings.Split(key, "/")
	return rules.Event{Type: rules.Raised, Key: key, Site: p[0], Source: p[1], Point: p[2], Condition: rules.Condition(p[3]),
		Grade: g, Value: 90, Limit: 80, Since: at, Time: at,
		Facts: protocol.AlarmFacts{Reason: rules.ReasonLimitExceeded, Name: key, Unit: "ppm", LimitName: p[3]}}
}

func sourceGrade(site, source string, g, prev protocol.Grade, at time.Time) rules.Event {
	return rules.Event{Type: rules.SourceGradeChanged, Key: site + "/" + source, Site: site, Source: source, Grade: g, PrevGrade: prev, Time: at}
}

// TestStreamFollowsAlarmsSourcesAndGateways: the stream's snapshot, then
// every change as it happens: alarm events with the alarm's new state,
// source grades, data arriving, gateway states; the console count metric.
func TestStreamFollowsAlarmsSourcesAndGateways(t *testing.T) {
	f := newFixture(t, tankFarm(t), nil)
	ctx := context.Background()
	s := openStream(t, f.streamRequest(t, viewerToken))
	snap := expect(s, "snapshot", func(Snapshot) bool { return true })
	if s.retry == "" {
		t.Error("the stream does not tell the browser when to reconnect")
	}
	if len(snap.Sites) != 1 || snap.Sites[0].Name != "江海化工储运有限公司" || len(snap.Sources) != 2 || len(snap.Alarms) != 0 || len(snap.Gateways) != 0 {
		t.Fatalf("snapshot of a calm plant with no data yet = %+v", snap)
	}
	for _, src := range snap.Sources {
		if src.Grade != protocol.None || src.Data {
			t.Errorf("source %s before any reading: grade %v, data %v; want none, no data", src.Source, src.Grade, src.Data)
		}
	}
	if n := testutil.ToFloat64(f.con.streams); n != 1 {
		t.Errorf("hazardwatch_console_streams = %v with one console, want 1", n)
	}

	// Readings arrive for the NH3 tank farm: it has data, the LPG farm not.
	now := time.Now()
	if err := f.store.Append(ctx, []storage.Sample{{Site: "jh-chem", Gateway: "gw-tank", Source: "nh3-tanks", Point: "nh3-gas-1",
		Time: now, Value: 2, HasValue: true, Quality: protocol.Good}}); err != nil {
		t.Fatal(err)
	}
	src := expect(s, "source", func(v Source) bool { return v.Source == "nh3-tanks" })
	if !src.Data || src.Name != "液氨储罐区" || src.GB18218 != 2 {
		t.Errorf("source event on data = %+v", src)
	}
	// A gateway comes online.
	f.gws.set(ingest.GatewayStatus{Site: "jh-chem", Gateway: "gw-tank", State: protocol.Online, Since: now, Updated: now})
	gw := expect(s, "gateway", func(Gateway) bool { return true })
	if gw.Gateway != "gw-tank" || gw.State != protocol.Online || !gw.Since.Equal(now) {
		t.Errorf("gateway event = %+v", gw)
	}

	// A warning, and the source's grade.
	hh := "jh-chem/nh3-tanks/nh3-gas-1/HH"
	if err := f.alarm.HandleEvents(ctx, []rules.Event{raise(hh, protocol.Orange, now), sourceGrade("jh-chem", "nh3-tanks", protocol.Orange, protocol.None, now)}); err != nil {
		t.Fatal(err)
	}
	ch := expect(s, "alarm", func(AlarmChange) bool { return true })
	if ch.Event.Type != protocol.AlarmRaised || ch.Alarm == nil || ch.Alarm.ID != hh || ch.Alarm.State != protocol.StateUnacked || ch.Alarm.Grade != protocol.Orange {
		t.Errorf("alarm event = %+v / %+v", ch.Event, ch.Alarm)
	}
	src = expect(s, "source", func(Source) bool { return true })
	if src.Source != "nh3-tanks" || src.Grade != protocol.Orange || !src.Data || src.Since.IsZero() {
		t.Errorf("source grade event = %+v; want nh3-tanks orange, still with data", src)
	}

	// An officer acknowledges; then the condition clears and the alarm
	// leaves the list.
	if _, err := f.alarm.Ack(ctx, hh, "王工", "收到"); err != nil {
		t.Fatal(err)
	}
	ch = expect(s, "alarm", func(AlarmChange) bool { return true })
	if ch.Event.Type != protocol.AlarmAcknowledged || ch.Event.Actor != "王工" || ch.Alarm == nil || ch.Alarm.State != protocol.StateAcked {
		t.Errorf("acknowledgement on the stream = %+v / %+v", ch.Event, ch.Alarm)
	}
	// A comment comes on the stream with the alarm as it was.
	if _, err := f.alarm.Comment(ctx, hh, "李工", "已通知巡检"); err != nil {
		t.Fatal(err)
	}
	ch = expect(s, "alarm", func(AlarmChange) bool { return true })
	if ch.Event.Type != protocol.AlarmCommented || ch.Event.Actor != "李工" || ch.Event.Comment != "已通知巡检" || ch.Alarm == nil || ch.Alarm.State != protocol.StateAcked {
		t.Errorf("comment on the stream = %+v / %+v", ch.Event, ch.Alarm)
	}
	clear := rules.Event{Type: rules.Cleared, Key: hh, Site: "jh-chem", Source: "nh3-tanks", Point: "nh3-gas-1", Condition: rules.HH,
		PrevGrade: protocol.Orange, Time: now.Add(time.Second)}
	if err := f.alarm.HandleEvents(ctx, []rules.Event{clear}); err != nil {
		t.Fatal(err)
	}
	ch = expect(s, "alarm", func(AlarmChange) bool { return true })
	if ch.Event.Type != protocol.AlarmCleared || ch.Alarm != nil {
		t.Errorf("clear of an acknowledged alarm = %+v / %+v; want no alarm left", ch.Event, ch.Alarm)
	}

	// A second console gets today's picture in its snapshot.
	s2 := openStream(t, f.streamRequest(t, officerToken))
	snap = expect(s2, "snapshot", func(Snapshot) bool { return true })
	byID := map[string]Source{}
	for _, src := range snap.Sources {
		byID[src.Source] = src
	}
	if g := byID["nh3-tanks"]; g.Grade != protocol.Orange || !g.Data {
		t.Errorf("second console's nh3-tanks = %+v", g)
	}
	if g := byID["lpg-tanks"]; g.Grade != protocol.None || g.Data {
		t.Errorf("second console's lpg-tanks = %+v", g)
	}
	if len(snap.Gateways) != 1 || snap.Gateways[0].State != protocol.Online {
		t.Errorf("second console's gateways = %+v", snap.Gateways)
	}
	if n := testutil.ToFloat64(f.con.streams); n != 2 {
		t.Errorf("hazardwatch_console_streams = %v with two consoles, want 2", n)
	}
	s2.resp.Body.Close()
	testenv.Eventually(t, "the closed console no longer counted", 20*time.Second, func() bool { return testutil.ToFloat64(f.con.streams) == 1 })
}

// TestStreamNeedsLogin: without a credential, with an unknown token or a
// forged cookie, the stream and the snapshot answer 401; the session
// cookie of a login (never the token) opens the stream, until logout.
func TestStreamNeedsLogin(t *testing.T) {
	f := newFixture(t, tankFarm(t), nil)
	for _, path := range []string{"/api/stream", "/api/stream/snapshot"} {
		for _, tok := range []string{"", "not-a-token-of-this-centre", viewerToken} {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
			if tok != viewerToken {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			req.AddCookie(&http.Cookie{Name: access.CookieName, Value: tok}) // a token is no session id
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s with token %q: %s, want 401 with WWW-Authenticate", path, tok, resp.Status)
			}
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/api/session", f.auth.SessionHandler())
	mux.Handle("/", f.con.Handler())
	srv := httptest.NewServer(f.auth.Middleware(mux))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/session", "application/json", strings.NewReader(`{"username":"li.gong","password":"`+officerPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var info access.SessionInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %s %v", resp.Status, err)
	}
	resp.Body.Close()
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == access.CookieName {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.MaxAge <= 0 || ck.Value == officerPassword {
		t.Fatalf("session cookie = %+v; want HttpOnly, SameSite=Strict, Path=/, with an expiry", ck)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/stream", nil)
	req.AddCookie(ck)
	s := openStream(t, req)
	if m := s.next(); m.event != "snapshot" {
		t.Errorf("first event with the cookie: %q", m.event)
	}
	// Logging out revokes the session: the open stream ends, and the same
	// cookie opens nothing.
	req, _ = http.NewRequest(http.MethodDelete, srv.URL+"/api/session", nil)
	req.AddCookie(ck)
	req.Header.Set(access.CSRFHeader, info.CSRF)
	out, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if cs := out.Cookies(); out.StatusCode != http.StatusNoContent || len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Errorf("logout: %s %+v", out.Status, cs)
	}
	ended := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, s.r); ended <- err }()
	select {
	case <-ended:
	case <-time.After(20 * time.Second):
		t.Fatal("the stream of the logged-out session is still open")
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/api/stream/snapshot", nil)
	req.AddCookie(ck)
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusUnauthorized {
		t.Errorf("snapshot with the cookie after logout: %s, want 401", again.Status)
	}
}

// blockingWriter is a browser that stopped reading: every Write waits
// until the test lets it go.
type blockingWriter struct {
	header  http.Header
	release chan struct{}
	mu      sync.Mutex
	buf     strings.Builder
	writes  int
}

func (w *blockingWriter) Header() http.Header { return w.header }
func (w *blockingWriter) WriteHeader(int)     {}
func (w *blockingWriter) Flush()              {}
func (w *blockingWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	first := w.writes == 0
	w.writes++
	w.mu.Unlock()
	if !first {
		<-w.release
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(b)
}

func (w *blockingWriter) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestSlowConsoleGetsFreshSnapshot: a console that stops reading never
// holds up the others; once it reads again it gets a fresh snapshot
// (resync) with everything it missed, not a silent gap.
func TestSlowConsoleGetsFreshSnapshot(t *testing.T) {
	f := newFixture(t, tankFarm(t), func(c *Config) { c.ClientBuffer = 2 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := &blockingWriter{header: http.Header{}, release: make(chan struct{})}
	req := httptest.NewRequest(http.MethodGet, "/api/stream", nil).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	done := make(chan struct{})
	go func() { defer close(done); f.handler().ServeHTTP(slow, req) }()
	testenv.Eventually(t, "the slow console's snapshot", 20*time.Second, func() bool { return strings.Contains(slow.text(), "event: snapshot") })

	fast := openStream(t, f.streamRequest(t, viewerToken))
	expect(fast, "snapshot", func(Snapshot) bool { return true })
	now := time.Now()
	var keys []string
	for i := range 8 {
		k := fmt.Sprintf("jh-chem/nh3-tanks/nh3-gas-%d/H", i)
		keys = append(keys, k)
		if err := f.alarm.HandleEvents(context.Background(), []rules.Event{raise(k, protocol.Yellow, now.Add(time.Duration(i)*time.Millisecond))}); err != nil {
			t.Fatal(err)
		}
		// One at a time, so that only the stuck console falls behind.
		if ch := expect(fast, "alarm", func(AlarmChange) bool { return true }); ch.Event.AlarmID != k {
			t.Fatalf("fast console got %s, want %s", ch.Event.AlarmID, k)
		}
	}
	// The fast console has every event, so the stuck one was offered them
	// all and overflowed.
	close(slow.release)
	testenv.Eventually(t, "the slow console's fresh snapshot", 20*time.Second, func() bool { return strings.Contains(slow.text(), `"resync":true`) })
	text := slow.text()
	i := strings.LastIndex(text, "event: snapshot")
	var snap Snapshot
	data := strings.TrimPrefix(strings.SplitN(text[i:], "\n", 3)[1], "data: ")
	if err := json.Unmarshal([]byte(data), &snap); err != nil {
		t.Fatalf("resync snapshot: %v", err)
	}
	if len(snap.Alarms) != len(keys) {
		t.Errorf("resync snapshot has %d alarms, want all %d raised while the console was stuck", len(snap.Alarms), len(keys))
	}
	if n := testutil.ToFloat64(f.con.resyncs); n < 1 {
		t.Errorf("hazardwatch_console_resyncs_total = %v", n)
	}
	cancel()
	<-done
}

// TestHeartbeatAndShutdown: an idle stream gets comment lines; a graceful
// HTTP server shutdown ends the streams instead of waiting for them.
func TestHeartbeatAndShutdown(t *testing.T) {
	f := newFixture(t, tankFarm(t), func(c *Config) { c.Heartbeat = 20 * time.Millisecond })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/api/stream", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	s := openStream(t, req)
	expect(s, "snapshot", func(Snapshot) bool { return true })
	readDone := make(chan error, 1)
	var pings atomic.Int32
	go func() {
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				readDone <- err
				return
			}
			if strings.HasPrefix(line, ": ping") {
				pings.Add(1)
			}
		}
	}()
	testenv.Eventually(t, "heartbeat comments on an idle stream", 20*time.Second, func() bool { return pings.Load() >= 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a console connected: %v", err)
	}
	select {
	case err := <-readDone:
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("stream ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end with the server")
	}
	// A closed console refuses new streams.
	resp := httptest.NewRecorder()
	req = httptest.NewRequest(http.MethodGet, "/api/stream", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	f.handler().ServeHTTP(resp, req)
	if resp.Code != http.StatusServiceUnavailable {
		t.Errorf("stream after shutdown: %d, want 503", resp.Code)
	}
}

// TestSitesChangedResyncs: after a reload of the site files every console
// gets a fresh snapshot with the sources now in force.
func TestSitesChangedResyncs(t *testing.T) {
	var mu sync.Mutex
	sites := tankFarm(t)
	f := newFixture(t, nil, func(c *Config) {
		c.Sites = func() []*site.Site { mu.Lock(); defer mu.Unlock(); return sites }
	})
	s := openStream(t, f.streamRequest(t, viewerToken))
	if snap := expect(s, "snapshot", func(Snapshot) bool { return true }); len(snap.Sources) != 2 {
		t.Fatalf("first snapshot has %d sources, want the tank farm's 2", len(snap.Sources))
	}
	mu.Lock()
	sites = append(slices.Clone(sites), testenv.ManySites(t, 1, 3)...)
	mu.Unlock()
	f.con.SitesChanged()
	snap := expect(s, "snapshot", func(Snapshot) bool { return true })
	if !snap.Resync || len(snap.Sites) != 2 || len(snap.Sources) != 5 {
		t.Errorf("snapshot after the reload: resync %v, %d sites, %d sources; want a resync with 2 sites, 5 sources", snap.Resync, len(snap.Sites), len(snap.Sources))
	}
}

// bigPlant loads 1,000 sources with 200 active alarms and their grades.
func bigPlant(t testing.TB, f *fixture) {
	t.Helper()
	now := time.Now()
	var events []rules.Event
	for i := range 200 {
		s := f.sites[i%10]
		src := s.Sources[i/10]
		g := protocol.Grade(1 + i%4)
		events = append(events, raise(s.ID+"/"+src.ID+"/"+src.Points[0].ID+"/H", g, now),
			sourceGrade(s.ID, src.ID, g, protocol.None, now))
	}
	if err := f.alarm.HandleEvents(context.Background(), events); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotAt1000Sources: the snapshot of 1,000 hazard sources and 200
// alarms is served whole.
func TestSnapshotAt1000Sources(t *testing.T) {
	f := newFixture(t, testenv.ManySites(t, 10, 100), nil)
	bigPlant(t, f)
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/api/stream/snapshot", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	graded := 0
	for _, s := range snap.Sources {
		if s.Grade != protocol.None {
			graded++
		}
	}
	if len(snap.Sites) != 10 || len(snap.Sources) != 1000 || len(snap.Alarms) != 200 || graded != 200 {
		t.Errorf("snapshot: %d sites, %d sources (%d graded), %d alarms; want 10, 1000 (200), 200",
			len(snap.Sites), len(snap.Sources), graded, len(snap.Alarms))
	}
}

// BenchmarkSnapshot1000Sources builds and encodes the first event a
// console gets at 1,000 hazard sources and 200 alarms.
func BenchmarkSnapshot1000Sources(b *testing.B) {
	f := benchFixture(b)
	bigPlant(b, f)
	ctx := context.Background()
	b.ReportAllocs()
	var size int
	for b.Loop() {
		size = len(frame("snapshot", f.con.snapshot(ctx, false)))
	}
	b.ReportMetric(float64(size), "bytes/snapshot")
}

func benchFixture(b *testing.B) *fixture {
	b.Helper()
	sites := testenv.ManySites(b, 10, 100)
	svc, err := alerting.New(alerting.Config{TickInterval: -1, ResendInterval: -1, FloodThreshold: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = svc.Close() })
	store, err := embedded.Open(b.TempDir(), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	f := &fixture{alarm: svc, store: store, gws: &gatewayStates{}, sites: sites}
	f.con, err = New(Config{Sites: func() []*site.Site { return sites }, Alarms: svc, Gateways: f.gws.get, Readings: store})
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// TestPageIsSelfContained: the page and its assets are served from the
// binary with a policy that lets nothing else run, and nothing in them
// points elsewhere (the command centre's network is closed).
func TestPageIsSelfContained(t *testing.T) {
	f := newFixture(t, tankFarm(t), nil)
	resp, page := f.getAsset(t, "/")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("page's Content-Security-Policy = %q", csp)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 2 {
		t.Fatalf("page references %v; want its script and style", refs)
	}
	texts := map[string]string{"/": page}
	for _, r := range refs {
		if !strings.HasPrefix(r[1], "/console/") {
			t.Errorf("page references %s, outside the console's assets", r[1])
			continue
		}
		resp, body := f.getAsset(t, r[1])
		want := map[bool]string{true: "text/javascript", false: "text/css"}[strings.HasSuffix(r[1], ".js")]
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Errorf("%s served as %q, want %s", r[1], ct, want)
		}
		texts[r[1]] = body
	}
	_, texts["/console/i18n.json"] = f.getAsset(t, "/console/i18n.json")
	for path, text := range texts {
		for _, u := range regexp.MustCompile(`(?:https?:)?//[a-zA-Z0-9.-]+\.[a-z]{2,}[^\s"')]*`).FindAllString(text, -1) {
			if u != "http://www.w3.org/2000/svg" { // the SVG namespace, a name only
				t.Errorf("%s refers to %s outside the centre", path, u)
			}
		}
	}
}

// TestDictionary: both languages have every label, and every label the
// page and its script use — including every grade, alarm state and alarm
// event type of the protocol — is in the dictionary.
func TestDictionary(t *testing.T) {
	raw, err := assets.ReadFile("assets/i18n.json")
	if err != nil {
		t.Fatal(err)
	}
	var dict map[string]map[string]string
	if err := json.Unmarshal(raw, &dict); err != nil {
		t.Fatalf("i18n.json: %v", err)
	}
	zh, en := dict["zh"], dict["en"]
	if len(dict) != 2 || len(zh) == 0 {
		t.Fatalf("i18n.json has languages %v; want zh and en", slices.Collect(func(yield func(string) bool) {
			for k := range dict {
				if !yield(k) {
					return
				}
			}
		}))
	}
	for k, v := range zh {
		if en[k] == "" || v == "" {
			t.Errorf("label %q: zh %q, en %q", k, v, en[k])
		}
	}
	for k := range en {
		if _, ok := zh[k]; !ok {
			t.Errorf("label %q is English only", k)
		}
	}
	page, _ := assets.ReadFile("assets/index.html")
	script, _ := assets.ReadFile("assets/app.js")
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`data-i18n(?:-placeholder)?="([^"]+)"`).FindAllStringSubmatch(string(page), -1) {
		used[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\bt\('([A-Za-z0-9_]+)'\s*[,)]`).FindAllStringSubmatch(string(script), -1) {
		used[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\['(?:ack|shelve|unshelve|rts|comment)', '([A-Za-z0-9_]+)'`).FindAllStringSubmatch(string(script), -1) {
		used[m[1]] = true // the action table
	}
	for g := protocol.None; g <= protocol.Red; g++ {
		used["grade_"+g.String()] = true
	}
	for _, s := range []protocol.AlarmState{protocol.StateNormal, protocol.StateUnacked, protocol.StateAcked, protocol.StateRTNUnacked,
		protocol.StateShelved, protocol.StateOutOfService} {
		used["state_"+string(s)] = true
	}
	for _, e := range []protocol.AlarmEventType{protocol.AlarmRaised, protocol.AlarmGradeChanged, protocol.AlarmCleared,
		protocol.AlarmSourceGradeChanged, protocol.AlarmAcknowledged, protocol.AlarmShelved, protocol.AlarmUnshelved,
		protocol.AlarmShelveExpired, protocol.AlarmOutOfService, protocol.AlarmReturnedToService, protocol.AlarmCommented, protocol.AlarmEscalated, protocol.AlarmFlood} {
		used["ev_"+string(e)] = true
	}
	for _, kind := range []string{"ack", "shelve", "unshelve", "rts", "comment"} {
		used["actionTitle_"+kind] = true
		if !strings.Contains(string(script), "['"+kind+"', 'act_"+kind+"'") {
			t.Errorf("the action table has no %s", kind)
		}
	}
	for _, k := range []string{"comment", "reason", "remark"} {
		used[k] = true // the action dialog's text labels
	}
	for _, kind := range []string{"timeline", "trend"} {
		used["act_"+kind] = true
	}
	if len(used) < 50 {
		t.Fatalf("found only %d labels in use; the patterns no longer match the page", len(used))
	}
	for k := range used {
		if _, ok := zh[k]; !ok {
			t.Errorf("label %q is used but not in i18n.json", k)
		}
	}
}
