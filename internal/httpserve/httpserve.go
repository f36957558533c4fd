// Package httpserve is the one HTTP server setup of HazardWatch's binaries:
// timeouts for reading a request's header and body, for writing its answer
// (except on event streams, which live for hours), for idle keep-alive
// connections, a bound on header bytes, and a bound on open connections
// that closes the oldest idle ones first, so a flood of idle or slow
// connections from one client neither exhausts file descriptors nor keeps
// /healthz from answering.
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Limits.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxConns          = 1024
)

// Limits bound what one connection and all of them may take. Zero values
// take the defaults above.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's header (slow-header
	// clients); ReadTimeout the whole request with its body.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// WriteTimeout bounds a handler's answer, from the end of the request
	// header; not applied to Streams.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header.
	MaxHeaderBytes int
	// MaxConns bounds the open connections. At the bound a new connection
	// closes the oldest one that is idle or has not yet sent a request;
	// when every connection is busy with a request, the new one is closed.
	MaxConns int
	// Streams are the paths (exact, or prefixes ending in "/") of
	// long-lived answers — server-sent events — that get no read or write
	// deadline.
	Streams []string
	// Registerer, when set, receives the connection metrics.
	Registerer prometheus.Registerer
}

func (l *Limits) defaults() {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
}

// Server is an http.Server with Limits. Serve it on a listener with Serve.
type Server struct {
	*http.Server
	conns *conns
}

// New returns a server of handler with the limits.
func New(handler http.Handler, lim Limits) *Server {
	lim.defaults()
	cs := newConns(lim.MaxConns, lim.Registerer)
	srv := &http.Server{
		Handler:           deadlines(handler, lim),
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		// ReadTimeout and WriteTimeout are set per request by deadlines,
		// so that streams can go without.
		IdleTimeout:    lim.IdleTimeout,
		MaxHeaderBytes: lim.MaxHeaderBytes,
		ConnState:      cs.state,
	}
	return &Server{Server: srv, conns: cs}
}

// Serve accepts connections on ln, within MaxConns, until Shutdown or
// Close; it returns http.ErrServerClosed then.
func (s *Server) Serve(ln net.Listener) error {
	return s.Server.Serve(&listener{Listener: ln, conns: s.conns})
}

// ServeBackground serves ln on its own goroutine, reporting an error other
// than a closed server to onError (may be nil).
func (s *Server) ServeBackground(ln net.Listener, onError func(error)) {
	go func() {
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && onError != nil {
			onError(err)
		}
	}()
}

// ShutdownWithin shuts the server down gracefully, closing what is still
// open after d.
func (s *Server) ShutdownWithin(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := s.Shutdown(ctx)
	if err != nil {
		_ = s.Close()
	}
	return err
}

// deadlines sets each request's read and write deadlines, except on
// streams.
func deadlines(next http.Handler, lim Limits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isStream(r.URL.Path, lim.Streams) {
			rc := http.NewResponseController(w)
			now := time.Now()
			// Errors mean the writer cannot take deadlines (a test
			// recorder): then there is nothing to bound.
			_ = rc.SetReadDeadline(now.Add(lim.ReadTimeout))
			_ = rc.SetWriteDeadline(now.Add(lim.WriteTimeout))
		}
		next.ServeHTTP(w, r)
	})
}

func isStream(path string, streams []string) bool {
	for _, s := range streams {
		if path == s || (strings.HasSuffix(s, "/") && strings.HasPrefix(path, s)) {
			return true
		}
	}
	return false
}

// listener counts the connections it accepted and makes room at the bound.
type listener struct {
	net.Listener
	conns *conns
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc := l.conns.admit(c); tc != nil {
			return tc, nil
		}
		// Every connection is busy with a request: this one waits for
		// none of them.
		_ = c.Close()
	}
}

// conns tracks the open connections and the state of each.
type conns struct {
	max int
	mu  sync.Mutex
	// open maps each connection to when it last became evictable (new or
	// idle); zero while it is serving a request.
	open map[*conn]time.Time

	refused, evicted prometheus.Counter
}

func newConns(max int, reg prometheus.Registerer) *conns {
	cs := &conns{max: max, open: map[*conn]time.Time{},
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "hazardwatch_http_connections_refused_total",
			Help: "Connections closed at once because every open connection was serving a request at the bound."}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{Name: "hazardwatch_http_connections_evicted_total",
			Help: "Idle or silent connections closed to make room for a new one at the bound."}),
	}
	if reg != nil {
		open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hazardwatch_http_connections_open",
			Help: "Open HTTP connections."}, func() float64 {
			cs.mu.Lock()
			defer cs.mu.Unlock()
			return float64(len(cs.open))
		})
		for _, c := range []prometheus.Collector{cs.refused, cs.evicted, open} {
			_ = reg.Register(c) // a second server on one registry shares the first's
		}
	}
	return cs
}

// admit returns c tracked, making room by closing the oldest evictable
// connection at the bound, or nil when there is none.
func (cs *conns) admit(c net.Conn) *conn {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.open) >= cs.max {
		var victim *conn
		var since time.Time
		for oc, t := range cs.open {
			if !t.IsZero() && (victim == nil || t.Before(since)) {
				victim, since = oc, t
			}
		}
		if victim == nil {
			cs.refused.Inc()
			return nil
		}
		delete(cs.open, victim)
		cs.evicted.Inc()
		// The raw connection: its wrapper's Close would take cs.mu. The
		// server sees the read fail and forgets it.
		_ = victim.Conn.Close()
	}
	tc := &conn{Conn: c, cs: cs}
	cs.open[tc] = time.Now()
	return tc
}

// state follows http.Server's view of each connection.
func (cs *conns) state(c net.Conn, st http.ConnState) {
	tc, ok := c.(*conn)
	if !ok {
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if _, open := cs.open[tc]; !open {
		return
	}
	switch st {
	case http.StateActive, http.StateHijacked:
		cs.open[tc] = time.Time{}
		if st == http.StateHijacked {
			delete(cs.open, tc)
		}
	case http.StateIdle:
		cs.open[tc] = time.Now()
	case http.StateClosed:
		delete(cs.open, tc)
	}
}

// conn is a connection counted by conns until it closes.
type conn struct {
	net.Conn
	cs   *conns
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.cs.mu.Lock()
		delete(c.cs.open, c)
		c.cs.mu.Unlock()
	})
	return c.Conn.Close()
}
