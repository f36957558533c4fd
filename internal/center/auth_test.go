package center

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/site"
)

const (
	testViewerToken  = "center-test-viewer-token-0123456789"
	testOfficerPass  = "center-test-officer-password"
	testOfficerLogin = "li.gong"
)

var (
	officerHashOnce sync.Once
	officerHash     string
)

// testAccess is an officer account and a viewer token.
func testAccess(t *testing.T) access.Config {
	t.Helper()
	officerHashOnce.Do(func() {
		var err error
		if officerHash, err = access.HashPassword(testOfficerPass); err != nil {
			t.Fatal(err)
		}
	})
	return access.Config{
		Accounts: []access.Account{{Name: testOfficerLogin, Display: "李工", Role: access.Officer, PasswordHash: officerHash}},
		Tokens:   []access.Token{{Name: "grafana", Role: access.Viewer, Hash: access.HashToken(testViewerToken)}},
	}
}

func openCenterWith(t *testing.T, broker, dir string, sites []*site.Site, acc access.Config) *Center {
	t.Helper()
	c, err := Open(context.Background(), Config{Sites: sites, Broker: broker, DataDir: dir, ClientID: "auth-test", Access: acc})
	if err != nil {
		t.Fatalf("open centre: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func tankFarm(t *testing.T) []*site.Site {
	t.Helper()
	raw, err := os.ReadFile("../../configs/sites/tank-farm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return loadSite(t, string(raw))
}

// endpoints are every endpoint of the centre that holds data or acts.
var endpoints = []struct{ method, path string }{
	{"GET", "/status"},
	{"GET", "/api/status"},
	{"GET", "/api/gateways"},
	{"GET", "/api/deadletters"},
	{"GET", "/metrics"},
	{"GET", "/api/points/latest?site=jh-chem"},
	{"GET", "/api/points/jh-chem/nh3-gas-1/history"},
	{"GET", "/api/v1/query?query=hazardwatch_value"},
	{"POST", "/api/v1/query?query=hazardwatch_value"},
	{"GET", "/api/v1/query_range?query=hazardwatch_value&start=0&end=60&step=15"},
	{"GET", "/api/v1/series?match[]=hazardwatch_value"},
	{"GET", "/api/v1/labels"},
	{"GET", "/api/v1/label/point/values"},
	{"GET", "/api/v1/status/buildinfo"},
	{"GET", "/api/v1/metadata"},
	{"GET", "/api/alarms"},
	{"GET", "/api/alarms/" + url.PathEscape("jh-chem/nh3-tanks/nh3-gas-1/H")},
	{"GET", "/api/alarms/" + url.PathEscape("jh-chem/nh3-tanks/nh3-gas-1/H") + "/timeline"},
	{"GET", "/api/history"},
	{"GET", "/api/officers/li.gong/actions"},
	{"GET", "/api/sources"},
	{"GET", "/api/regions"},
	{"GET", "/api/regions"},
	{"GET", "/api/outbox"},
	{"GET", "/api/floods"},
	{"GET", "/api/deadletters/alerting"},
	{"POST", "/api/alarms/" + url.PathEscape("jh-chem/nh3-tanks/nh3-gas-1/H") + "/ack"},
	{"POST", "/api/alarms/" + url.PathEscape("jh-chem/nh3-tanks/nh3-gas-1/H") + "/shelve"},
	{"POST", "/api/alarms/" + url.PathEscape("jh-chem/nh3-tanks/nh3-gas-1/H") + "/unshelve"},
	{"POST", "/api/alarms/" + url.PathEscape("jh-chem/nh3-tanks/nh3-gas-1/H") + "/out-of-service"},
	{"POST", "/api/alarms/" + url.PathEscape("jh-chem/nh3-tanks/nh3-gas-1/H") + "/return-to-service"},
	{"POST", "/api/alarms/" + url.PathEscape("jh-chem/nh3-tanks/nh3-gas-1/H") + "/comment"},
	{"GET", "/api/incidents"},
	{"GET", "/api/incidents/1"},
	{"GET", "/api/incidents/1/timeline"},
	{"POST", "/api/incidents/1/ack"},
	{"POST", "/api/incidents/1/disposal"},
	{"GET", "/api/stream"},
	{"GET", "/api/stream/snapshot"},
	// Not endpoints: closed all the same, so nothing added later is open
	// by mistake.
	{"GET", "/api/no-such-endpoint"},
	{"GET", "/no-such-page"},
	{"POST", "/api/stream/session"},
	{"POST", "/"},
	{"DELETE", "/console/app.js"},
}

// TestEveryEndpointNeedsCredentials: over the real centre's handler, every
// endpoint without a credential, with an unknown token, or with a revoked
// or expired session answers 401 and shows no data; with a viewer token
// (the scheme in any case) each answers; the health checks, the login and
// the console's static page answer without one and reveal nothing.
func TestEveryEndpointNeedsCredentials(t *testing.T) {
	broker := testenv.Mosquitto(t)
	c := openCenterWith(t, broker.URL(), t.TempDir(), tankFarm(t), testAccess(t))
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()

	call := func(method, path string, hdr ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			return resp.StatusCode, "" // the stream never ends: its status is the answer
		}
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, e := range endpoints {
		for _, cred := range [][]string{
			nil,
			{"Authorization", "Bearer not-a-token-of-this-centre"},
			{"Authorization", "Bearer " + access.HashToken(testViewerToken)},
			{"Authorization", "Basic " + testViewerToken},
			{"Cookie", access.CookieName + "=" + testViewerToken},
			{"Accept", "text/html"},
		} {
			code, body := call(e.method, e.path, cred...)
			if code != http.StatusUnauthorized {
				t.Errorf("%s %s with %q: %d, want 401", e.method, e.path, cred, code)
			}
			for _, secret := range []string{"nh3-gas-1\"", "jh-chem\"", "hazardwatch_", broker.URL()} {
				if strings.Contains(body, secret) {
					t.Errorf("%s %s with %q answers data (%s): %s", e.method, e.path, cred, secret, body)
				}
			}
		}
	}
	// With a token every one answers (a POST action refused as forbidden
	// to a viewer, an unknown path as not found).
	for i, e := range endpoints {
		scheme := []string{"Bearer", "bearer", "BEARER"}[i%3]
		code, _ := call(e.method, e.path, "Authorization", scheme+" "+testViewerToken)
		want := http.StatusOK
		switch {
		case strings.Contains(e.path, "no-such") || e.path == "/api/stream/session":
			want = http.StatusNotFound
		case e.method == "POST" && (strings.HasPrefix(e.path, "/api/alarms/") || strings.HasPrefix(e.path, "/api/incidents/")):
			want = http.StatusForbidden
		case e.method == "POST" && e.path == "/", e.method == "DELETE":
			want = http.StatusMethodNotAllowed
		case strings.HasPrefix(e.path, "/api/alarms/") && !strings.HasSuffix(e.path, "/timeline"),
			strings.HasPrefix(e.path, "/api/incidents/"):
			want = http.StatusNotFound // no such alarm or incident yet
		}
		if code != want {
			t.Errorf("%s %s with a viewer token (%s): %d, want %d", e.method, e.path, scheme, code, want)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		code, body := call("GET", p)
		if code != http.StatusOK && code != http.StatusServiceUnavailable {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
		if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "tcp://") || strings.Contains(body, "jh-chem") {
			t.Errorf("GET %s reveals %q", p, body)
		}
	}
	// A public prefix does not open what lies behind it.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/console/../api/status", "/console/%2e%2e/api/status", "/console/..%2fapi/status", "//api/status"} {
		resp, err := noRedirect.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body), "nh3-tanks") {
			t.Errorf("GET %s without credentials: %s %s", p, resp.Status, body)
		}
	}
	for _, p := range []string{"/", "/regions", "/wall", "/console/app.js", "/console/index.html"} {
		if code, body := call("GET", p); code != http.StatusOK || strings.Contains(body, "nh3-gas-1") {
			t.Errorf("GET %s without credentials: %d, want the static page", p, code)
		}
	}
}

// TestConsoleSessionOverCentre: an officer logs in with name and password,
// reads the status page, the stream and the API with the session cookie,
// acts only with the CSRF header, and after logout is refused again.
func TestConsoleSessionOverCentre(t *testing.T) {
	broker := testenv.Mosquitto(t)
	c := openCenterWith(t, broker.URL(), t.TempDir(), tankFarm(t), testAccess(t))
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	call := func(method, path, body string, hdr ...string) (int, string) {
		t.Helper()
		return testenv.Call(t, cl, method, srv.URL+path, body, hdr...)
	}
	code, body := call("POST", "/api/session", `{"username":"li.gong","password":"wrong password"}`, "Content-Type", "application/json")
	if code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d %s", code, body)
	}
	code, body = call("POST", "/api/session", `{"username":"LI.GONG","password":"`+testOfficerPass+`"}`, "Content-Type", "application/json")
	var info access.SessionInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil || code != 200 || info.Name != testOfficerLogin || info.Display != "李工" || info.CSRF == "" {
		t.Fatalf("login: %d %s", code, body)
	}
	for _, p := range []string{"/status", "/api/status", "/api/stream/snapshot", "/metrics", "/api/alarms"} {
		if code, body := call("GET", p, ""); code != http.StatusOK {
			t.Errorf("GET %s with the session: %d %s", p, code, body)
		}
	}
	ack := "/api/alarms/" + url.PathEscape("jh-chem/nh3-tanks/nh3-gas-1/H") + "/ack"
	if code, body := call("POST", ack, `{}`); code != http.StatusForbidden || !strings.Contains(body, access.CSRFHeader) {
		t.Errorf("action by cookie without the CSRF header: %d %s", code, body)
	}
	if code, body := call("POST", ack, `{}`, access.CSRFHeader, info.CSRF); code != http.StatusNotFound {
		t.Errorf("action by cookie with the CSRF header on an unknown alarm: %d %s, want 404", code, body)
	}
	if code, _ := call("DELETE", "/api/session", "", access.CSRFHeader, info.CSRF); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	if code, _ := call("GET", "/api/status", ""); code != http.StatusUnauthorized {
		t.Errorf("after logout: %d, want 401", code)
	}
}
