package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
)

func floodEvents(evs []protocol.AlarmEvent) (started, summaries, ended []protocol.AlarmEvent) {
	for _, e := range evs {
		if e.Type != protocol.AlarmFlood {
			continue
		}
		switch {
		case e.PrevState == protocol.StateNormal:
			started = append(started, e)
		case e.State == protocol.StateNormal:
			ended = append(ended, e)
		default:
			summaries = append(summaries, e)
		}
	}
	return started, summaries, ended
}

func TestFloodGroupsDeliveriesButKeepsEverything(t *testing.T) {
	broker := testenv.Mosquitto(t)
	ctx := context.Background()
	pub, err := NewMQTTPublisher(ctx, mqttconn.Config{Broker: broker.URL(), ClientID: "alerting-flood-pub"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var mu sync.Mutex
	onWire := map[string]bool{}
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("alerting-flood-sub"))
	if tok := sub.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe(protocol.AlarmsTopic("jh-chem"), 1, func(_ mqtt.Client, m mqtt.Message) {
		e, err := protocol.DecodeAlarmEvent(m.Payload())
		if err != nil {
			t.Errorf("alarm event on MQTT: %v", err)
			return
		}
		mu.Lock()
		onWire[e.ID] = true
		mu.Unlock()
	}); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	c := newClock()
	rcv := newReceiver(t)
	svc, err := New(Config{Now: c.Now, TickInterval: -1, Publisher: pub, Receivers: []Receiver{testReceiver(rcv.URL())}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	send := func(evs ...rules.Event) {
		t.Helper()
		if err := svc.HandleEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	tick := func() {
		t.Helper()
		if err := svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// One leak: 50 alarms of one tank farm in a minute, every tenth red.
	start := c.Now()
	grade := func(i int) protocol.Grade {
		switch {
		case i%10 == 7:
			return protocol.Red
		case i%3 == 0:
			return protocol.Yellow
		}
		return protocol.Blue
	}
	key := func(i int) string { return fmt.Sprintf("jh-chem/nh3-tanks/gas-%02d/H", i) }
	var reds []string
	for i := range 50 {
		c.t = start.Add(time.Duration(i) * 1200 * time.Millisecond)
		if grade(i) == protocol.Red {
			reds = append(reds, key(i))
		}
		send(event(rules.Raised, key(i), c.Now(), grade(i), protocol.None, float64(i)))
		if i == 30 {
			// Another source is not part of this flood.
			send(event(rules.Raised, "jh-chem/lpg-tanks/lpg-1/H", c.Now(), protocol.Blue, protocol.None, 1))
		}
		if i%5 == 4 {
			tick()
		}
	}
	// A few of the yellow ones clear during the flood.
	for _, i := range []int{12, 15, 18} {
		c.Add(time.Second)
		send(event(rules.Cleared, key(i), c.Now(), protocol.None, protocol.Yellow, 0))
	}
	c.t = start.Add(2 * time.Minute)
	tick()

	hist, err := svc.History(ctx, HistoryQuery{Site: "jh-chem", Source: "nh3-tanks"})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[protocol.AlarmEventType]int{}
	for _, e := range hist {
		counts[e.Type]++
	}
	if counts[protocol.AlarmRaised] != 50 || counts[protocol.AlarmCleared] != 3 {
		t.Fatalf("journal of the flooded source: %v, want 50 raised and 3 cleared", counts)
	}
	started, summaries, ended := floodEvents(hist)
	if len(started) != 1 || len(ended) != 0 {
		t.Fatalf("flood notices: %d started, %d ended, want 1 and 0", len(started), len(ended))
	}
	st := started[0]
	if st.Value != 11 || st.Limit != 10 || len(st.Points) != 11 || st.Points[0] != key(0) || st.Grade != protocol.Red ||
		st.AlarmID != "jh-chem/nh3-tanks/flood" || !st.TS.Equal(start.Add(10*1200*time.Millisecond)) {
		t.Fatalf("flood start %+v", st)
	}
	// Held back from the receiver: the 39 raises below red after the start
	// (4 of the 39 are red) and the 3 clears; summarised at most once a
	// minute.
	held := 0
	for _, s := range summaries {
		held += len(s.Points)
	}
	if len(summaries) < 1 || len(summaries) > 3 {
		t.Fatalf("%d flood summaries in 2 minutes, want 1 to 3", len(summaries))
	}
	for i := 1; i < len(summaries); i++ {
		if gap := summaries[i].TS.Sub(summaries[i-1].TS.Time); gap < time.Minute {
			t.Errorf("flood summaries %s apart", gap)
		}
	}
	if held != 35 {
		t.Errorf("summaries list %d held alarms, want 35", held)
	}
	if svc.metrics == nil || len(svc.Floods()) != 1 {
		t.Errorf("floods now: %+v", svc.Floods())
	}

	// Every journaled event reaches MQTT.
	testenv.Eventually(t, "every journaled event on MQTT", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range hist {
			if !onWire[e.ID] {
				return false
			}
		}
		return true
	})
	// The receiver: the 11 raises up to the start, every red, the notices,
	// the other source's raise; not the held ones.
	want := 11 + 4 + 1 + len(summaries) + 1
	testenv.Eventually(t, "deliveries", 20*time.Second, func() bool { return len(rcv.events()) >= want })
	time.Sleep(100 * time.Millisecond)
	got := map[string]bool{}
	for _, ce := range rcv.events() {
		got[ce.Subject+" "+string(ce.Data.Type)] = true
	}
	if n := len(rcv.events()); n != want {
		t.Errorf("receiver got %d events, want %d", n, want)
	}
	for _, k := range reds {
		if !got[k+" raised"] {
			t.Errorf("red alarm %s did not reach the receiver", k)
		}
	}
	if got[key(20)+" raised"] || got[key(12)+" cleared"] {
		t.Error("a held event reached the receiver on its own")
	}
	if !got["jh-chem/lpg-tanks/lpg-1/H raised"] {
		t.Error("another source's alarm was held")
	}

	// The rate falls: no raises since the first minute. The flood goes on
	// while more than 10 raises are in the window and ends below 10.
	c.t = start.Add(10*time.Minute + 30*time.Second)
	tick()
	if _, _, ended := floodEvents(mustHistory(t, svc)); len(ended) != 0 {
		t.Fatal("flood ended while 24 raises are in the window")
	}
	c.t = start.Add(10*time.Minute + 50*time.Second)
	tick()
	tick()
	hist = mustHistory(t, svc)
	started, _, ended = floodEvents(hist)
	if len(started) != 1 || len(ended) != 1 || ended[0].Grade != protocol.None || ended[0].PrevGrade != protocol.Red || ended[0].Value >= 10 {
		t.Fatalf("flood end: %d started, ended %+v", len(started), ended)
	}
	if len(svc.Floods()) != 0 {
		t.Errorf("still flooding: %+v", svc.Floods())
	}
	// After the flood, events are delivered one by one again.
	before := len(rcv.events())
	send(event(rules.Cleared, key(21), c.Now(), protocol.None, protocol.Yellow, 0))
	testenv.Eventually(t, "the end notice and a clear after the flood", 20*time.Second, func() bool { return len(rcv.events()) >= before+1 })
	testenv.Eventually(t, "the clear after the flood delivered", 20*time.Second, func() bool {
		for _, ce := range rcv.events() {
			if ce.Subject == key(21) && ce.Data.Type == protocol.AlarmCleared {
				return true
			}
		}
		return false
	})
}

func mustHistory(t *testing.T, svc *Service) []protocol.AlarmEvent {
	t.Helper()
	hist, err := svc.History(context.Background(), HistoryQuery{Site: "jh-chem", Source: "nh3-tanks", Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return hist
}

func TestFloodSurvivesRestart(t *testing.T) { eachJournal(t, testFloodSurvivesRestart) }

func testFloodSurvivesRestart(t *testing.T, j journal) {
	c := newClock()
	start := c.Now()
	open := func() *Service {
		svc, err := New(j.with(Config{Now: c.Now, TickInterval: -1}))
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svc := open()
	for i := range 12 {
		c.t = start.Add(time.Duration(i) * time.Second)
		if err := svc.HandleEvents(context.Background(), []rules.Event{
			event(rules.Raised, fmt.Sprintf("jh-chem/nh3-tanks/gas-%02d/H", i), c.Now(), protocol.Blue, protocol.None, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	svc.Close()
	svc = open()
	defer svc.Close()
	if f := svc.Floods(); len(f) != 1 || f[0].Source != "nh3-tanks" {
		t.Fatalf("floods after restart: %+v", f)
	}
	// One more raise does not start a second flood.
	if err := svc.HandleEvents(context.Background(), []rules.Event{
		event(rules.Raised, "jh-chem/nh3-tanks/gas-99/H", c.Now(), protocol.Blue, protocol.None, 1)}); err != nil {
		t.Fatal(err)
	}
	c.t = start.Add(5 * time.Minute)
	if err := svc.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	started, _, ended := floodEvents(mustHistory(t, svc))
	if len(started) != 1 || len(ended) != 0 {
		t.Fatalf("after restart: %d flood starts, %d ends; want 1 and 0", len(started), len(ended))
	}
	c.t = start.Add(11 * time.Minute)
	if err := svc.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, ended := floodEvents(mustHistory(t, svc)); len(ended) != 1 {
		t.Fatalf("%d flood ends once the window is empty, want 1", len(ended))
	}
}

func TestDeadLettersAPI(t *testing.T) { eachJournal(t, testDeadLettersAPI) }

func testDeadLettersAPI(t *testing.T, j journal) {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "unknown alarm schema", http.StatusUnprocessableEntity)
	}))
	defer refusing.Close()
	r := testReceiver(refusing.URL)
	r.Name = "platform"
	svc, err := New(j.with(Config{Receivers: []Receiver{r}}))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	k := "jh-chem/nh3-tanks/nh3-gas-1/HH"
	if err := svc.HandleEvents(context.Background(), []rules.Event{event(rules.Raised, k, time.Now(), protocol.Orange, protocol.None, 86)}); err != nil {
		t.Fatal(err)
	}
	srv := serveAPI(t, svc)
	get := func(path, token string) (int, []DeadLetter) {
		t.Helper()
		code, body := apiCall(t, srv.URL, "GET", path, token, "")
		var dl []DeadLetter
		if code == http.StatusOK {
			if err := json.Unmarshal(body, &dl); err != nil {
				t.Fatalf("dead letters %s: %v", body, err)
			}
		}
		return code, dl
	}
	var dl []DeadLetter
	testenv.Eventually(t, "the refused event in the dead letters", 20*time.Second, func() bool {
		var code int
		code, dl = get("/api/deadletters/alerting?receiver=platform", viewerToken)
		return code == http.StatusOK && len(dl) == 1
	})
	d := dl[0]
	if d.Receiver != "platform" || !strings.Contains(d.Error, "422") || d.Failed.IsZero() || !strings.Contains(string(d.Body), k) {
		t.Fatalf("dead letter %+v", d)
	}
	if code, _ := get("/api/deadletters/alerting", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
	if code, _ := get("/api/deadletters/alerting?receiver=nobody", viewerToken); code != http.StatusNotFound {
		t.Errorf("unknown receiver: %d", code)
	}
	if code, _ := get("/api/deadletters/alerting?limit=0", viewerToken); code != http.StatusBadRequest {
		t.Errorf("limit 0: %d", code)
	}
	if code, all := get("/api/deadletters/alerting", viewerToken); code != http.StatusOK || len(all) != 1 || all[0].EventID != d.EventID {
		t.Errorf("all dead letters: %d %+v", code, all)
	}
}
