package dingtalk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting/notify"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// robot is a local receiver that checks requests as DingTalk documents
// them: access_token, a timestamp within an hour, sign = the URL-encoded
// base64 HMAC-SHA256 of "timestamp\nsecret", a markdown message whose
// @-mentions are in the text. It answers in DingTalk's JSON.
type robot struct {
	token, secret string
	got           chan Payload
	reply         string // forced answer, e.g. errcode 130101
}

func (rb *robot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	answer := func(code int, msg string) { fmt.Fprintf(w, `{"errcode":%d,"errmsg":%q}`, code, msg) }
	if rb.reply != "" {
		io.WriteString(w, rb.reply)
		return
	}
	q := r.URL.Query()
	if r.Method != http.MethodPost || q.Get("access_token") != rb.token {
		answer(300001, "token is not exist")
		return
	}
	// The sign must be URL-encoded in the raw query: base64 has + / =.
	raw := strings.SplitN(strings.SplitN(r.URL.RawQuery, "sign=", 2)[1], "&", 2)[0]
	if strings.ContainsAny(raw, "+/=") {
		answer(310000, "sign not url-encoded")
		return
	}
	ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
	if err != nil || time.Since(time.UnixMilli(ts)).Abs() > time.Hour {
		answer(310000, "invalid timestamp")
		return
	}
	if q.Get("sign") != Sign(rb.secret, ts) {
		answer(310000, "sign not match")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		answer(40035, "content type")
		return
	}
	var p Payload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.MsgType != "markdown" || p.Markdown.Title == "" || p.Markdown.Text == "" {
		answer(40035, "bad message")
		return
	}
	for _, id := range append(slices.Clone(p.At.AtMobiles), p.At.AtUserIDs...) {
		if !strings.Contains(p.Markdown.Text, "@"+id) {
			answer(40035, "mentioned "+id+" not in text")
			return
		}
	}
	rb.got <- p
	answer(0, "ok")
}

func message() *notify.Message {
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	return &notify.Message{ID: "n-1", Kind: notify.Warning, Incident: "jh-chem/nh3-tanks/1", Site: "jh-chem", Source: "nh3-tanks",
		SiteName: "江海化工", SourceName: "液氨储罐区", Grade: protocol.Red, Opened: at, At: at,
		Conditions: []notify.Condition{{Point: "nh3-gas-1", Name: "1#氨气检测器", Value: 90.9, Unit: "ppm"}},
		To: []notify.Recipient{{Role: notify.Operational, Name: "陈晓东", Phone: "13905050003"},
			{Role: notify.Technical, Name: "李海涛", Phone: "13905050002", DingTalk: "lihaitao"}}}
}

func TestDingTalkRobotGetsSignedMarkdownWithMentions(t *testing.T) {
	rb := &robot{token: "tok-123", secret: "SECabc+/=", got: make(chan Payload, 1)}
	srv := httptest.NewServer(rb)
	defer srv.Close()
	n, err := New(Config{URL: srv.URL + "/robot/send", AccessToken: "tok-123", Secret: "SECabc+/="}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if retry, err := n.Notify(context.Background(), message()); err != nil {
		t.Fatalf("notify: %v (retry %v)", err, retry)
	}
	p := <-rb.got
	if !strings.Contains(p.Markdown.Title, "红色预警") || !strings.Contains(p.Markdown.Text, "90.9 ppm") {
		t.Errorf("message = %+v", p)
	}
	if !slices.Equal(p.At.AtMobiles, []string{"13905050003"}) || !slices.Equal(p.At.AtUserIDs, []string{"lihaitao"}) {
		t.Errorf("mentions = %+v, want the mobile of one and the DingTalk id of the other", p.At)
	}
}

func TestDingTalkRefusalsAndRateLimit(t *testing.T) {
	rb := &robot{token: "tok-123", secret: "right", got: make(chan Payload, 1)}
	srv := httptest.NewServer(rb)
	defer srv.Close()
	wrong, _ := New(Config{URL: srv.URL, AccessToken: "tok-123", Secret: "wrong"}, nil)
	retry, err := wrong.Notify(context.Background(), message())
	if err == nil || retry || !strings.Contains(err.Error(), "310000") {
		t.Errorf("wrong secret: retry %v err %v, want a final errcode 310000", retry, err)
	}
	if err != nil && strings.Contains(err.Error(), "tok-123") {
		t.Errorf("error shows the access token: %v", err)
	}
	skewed, _ := New(Config{URL: srv.URL, AccessToken: "tok-123", Secret: "right"}, nil)
	skewed.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	if _, err := skewed.Notify(context.Background(), message()); err == nil || !strings.Contains(err.Error(), "timestamp") {
		t.Errorf("timestamp 2 h off: %v, want refused", err)
	}
	rb.reply = `{"errcode":130101,"errmsg":"send too fast"}`
	ok, _ := New(Config{URL: srv.URL, AccessToken: "tok-123", Secret: "right"}, nil)
	if retry, err := ok.Notify(context.Background(), message()); err == nil || !retry {
		t.Errorf("rate limited: retry %v err %v, want a retry", retry, err)
	}
	if _, err := New(Config{URL: srv.URL + "?access_token=x", AccessToken: "x"}, nil); err == nil {
		t.Error("a token in the url accepted")
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Error("no access token accepted")
	}
}
