package alerting

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
)

const (
	viewerToken  = "viewer-token-0123456789"
	officerToken = "officer-token-0123456789"
	wangToken    = "wang-token-0123456789ab"
	coalToken    = "coal-token-0123456789ab"
	// Supervisors of 三元区 (the tank farm's county) and of 永安市.
	countyToken      = "county-token-0123456789"
	otherCountyToken = "other-county-token-01234"
)

// serveAPI serves the service's alarm API behind the access middleware,
// with tokens of a wall display (viewer), two officers (li.gong and
// wang.gong), an officer whose scope is the coal mine only, and the
// supervisors of two counties.
func serveAPI(t *testing.T, svc *Service) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(testAuth(t).Middleware(svc.Handler()))
	t.Cleanup(srv.Close)
	return srv
}

// testAuth knows the tokens serveAPI describes.
func testAuth(t *testing.T) *access.Authenticator {
	t.Helper()
	auth, err := access.New(access.Config{Tokens: []access.Token{
		{Name: "wall", Role: access.Viewer, Hash: access.HashToken(viewerToken)},
		{Name: "li.gong", Role: access.Officer, Hash: access.HashToken(officerToken)},
		{Name: "wang.gong", Role: access.Officer, Hash: access.HashToken(wangToken)},
		{Name: "coal.officer", Role: access.Officer, Scope: access.Scope{Sites: []string{"lh-coal"}}, Hash: access.HashToken(coalToken)},
		{Name: "sy-county", Role: access.Supervisor, Scope: access.Scope{Region: "350404"}, Hash: access.HashToken(countyToken)},
		{Name: "ya-county", Role: access.Supervisor, Scope: access.Scope{Region: "350481"}, Hash: access.HashToken(otherCountyToken)},
	}}, access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return auth
}

func TestHTTPAPI(t *testing.T) {
	reg := prometheus.NewRegistry()
	rcv := newReceiver(t)
	svc, err := New(Config{Registerer: reg, Receivers: []Receiver{testReceiver(rcv.URL())}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	srv := serveAPI(t, svc)

	now := time.Now().UTC()
	k1, k2 := "jh-chem/nh3-tanks/nh3-gas-1/HH", "lh-coal/face-3101/ch4-t1/HH"
	if err := svc.HandleEvents(context.Background(), []rules.Event{
		event(rules.Raised, k1, now, protocol.Orange, protocol.None, 86),
		event(rules.Raised, k2, now, protocol.Red, protocol.None, 1.6),
	}); err != nil {
		t.Fatal(err)
	}

	call := func(method, path, token, body string) (int, []byte) {
		t.Helper()
		return apiCall(t, srv.URL, method, path, token, body)
	}
	alarmPath := func(k, action string) string { return "/api/alarms/" + url.PathEscape(k) + action }

	if code, _ := call("GET", "/api/alarms", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := call("GET", "/api/alarms", "wrong-token-0123456789", ""); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	code, body := call("GET", "/api/alarms?site=lh-coal", viewerToken, "")
	var list []Alarm
	if err := json.Unmarshal(body, &list); err != nil || code != 200 || len(list) != 1 || list[0].ID != k2 {
		t.Fatalf("filter by site: %d %s", code, body)
	}
	code, body = call("GET", "/api/alarms?grade=orange&state=unacked", viewerToken, "")
	if err := json.Unmarshal(body, &list); err != nil || code != 200 || len(list) != 1 || list[0].ID != k1 {
		t.Fatalf("filter by grade and state: %d %s", code, body)
	}
	if code, _ := call("GET", "/api/alarms?grade=purple", viewerToken, ""); code != http.StatusBadRequest {
		t.Fatalf("unknown grade: %d", code)
	}
	if code, _ := call("POST", alarmPath(k1, "/ack"), viewerToken, `{}`); code != http.StatusForbidden {
		t.Fatalf("viewer acknowledging: %d", code)
	}
	if code, _ := call("POST", alarmPath(k1, "/ack"), coalToken, `{}`); code != http.StatusForbidden {
		t.Fatalf("the coal mine's officer acknowledging at the chemical site: %d", code)
	}
	for _, name := range []string{"wang.gong", "  ", "王工"} {
		if code, _ := call("POST", alarmPath(k1, "/ack"), officerToken, `{"officer":"`+name+`"}`); code != http.StatusForbidden {
			t.Fatalf("li.gong acknowledging under the name %q: %d", name, code)
		}
	}
	if code, _ := call("POST", alarmPath(k1, "/ack"), officerToken, `not json`); code != http.StatusBadRequest {
		t.Fatalf("malformed body: %d", code)
	}
	code, body = call("POST", alarmPath(k1, "/ack"), wangToken, `{"comment":"已派人"}`)
	var ev protocol.AlarmEvent
	if err := json.Unmarshal(body, &ev); err != nil || code != 200 || ev.Actor != "wang.gong" || ev.State != protocol.StateAcked {
		t.Fatalf("ack: %d %s", code, body)
	}
	if code, _ := call("POST", alarmPath(k1, "/ack"), wangToken, `{}`); code != http.StatusConflict {
		t.Fatalf("second ack: %d", code)
	}
	if code, _ := call("POST", alarmPath("no/such", "/ack"), wangToken, `{}`); code != http.StatusNotFound {
		t.Fatalf("unknown alarm: %d", code)
	}
	for _, bad := range []string{
		`{"minutes":30}`, `{"reason":"   ","minutes":30}`, `{"reason":" ","comment":"\t","minutes":30}`, // no reason
		`{"reason":"标定","minutes":481}`, `{"reason":"标定","minutes":1e300}`, `{"reason":"标定","until":"9999-12-31T23:59:59Z"}`, // past 8 h
		`{"reason":"标定","until":"` + now.Add(8*time.Hour+time.Minute).Format(time.RFC3339) + `"}`,
		`{"reason":"标定","until":"2000-01-01T00:00:00Z"}`, // past
	} {
		if code, body := call("POST", alarmPath(k2, "/shelve"), officerToken, bad); code != http.StatusBadRequest {
			t.Fatalf("shelve %s: %d %s, want 400", bad, code, body)
		}
	}
	if code, body := call("POST", alarmPath(k2, "/shelve"), officerToken, `{"officer":"li.gong","reason":"标定","minutes":30}`); code != 200 {
		t.Fatalf("shelve: %d %s", code, body)
	}
	if code, body := call("POST", alarmPath(k2, "/shelve"), officerToken, `{"reason":"标定","minutes":480}`); code != 200 {
		t.Fatalf("shelve again for the longest allowed: %d %s", code, body)
	}
	if code, body := call("POST", alarmPath(k2, "/unshelve"), officerToken, `{}`); code != 200 {
		t.Fatalf("unshelve: %d %s", code, body)
	}
	if code, _ := call("POST", alarmPath(k2, "/out-of-service"), officerToken, `{"reason":" \n "}`); code != http.StatusBadRequest {
		t.Fatalf("out of service with a blank reason: %d", code)
	}
	if code, body := call("POST", alarmPath(k2, "/out-of-service"), coalToken, `{"reason":"更换探头"}`); code != 200 {
		t.Fatalf("out of service: %d %s", code, body)
	}
	if code, body := call("POST", alarmPath(k2, "/return-to-service"), officerToken, `{}`); code != 200 {
		t.Fatalf("return to service: %d %s", code, body)
	}
	code, body = call("GET", alarmPath(k2, "/timeline"), viewerToken, "")
	var tl []protocol.AlarmEvent
	if err := json.Unmarshal(body, &tl); err != nil || code != 200 {
		t.Fatalf("timeline: %d %s", code, body)
	}
	var types []string
	for _, e := range tl {
		types = append(types, string(e.Type))
	}
	if got := strings.Join(types, ","); got != "raised,shelved,shelved,unshelved,out_of_service,returned_to_service" {
		t.Fatalf("timeline %s", got)
	}
	code, body = call("GET", "/api/officers/li.gong/actions", viewerToken, "")
	if err := json.Unmarshal(body, &tl); err != nil || code != 200 || len(tl) != 4 {
		t.Fatalf("li.gong's actions: %d %s", code, body)
	}
	if code, _ := call("GET", "/api/history?from=yesterday", viewerToken, ""); code != http.StatusBadRequest {
		t.Fatalf("bad time: %d", code)
	}
	code, body = call("GET", "/api/history?site=jh-chem", viewerToken, "")
	if err := json.Unmarshal(body, &tl); err != nil || code != 200 || len(tl) != 2 {
		t.Fatalf("history of jh-chem: %d %s", code, body)
	}

	if n := testutil.ToFloat64(svc.metrics.active.WithLabelValues("red", "unacked")); n != 1 {
		t.Errorf("active red unacked gauge %v", n)
	}
	testenv.Eventually(t, "outbox drained", 20*time.Second, func() bool {
		st, err := svc.OutboxStats(context.Background())
		return err == nil && st[0].Depth == 0
	})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetName() == "hazardwatch_alerting_time_to_acknowledge_seconds" {
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 1 {
				t.Errorf("time to acknowledge has %d samples, want 1", n)
			}
		}
	}
	for _, n := range []string{"hazardwatch_alerting_outbox_depth", "hazardwatch_alerting_outbox_oldest_age_seconds",
		"hazardwatch_alerting_delivery_failures_total", "hazardwatch_alerting_active_alarms", "hazardwatch_alerting_time_to_acknowledge_seconds"} {
		if !names[n] {
			t.Errorf("metric %s missing", n)
		}
	}
}

// TestHTTPAPIComment: POST /api/alarms/{id}/comment takes the officer's
// name and the comment under the same rules as an acknowledgement, in any
// state, and leaves the alarm as it was; the comment is in the timeline
// and in the officer's actions.
func TestHTTPAPIComment(t *testing.T) {
	svc, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	srv := serveAPI(t, svc)
	now := time.Now().UTC()
	k := "jh-chem/nh3-tanks/nh3-gas-1/HH"
	if err := svc.HandleEvents(context.Background(), []rules.Event{event(rules.Raised, k, now, protocol.Orange, protocol.None, 86)}); err != nil {
		t.Fatal(err)
	}
	call := func(method, path, token, body string) (int, []byte) {
		t.Helper()
		return apiCall(t, srv.URL, method, path, token, body)
	}
	comment := "/api/alarms/" + url.PathEscape(k) + "/comment"
	for _, tc := range []struct {
		name, token, body string
		want              int
	}{
		{"no token", "", `{"comment":"x"}`, http.StatusUnauthorized},
		{"viewer", viewerToken, `{"comment":"x"}`, http.StatusForbidden},
		{"outside the scope", coalToken, `{"comment":"x"}`, http.StatusForbidden},
		{"without comment", officerToken, `{}`, http.StatusBadRequest},
		{"blank comment", officerToken, `{"comment":"  "}`, http.StatusBadRequest},
		{"comment of white space", officerToken, `{"comment":"\u3000\t\n"}`, http.StatusBadRequest},
		{"malformed body", officerToken, `not json`, http.StatusBadRequest},
		{"wang.gong as li.gong", wangToken, `{"officer":"li.gong","comment":"x"}`, http.StatusForbidden},
	} {
		if code, body := call("POST", comment, tc.token, tc.body); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	if code, _ := call("POST", "/api/alarms/"+url.PathEscape("no/such/alarm/H")+"/comment", officerToken, `{"comment":"x"}`); code != http.StatusNotFound {
		t.Errorf("unknown alarm: %d", code)
	}

	// The comment is recorded under the caller's name.
	code, body := call("POST", comment, wangToken, `{"comment":"已派人查看"}`)
	var ev protocol.AlarmEvent
	if err := json.Unmarshal(body, &ev); err != nil || code != 200 || ev.Type != protocol.AlarmCommented || ev.Actor != "wang.gong" ||
		ev.Comment != "已派人查看" || ev.State != protocol.StateUnacked || ev.PrevState != protocol.StateUnacked {
		t.Fatalf("comment: %d %s", code, body)
	}
	// Shelved, then a comment: still shelved.
	if code, body := call("POST", "/api/alarms/"+url.PathEscape(k)+"/shelve", officerToken, `{"reason":"标定","minutes":30}`); code != 200 {
		t.Fatalf("shelve: %d %s", code, body)
	}
	code, body = call("POST", comment, officerToken, `{"comment":"标定中，勿动"}`)
	if err := json.Unmarshal(body, &ev); err != nil || code != 200 || ev.Actor != "li.gong" || ev.State != protocol.StateShelved {
		t.Fatalf("comment on the shelved alarm: %d %s", code, body)
	}
	code, body = call("GET", "/api/alarms/"+url.PathEscape(k), viewerToken, "")
	var a Alarm
	if err := json.Unmarshal(body, &a); err != nil || code != 200 || a.State != protocol.StateShelved || a.By != "li.gong" || a.Reason != "标定" {
		t.Fatalf("alarm after the comments: %d %s", code, body)
	}

	code, body = call("GET", "/api/alarms/"+url.PathEscape(k)+"/timeline", viewerToken, "")
	var tl []protocol.AlarmEvent
	if err := json.Unmarshal(body, &tl); err != nil || code != 200 {
		t.Fatalf("timeline: %d %s", code, body)
	}
	var got []string
	for _, e := range tl {
		got = append(got, string(e.Type)+":"+e.Actor+":"+e.Comment)
	}
	if want := "raised::,commented:wang.gong:已派人查看,shelved:li.gong:标定,commented:li.gong:标定中，勿动"; strings.Join(got, ",") != want {
		t.Fatalf("timeline %s, want %s", strings.Join(got, ","), want)
	}
	code, body = call("GET", "/api/officers/wang.gong/actions", viewerToken, "")
	if err := json.Unmarshal(body, &tl); err != nil || code != 200 || len(tl) != 1 || tl[0].Type != protocol.AlarmCommented || tl[0].Comment != "已派人查看" {
		t.Fatalf("wang.gong's actions: %d %s", code, body)
	}
}

// apiCall makes one request of the alarm API with a bearer token (none
// when empty) and returns the status and the body.
func apiCall(t *testing.T, base, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", method, path, err)
	}
	return resp.StatusCode, b
}
