package access

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
)

var (
	hashOnce sync.Once
	testHash string
)

const testPassword = "correct horse battery"

func passwordHash(t *testing.T) string {
	t.Helper()
	hashOnce.Do(func() {
		var err error
		if testHash, err = HashPassword(testPassword); err != nil {
			t.Fatal(err)
		}
	})
	return testHash
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newAuth(t *testing.T, now *clock, tokens ...Token) *Authenticator {
	t.Helper()
	cfg := Config{Accounts: []Account{
		{Name: "wang.li", Display: "王丽", Role: Officer, Scope: Scope{Sites: []string{"jh-chem"}}, PasswordHash: passwordHash(t)},
		{Name: "viewer", Role: Viewer, PasswordHash: passwordHash(t)},
		{Name: "gone", Role: Officer, PasswordHash: passwordHash(t), Disabled: true},
		{Name: "wall", Role: Viewer, PasswordHash: passwordHash(t), SessionTTL: 30 * 24 * time.Hour},
	}, Tokens: tokens, Session: Session{TTL: time.Hour}}
	a, err := New(cfg, Options{Now: now.Now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLoginLogoutExpiry(t *testing.T) {
	now := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	a := newAuth(t, now)
	ctx := context.Background()
	for _, c := range []struct{ name, pw string }{{"wang.li", "wrong password"}, {"nobody", testPassword}, {"gone", testPassword}, {"wang.li", ""}} {
		if _, _, _, _, err := a.Login(ctx, c.name, c.pw); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Login(%q, %q) = %v, want ErrBadCredentials", c.name, c.pw, err)
		}
	}
	id, csrf, p, exp, err := a.Login(ctx, "WANG.LI", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "wang.li" || p.Display != "王丽" || p.Role != Officer || p.Machine || len(id) < 40 || csrf == "" || !exp.Equal(now.Now().Add(time.Hour)) {
		t.Fatalf("login: id %q csrf %q principal %+v expires %s", id, csrf, p, exp)
	}
	id2, _, _, _, err := a.Login(ctx, "wang.li", testPassword)
	if err != nil || id2 == id {
		t.Fatalf("second login: id %q (first %q), %v: want a fresh id", id2, id, err)
	}
	if got, ok := a.Session(id); !ok || got.Name != "wang.li" {
		t.Fatalf("Session(id) = %+v, %v", got, ok)
	}
	now.Add(59 * time.Minute)
	if _, ok := a.Session(id); !ok {
		t.Fatal("session ended before its TTL")
	}
	now.Add(time.Minute)
	if _, ok := a.Session(id); ok {
		t.Fatal("session alive at its expiry")
	}
	a.Logout(id2)
	if _, ok := a.Session(id2); ok {
		t.Fatal("session alive after logout")
	}
	// A wall screen's account keeps its own, longer TTL.
	wall, _, _, exp, err := a.Login(ctx, "wall", testPassword)
	if err != nil || !exp.Equal(now.Now().Add(30*24*time.Hour)) {
		t.Fatalf("wall login: expires %s, %v", exp, err)
	}
	now.Add(29 * 24 * time.Hour)
	if _, ok := a.Session(wall); !ok {
		t.Fatal("the wall's session ended before its own TTL")
	}
}

func TestTokensStoredHashed(t *testing.T) {
	tok, hash := NewToken()
	if strings.Contains(hash, tok) || !strings.HasPrefix(hash, "sha256:") {
		t.Fatalf("hash %q of %q", hash, tok)
	}
	a := newAuth(t, &clock{t: time.Now()}, Token{Name: "grafana", Role: Viewer, Hash: hash})
	if p, ok := a.Token(tok); !ok || p.Name != "grafana" || !p.Machine || p.Role != Viewer {
		t.Fatalf("Token(token) = %+v, %v", p, ok)
	}
	for _, bad := range []string{hash, strings.TrimPrefix(hash, "sha256:"), tok + "x", tok[:len(tok)-1], ""} {
		if _, ok := a.Token(bad); ok {
			t.Errorf("Token(%q) accepted", bad)
		}
	}
	err := Config{Tokens: []Token{{Name: "old", Role: Viewer, Token: "officer-token-change-me"}}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "plain-text tokens are not accepted") {
		t.Fatalf("a plain token in the config: %v", err)
	}
}

func TestConfigRefused(t *testing.T) {
	h := passwordHash(t)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Accounts: []Account{{Name: " ", Role: Officer, PasswordHash: h}}}, `name " "`},
		{Config{Accounts: []Account{{Name: "a", Role: Officer, PasswordHash: h}, {Name: "A", Role: Viewer, PasswordHash: h}}}, "is taken by account 1"},
		{Config{Accounts: []Account{{Name: "a", Role: "operator", PasswordHash: h}}}, `role "operator"`},
		{Config{Accounts: []Account{{Name: "a", Role: Officer, PasswordHash: "secret123456"}}}, "not a bcrypt hash"},
		{Config{Accounts: []Account{{Name: "a", Role: Officer, PasswordHash: h, Display: "  "}}}, "display is blank"},
		{Config{Accounts: []Account{{Name: "a", Role: Supervisor, PasswordHash: h, Scope: Scope{Region: "35048"}}}}, "GB/T 2260"},
		{Config{Tokens: []Token{{Name: "g", Role: Viewer, Hash: "sha256:abc"}}}, "64 hex digits"},
		{Config{Session: Session{TTL: -time.Second}}, "session.ttl"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	if _, err := HashPassword("short"); err == nil {
		t.Error("a 5-character password hashed")
	}
}

func TestRolesAndScopes(t *testing.T) {
	for _, c := range []struct {
		role Role
		act  Action
		want bool
	}{
		{Viewer, View, true}, {Viewer, Acknowledge, false}, {Viewer, Comment, false},
		{Officer, Acknowledge, true}, {Officer, Shelve, true}, {Officer, Dispose, true}, {Officer, Urge, false}, {Officer, AdminAct, false},
		{Supervisor, View, true}, {Supervisor, Comment, true}, {Supervisor, Urge, true}, {Supervisor, Escalate, true}, {Supervisor, Acknowledge, false},
		{Admin, AdminAct, true}, {Admin, Shelve, true}, {"", View, false},
	} {
		if got := (Principal{Name: "x", Role: c.role}).May(c.act); got != c.want {
			t.Errorf("%s may %s = %v, want %v", c.role, c.act, got, c.want)
		}
	}
	if (Principal{Role: Admin}).May(View) {
		t.Error("a principal without a name may view")
	}
	for _, c := range []struct {
		s                 Scope
		site, region, ent string
		want              bool
	}{
		{Scope{}, "jh-chem", "", "", true},
		{Scope{Region: "3504"}, "jh-chem", "350481", "", true},
		{Scope{Region: "3504"}, "jh-chem", "350581", "", false},
		{Scope{Region: "3504"}, "jh-chem", "", "", false},
		{Scope{Region: "350481", Enterprises: []string{"91350481MA"}}, "jh-chem", "350481", "91350481MA", true},
		{Scope{Region: "350481", Enterprises: []string{"91350481MA"}}, "jh-chem", "350481", "91350481XX", false},
		{Scope{Sites: []string{"jh-chem"}}, "xs-coal", "350481", "", false},
		{Scope{Sites: []string{"jh-chem"}}, "jh-chem", "", "", true},
	} {
		if got := c.s.Covers(c.site, c.region, c.ent); got != c.want {
			t.Errorf("%+v covers (%s, %s, %s) = %v, want %v", c.s, c.site, c.region, c.ent, got, c.want)
		}
	}
}

// TestHTTP: the login, the cookie, CSRF, the case-insensitive Bearer
// scheme, logout revoking the session, and Guard's 401.
func TestHTTP(t *testing.T) {
	now := &clock{t: time.Now()}
	tok, hash := NewToken()
	a := newAuth(t, now, Token{Name: "grafana", Role: Viewer, Hash: hash})
	mux := http.NewServeMux()
	mux.Handle("/api/session", a.SessionHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.Handle("GET /api/data", Require(View, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := FromContext(r.Context())
		io.WriteString(w, p.Name)
	})))
	mux.Handle("POST /api/act", Require(Acknowledge, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := FromContext(r.Context())
		io.WriteString(w, "acted as "+p.Name)
	})))
	srv := httptest.NewServer(a.Middleware(a.Guard(mux, func(r *http.Request) bool {
		return r.URL.Path == "/healthz" || r.URL.Path == "/api/session"
	})))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	do := func(method, path, body string, hdr ...string) (int, string) {
		t.Helper()
		return testenv.Call(t, cl, method, srv.URL+path, body, hdr...)
	}
	want := func(what string, code int, body string, wantCode int, wantBody string) {
		t.Helper()
		if code != wantCode || !strings.Contains(body, wantBody) {
			t.Fatalf("%s: %d %s, want %d with %q", what, code, body, wantCode, wantBody)
		}
	}
	code, body := do("GET", "/healthz", "")
	want("health check without credentials", code, body, 200, "ok")
	code, body = do("GET", "/api/data", "")
	want("data without credentials", code, body, 401, "log in first")
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		code, body = do("GET", "/api/data", "", "Authorization", scheme+" "+tok)
		want(scheme+" token", code, body, 200, "grafana")
	}
	code, body = do("GET", "/api/data", "", "Authorization", "Bearer "+hash)
	want("the hash as a token", code, body, 401, "unknown API token")
	code, body = do("POST", "/api/act", "", "Authorization", "Bearer "+tok)
	want("viewer token acting", code, body, 403, "may not acknowledge")

	login := `{"username":"wang.li","password":"` + testPassword + `"}`
	code, body = do("POST", "/api/session", login, "Content-Type", "application/x-www-form-urlencoded")
	want("form login", code, body, 415, "application/json")
	code, body = do("POST", "/api/session", `{"username":"wang.li","password":"nope nope nope"}`, "Content-Type", "application/json")
	want("wrong password", code, body, 401, "wrong password")
	code, body = do("POST", "/api/session", login, "Content-Type", "application/json")
	want("login", code, body, 200, `"name":"wang.li"`)
	var info SessionInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil || info.CSRF == "" {
		t.Fatalf("login answer %s: %v", body, err)
	}
	u, _ := http.NewRequest("GET", srv.URL, nil)
	cks := jar.Cookies(u.URL)
	if len(cks) != 1 || cks[0].Name != CookieName || strings.Contains(body, cks[0].Value) {
		t.Fatalf("cookies after login %+v; the id must not be in the body %s", cks, body)
	}
	code, body = do("GET", "/api/data", "")
	want("data with the cookie", code, body, 200, "wang.li")
	code, body = do("POST", "/api/act", "")
	want("action by cookie without CSRF", code, body, 403, CSRFHeader)
	code, body = do("POST", "/api/act", "", CSRFHeader, "wrong")
	want("action by cookie with a wrong CSRF", code, body, 403, CSRFHeader)
	code, body = do("POST", "/api/act", "", CSRFHeader, info.CSRF)
	want("action by cookie with CSRF", code, body, 200, "acted as wang.li")
	code, body = do("GET", "/api/session", "")
	want("who am I", code, body, 200, info.CSRF)
	id := cks[0].Value
	code, body = do("DELETE", "/api/session", "")
	want("logout without CSRF", code, body, 403, CSRFHeader)
	code, _ = do("DELETE", "/api/session", "", CSRFHeader, info.CSRF)
	if code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	if _, ok := a.Session(id); ok {
		t.Fatal("session alive after logout")
	}
	// The revoked id, sent again by a client that kept it, is refused.
	code, body = do("GET", "/api/data", "", "Cookie", CookieName+"="+id)
	want("revoked session", code, body, 401, "log in first")

	code, body = do("POST", "/api/session", login, "Content-Type", "application/json")
	want("login again", code, body, 200, `"role":"officer"`)
	now.Add(2 * time.Hour)
	code, body = do("GET", "/api/data", "")
	want("expired session", code, body, 401, "log in first")
	code, body = do("GET", "/status", "", "Accept", "text/html")
	want("a browser without a session", code, body, 401, `href="/"`)
}

// TestSessionEndsItsRequests: a request still running with a session (an
// open event stream) ends when the session is revoked, and when it
// expires.
func TestSessionEndsItsRequests(t *testing.T) {
	a, err := New(Config{Accounts: []Account{{Name: "wang.li", Role: Officer, PasswordHash: passwordHash(t)}},
		Session: Session{TTL: 3 * time.Second}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 2)
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := FromContext(r.Context()); !ok {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		ended <- r.Context().Err()
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	open := func(id string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/api/stream", nil)
		req.AddCookie(&http.Cookie{Name: CookieName, Value: id})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("open a request with the session: %s", resp.Status)
		}
		return resp
	}
	wait := func(what string) {
		t.Helper()
		select {
		case err := <-ended:
			if err == nil {
				t.Fatalf("%s: the request ended without its context", what)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: the request is still running", what)
		}
	}
	id, _, _, _, err := a.Login(context.Background(), "wang.li", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	open(id)
	a.Logout(id)
	wait("logout")
	id, _, _, _, err = a.Login(context.Background(), "wang.li", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	open(id)
	wait("expiry")
	if _, ok := a.Session(id); ok {
		t.Fatal("the session outlived its TTL")
	}
}

// TestLoginThrottled: a client that guessed wrong MaxLoginFailures times is
// refused (429), even with the right password, until the window ends;
// the account itself is not locked for other clients.
func TestLoginThrottled(t *testing.T) {
	now := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	a := newAuth(t, now)
	h := a.SessionHandler()
	login := func(remote, password string) int {
		t.Helper()
		req := httptest.NewRequest("POST", "/api/session", strings.NewReader(`{"username":"wang.li","password":"`+password+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := range MaxLoginFailures {
		if code := login("192.0.2.7:4000"+strings.Repeat("1", i%2), "wrong password"); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i+1, code)
		}
	}
	if code := login("192.0.2.7:5000", testPassword); code != http.StatusTooManyRequests {
		t.Fatalf("the right password after %d guesses from the address: %d, want 429", MaxLoginFailures, code)
	}
	if code := login("198.51.100.3:4000", testPassword); code != http.StatusOK {
		t.Fatalf("the officer from another address: %d, want 200", code)
	}
	now.Add(LoginFailureWindow)
	if code := login("192.0.2.7:5000", testPassword); code != http.StatusOK {
		t.Fatalf("after the window: %d, want 200", code)
	}
}
