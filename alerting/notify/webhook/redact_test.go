package webhook

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestErrorsKeepTheURLsSecretOut: a receiver's URL may carry its token (a
// chat robot's access_token) or a user and password; a failed delivery's
// error names the receiver without them, whether it is down or answers an
// error.
func TestErrorsKeepTheURLsSecretOut(t *testing.T) {
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := down.Addr().String()
	down.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusBadRequest) }))
	defer failing.Close()
	for _, u := range []string{"http://" + downAddr + "/hook?access_token=hunter2", failing.URL + "/hook?access_token=hunter2", "http://user:hunter2@" + downAddr + "/hook"} {
		n, err := New(Config{URL: u, Timeout: 2 * time.Second}, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = n.Post(context.Background(), []byte("{}"))
		if err == nil {
			t.Fatalf("POST %s succeeded", u)
		}
		if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "/hook") {
			t.Errorf("error %q shows the secret, or not the receiver", err)
		}
	}
}
