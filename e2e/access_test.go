package e2e

import (
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hazardwatch/hazardwatch/internal/access"
)

// e2eToken is the viewer token with which the tests read the centre's
// metrics and APIs: every endpoint but the health checks needs one.
const e2eToken = "e2e-viewer-token-0123456789"

func e2eAccess() access.Config {
	return access.Config{Tokens: []access.Token{{Name: "e2e", Role: access.Viewer, Hash: access.HashToken(e2eToken)}}}
}

// e2eAlertingFile writes an alerting file holding e2eToken's hash, for
// hazardwatch-ingest -alerting.
func e2eAlertingFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "alerting.yaml")
	text := "tokens:\n  - name: e2e\n    role: viewer\n    hash: \"" + access.HashToken(e2eToken) + "\"\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// getAuthorised GETs url with e2eToken.
func getAuthorised(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	return http.DefaultClient.Do(req)
}

// loggedIn returns a client holding the session cookie of a login, as the
// console gets it.
func loggedIn(t *testing.T, base, user, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	resp, err := cl.Post(base+"/api/session", "application/json",
		strings.NewReader(`{"username":"`+user+`","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("log in as %s: %s", user, resp.Status)
	}
	return cl
}
