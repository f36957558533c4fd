package access

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkTokenRequest: what a bearer token costs each request (Grafana,
// Prometheus) through Middleware.
func BenchmarkTokenRequest(b *testing.B) {
	tok, hash := NewToken()
	a, err := New(Config{Tokens: []Token{{Name: "grafana", Role: Viewer, Hash: hash}}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	h := a.Middleware(Require(View, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	req := httptest.NewRequest("GET", "/api/v1/query", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// BenchmarkSessionRequest: what the session cookie costs each request.
func BenchmarkSessionRequest(b *testing.B) {
	hash, err := HashPassword(testPassword)
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(Config{Accounts: []Account{{Name: "wang.li", Role: Officer, PasswordHash: hash}}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	id, _, _, _, err := a.Login(context.Background(), "wang.li", testPassword)
	if err != nil {
		b.Fatal(err)
	}
	h := a.Middleware(Require(View, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	req := httptest.NewRequest("GET", "/api/status", nil)
	req.AddCookie(&http.Cookie{Name: CookieName, Value: id})
	w := httptest.NewRecorder()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// BenchmarkLogin: one password check (bcrypt cost PasswordCost).
func BenchmarkLogin(b *testing.B) {
	hash, err := HashPassword(testPassword)
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(Config{Accounts: []Account{{Name: "wang.li", Role: Officer, PasswordHash: hash}},
		Session: Session{TTL: time.Hour}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, _, _, err := a.Login(context.Background(), "wang.li", testPassword); err != nil {
			b.Fatal(err)
		}
	}
}
