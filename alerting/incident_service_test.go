package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
)

// latestReadings is a LatestReader the test sets.
type latestReadings struct{ samples []storage.Sample }

func (l *latestReadings) Latest(_ context.Context, siteID string) ([]storage.Sample, error) {
	var out []storage.Sample
	for _, s := range l.samples {
		if siteID == "" || s.Site == siteID {
			out = append(out, s)
		}
	}
	return out, nil
}

func tankFarmSites(t *testing.T) func() []*site.Site {
	t.Helper()
	s, err := site.Load("../configs/sites/tank-farm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return func() []*site.Site { return []*site.Site{s} }
}

func sourceGradeEvent(g, prev protocol.Grade, at time.Time) rules.Event {
	return rules.Event{Type: rules.SourceGradeChanged, Key: "jh-chem/nh3-tanks", Site: "jh-chem", Source: "nh3-tanks", Grade: g, PrevGrade: prev, Time: at}
}

// incidentEvents returns every incident event a receiver got, in order,
// repeats included: the outbox sends each event once, across a restart
// too (TestRestartSendsNothingTwice).
func (r *receiver) incidentEvents(t *testing.T) []incident.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []incident.Event
	for _, b := range r.bodies {
		var ce IncidentCloudEvent
		if err := json.Unmarshal(b, &ce); err != nil {
			t.Errorf("incident CloudEvent: %v", err)
			continue
		}
		if !strings.HasPrefix(ce.Type, "cn.hazardwatch.incident.") || ce.Type != IncidentCloudEventType(ce.Data.Type) || ce.Subject != ce.Data.IncidentID {
			t.Errorf("receiver got %s (subject %s) of %s", ce.Type, ce.Subject, ce.Data.Type)
		}
		out = append(out, ce.Data)
	}
	return out
}

// TestAmmoniaLeakIsOneIncidentEndToEnd: the demo's ammonia leak through
// the service — eight point-level alarms — is one incident of the tank
// farm rising yellow → orange → red. The command platform (a receiver
// with the default events) gets its lifecycle only, with the points'
// names and live values; one acknowledgement through the API
// acknowledges every alarm under the officer's name; the disposal filed
// through the API closes it once the conditions clear; the incident and
// its timeline survive a restart. On SQLite and PostgreSQL.
func TestAmmoniaLeakIsOneIncidentEndToEnd(t *testing.T) {
	eachJournal(t, func(t *testing.T, j journal) {
		ctx := context.Background()
		rcv := newReceiver(t)
		platform := testReceiver(rcv.URL())
		platform.Events = "" // the default: incidents' lifecycle
		live := &latestReadings{}
		c := &clock{t: time.Now().UTC().Truncate(time.Millisecond)}
		cfg := j.with(Config{Now: c.Now, TickInterval: -1, Receivers: []Receiver{platform},
			Sites: tankFarmSites(t), Latest: live})
		svc, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { svc.Close() }()
		auth := testAuth(t)
		srv := httptest.NewServer(auth.Middleware(svc.Handler()))
		defer srv.Close()

		t0 := c.Now()
		k := func(point, cond string) string { return "jh-chem/nh3-tanks/" + point + "/" + cond }
		vote := func(cond rules.Condition, g protocol.Grade, at time.Time) rules.Event {
			return rules.Event{Type: rules.Raised, Key: "jh-chem/nh3-tanks/nh3-leak/" + string(cond), Site: "jh-chem", Source: "nh3-tanks",
				Condition: cond, Grade: g, Value: 2, Limit: 2, Since: at, Time: at, Points: []string{"nh3-gas-1", "nh3-gas-2"}}
		}
		batches := [][]rules.Event{
			{event(rules.Raised, k("nh3-gas-1", "H"), t0, protocol.Yellow, protocol.None, 45.9), sourceGradeEvent(protocol.Yellow, protocol.None, t0)},
			{event(rules.Raised, k("nh3-gas-2", "H"), t0.Add(10*time.Second), protocol.Yellow, protocol.None, 41),
				vote(rules.VoteFirst, protocol.Orange, t0.Add(10*time.Second)),
				{Type: rules.Raised, Key: "jh-chem/nh3-tanks/many_first", Site: "jh-chem", Source: "nh3-tanks", Condition: rules.ManyFirst,
					Grade: protocol.Orange, Value: 2, Limit: 2, Time: t0.Add(10 * time.Second), Points: []string{"nh3-gas-1", "nh3-gas-2"}},
				sourceGradeEvent(protocol.Orange, protocol.Yellow, t0.Add(10*time.Second))},
			{event(rules.Raised, k("nh3-gas-1", "HH"), t0.Add(20*time.Second), protocol.Orange, protocol.None, 85.9),
				event(rules.Raised, k("nh3-gas-2", "HH"), t0.Add(20*time.Second), protocol.Orange, protocol.None, 82),
				vote(rules.VoteSecond, protocol.Red, t0.Add(20*time.Second)),
				{Type: rules.Raised, Key: "jh-chem/nh3-tanks/many_second", Site: "jh-chem", Source: "nh3-tanks", Condition: rules.ManySecond,
					Grade: protocol.Red, Value: 2, Limit: 2, Time: t0.Add(20 * time.Second), Points: []string{"nh3-gas-1", "nh3-gas-2"}},
				sourceGradeEvent(protocol.Red, protocol.Orange, t0.Add(20*time.Second))},
		}
		live.samples = []storage.Sample{{Site: "jh-chem", Source: "nh3-tanks", Point: "nh3-gas-1", Time: t0.Add(25 * time.Second), Value: 90.9, HasValue: true, Quality: protocol.Good},
			{Site: "jh-chem", Source: "nh3-tanks", Point: "nh3-gas-2", Time: t0.Add(25 * time.Second), Value: 84, HasValue: true, Quality: protocol.Good}}
		for _, b := range batches {
			if err := svc.HandleEvents(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(svc.ActiveAlarms()); n != 8 {
			t.Fatalf("%d point-level alarms, want the 8 details", n)
		}
		code, body := apiCall(t, srv.URL, "GET", "/api/incidents", viewerToken, "")
		var list []incident.Incident
		if err := json.Unmarshal(body, &list); err != nil || code != 200 || len(list) != 1 {
			t.Fatalf("GET /api/incidents: %d %s", code, body)
		}
		inc := list[0]
		if inc.Site != "jh-chem" || inc.Source != "nh3-tanks" || inc.Grade != protocol.Red || inc.WorstGrade != protocol.Red ||
			inc.State != incident.Active || len(inc.Conditions) != 8 || inc.OpenedAt.IsZero() {
			t.Fatalf("the leak's incident = %+v", inc)
		}
		hh := inc.Conditions[slices.IndexFunc(inc.Conditions, func(c incident.Condition) bool { return c.AlarmID == k("nh3-gas-1", "HH") })]
		if hh.Name != "1#液氨储罐 NH3 检测器" || hh.Unit != "ppm" || len(hh.Live) != 1 || hh.Live[0].Value != 90.9 || hh.Value != 85.9 || hh.State != protocol.StateUnacked {
			t.Errorf("HH condition = %+v; want its name, unit, live value 90.9 (raised at 85.9), unacked", hh)
		}

		// One acknowledgement, by the officer's own token.
		id := url.PathEscape(inc.ID)
		code, body = apiCall(t, srv.URL, "POST", "/api/incidents/"+id+"/ack", wangToken, `{"comment":"已派人"}`)
		if code != 200 {
			t.Fatalf("acknowledge: %d %s", code, body)
		}
		for _, a := range svc.ActiveAlarms() {
			if a.State != protocol.StateAcked {
				t.Errorf("alarm %s is %s after the incident's acknowledgement", a.ID, a.State)
			}
		}
		acts, err := svc.OfficerActions(ctx, "wang.gong", time.Time{}, time.Time{})
		if err != nil || len(acts) != 8 {
			t.Errorf("wang.gong's alarm acknowledgements: %d %v, want 8", len(acts), err)
		}
		if code, body = apiCall(t, srv.URL, "POST", "/api/incidents/"+id+"/ack", wangToken, `{}`); code != 409 {
			t.Errorf("second acknowledgement: %d %s, want 409", code, body)
		}
		if code, _ = apiCall(t, srv.URL, "POST", "/api/incidents/"+id+"/ack", viewerToken, `{}`); code != 403 {
			t.Errorf("viewer acknowledges: %d, want 403", code)
		}
		if code, body = apiCall(t, srv.URL, "POST", "/api/incidents/"+id+"/disposal", wangToken, `{"cause":"fire","found":"x","measures":"y"}`); code != 400 {
			t.Errorf("disposal with an unknown cause: %d %s, want 400", code, body)
		}

		// Restart while the leak goes on: the incident is still there.
		svc.Close()
		c.Add(time.Minute)
		if svc, err = New(cfg); err != nil {
			t.Fatal(err)
		}
		srv.Config.Handler = auth.Middleware(svc.Handler())
		if got := svc.Incidents(ctx); len(got) != 1 || got[0].ID != inc.ID || !got[0].Acknowledged || got[0].Grade != protocol.Red {
			t.Fatalf("after restart: %+v", got)
		}

		// Disposal while active: recorded; the leak stops: closed.
		code, body = apiCall(t, srv.URL, "POST", "/api/incidents/"+id+"/disposal", wangToken,
			`{"cause":"leak","found":"1#罐出口法兰垫片泄漏","measures":"关闭根阀，水幕稀释，更换垫片","emergency_response":true}`)
		if code != 200 {
			t.Fatalf("disposal: %d %s", code, body)
		}
		var cleared []rules.Event
		for _, cd := range inc.Conditions {
			p := strings.Split(cd.AlarmID, "/")
			cleared = append(cleared, rules.Event{Type: rules.Cleared, Key: cd.AlarmID, Site: "jh-chem", Source: "nh3-tanks", Point: cd.Point,
				Condition: rules.Condition(p[len(p)-1]), PrevGrade: cd.Grade, Time: c.Now()})
		}
		cleared = append(cleared, sourceGradeEvent(protocol.None, protocol.Red, c.Now()))
		if err := svc.HandleEvents(ctx, cleared); err != nil {
			t.Fatal(err)
		}
		if n := len(svc.Incidents(ctx)); n != 0 {
			t.Fatalf("%d incidents open after the disposal and the clear", n)
		}
		code, body = apiCall(t, srv.URL, "GET", "/api/incidents/"+id, viewerToken, "")
		var closed incident.Incident
		if err := json.Unmarshal(body, &closed); err != nil || code != 200 || closed.State != incident.Closed || closed.Disposal == nil ||
			closed.Disposal.By != "wang.gong" || closed.Disposal.Cause != incident.CauseLeak || !closed.Disposal.EmergencyResponse || closed.ClosedBy != "wang.gong" {
			t.Fatalf("closed incident: %d %s", code, body)
		}
		code, body = apiCall(t, srv.URL, "GET", "/api/incidents?state=closed", viewerToken, "")
		if err := json.Unmarshal(body, &list); err != nil || code != 200 || len(list) != 1 || list[0].ID != inc.ID {
			t.Errorf("closed incidents: %d %s", code, body)
		}
		code, body = apiCall(t, srv.URL, "GET", "/api/incidents/"+id+"/timeline", viewerToken, "")
		var tl []incident.Event
		if err := json.Unmarshal(body, &tl); err != nil || code != 200 {
			t.Fatalf("timeline: %d %s", code, body)
		}
		var tlTypes []incident.EventType
		for _, e := range tl {
			tlTypes = append(tlTypes, e.Type)
		}
		for _, want := range []incident.EventType{incident.TypeOpened, incident.TypeConditionJoined, incident.TypeAcknowledged, incident.TypeDisposalRecorded,
			incident.TypeConditionCleared, incident.TypeNormal, incident.TypeClosed} {
			if !slices.Contains(tlTypes, want) {
				t.Errorf("timeline %v lacks %s", tlTypes, want)
			}
		}

		// The command platform: the lifecycle, a handful of events.
		want := []incident.EventType{incident.TypeOpened, incident.TypeGradeChanged, incident.TypeGradeChanged, incident.TypeAcknowledged,
			incident.TypeDisposalRecorded, incident.TypeClosed}
		testenv.Eventually(t, "the platform gets the incident's lifecycle", 20*time.Second, func() bool { return len(rcv.incidentEvents(t)) >= len(want) })
		got := rcv.incidentEvents(t)
		var gotTypes []incident.EventType
		for _, e := range got {
			gotTypes = append(gotTypes, e.Type)
		}
		if !slices.Equal(gotTypes, want) {
			t.Errorf("platform got %v, want %v", gotTypes, want)
		}
		if len(rcv.events()) != len(want) {
			t.Errorf("platform got %d events, want only the %d of the incident", len(rcv.events()), len(want))
		}
		for _, ce := range rcv.events() {
			if !strings.HasPrefix(ce.Type, "cn.hazardwatch.incident.") {
				t.Errorf("platform got the point-level %s of %s", ce.Type, ce.Subject)
			}
		}
		red := got[2]
		if red.Grade != protocol.Red || red.PrevGrade != protocol.Orange || red.SourceName != "液氨储罐区" || len(red.Conditions) != 7 {
			t.Errorf("grade_changed to red = %+v", red)
		}
		if ack := got[3]; ack.Actor != "wang.gong" || ack.Comment != "已派人" || !ack.Acknowledged {
			t.Errorf("acknowledged = %+v", ack)
		}
	})
}

// TestYellowIncidentClosesItself: a yellow incident normal for the
// auto-close time closes on a tick, without a disposal; an orange one
// does not.
func TestYellowIncidentClosesItself(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)}
	svc, err := New(Config{Now: c.Now, TickInterval: -1, AutoCloseAfter: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	k := "jh-chem/nh3-tanks/nh3-gas-1/H"
	if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Raised, k, c.Now(), protocol.Yellow, protocol.None, 45)}); err != nil {
		t.Fatal(err)
	}
	if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Cleared, k, c.Add(time.Minute), protocol.None, protocol.Yellow, 30)}); err != nil {
		t.Fatal(err)
	}
	c.Add(10*time.Minute - time.Second)
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(svc.Incidents(ctx)); n != 1 {
		t.Fatalf("%d incidents before the auto-close time, want 1", n)
	}
	c.Add(time.Second)
	if err := svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(svc.Incidents(ctx)); n != 0 {
		t.Fatalf("%d incidents after the auto-close time, want 0", n)
	}
	all, err := svc.QueryIncidents(ctx, IncidentQuery{State: incident.Closed})
	if err != nil || len(all) != 1 || all[0].ClosedBy != "" || all[0].Disposal != nil {
		t.Fatalf("closed by itself: %+v %v", all, err)
	}
	if n := testutil.ToFloat64(svc.incMetrics.events.WithLabelValues("closed")); n != 1 {
		t.Errorf("hazardwatch_alerting_incident_events_total{type=closed} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(svc.incMetrics.open.WithLabelValues("yellow", "normal")); n != 0 {
		t.Errorf("open incidents gauge still counts the closed one: %v", n)
	}
}

// TestIncidentsSharedByNodes: two nodes on one PostgreSQL journal each
// keep their own sites' incidents; a node acknowledging another's answers
// 404-style ErrUnknown; any node reads any incident from the journal; when
// a site moves to the other node (a new shard count) its open incident
// goes along, acknowledged, and the next condition joins it.
func TestIncidentsSharedByNodes(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx := context.Background()
	node := func(name string, sites ...string) Config {
		return Config{JournalDSN: dsn, Node: name, OwnsSite: sitesOf(sites...), TickInterval: -1}
	}
	a, err := New(node("ingest-0", "site-a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(node("ingest-1", "site-b"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := a.HandleEvents(ctx, []rules.Event{event(rules.Raised, "site-a/tanks/p1/HH", now, protocol.Orange, protocol.None, 90)}); err != nil {
		t.Fatal(err)
	}
	if err := b.HandleEvents(ctx, []rules.Event{event(rules.Raised, "site-b/tanks/p1/H", now, protocol.Yellow, protocol.None, 45)}); err != nil {
		t.Fatal(err)
	}
	ia, ib := a.Incidents(ctx), b.Incidents(ctx)
	if len(ia) != 1 || ia[0].Site != "site-a" || len(ib) != 1 || ib[0].Site != "site-b" {
		t.Fatalf("node 0 has %+v, node 1 %+v; want each its own site's", ia, ib)
	}
	if _, err := b.AckIncident(ctx, ia[0].ID, "王工", ""); !errors.Is(err, incident.ErrUnknown) {
		t.Errorf("node 1 acknowledging node 0's incident: %v, want ErrUnknown", err)
	}
	if got, ok, err := b.Incident(ctx, ia[0].ID); err != nil || !ok || got.Site != "site-a" {
		t.Errorf("node 1 reading node 0's incident from the journal: %+v %v %v", got, ok, err)
	}
	if _, err := a.AckIncident(ctx, ia[0].ID, "王工", "收到"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()

	// One node takes both sites.
	one, err := New(node("ingest-0", "site-a", "site-b"))
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	got := one.Incidents(ctx)
	if len(got) != 2 {
		t.Fatalf("the one node restored %d incidents, want both sites'", len(got))
	}
	if err := one.HandleEvents(ctx, []rules.Event{event(rules.Raised, "site-a/tanks/p2/H", now.Add(time.Second), protocol.Yellow, protocol.None, 41)}); err != nil {
		t.Fatal(err)
	}
	inc, _, err := one.Incident(ctx, ia[0].ID)
	if err != nil || !inc.Acknowledged || len(inc.Conditions) != 2 || inc.WorstGrade != protocol.Orange {
		t.Errorf("site-a's incident on the new node: %+v %v; want it acknowledged, with the new condition joined", inc, err)
	}
}

// countingLatest is a LatestReader that counts its reads.
type countingLatest struct {
	latestReadings
	mu    sync.Mutex
	reads int
}

func (l *countingLatest) Latest(ctx context.Context, siteID string) ([]storage.Sample, error) {
	l.mu.Lock()
	l.reads++
	l.mu.Unlock()
	return l.latestReadings.Latest(ctx, siteID)
}

func (l *countingLatest) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reads
}

// TestIncidentLiveValuesOfALargeSite: a site's newest readings are read
// once for a batch that opens incidents of two sources, and each
// condition shows its own point's newest reading out of thousands.
func TestIncidentLiveValuesOfALargeSite(t *testing.T) {
	ctx := context.Background()
	rcv := newReceiver(t)
	platform := testReceiver(rcv.URL())
	platform.Events = "" // the incidents' lifecycle
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	live := &countingLatest{}
	for i := range 5000 {
		live.samples = append(live.samples, storage.Sample{Site: "jh-chem", Source: "other", Point: fmt.Sprintf("other-%d", i), Time: t0, Value: 1, HasValue: true, Quality: protocol.Good})
	}
	live.samples = append(live.samples,
		storage.Sample{Site: "jh-chem", Source: "nh3-tanks", Point: "nh3-gas-1", Time: t0, Value: 45.9, HasValue: true, Quality: protocol.Good},
		storage.Sample{Site: "jh-chem", Source: "lpg-tanks", Point: "lpg-lel-1", Time: t0, Value: 27, HasValue: true, Quality: protocol.Good})
	svc, err := New(Config{TickInterval: -1, Receivers: []Receiver{platform}, Sites: tankFarmSites(t), Latest: live})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	lpg := event(rules.Raised, "jh-chem/lpg-tanks/lpg-lel-1/H", t0, protocol.Yellow, protocol.None, 27)
	if err := svc.HandleEvents(ctx, []rules.Event{
		event(rules.Raised, "jh-chem/nh3-tanks/nh3-gas-1/H", t0, protocol.Yellow, protocol.None, 45.9), sourceGradeEvent(protocol.Yellow, protocol.None, t0),
		lpg, {Type: rules.SourceGradeChanged, Key: "jh-chem/lpg-tanks", Site: "jh-chem", Source: "lpg-tanks", Grade: protocol.Yellow, Time: t0},
	}); err != nil {
		t.Fatal(err)
	}
	if n := live.count(); n != 1 {
		t.Errorf("the batch read the site's newest readings %d times, want once", n)
	}
	wantLive := map[string]float64{"nh3-tanks": 45.9, "lpg-tanks": 27}
	check := func(what string, source string, conds []incident.Condition) {
		t.Helper()
		if len(conds) != 1 || len(conds[0].Live) != 1 || conds[0].Live[0].Value != wantLive[source] || !conds[0].Live[0].HasValue || conds[0].Live[0].Name == "" {
			t.Errorf("%s of %s: conditions %+v; want the one condition with its point's newest reading %v and name", what, source, conds, wantLive[source])
		}
	}
	testenv.Eventually(t, "the platform gets both incidents opened", 20*time.Second, func() bool { return len(rcv.incidentEvents(t)) >= 2 })
	for _, e := range rcv.incidentEvents(t) {
		check("webhook "+string(e.Type), e.Source, e.Conditions)
	}
	incs := svc.Incidents(ctx)
	if len(incs) != 2 {
		t.Fatalf("%d incidents open, want 2", len(incs))
	}
	for _, inc := range incs {
		check("open incident", inc.Source, inc.Conditions)
	}
	if n := live.count(); n != 2 {
		t.Errorf("the site's newest readings were read %d times for the batch and the list, want twice", n)
	}
	// A decorator asked for another point after it read the site reads
	// again rather than show no value.
	d := svc.decorator(ctx)
	nh3 := []incident.Condition{{AlarmID: "jh-chem/nh3-tanks/nh3-gas-1/H", Point: "nh3-gas-1"}}
	lel := []incident.Condition{{AlarmID: "jh-chem/lpg-tanks/lpg-lel-1/H", Point: "lpg-lel-1"}}
	d.conditions("jh-chem", nh3)
	d.conditions("jh-chem", lel)
	check("decorated later", "nh3-tanks", nh3)
	check("decorated later", "lpg-tanks", lel)
}

// pointsLatest reads points alone, as the ingest service does.
type pointsLatest struct {
	countingLatest
	asked [][]string
}

func (l *pointsLatest) LatestOf(_ context.Context, siteID string, points []string) ([]storage.Sample, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, slices.Sorted(slices.Values(points)))
	var out []storage.Sample
	for _, s := range l.samples {
		if s.Site == siteID && slices.Contains(points, s.Point) {
			out = append(out, s)
		}
	}
	return out, nil
}

// TestIncidentLiveValuesByPoint: with a reader of points alone, a batch
// asks once for its conditions' points, never for the whole site.
func TestIncidentLiveValuesByPoint(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	live := &pointsLatest{}
	live.samples = []storage.Sample{
		{Site: "jh-chem", Source: "nh3-tanks", Point: "nh3-gas-1", Time: t0, Value: 45.9, HasValue: true, Quality: protocol.Good},
		{Site: "jh-chem", Source: "nh3-tanks", Point: "nh3-gas-2", Time: t0, Value: 12, HasValue: true, Quality: protocol.Good},
		{Site: "jh-chem", Source: "lpg-tanks", Point: "lpg-lel-1", Time: t0, Value: 27, HasValue: true, Quality: protocol.Good}}
	svc, err := New(Config{TickInterval: -1, Sites: tankFarmSites(t), Latest: live})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := svc.HandleEvents(ctx, []rules.Event{
		event(rules.Raised, "jh-chem/nh3-tanks/nh3-gas-1/H", t0, protocol.Yellow, protocol.None, 45.9), sourceGradeEvent(protocol.Yellow, protocol.None, t0),
		event(rules.Raised, "jh-chem/lpg-tanks/lpg-lel-1/H", t0, protocol.Yellow, protocol.None, 27),
		{Type: rules.SourceGradeChanged, Key: "jh-chem/lpg-tanks", Site: "jh-chem", Source: "lpg-tanks", Grade: protocol.Yellow, Time: t0},
	}); err != nil {
		t.Fatal(err)
	}
	incs := svc.Incidents(ctx)
	if len(incs) != 2 {
		t.Fatalf("%d incidents open, want 2", len(incs))
	}
	want := map[string]float64{"nh3-tanks": 45.9, "lpg-tanks": 27}
	for _, inc := range incs {
		if c := inc.Conditions; len(c) != 1 || len(c[0].Live) != 1 || c[0].Live[0].Value != want[inc.Source] {
			t.Errorf("incident of %s: conditions %+v, want its point's newest reading %v", inc.Source, c, want[inc.Source])
		}
	}
	live.mu.Lock()
	defer live.mu.Unlock()
	wantAsked := [][]string{{"lpg-lel-1", "nh3-gas-1"}, {"lpg-lel-1", "nh3-gas-1"}} // the batch, then the list
	if live.reads != 0 || !slices.EqualFunc(live.asked, wantAsked, slices.Equal) {
		t.Errorf("read the whole site %d times and points %v; want none and %v", live.reads, live.asked, wantAsked)
	}
}
