package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting/notify"
	"github.com/hazardwatch/hazardwatch/protocol"
)

func smsMessage() *notify.Message {
	at := time.Date(2026, 12, 1, 8, 10, 0, 0, time.UTC)
	return &notify.Message{ID: "n-1", Kind: notify.Escalation, Incident: "jh-chem/nh3-tanks/1", Site: "jh-chem", Source: "nh3-tanks",
		SiteName: "江海化工", SourceName: "液氨储罐区", Grade: protocol.Orange, Opened: at.Add(-10 * time.Minute), At: at,
		To: []notify.Recipient{{Role: notify.Technical, Name: "李海涛", Phone: "13905050002", Lang: "zh"}}}
}

func TestSMSGatewayGetsASignedNotificationWithPhoneAndText(t *testing.T) {
	got := make(chan Notification, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !VerifySignature("s3cret", body, r.Header.Get(SignatureHeader)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("Content-Type") != ContentType {
			http.Error(w, "content type", http.StatusUnsupportedMediaType)
			return
		}
		var ce CloudEvent[Notification]
		if err := json.Unmarshal(body, &ce); err != nil || ce.Type != "cn.hazardwatch.notification.escalation" || ce.ID != "n-1" {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		got <- ce.Data
	}))
	defer srv.Close()
	n, err := New(Config{URL: srv.URL + "/sms", Secret: "s3cret"}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if retry, err := n.Notify(context.Background(), smsMessage()); err != nil {
		t.Fatalf("notify: %v (retry %v)", err, retry)
	}
	d := <-got
	if d.Phone != "13905050002" || !strings.Contains(d.Text, "橙色预警·升级") || !strings.Contains(d.Text, "液氨储罐区") || !strings.Contains(d.Text, "10 分钟") {
		t.Errorf("SMS data = %+v", d)
	}
}

func TestWebhookRetryClassification(t *testing.T) {
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
	defer srv.Close()
	n, err := New(Config{URL: srv.URL + "/hook?key=topsecret"}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		status int
		retry  bool
	}{{503, true}, {429, true}, {408, true}, {400, false}, {404, false}} {
		status = c.status
		retry, err := n.Notify(context.Background(), smsMessage())
		if err == nil || retry != c.retry {
			t.Errorf("answer %d: retry %v err %v, want retry %v and an error", c.status, retry, err, c.retry)
		}
		if err != nil && strings.Contains(err.Error(), "topsecret") {
			t.Errorf("error shows the URL's key: %v", err)
		}
	}
	srv.Close()
	retry, err := n.Notify(context.Background(), smsMessage())
	if err == nil || !retry || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("receiver down: retry %v err %v, want a retryable error without the key", retry, err)
	}
}

func TestEventsGoAsTheyAre(t *testing.T) {
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	defer srv.Close()
	n, _ := New(Config{URL: srv.URL}, "", nil)
	ev := []byte(`{"specversion":"1.0","id":"e1"}`)
	if _, err := n.Notify(context.Background(), &notify.Message{ID: "e1", Kind: notify.Event, Event: ev}); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != string(ev) {
		t.Errorf("posted %s, want the event unchanged", b)
	}
	if _, err := New(Config{URL: "ftp://x"}, "", nil); err == nil {
		t.Error("ftp URL accepted")
	}
}
