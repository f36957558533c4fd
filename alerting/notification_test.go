package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting/notify"
	"github.com/hazardwatch/hazardwatch/alerting/notify/dingtalk"
	"github.com/hazardwatch/hazardwatch/alerting/notify/email"
	"github.com/hazardwatch/hazardwatch/alerting/notify/webhook"
	"github.com/hazardwatch/hazardwatch/alerting/notify/wecom"
	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
)

// robotReceiver is a local DingTalk robot: it checks the 加签 signature
// and the message format as DingTalk does and keeps what it accepted.
type robotReceiver struct {
	mu     sync.Mutex
	got    []dingtalk.Payload
	secret string
}

func (rb *robotReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
	if q.Get("access_token") != "tok" || err != nil || time.Since(time.UnixMilli(ts)).Abs() > time.Hour || q.Get("sign") != dingtalk.Sign(rb.secret, ts) {
		io.WriteString(w, `{"errcode":310000,"errmsg":"sign not match"}`)
		return
	}
	var p dingtalk.Payload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.MsgType != "markdown" {
		io.WriteString(w, `{"errcode":40035,"errmsg":"bad message"}`)
		return
	}
	rb.mu.Lock()
	rb.got = append(rb.got, p)
	rb.mu.Unlock()
	io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
}

func (rb *robotReceiver) payloads() []dingtalk.Payload {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return slices.Clone(rb.got)
}

func exampleSites(t *testing.T) func() []*site.Site {
	t.Helper()
	s, err := site.Load("../configs/sites/tank-farm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return func() []*site.Site { return []*site.Site{s} }
}

func subject(t *testing.T, m testenv.Mail) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(m.Msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const nh3Incident = "jh-chem/nh3-tanks/20261201T000000.000Z"

func change(typ notify.EventType, g protocol.Grade, at time.Time) IncidentChange {
	return IncidentChange{IncidentEvent: notify.IncidentEvent{Type: typ, Incident: nh3Incident, Site: "jh-chem", Source: "nh3-tanks",
		Grade: g, At: at, Actor: "zhang.san"},
		Conditions: []notify.Condition{{Point: "nh3-gas-1", Name: "1#氨气检测器", Value: 90.9, Unit: "ppm"}}}
}

func TestUnacknowledgedOrangeEscalatesByMailAndDingTalk(t *testing.T) {
	eachJournal(t, testUnacknowledgedOrangeEscalates)
}

func testUnacknowledgedOrangeEscalates(t *testing.T, j journal) {
	ctx := context.Background()
	mb := testenv.SMTP(t)
	rb := &robotReceiver{secret: "SECtest"}
	robot := httptest.NewServer(rb)
	defer robot.Close()
	clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	cfg := j.with(Config{TickInterval: -1, Now: clk.Now, Sites: exampleSites(t), Notification: Notification{
		ConsoleURL: "https://hazardwatch.example/",
		Channels: []Channel{
			{Name: "mail", Email: &email.Config{Smarthost: mb.Addr, From: "HazardWatch <alarm@hazardwatch.example>", TLS: "none"}},
			{Name: "dingtalk", MinBackoff: 10 * time.Millisecond, DingTalk: &dingtalk.Config{URL: robot.URL, AccessToken: "tok", Secret: "SECtest"}},
		}}})
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { svc.Close() }()

	// The ammonia leak: HH on a detector, the source orange.
	t0 := clk.Now()
	if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Raised, "jh-chem/nh3-tanks/nh3-gas-1/HH", t0, protocol.Orange, protocol.None, 90.9),
		sourceGradeEvent(protocol.Orange, protocol.None, t0)}); err != nil {
		t.Fatal(err)
	}
	incs := svc.Incidents(ctx)
	if len(incs) != 1 {
		t.Fatalf("incidents %+v", incs)
	}
	id := incs[0].ID
	testenv.Eventually(t, "the operational lead's mail and the group message", 20*time.Second, func() bool {
		return len(mb.To("chen.xiaodong@jh-chem.example")) == 1 && len(rb.payloads()) == 1
	})
	if s := subject(t, mb.To("chen.xiaodong@jh-chem.example")[0]); s != "【橙色预警】江海化工储运有限公司 液氨储罐区" {
		t.Errorf("subject %q", s)
	}
	if p := rb.payloads()[0]; !slices.Equal(p.At.AtMobiles, []string{"13905050003"}) || !strings.Contains(p.Markdown.Text, "90.9 ppm") {
		t.Errorf("group message %+v", p)
	}
	if n := len(mb.To("li.haitao@jh-chem.example")); n != 0 {
		t.Fatalf("technical lead mailed at once (%d)", n)
	}

	// 9 minutes: nothing more; 10 minutes: the technical lead.
	clk.Add(9 * time.Minute)
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _ := svc.Notifications(ctx, NotificationQuery{Incident: id})
	if queued := countOutcome(recs, OutcomeQueued); queued != 2 {
		t.Fatalf("after 9 min %d messages queued, want the first 2 only: %+v", queued, recs)
	}
	clk.Add(time.Minute)
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the technical lead's mail at 10 min", 20*time.Second, func() bool {
		return len(mb.To("li.haitao@jh-chem.example")) == 1
	})
	if s := subject(t, mb.To("li.haitao@jh-chem.example")[0]); !strings.Contains(s, "橙色预警·升级") {
		t.Errorf("escalation subject %q", s)
	}

	// A restart at 30 minutes: the principal is told once, nobody twice.
	svc.Close()
	clk.Add(20 * time.Minute)
	svc, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the principal's mail at 30 min", 20*time.Second, func() bool {
		return len(mb.To("wang.jianguo@jh-chem.example")) == 1 && len(rb.payloads()) == 3
	})

	clk.Add(time.Minute)
	if _, err := svc.AckIncident(ctx, id, "zhang.san", "on my way"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the acknowledgement told to the three", 20*time.Second, func() bool {
		return len(mb.To("chen.xiaodong@jh-chem.example")) == 2 && len(mb.To("li.haitao@jh-chem.example")) == 2 &&
			len(mb.To("wang.jianguo@jh-chem.example")) == 2
	})
	clk.Add(time.Hour)
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "every message delivered and journaled", 20*time.Second, func() bool {
		recs, _ = svc.Notifications(ctx, NotificationQuery{Incident: id})
		return countOutcome(recs, OutcomeDelivered) == countOutcome(recs, OutcomeQueued)
	})
	if n := len(mb.Mails()); n != 6 {
		t.Errorf("%d mails, want 6 (three warnings, three acknowledgement notices)", n)
	}
	var lines []string
	for _, r := range recs {
		if r.Outcome == OutcomeQueued {
			lines = append(lines, fmt.Sprintf("%s %s %s %v", r.Kind, r.Channel, r.Grade, r.To))
		}
	}
	want := []string{
		"warning mail orange [operational 陈晓东]", "warning dingtalk orange [operational 陈晓东]",
		"escalation mail orange [technical 李海涛]", "escalation dingtalk orange [technical 李海涛]",
		"escalation mail orange [principal 王建国]", "escalation dingtalk orange [principal 王建国]",
	}
	if len(lines) < len(want) || !slices.Equal(lines[:len(want)], want) {
		t.Errorf("timeline:\n%s\nwant first:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func countOutcome(recs []NotificationRecord, outcome string) int {
	n := 0
	for _, r := range recs {
		if r.Outcome == outcome {
			n++
		}
	}
	return n
}

func TestRedReachesTheCountyDutyOfficerAndWeCom(t *testing.T) {
	ctx := context.Background()
	mb := testenv.SMTP(t)
	var mu sync.Mutex
	var wc []wecom.Payload
	robot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p wecom.Payload
		if r.URL.Query().Get("key") != "wk" || json.NewDecoder(r.Body).Decode(&p) != nil || p.MsgType != "text" {
			io.WriteString(w, `{"errcode":93000,"errmsg":"invalid webhook url"}`)
			return
		}
		mu.Lock()
		wc = append(wc, p)
		mu.Unlock()
		io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	}))
	defer robot.Close()
	svc, err := New(Config{TickInterval: -1, Sites: exampleSites(t), Notification: Notification{
		DutyOfficers: []DutyOfficer{
			{Region: "35", Person: site.Person{Name: "省值班员", Email: "duty@fj.example", Lang: "zh"}},
			{Region: "350404", Person: site.Person{Name: "County Duty", Email: "duty@county.example", Phone: "13800000001", Lang: "en"}},
		},
		Channels: []Channel{
			{Name: "mail", Email: &email.Config{Smarthost: mb.Addr, From: "alarm@hazardwatch.example", TLS: "none"}},
			{Name: "wecom", Sites: []string{"jh-chem"}, WeCom: &wecom.Config{URL: robot.URL, Key: "wk"}},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := svc.NotifyIncidents(ctx, []IncidentChange{change(notify.Opened, protocol.Red, time.Now())}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "four mails and one group message", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(mb.Mails()) == 4 && len(wc) == 1
	})
	if got := mb.To("duty@county.example"); len(got) != 1 || !strings.Contains(subject(t, got[0]), "[red warning]") {
		t.Errorf("county duty officer: %d mails, want 1 in English", len(got))
	}
	if n := len(mb.To("duty@fj.example")); n != 0 {
		t.Errorf("province duty officer mailed %d times; the county's (the longest region prefix) is the one", n)
	}
	if ids, mobiles := wc[0].Text.MentionedList, wc[0].Text.MentionedMobileList; !slices.Equal(ids, []string{"ChenXiaoDong"}) || len(mobiles) != 3 {
		t.Errorf("WeCom mentions %v %v, want the three (one by WeCom id) and the duty officer", ids, mobiles)
	}
}

func TestUnreachableRecipientIsJournaledAsSkipped(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	sites := exampleSites(t)
	sites()[0].Source("nh3-tanks").Responsible.Operational.Phone = "0591-87654321" // a landline: no SMS
	_, err := New(Config{TickInterval: -1, Sites: sites, Notification: Notification{
		Channels: []Channel{{Name: "sms"}}}})
	if err == nil || !strings.Contains(err.Error(), "notification.channels[0] (sms): set exactly one of") {
		t.Fatalf("a channel of no kind: %v", err)
	}
	svc, err := New(Config{TickInterval: -1, Sites: sites, Notification: Notification{
		Channels: []Channel{{Name: "sms", SMS: &webhook.Config{URL: srv.URL}}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := svc.NotifyIncidents(ctx, []IncidentChange{change(notify.Opened, protocol.Orange, time.Now())}); err != nil {
		t.Fatal(err)
	}
	recs, _ := svc.Notifications(ctx, NotificationQuery{Incident: nh3Incident})
	if len(recs) != 1 || recs[0].Outcome != OutcomeSkipped || recs[0].Error != "no mobile number" {
		t.Errorf("journal %+v, want one skipped line saying why", recs)
	}
}

func TestNotificationPolicyChecked(t *testing.T) {
	_, err := New(Config{TickInterval: -1, Notification: Notification{
		Policy:       notify.Policy{Orange: []notify.Step{{Notify: []notify.Role{"boss"}, Via: []string{"pager"}}}},
		DutyOfficers: []DutyOfficer{{Region: "Fujian"}},
		ConsoleURL:   "console",
	}})
	for _, want := range []string{`notification.policy.orange[0].notify: unknown role "boss"`, `unknown channel "pager"`,
		"notification.duty_officers[0]: name and a phone or e-mail are required", `region "Fujian"`, `console_url "console"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

// mailingService starts a service over the example sites whose one
// channel, mail, goes to a test SMTP server, and serves its API.
func mailingService(t *testing.T) (*Service, *testenv.Mailbox, *httptest.Server) {
	t.Helper()
	mb := testenv.SMTP(t)
	svc, err := New(Config{TickInterval: -1, Sites: exampleSites(t), Notification: Notification{
		Channels: []Channel{{Name: "mail", Email: &email.Config{Smarthost: mb.Addr, From: "alarm@hazardwatch.example", TLS: "none"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc, mb, serveAPI(t, svc)
}

func TestNotificationsOnTheIncidentAPI(t *testing.T) {
	ctx := context.Background()
	svc, _, srv := mailingService(t)
	now := time.Now().UTC()
	if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Raised, "jh-chem/nh3-tanks/nh3-gas-1/HH", now, protocol.Orange, protocol.None, 90.9),
		sourceGradeEvent(protocol.Orange, protocol.None, now)}); err != nil {
		t.Fatal(err)
	}
	id := svc.Incidents(ctx)[0].ID
	path := "/api/incidents/" + url.PathEscape(id) + "/notifications"
	testenv.Eventually(t, "the operational lead's mail delivered and journaled", 20*time.Second, func() bool {
		code, body := apiCall(t, srv.URL, "GET", path, viewerToken, "")
		var recs []NotificationRecord
		return code == http.StatusOK && json.Unmarshal(body, &recs) == nil && len(recs) == 2 &&
			recs[0].Outcome == OutcomeQueued && recs[1].Outcome == OutcomeDelivered && recs[1].Attempts == 1 &&
			slices.Equal(recs[1].To, []string{"operational 陈晓东"}) && recs[1].Channel == "mail"
	})
	if code, _ := apiCall(t, srv.URL, "GET", path, "", ""); code != http.StatusUnauthorized {
		t.Errorf("without a token: %d", code)
	}
	if code, _ := apiCall(t, srv.URL, "GET", "/api/incidents/no%2Fsuch/notifications", viewerToken, ""); code != http.StatusNotFound {
		t.Errorf("unknown incident: %d", code)
	}
}

// TestNotificationsCatchUpAfterACrash: the centre died after journaling an
// incident's change but before queuing its notifications; on start the
// chain follows the incident from its snapshot and sends what is due.
func TestNotificationsCatchUpAfterACrash(t *testing.T) {
	ctx := context.Background()
	mb := testenv.SMTP(t)
	clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	cfg := Config{DataDir: t.TempDir(), TickInterval: -1, Now: clk.Now, Sites: exampleSites(t), Notification: Notification{
		Channels: []Channel{{Name: "mail", Email: &email.Config{Smarthost: mb.Addr, From: "alarm@hazardwatch.example", TLS: "none"}}}}}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := clk.Now()
	if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Raised, "jh-chem/nh3-tanks/nh3-gas-1/HH", t0, protocol.Orange, protocol.None, 90.9),
		sourceGradeEvent(protocol.Orange, protocol.None, t0)}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the operational lead's mail", 20*time.Second, func() bool { return len(mb.To("chen.xiaodong@jh-chem.example")) == 1 })
	// The source turns red. To play a centre that died before it queued
	// the red chain, the red chain's journal lines and state are taken out
	// afterwards (once its mails are in, so that none is in flight).
	if err := svc.HandleEvents(ctx, []rules.Event{sourceGradeEvent(protocol.Red, protocol.Orange, t0.Add(time.Minute))}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the red warning", 20*time.Second, func() bool { return len(mb.To("wang.jianguo@jh-chem.example")) == 1 })
	svc.Close()
	reopen, err := openStore(cfg.DataDir, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var orange string
	if err := reopen.db.QueryRow(`SELECT state FROM notify_state`).Scan(&orange); err != nil {
		t.Fatal(err)
	}
	// Back to the state before red: the red chain never queued.
	if _, err := reopen.db.Exec(`DELETE FROM notifications WHERE grade = 'red'; DELETE FROM outbox WHERE receiver = 'notify:mail'`); err != nil {
		t.Fatal(err)
	}
	var st notify.IncidentState
	_ = json.Unmarshal([]byte(orange), &st)
	st.Worst = protocol.Orange
	delete(st.Fired, "red/0")
	b, _ := json.Marshal(st)
	if _, err := reopen.db.Exec(`UPDATE notify_state SET state = ?`, string(b)); err != nil {
		t.Fatal(err)
	}
	reopen.Close()

	clk.Add(time.Minute)
	svc, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the red warning to the principal after the restart", 20*time.Second, func() bool {
		return len(mb.To("wang.jianguo@jh-chem.example")) == 2 && len(mb.To("chen.xiaodong@jh-chem.example")) == 3
	})
}

// TestUrgingIsJournaledAndTellsTheResponsiblePersons: the supervisor of
// the tank farm's county urges its open incident (督办): the urging is an
// event of the incident's timeline under the supervisor's name, and the
// source's three responsible persons get a mail saying what is asked;
// another county's supervisor and an operator are refused (403), a blank
// request is refused (400).
func TestUrgingIsJournaledAndTellsTheResponsiblePersons(t *testing.T) {
	ctx := context.Background()
	svc, mb, srv := mailingService(t)
	now := time.Now().UTC()
	if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Raised, "jh-chem/nh3-tanks/nh3-gas-1/H", now, protocol.Yellow, protocol.None, 45),
		sourceGradeEvent(protocol.Yellow, protocol.None, now)}); err != nil {
		t.Fatal(err)
	}
	id := svc.Incidents(ctx)[0].ID
	urge := "/api/incidents/" + url.PathEscape(id) + "/urge"
	for _, c := range []struct {
		who, token, body string
		want             int
	}{
		{"another county's supervisor", otherCountyToken, `{"comment":"请核实"}`, http.StatusForbidden},
		{"an operator (no supervisor's role)", officerToken, `{"comment":"请核实"}`, http.StatusForbidden},
		{"a blank urging", countyToken, `{"comment":"  "}`, http.StatusBadRequest},
		{"the county's supervisor", countyToken, `{"comment":"30 分钟内报告泄漏原因和处置进展"}`, http.StatusOK},
	} {
		if code, body := apiCall(t, srv.URL, "POST", urge, c.token, c.body); code != c.want {
			t.Errorf("%s urges: %d %s, want %d", c.who, code, body, c.want)
		}
	}
	code, body := apiCall(t, srv.URL, "GET", "/api/incidents/"+url.PathEscape(id)+"/timeline", viewerToken, "")
	var evs []struct{ Type, Actor, Comment string }
	if err := json.Unmarshal(body, &evs); code != http.StatusOK || err != nil {
		t.Fatalf("timeline: %d %v %s", code, err, body)
	}
	urged := 0
	for _, e := range evs {
		if e.Type == "urged" {
			urged++
			if e.Actor != "sy-county" || !strings.Contains(e.Comment, "处置进展") {
				t.Errorf("the urging journaled as %+v", e)
			}
		}
	}
	if urged != 1 {
		t.Errorf("%d urged events in the timeline, want 1: %s", urged, body)
	}
	for _, addr := range []string{"wang.jianguo@jh-chem.example", "li.haitao@jh-chem.example", "chen.xiaodong@jh-chem.example"} {
		testenv.Eventually(t, "the urging mailed to "+addr, 20*time.Second, func() bool {
			for _, m := range mb.To(addr) {
				if strings.HasPrefix(subject(t, m), "【督办】") {
					return true
				}
			}
			return false
		})
	}
}

// TestReceiversKeepToTheirScope: a county's command platform gets the
// incidents of its county only: the tank farm's (三元区) reaches 三元区's
// receiver, and 永安市's receiver gets the coal mine's as its first event.
func TestReceiversKeepToTheirScope(t *testing.T) {
	sites, err := site.LoadDir("../configs/sites")
	if err != nil {
		t.Fatal(err)
	}
	sanyuan, yongan := newReceiver(t), newReceiver(t)
	rs := []Receiver{testReceiver(sanyuan.URL()), testReceiver(yongan.URL())}
	rs[0].Name, rs[0].Scope = "sanyuan", access.Scope{Region: "350404"}
	rs[1].Name, rs[1].Scope = "yongan", access.Scope{Region: "350481"}
	svc, err := New(Config{TickInterval: -1, Sites: func() []*site.Site { return sites }, Receivers: rs})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	now := time.Now().UTC()
	ctx := context.Background()
	if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Raised, "jh-chem/nh3-tanks/nh3-gas-1/HH", now, protocol.Orange, protocol.None, 90.9),
		sourceGradeEvent(protocol.Orange, protocol.None, now)}); err != nil {
		t.Fatal(err)
	}
	mine := event(rules.Raised, "xs-coal/face-3101/ch4-3101-t1/H", now, protocol.Yellow, protocol.None, 1.2)
	mine.Site, mine.Source, mine.Point = "xs-coal", "face-3101", "ch4-3101-t1"
	if err := svc.HandleEvents(ctx, []rules.Event{mine, {Type: rules.SourceGradeChanged, Key: "xs-coal/face-3101", Site: "xs-coal",
		Source: "face-3101", Grade: protocol.Yellow, Time: now}}); err != nil {
		t.Fatal(err)
	}
	firstSite := func(r *receiver) string {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.bodies) == 0 {
			return ""
		}
		var ce struct {
			Data struct {
				Site string `json:"site"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.bodies[0], &ce); err != nil {
			t.Fatal(err)
		}
		return ce.Data.Site
	}
	testenv.Eventually(t, "both platforms got their first event", 20*time.Second, func() bool {
		return firstSite(sanyuan) != "" && firstSite(yongan) != ""
	})
	if a, b := firstSite(sanyuan), firstSite(yongan); a != "jh-chem" || b != "xs-coal" {
		t.Errorf("first events: 三元区's platform %s, 永安市's %s; want jh-chem and xs-coal", a, b)
	}
	yongan.mu.Lock()
	defer yongan.mu.Unlock()
	for _, body := range yongan.bodies {
		if strings.Contains(string(body), `"site":"jh-chem"`) {
			t.Errorf("永安市's platform got an event of 三元区's tank farm: %s", body)
		}
	}
}
