package alerting

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestWebhookErrorsMaskTheURLsToken: a receiver's URL may carry its token
// (a chat robot's access_token); a failed delivery's error names the
// receiver without it, whether the receiver is down or answers an error.
func TestWebhookErrorsMaskTheURLsToken(t *testing.T) {
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + down.Addr().String() + "/hook?access_token=hunter2"
	down.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusBadRequest) }))
	defer failing.Close()
	for _, u := range []string{downURL, failing.URL + "/hook?access_token=hunter2", "http://user:hunter2@" + down.Addr().String() + "/hook"} {
		d := &deliverer{rcv: Receiver{Name: "robot", URL: u, Timeout: 2 * time.Second}, client: &http.Client{}}
		err := d.post(context.Background(), []byte("{}"))
		if err == nil {
			t.Fatalf("POST %s succeeded", u)
		}
		if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "xxxxx") {
			t.Errorf("error %q does not mask the token", err)
		}
	}
}
