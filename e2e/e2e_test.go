// Package e2e tests HazardWatch end to end over the real path: Modbus
// simulators on TCP → gateway (goburrow) → a real Mosquitto → ingest →
// embedded store, rules, alerting → a webhook receiver over HTTP and the
// MQTT alarms topic.
package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/internal/allinone"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/simulators"
	"github.com/hazardwatch/hazardwatch/storage"
)

const secret = "e2e-secret"

// receiver is the emergency command platform: it records every signed
// CloudEvent it is sent — by default the incidents' lifecycle.
type receiver struct {
	mu        sync.Mutex
	events    []protocol.AlarmEvent
	incidents []incident.Event
	bad       int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !alerting.VerifySignature(secret, body, req.Header.Get(alerting.SignatureHeader)) {
		r.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ce alerting.CloudEvent
	if err := json.Unmarshal(body, &ce); err != nil || ce.SpecVersion != "1.0" || ce.ID == "" {
		r.bad++
		http.Error(w, "not a CloudEvent", http.StatusBadRequest)
		return
	}
	if strings.HasPrefix(ce.Type, "cn.hazardwatch.incident.") {
		var ice alerting.IncidentCloudEvent
		if err := json.Unmarshal(body, &ice); err != nil {
			r.bad++
			http.Error(w, "not an incident CloudEvent", http.StatusBadRequest)
			return
		}
		r.incidents = append(r.incidents, ice.Data) // every one: the outbox sends each event once
		w.WriteHeader(http.StatusNoContent)
		return
	}
	r.events = append(r.events, ce.Data)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) incidentEvents() []incident.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]incident.Event(nil), r.incidents...)
}

// tankFarmOnFreePorts copies the tank-farm example site into a directory,
// moving its Modbus devices to free ports so the test runs beside a demo.
func tankFarmOnFreePorts(t *testing.T) string {
	t.Helper()
	path, _ := testenv.ExampleSite(t, "tank-farm.yaml", "127.0.0.1:15021", "127.0.0.1:15022")
	return filepath.Dir(path)
}

// TestAmmoniaLeakBecomesGradedWarning plays an ammonia leak on the tank
// farm: detector 1 past HH and detector 2 past H. The nh3 tank farm is a
// GB 18218 grade 2 source, so every grade goes one step up: detector 1's
// HH (yellow) is orange, the 2-of-3 vote at first level (orange) is red.
func TestAmmoniaLeakBecomesGradedWarning(t *testing.T) {
	broker := testenv.Mosquitto(t)
	rcv := &receiver{}
	platform := httptest.NewServer(rcv)
	defer platform.Close()

	// Watch the alarms topic as a command-centre client would.
	var mqttMu sync.Mutex
	var mqttAlarms []protocol.AlarmEvent
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("e2e-watcher"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect watcher: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	tok := sub.Subscribe(protocol.AlarmsTopic("jh-chem"), 1, func(_ mqtt.Client, m mqtt.Message) {
		e, err := protocol.DecodeAlarmEvent(m.Payload())
		if err != nil {
			t.Errorf("alarm event on MQTT does not decode: %v", err)
			return
		}
		mqttMu.Lock()
		mqttAlarms = append(mqttAlarms, e)
		mqttMu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	leak := simulators.Scenario{Name: "e2e-leak", Site: "jh-chem", Steps: []simulators.Step{
		{At: 3 * time.Second, Point: "nh3-gas-1", To: 90},
		{At: 3 * time.Second, Point: "nh3-gas-2", To: 50},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan allinone.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- allinone.Run(ctx, allinone.Config{
			SitesDir: tankFarmOnFreePorts(t), DataDir: t.TempDir(), Broker: broker.URL(),
			HTTPAddr: "127.0.0.1:0", Play: &leak,
			Receivers: []alerting.Receiver{{Name: "command-platform", URL: platform.URL, Secret: secret,
				MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}},
			Ready: func(i allinone.Info) { ready <- i },
		})
	}()
	var info allinone.Info
	select {
	case info = <-ready:
	case err := <-done:
		t.Fatalf("HazardWatch did not start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("HazardWatch did not start within 60s")
	}

	// The command platform gets the tank farm's one incident rising to
	// red, with its conditions — not the point-level events.
	hh, vote := "jh-chem/nh3-tanks/nh3-gas-1/HH", "jh-chem/nh3-tanks/nh3-leak/vote_first"
	condition := func(e incident.Event, alarmID string) (incident.Condition, bool) {
		for _, c := range e.Conditions {
			if c.AlarmID == alarmID {
				return c, true
			}
		}
		return incident.Condition{}, false
	}
	testenv.Eventually(t, "the incident at red with the HH and the vote at the command platform", 120*time.Second, func() bool {
		evs := rcv.incidentEvents()
		if len(evs) == 0 {
			return false
		}
		last := evs[len(evs)-1]
		_, hasHH := condition(last, hh)
		_, hasVote := condition(last, vote)
		return last.Grade == protocol.Red && hasHH && hasVote
	})
	evs := rcv.incidentEvents()
	last := evs[len(evs)-1]
	if c, _ := condition(last, hh); c.Grade != protocol.Orange || c.Point != "nh3-gas-1" || c.Value < 80 || c.Limit != 80 || c.Name != "1#液氨储罐 NH3 检测器" ||
		!strings.Contains(c.Message, "HH 80 ppm") || len(c.Live) != 1 || !c.Live[0].HasValue || c.Live[0].Value < 80 {
		t.Errorf("HH condition of the incident = %+v; want orange, nh3-gas-1 ≥ 80 against limit 80, explained, with its live value", c)
	}
	if c, _ := condition(last, vote); c.Grade != protocol.Red {
		t.Errorf("vote condition grade = %v, want red", c.Grade)
	}
	var types []incident.EventType
	for _, e := range evs {
		types = append(types, e.Type)
		if e.IncidentID != evs[0].IncidentID || e.Site != "jh-chem" || e.Source != "nh3-tanks" || e.SourceName != "液氨储罐区" {
			t.Errorf("platform event %+v; want the tank farm's one incident", e)
		}
	}
	if len(evs) > 4 || types[0] != incident.TypeOpened || last.WorstGrade != protocol.Red {
		t.Errorf("platform got %v for the leak; want opened and a few grade changes up to red", types)
	}
	rcv.mu.Lock()
	points := len(rcv.events)
	rcv.mu.Unlock()
	if points != 0 {
		t.Errorf("platform got %d point-level events; a receiver gets them only with events: all or points", points)
	}
	testenv.Eventually(t, "the warning on the MQTT alarms topic", 10*time.Second, func() bool {
		mqttMu.Lock()
		defer mqttMu.Unlock()
		for _, a := range mqttAlarms {
			if a.AlarmID == hh && a.Type == protocol.AlarmRaised && a.Grade == protocol.Orange {
				return true
			}
		}
		return false
	})

	// The readings that raised it are stored.
	pts, err := info.Store.Range(context.Background(), storage.Point{Site: "jh-chem", Point: "nh3-gas-1"}, time.Now().Add(-5*time.Minute), time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var calm, high bool
	for _, p := range pts {
		calm = calm || p.HasValue && p.Value < 40
		high = high || p.HasValue && p.Value >= 80
	}
	if !calm || !high {
		t.Errorf("stored nh3-gas-1 readings (%d) do not show the calm baseline and the leak: %+v", len(pts), pts)
	}

	// The status API shows the source red.
	// The status API needs a login: the demo officer's, as printed.
	if resp, err := http.Get(info.HTTP + "/api/status"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api/status without a login: %v %v, want 401", resp, err)
	} else {
		resp.Body.Close()
	}
	if !strings.Contains(info.Console, "password="+info.DemoPassword) || len(info.DemoPassword) < 16 {
		t.Errorf("demo console link %q does not log in with the demo password", info.Console)
	}
	resp, err := loggedIn(t, info.HTTP, info.DemoUser, info.DemoPassword).Get(info.HTTP + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Sources []struct {
			Source string         `json:"source"`
			Grade  protocol.Grade `json:"grade"`
		} `json:"sources"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Sources {
		if s.Source == "nh3-tanks" && s.Grade != protocol.Red {
			t.Errorf("nh3-tanks grade on the status API = %v, want red", s.Grade)
		}
		if s.Source == "lpg-tanks" && s.Grade != protocol.None {
			t.Errorf("calm lpg-tanks graded %v", s.Grade)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("HazardWatch did not stop within 30s of cancel")
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.bad > 0 {
		t.Errorf("%d deliveries with a bad signature or body", rcv.bad)
	}
}
