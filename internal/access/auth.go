package access

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// CookieName is the console session's cookie.
const CookieName = "hazardwatch_session"

// CSRFHeader must carry the session's CSRF token on every unsafe request
// (POST, PUT, PATCH, DELETE) authorised by the cookie.
const CSRFHeader = "X-HazardWatch-CSRF"

// Errors of Login and of requests.
var (
	ErrBadCredentials = errors.New("unknown user name or wrong password")
	ErrNoCredentials  = errors.New("log in first: a session cookie (POST /api/session) or Authorization: Bearer <token>")
	ErrBadToken       = errors.New("unknown API token")
	ErrBadCSRF        = errors.New("missing or wrong " + CSRFHeader + " header for a request made with the session cookie")
)

// Options are the Authenticator's plumbing.
type Options struct {
	// Now is the clock (default time.Now); tests pass a fake one.
	Now func() time.Time
	// Registerer takes the metrics; nil keeps them private.
	Registerer prometheus.Registerer
	Logger     *zap.Logger
}

// Authenticator checks passwords, sessions and tokens.
type Authenticator struct {
	cfg      Config
	now      func() time.Time
	log      *zap.Logger
	accounts map[string]Account // by lower-cased name
	tokens   map[string]Token   // by hash
	dummy    []byte             // compared against for unknown users: same time as a real check
	checks   chan struct{}      // bounds concurrent bcrypt checks: a login flood cannot take every core

	mu       sync.Mutex
	sessions map[[32]byte]*session // by SHA-256 of the id

	logins   *prometheus.CounterVec
	denied   *prometheus.CounterVec
	sessionG prometheus.GaugeFunc
}

type session struct {
	p       Principal
	csrf    string
	created time.Time
	expires time.Time
	// ended is cancelled by logout (and when swept): requests made with
	// the session, an open event stream above all, end with it.
	ended context.Context
	end   context.CancelFunc
}

// New checks cfg and returns an Authenticator holding no session.
func New(cfg Config, o Options) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Session.TTL == 0 {
		cfg.Session.TTL = DefaultSessionTTL
	}
	if cfg.Session.MaxSessions == 0 {
		cfg.Session.MaxSessions = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("no such account"), PasswordCost)
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	a := &Authenticator{cfg: cfg, now: o.Now, log: o.Logger, dummy: dummy, checks: make(chan struct{}, 2),
		accounts: map[string]Account{}, tokens: map[string]Token{}, sessions: map[[32]byte]*session{},
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "hazardwatch", Subsystem: "access", Name: "logins_total",
			Help: "Console logins by result (ok, refused)."}, []string{"result"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "hazardwatch", Subsystem: "access", Name: "denied_total",
			Help: "Requests refused by reason (no_credentials, bad_token, bad_csrf, forbidden)."}, []string{"reason"}),
	}
	a.sessionG = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "hazardwatch", Subsystem: "access", Name: "sessions",
		Help: "Console sessions held (expired ones included until swept)."}, func() float64 {
		a.mu.Lock()
		defer a.mu.Unlock()
		return float64(len(a.sessions))
	})
	for _, c := range []prometheus.Collector{a.logins, a.denied, a.sessionG} {
		if err := o.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("access metrics: %w", err)
		}
	}
	a.logins.WithLabelValues("ok")
	a.logins.WithLabelValues("refused")
	for _, acc := range cfg.Accounts {
		a.accounts[strings.ToLower(acc.Name)] = acc
	}
	for _, t := range cfg.Tokens {
		a.tokens[strings.ToLower(t.Hash)] = t
	}
	return a, nil
}

func (acc Account) principal() Principal {
	d := strings.TrimSpace(acc.Display)
	if d == "" {
		d = acc.Name
	}
	return Principal{Name: acc.Name, Display: d, Role: acc.Role, Scope: acc.Scope}
}

// Login checks a user name (any case) and password and starts a session:
// it returns the session id for the cookie and the session's CSRF token.
func (a *Authenticator) Login(ctx context.Context, name, password string) (id, csrf string, p Principal, expires time.Time, err error) {
	select {
	case a.checks <- struct{}{}:
		defer func() { <-a.checks }()
	case <-ctx.Done():
		return "", "", Principal{}, time.Time{}, ctx.Err()
	}
	acc, known := a.accounts[strings.ToLower(strings.TrimSpace(name))]
	hash := a.dummy
	if known {
		hash = []byte(acc.PasswordHash)
	}
	match := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
	if !known || !match || acc.Disabled {
		a.logins.WithLabelValues("refused").Inc()
		return "", "", Principal{}, time.Time{}, ErrBadCredentials
	}
	a.logins.WithLabelValues("ok").Inc()
	now := a.now()
	s := &session{p: acc.principal(), csrf: randomString(24), created: now, expires: now.Add(a.cfg.Session.TTL)}
	s.ended, s.end = context.WithCancel(context.Background())
	id = randomString(32)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweep(now)
	a.sessions[sha256.Sum256([]byte(id))] = s
	return id, s.csrf, s.p, s.expires, nil
}

// sweep drops expired sessions and, past MaxSessions, the oldest. Called
// with mu held.
func (a *Authenticator) sweep(now time.Time) {
	for k, s := range a.sessions {
		if !now.Before(s.expires) {
			a.drop(k)
		}
	}
	for len(a.sessions) >= a.cfg.Session.MaxSessions {
		var oldest [32]byte
		var at time.Time
		for k, s := range a.sessions {
			if at.IsZero() || s.created.Before(at) {
				oldest, at = k, s.created
			}
		}
		a.drop(oldest)
	}
}

// drop ends a session. Called with mu held.
func (a *Authenticator) drop(k [32]byte) {
	if s, ok := a.sessions[k]; ok {
		s.end()
		delete(a.sessions, k)
	}
}

// Logout ends a session and every request still running with it; an
// unknown id is no error.
func (a *Authenticator) Logout(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.drop(sha256.Sum256([]byte(id)))
}

// Session returns the principal of a live session.
func (a *Authenticator) Session(id string) (Principal, bool) {
	s, ok := a.session(id)
	if !ok {
		return Principal{}, false
	}
	return s.p, true
}

func (a *Authenticator) session(id string) (session, bool) {
	if id == "" {
		return session{}, false
	}
	k := sha256.Sum256([]byte(id))
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[k]
	if !ok {
		return session{}, false
	}
	if !a.now().Before(s.expires) {
		a.drop(k)
		return session{}, false
	}
	return *s, true
}

// Token returns the principal of a machine token.
func (a *Authenticator) Token(given string) (Principal, bool) {
	if given == "" {
		return Principal{}, false
	}
	t, ok := a.tokens[HashToken(given)]
	if !ok {
		return Principal{}, false
	}
	return Principal{Name: t.Name, Display: t.Name, Role: t.Role, Scope: t.Scope, Machine: true}, true
}

// bearer returns the token of an Authorization header whose scheme is
// Bearer in any case (RFC 9110 §11.1); ok is false without such a header.
func bearer(r *http.Request) (token string, ok bool) {
	scheme, rest, found := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// Middleware puts the principal of a valid token or session cookie into
// the request's context and passes every request on; it refuses only a
// request that presents a bad token (401) or an unsafe request by cookie
// without the session's CSRF token (403). Guard and Require refuse the
// anonymous.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := bearer(r); ok {
			p, known := a.Token(tok)
			if !known {
				a.denied.WithLabelValues("bad_token").Inc()
				Unauthorized(w, r, ErrBadToken)
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
			return
		}
		if ck, err := r.Cookie(CookieName); err == nil {
			if s, ok := a.session(ck.Value); ok {
				if !safeMethod(r.Method) && subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(s.csrf)) != 1 {
					a.denied.WithLabelValues("bad_csrf").Inc()
					writeError(w, http.StatusForbidden, ErrBadCSRF)
					return
				}
				// The request lasts no longer than the session: an open
				// stream ends at logout or expiry.
				ctx, cancel := context.WithTimeout(NewContext(r.Context(), s.p), s.expires.Sub(a.now()))
				defer cancel()
				defer context.AfterFunc(s.ended, cancel)()
				next.ServeHTTP(w, r.WithContext(ctx))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Guard refuses (401) every request without a principal except those
// public says may pass. Put it inside Middleware, around everything, so
// that an endpoint added later is closed by default.
func (a *Authenticator) Guard(next http.Handler, public func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := FromContext(r.Context()); !ok && !public(r) {
			a.denied.WithLabelValues("no_credentials").Inc()
			Unauthorized(w, r, ErrNoCredentials)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Require lets through principals whose role allows the action: 401
// without one, 403 when the role does not allow it. It reads only the
// context, so it works behind any Middleware.
func Require(act Action, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		if !ok {
			Unauthorized(w, r, ErrNoCredentials)
			return
		}
		if !p.May(act) {
			writeError(w, http.StatusForbidden, fmt.Errorf("%s (%s) may not %s", p.Name, p.Role, act))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Unauthorized answers 401: JSON for programs, a short page with a link
// to the login for browsers.
func Unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="hazardwatch"`)
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><title>HazardWatch: log in</title><p>%s</p><p><a href="/">登录 / Log in</a></p>`, html.EscapeString(err.Error()))
		return
	}
	writeError(w, http.StatusUnauthorized, err)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// SessionInfo answers the session endpoints.
type SessionInfo struct {
	Principal
	// CSRF is the value for the X-HazardWatch-CSRF header (sessions only).
	CSRF    string    `json:"csrf,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
}

// SessionHandler serves the console's login, mounted at /api/session
// outside Guard (it checks credentials itself):
//
//	POST   /api/session  {"username": "…", "password": "…"}: log in, set the cookie
//	GET    /api/session  who is logged in, and the CSRF token
//	DELETE /api/session  log out: the session is revoked
func (a *Authenticator) SessionHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/session", a.login)
	mux.HandleFunc("GET /api/session", func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		if !ok {
			Unauthorized(w, r, ErrNoCredentials)
			return
		}
		info := SessionInfo{Principal: p}
		if ck, err := r.Cookie(CookieName); err == nil && !p.Machine {
			if s, ok := a.session(ck.Value); ok {
				info.CSRF, info.Expires = s.csrf, s.expires
			}
		}
		writeJSON(w, http.StatusOK, info)
	})
	mux.HandleFunc("DELETE /api/session", func(w http.ResponseWriter, r *http.Request) {
		// Middleware has checked the CSRF token of a live session.
		if ck, err := r.Cookie(CookieName); err == nil {
			if _, ok := FromContext(r.Context()); ok {
				a.Logout(ck.Value)
			}
		}
		a.setCookie(w, r, "", -1)
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

const maxLoginBody = 4 << 10

func (a *Authenticator) login(w http.ResponseWriter, r *http.Request) {
	// JSON only: a form on another site cannot send it without the
	// browser asking first (CORS), so no one is logged in behind their back.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, errors.New(`log in with Content-Type: application/json and {"username": "…", "password": "…"}`))
		return
	}
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLoginBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("login body: %w", err))
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf(`login body is not {"username": "…", "password": "…"}: %w`, err))
		return
	}
	if strings.TrimSpace(req.Username) == "" || req.Password == "" {
		writeError(w, http.StatusBadRequest, errors.New("user name and password are required"))
		return
	}
	id, csrf, p, expires, err := a.Login(r.Context(), req.Username, req.Password)
	if err != nil {
		if errors.Is(err, ErrBadCredentials) {
			a.log.Warn("login refused", zap.String("user", req.Username), zap.String("remote", r.RemoteAddr))
			Unauthorized(w, r, err)
			return
		}
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	// A session the browser already had is replaced, not kept beside.
	if ck, err := r.Cookie(CookieName); err == nil {
		a.Logout(ck.Value)
	}
	a.log.Info("login", zap.String("user", p.Name), zap.String("role", string(p.Role)), zap.String("remote", r.RemoteAddr))
	a.setCookie(w, r, id, int(expires.Sub(a.now()).Seconds()))
	writeJSON(w, http.StatusOK, SessionInfo{Principal: p, CSRF: csrf, Expires: expires})
}

func (a *Authenticator) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	ck := &http.Cookie{Name: CookieName, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || a.cfg.Session.SecureCookie, MaxAge: maxAge}
	if maxAge > 0 {
		ck.Expires = a.now().Add(time.Duration(maxAge) * time.Second)
	}
	http.SetCookie(w, ck)
}
