package center

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// fieldGateway is a foreign gateway as the field has them: it publishes
// per docs/protocol.md with its own clock, offset from the centre's.
type fieldGateway struct {
	id, point string
	offset    time.Duration
	seq       uint64
}

// clockSite has one gateway, one NH3 detector (0–100 ppm, H 40, HH 80,
// kind defaults: on/off-delay 2 s, stale after 3 s) and one hazard source
// per field gateway.
func clockSite(t *testing.T, gws []*fieldGateway) []*site.Site {
	var b strings.Builder
	b.WriteString("id: clk\nname: 时钟测试化工\ngateways:\n")
	for i, g := range gws {
		fmt.Fprintf(&b, "  - id: %s\n    devices:\n      - {id: d-%s, address: \"127.0.0.1:%d\", poll_interval: 1s}\n", g.id, g.id, 15600+i)
	}
	b.WriteString("sources:\n")
	for _, g := range gws {
		fmt.Fprintf(&b, "  - id: s-%s\n    name: %s 储罐区\n    type: tank_farm\n    grade: 3\n    points:\n", g.id, g.id)
		fmt.Fprintf(&b, "      - {id: %s, name: %s 号 NH3 检测器, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: d-%s, address: 0}, limits: {h: 40, hh: 80}}\n", g.point, g.id, g.id)
	}
	return loadSite(t, b.String())
}

// alarmWatch collects the alarm events the centre publishes on MQTT, as a
// command-centre client would.
type alarmWatch struct {
	mu  sync.Mutex
	evs []protocol.AlarmEvent
}

func watchAlarms(t *testing.T, broker, siteID string) *alarmWatch {
	w := &alarmWatch{}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("clock-test-watcher-" + siteID))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect watcher: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(protocol.AlarmsTopic(siteID), 1, func(_ mqtt.Client, m mqtt.Message) {
		e, err := protocol.DecodeAlarmEvent(m.Payload())
		if err != nil {
			t.Errorf("alarm event does not decode: %v", err)
			return
		}
		w.mu.Lock()
		w.evs = append(w.evs, e)
		w.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return w
}

func (w *alarmWatch) events() []protocol.AlarmEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.evs)
}

// of lists the events of alarms of a point, in the order they came.
func (w *alarmWatch) of(point string) []protocol.AlarmEvent {
	var out []protocol.AlarmEvent
	for _, e := range w.events() {
		if e.Point == point && e.Type != protocol.AlarmSourceGradeChanged {
			out = append(out, e)
		}
	}
	return out
}

// hook is a command-platform receiver that records what it is sent.
type hook struct {
	mu  sync.Mutex
	evs []protocol.AlarmEvent
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ce alerting.CloudEvent
	if err := json.Unmarshal(body, &ce); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.evs = append(h.evs, ce.Data)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hook) events() []protocol.AlarmEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.evs)
}

type clockCentre struct {
	c      *Center
	pub    mqtt.Client
	alarms *alarmWatch
	hook   *hook
}

// startClockCentre runs a real centre on a private Mosquitto with an
// English-speaking command platform, and a publisher for the gateways.
func startClockCentre(t *testing.T, sites []*site.Site) *clockCentre {
	broker := testenv.Mosquitto(t)
	h := &hook{}
	platform := httptest.NewServer(h)
	t.Cleanup(platform.Close)
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Open(ctx, Config{Sites: sites, Broker: broker.URL(), DataDir: t.TempDir(), ClientID: "clock-test",
		Receivers: []alerting.Receiver{{Name: "platform-en", URL: platform.URL, Language: "en", Events: alerting.EventsPoints, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}}})
	if err != nil {
		cancel()
		t.Fatalf("open centre: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("centre stopped with: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("centre did not stop within 30s")
		}
		c.Close()
	})
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("clock-test-gateways"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect gateways: %v", tok.Error())
	}
	t.Cleanup(func() { pub.Disconnect(100) })
	return &clockCentre{c: c, pub: pub, alarms: watchAlarms(t, broker.URL(), sites[0].ID), hook: h}
}

// publish sends one telemetry message of g: a reading taken at centre time
// at, stamped on g's clock.
func (cc *clockCentre) publish(t *testing.T, g *fieldGateway, seq uint64, at time.Time, v float64) {
	msg := protocol.Telemetry{V: protocol.Version, Site: "clk", Gateway: g.id, Seq: seq, TS: protocol.Time{Time: at.Add(g.offset)},
		Readings: []protocol.Reading{{Point: g.point, Value: &v}}}
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if tok := cc.pub.Publish(protocol.TelemetryTopic("clk", g.id), 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s seq %d: %v", g.id, seq, tok.Error())
	}
}

// waitLive publishes a steady 5 ppm from every gateway each second until
// the centre has a reading of each.
func (cc *clockCentre) waitLive(t *testing.T, gws []*fieldGateway) {
	testenv.Eventually(t, "the centre receiving every gateway", 30*time.Second, func() bool {
		for _, g := range gws {
			g.seq++
			cc.publish(t, g, g.seq, time.Now(), 5)
		}
		latest, err := cc.c.ingest.Latest(context.Background(), "clk")
		if err != nil || len(latest) < len(gws) {
			time.Sleep(time.Second)
			return false
		}
		return true
	})
}

// TestGatewayClocksDoNotFoolTheCentre drives the real centre (MQTT in,
// alarm events out) with field gateways whose clocks lag 1.8 s, 2.5 s, 10 s
// and 10 min or lead 30 s and 4 min, beside one with a correct clock, all
// sending the same physical signal each second: steady 5 ppm, a single
// 90 ppm sample (shorter than the 2 s on-delay), 50 ppm for 4 s (past H
// 40), back to 5 ppm, then silence. Every gateway must get the same
// decisions as the correct one: no alarm for the steady value or the
// spike, H raised and cleared once, and stale within stale_after (3 s)
// plus one tick of its last message.
func TestGatewayClocksDoNotFoolTheCentre(t *testing.T) {
	gws := []*fieldGateway{{id: "gw-ref"}, {id: "gw-lag1800ms", offset: -1800 * time.Millisecond}, {id: "gw-lag2500ms", offset: -2500 * time.Millisecond},
		{id: "gw-lag10s", offset: -10 * time.Second}, {id: "gw-lag10m", offset: -10 * time.Minute},
		{id: "gw-lead30s", offset: 30 * time.Second}, {id: "gw-lead4m", offset: 4 * time.Minute}}
	for _, g := range gws {
		g.point = "nh3-" + strings.TrimPrefix(g.id, "gw-")
	}
	cc := startClockCentre(t, clockSite(t, gws))
	cc.waitLive(t, gws)

	signal := []float64{5, 5, 5, 90, 5, 5, 5, 50, 50, 50, 50, 5, 5, 5, 5}
	start := time.Now()
	lastSent := map[string]time.Time{}
	for k, v := range signal {
		next := start.Add(time.Duration(k) * time.Second)
		time.Sleep(time.Until(next))
		for _, g := range gws {
			g.seq++
			cc.publish(t, g, g.seq, time.Now(), v)
			lastSent[g.id] = time.Now()
		}
	}
	// Silence: wait for every gateway's stale alarm.
	testenv.Eventually(t, "every silent gateway stale", 30*time.Second, func() bool {
		for _, g := range gws {
			if !slices.ContainsFunc(cc.alarms.of(g.point), func(e protocol.AlarmEvent) bool {
				return e.Condition == "stale" && e.Type == protocol.AlarmRaised
			}) {
				return false
			}
		}
		return true
	})

	decisions := func(g *fieldGateway) []string {
		var out []string
		for _, e := range cc.alarms.of(g.point) {
			out = append(out, string(e.Type)+" "+e.Condition)
		}
		return out
	}
	want := []string{"raised H", "cleared H", "raised stale"}
	for _, g := range gws {
		got := decisions(g)
		if !slices.Equal(got, want) {
			t.Errorf("%s (clock %v): decisions %v, want %v as with a correct clock", g.id, g.offset, got, want)
		}
		for _, e := range cc.alarms.of(g.point) {
			if e.Condition != "stale" || e.Type != protocol.AlarmRaised {
				continue
			}
			// 3 s of silence plus one 1 s tick; 1 s more for a busy
			// machine's delivery. A 30 s lead would be 33 s.
			if d := e.TS.Sub(lastSent[g.id]); d < 2*time.Second || d > 5*time.Second {
				t.Errorf("%s (clock %v): stale %v after its last message, want within stale_after 3 s plus one tick", g.id, g.offset, d.Round(100*time.Millisecond))
			}
			if e.Late || e.OccurredAt.After(e.RecordedAt.Time) {
				t.Errorf("%s: live stale alarm %+v", g.id, e)
			}
		}
	}
}

// TestLateBacklogReportedLateOnce: two gateways lose the link for 12 s;
// meanwhile their detector read 90 ppm for 4 s (past HH 80) inside a
// steady 50 ppm (H, live before the outage). When the link is back, live
// data goes on and the backlog follows — newest first from one gateway
// (whose clock lags 10 s), oldest first from the other. The excursion is
// reported late, once, labelled 补报 (and "Late report" to the English
// command platform), with when it happened and when the centre learned of
// it; the live H alarm is not disturbed; timelines are in order.
func TestLateBacklogReportedLateOnce(t *testing.T) {
	gws := []*fieldGateway{{id: "gw-newest-first", point: "nh3-a", offset: -10 * time.Second}, {id: "gw-oldest-first", point: "nh3-b"}}
	cc := startClockCentre(t, clockSite(t, gws))
	cc.waitLive(t, gws)

	type reading struct {
		seq uint64
		at  time.Time
		v   float64
	}
	backlog := map[string][]reading{}
	var outageStart, excursionAt time.Time
	start := time.Now()
	for k := 0; k < 25; k++ {
		time.Sleep(time.Until(start.Add(time.Duration(k) * time.Second)))
		now := time.Now()
		v := 50.0
		if k >= 10 && k <= 13 {
			v = 90
		}
		if k == 10 {
			excursionAt = now
		}
		for _, g := range gws {
			g.seq++
			switch {
			case k < 6 || k >= 18:
				cc.publish(t, g, g.seq, now, v)
			default: // the link is down: the gateway spools
				if k == 6 {
					outageStart = now
				}
				backlog[g.id] = append(backlog[g.id], reading{g.seq, now, v})
			}
			if k == 18 { // back: live first, then the backlog
				b := slices.Clone(backlog[g.id])
				if g.id == "gw-newest-first" {
					slices.Reverse(b)
				}
				for _, r := range b {
					cc.publish(t, g, r.seq, r.at, r.v)
				}
			}
		}
	}
	reconnect := start.Add(18 * time.Second)

	for _, g := range gws {
		lateHH := func(e protocol.AlarmEvent) bool {
			return e.Late && strings.HasPrefix(e.AlarmID, "clk/s-"+g.id+"/"+g.point+"/HH/late/")
		}
		testenv.Eventually(t, g.id+": the late HH raised and cleared", 20*time.Second, func() bool {
			n := 0
			for _, e := range cc.alarms.of(g.point) {
				if lateHH(e) {
					n++
				}
			}
			return n >= 2
		})
		var late []protocol.AlarmEvent
		live := map[string][]string{}
		for _, e := range cc.alarms.of(g.point) {
			if e.Late {
				late = append(late, e)
				continue
			}
			live[e.Condition] = append(live[e.Condition], string(e.Type))
		}
		// Late: the HH excursion, raised then cleared, once; H was on live
		// all along, so it is not reported again.
		if len(late) != 2 || !lateHH(late[0]) || late[0].Type != protocol.AlarmRaised || late[1].Type != protocol.AlarmCleared || late[0].AlarmID != late[1].AlarmID {
			t.Fatalf("%s: late events %+v, want the HH excursion raised and cleared once", g.id, late)
		}
		r := late[0]
		if d := r.OccurredAt.Sub(excursionAt); d < -time.Second || d > time.Second {
			t.Errorf("%s: late HH occurred at %v, the excursion began at %v (on the centre's clock)", g.id, r.OccurredAt.Time, excursionAt)
		}
		if r.RecordedAt.Before(reconnect) || !r.OccurredAt.Before(outageStart.Add(12*time.Second)) {
			t.Errorf("%s: late HH recorded at %v, occurred at %v; reconnect %v", g.id, r.RecordedAt.Time, r.OccurredAt.Time, reconnect)
		}
		if !strings.HasPrefix(r.Message, "【补报】"+g.id+" 号 NH3 检测器 90 ppm ≥ HH 80 ppm") || r.Messages["en"] == "" {
			t.Errorf("%s: late message %q", g.id, r.Message)
		}
		// Live: H raised once before the outage and never cleared; HH
		// never raised live; the outage raised and cleared stale once.
		if !slices.Equal(live["H"], []string{"raised"}) || len(live["HH"]) != 0 || !slices.Equal(live["stale"], []string{"raised", "cleared"}) {
			t.Errorf("%s: live alarms %v, want H raised once, no HH, stale raised and cleared", g.id, live)
		}
		// Timelines are in order: by recorded time, raise before clear.
		tl, err := cc.c.Alerting().Timeline(context.Background(), r.AlarmID)
		if err != nil {
			t.Fatal(err)
		}
		if len(tl) != 2 || tl[0].Type != protocol.AlarmRaised || tl[1].Type != protocol.AlarmCleared || tl[1].TS.Before(tl[0].TS.Time) ||
			tl[1].OccurredAt.Before(tl[0].OccurredAt.Time) || !tl[0].Late {
			t.Errorf("%s: timeline of %s: %+v", g.id, r.AlarmID, tl)
		}
		// The English-speaking command platform got it labelled too.
		testenv.Eventually(t, g.id+": the late HH at the command platform", 20*time.Second, func() bool {
			return slices.ContainsFunc(cc.hook.events(), func(e protocol.AlarmEvent) bool {
				return e.AlarmID == r.AlarmID && e.Type == protocol.AlarmRaised
			})
		})
		for _, e := range cc.hook.events() {
			// Held 2 s (the on-delay) or, when the publisher's second
			// ticks came a little unevenly on a busy machine, 3 s.
			if e.AlarmID == r.AlarmID && e.Type == protocol.AlarmRaised &&
				!strings.HasPrefix(e.Message, "[Late report] "+g.id+" 号 NH3 检测器 90 ppm ≥ HH 80 ppm for 2 s (happened ") &&
				!strings.HasPrefix(e.Message, "[Late report] "+g.id+" 号 NH3 检测器 90 ppm ≥ HH 80 ppm for 3 s (happened ") {
				t.Errorf("%s: English receiver's message %q", g.id, e.Message)
			}
		}
	}
}
