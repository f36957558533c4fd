package wecom

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting/notify"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// robot checks requests as WeCom documents its group robots: the key in
// the query, a JSON text message of at most 2048 bytes; it answers in
// WeCom's JSON.
type robot struct {
	key   string
	got   chan Payload
	reply string
}

func (rb *robot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	answer := func(code int, msg string) { fmt.Fprintf(w, `{"errcode":%d,"errmsg":%q}`, code, msg) }
	if rb.reply != "" {
		io.WriteString(w, rb.reply)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/cgi-bin/webhook/send" || r.URL.Query().Get("key") != rb.key {
		answer(93000, "invalid webhook url")
		return
	}
	var p Payload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.MsgType != "text" || p.Text.Content == "" {
		answer(40008, "invalid message type")
		return
	}
	if len(p.Text.Content) > MaxContent {
		answer(40058, "content exceed max length 2048")
		return
	}
	rb.got <- p
	answer(0, "ok")
}

func message(lang string) *notify.Message {
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	return &notify.Message{ID: "n-1", Kind: notify.Escalation, Incident: "jh-chem/nh3-tanks/1", Site: "jh-chem", Source: "nh3-tanks",
		SiteName: "Jianghai Chemicals", SourceName: "Ammonia tanks", Grade: protocol.Orange, Opened: at, At: at.Add(30 * time.Minute), Lang: lang,
		Conditions: []notify.Condition{{Point: "nh3-gas-1", Name: strings.Repeat("很长的检测器名称", 200), Value: 90.9, Unit: "ppm"}},
		To: []notify.Recipient{{Role: notify.Principal, Name: "王建国", Phone: "13905050001"},
			{Role: notify.Operational, Name: "陈晓东", Phone: "13905050003", WeCom: "ChenXiaoDong"}}}
}

func TestWeComRobotGetsTextWithMentionsWithinItsLimit(t *testing.T) {
	rb := &robot{key: "k-693a91f6", got: make(chan Payload, 1)}
	srv := httptest.NewServer(rb)
	defer srv.Close()
	n, err := New(Config{URL: srv.URL + "/cgi-bin/webhook/send", Key: "k-693a91f6", Lang: "en"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if retry, err := n.Notify(context.Background(), message("")); err != nil {
		t.Fatalf("notify: %v (retry %v)", err, retry)
	}
	p := <-rb.got
	if !strings.HasPrefix(p.Text.Content, "[orange warning, escalated] Jianghai Chemicals Ammonia tanks") || !strings.Contains(p.Text.Content, "30 min") {
		t.Errorf("content = %.200q", p.Text.Content)
	}
	if !slices.Equal(p.Text.MentionedMobileList, []string{"13905050001"}) || !slices.Equal(p.Text.MentionedList, []string{"ChenXiaoDong"}) {
		t.Errorf("mentions = %v %v", p.Text.MentionedList, p.Text.MentionedMobileList)
	}
}

func TestWeComRefusalsAndRateLimit(t *testing.T) {
	rb := &robot{key: "right", got: make(chan Payload, 1)}
	srv := httptest.NewServer(rb)
	defer srv.Close()
	wrong, _ := New(Config{URL: srv.URL + "/cgi-bin/webhook/send", Key: "wrong"}, nil)
	retry, err := wrong.Notify(context.Background(), message("zh"))
	if err == nil || retry || !strings.Contains(err.Error(), "93000") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong key: retry %v err %v, want final errcode 93000 without the key", retry, err)
	}
	rb.reply = `{"errcode":45009,"errmsg":"api freq out of limit"}`
	ok, _ := New(Config{URL: srv.URL + "/cgi-bin/webhook/send", Key: "right"}, nil)
	if retry, err := ok.Notify(context.Background(), message("zh")); err == nil || !retry {
		t.Errorf("rate limited: retry %v err %v, want a retry", retry, err)
	}
	if _, err := New(Config{URL: srv.URL + "?key=x", Key: "x"}, nil); err == nil {
		t.Error("a key in the url accepted")
	}
}
