package gateway_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/hazardwatch/hazardwatch/gateway"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// capture is an in-process Publisher that keeps every telemetry message.
type capture struct {
	mu   sync.Mutex
	msgs []protocol.Telemetry
}

func (c *capture) Publish(_ context.Context, _ string, _ byte, _ bool, payload []byte) error {
	m, err := protocol.DecodeTelemetry(payload)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	return nil
}

func (c *capture) snapshot() []protocol.Telemetry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]protocol.Telemetry(nil), c.msgs...)
}

// pollTimes lists when the readings of a point were taken.
func pollTimes(msgs []protocol.Telemetry, point string) []time.Time {
	var out []time.Time
	for _, m := range msgs {
		for _, r := range m.Readings {
			if r.Point == point {
				out = append(out, r.At(m.TS))
			}
		}
	}
	return out
}

func twoDeviceSite(t *testing.T, liveAddr, deadAddr string) *site.Site {
	t.Helper()
	text := fmt.Sprintf(`id: run-%d
name: run test
gateways:
  - id: gw1
    devices:
      - {id: live, address: %s, poll_interval: 200ms, timeout: 200ms}
      - {id: dead, address: %s, poll_interval: 1s, timeout: 1s, retries: 2}
sources:
  - id: src
    name: tanks
    type: tank_farm
    grade: 3
    points:
      - {id: nh3, name: nh3, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: live, table: input, address: 0, scale: 0.1}, limits: {h: 40, hh: 80}}
      - {id: level, name: level, kind: level, unit: "%%", range: [0, 100], modbus: {device: live, address: 10, type: float32, order: CDAB}}
      - {id: far, name: far, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: dead, table: input, address: 0, scale: 0.1}}
`, rand.Uint64(), liveAddr, deadAddr)
	s, err := site.Parse("run.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDeadDeviceDoesNotDelayLiveDevice(t *testing.T) {
	s := twoDeviceSite(t, testenv.FreeAddr(t), testenv.FreeAddr(t))
	sim := startSim(t, s)
	// The dead device's requests hang until its 1 s timeout, three tries a
	// poll: if it held up the live device, the live polls would be seconds
	// apart instead of 200ms.
	if err := sim.Silence("dead", true); err != nil {
		t.Fatal(err)
	}
	if err := sim.Set("nh3", 12.3); err != nil {
		t.Fatal(err)
	}
	pub := &capture{}
	g, err := gateway.New(gateway.Config{Site: s, GatewayID: "gw1", DataDir: t.TempDir(), Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()

	testenv.Eventually(t, "comm_fail of the silent device and 20 live polls", 20*time.Second, func() bool {
		msgs := pub.snapshot()
		return len(pollTimes(msgs, "far")) >= 1 && len(pollTimes(msgs, "nh3")) >= 20
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	msgs := pub.snapshot()
	live := pollTimes(msgs, "nh3")
	// Generous: a shared machine may stall, but never for the dead
	// device's 3 s of timeouts on every poll.
	var worst time.Duration
	for i := 1; i < len(live); i++ {
		worst = max(worst, live[i].Sub(live[i-1]))
	}
	if worst > 1500*time.Millisecond {
		t.Errorf("live device polls were up to %v apart; interval is 200ms", worst)
	}
	for _, m := range msgs {
		for _, r := range m.Readings {
			switch r.Point {
			case "far":
				if r.QualityOrGood() != protocol.CommFail || r.Value != nil {
					t.Fatalf("silent device reading %+v, want comm_fail without value", r)
				}
			case "nh3":
				if r.QualityOrGood() != protocol.Good || math.Abs(*r.Value-12.3) > 1e-9 {
					t.Fatalf("live reading %+v, want good 12.3", r)
				}
			}
		}
	}
	// The silent device is backed off: far fewer polls than the live one.
	if far := len(pollTimes(msgs, "far")); far*4 > len(live) {
		t.Errorf("silent device polled %d times against %d live polls; want it backed off", far, len(live))
	}
}

func TestSeqRisesAcrossRestart(t *testing.T) {
	s := twoDeviceSite(t, testenv.FreeAddr(t), testenv.FreeAddr(t))
	startSim(t, s)
	dir := t.TempDir()
	var all []protocol.Telemetry
	for run := 0; run < 2; run++ {
		pub := &capture{}
		g, err := gateway.New(gateway.Config{Site: s, GatewayID: "gw1", DataDir: dir, Publisher: pub})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		testenv.Eventually(t, "three messages", 20*time.Second, func() bool { return len(pub.snapshot()) >= 3 })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		all = append(all, pub.snapshot()...)
	}
	for i, m := range all {
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d, want %d (seq must rise by one across the restart)", i, m.Seq, i+1)
		}
	}
}

func TestTelemetryOverMosquitto(t *testing.T) {
	s := twoDeviceSite(t, testenv.FreeAddr(t), testenv.FreeAddr(t))
	sim := startSim(t, s)
	if err := sim.Set("nh3", 42.5); err != nil {
		t.Fatal(err)
	}
	if err := sim.Set("level", 61.25); err != nil {
		t.Fatal(err)
	}

	got := make(chan protocol.Telemetry, 100)
	states := make(chan protocol.GatewayState, 10)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://127.0.0.1:1883").SetClientID(fmt.Sprintf("hw-test-sub-%d", rand.Uint64())))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect subscriber to the local Mosquitto: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe(protocol.TelemetryTopic(s.ID, "gw1"), 1, func(_ mqtt.Client, m mqtt.Message) {
		if tm, err := protocol.DecodeTelemetry(m.Payload()); err == nil {
			got <- tm
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if tok := sub.Subscribe(protocol.StateTopic(s.ID, "gw1"), 1, func(_ mqtt.Client, m mqtt.Message) {
		if st, err := protocol.DecodeState(m.Payload()); err == nil {
			states <- st
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	g, err := gateway.New(gateway.Config{Site: s, GatewayID: "gw1", DataDir: t.TempDir(),
		MQTT: gateway.MQTTConfig{Broker: "tcp://127.0.0.1:1883"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()

	var last uint64
	values := map[string]float64{}
	timeout := time.After(20 * time.Second)
	for n := 0; n < 5; {
		select {
		case m := <-got:
			if m.Seq <= last {
				t.Fatalf("seq %d after %d: must rise", m.Seq, last)
			}
			last = m.Seq
			for _, r := range m.Readings {
				if r.Value != nil {
					values[r.Point] = *r.Value
				}
			}
			n++
		case <-timeout:
			t.Fatal("no telemetry from the gateway through Mosquitto")
		}
	}
	if values["nh3"] != 42.5 || values["level"] != 61.25 {
		t.Errorf("values through the broker: %v, want nh3 42.5 and level 61.25", values)
	}
	waitState(t, states, protocol.Online)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitState(t, states, protocol.Offline)
	// Clear the retained state so the broker does not keep test debris.
	sub.Publish(protocol.StateTopic(s.ID, "gw1"), 1, true, []byte{}).WaitTimeout(5 * time.Second)
}

func waitState(t *testing.T, states <-chan protocol.GatewayState, want string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case st := <-states:
			if st.State == want {
				return
			}
		case <-timeout:
			t.Fatalf("gateway state never became %s", want)
		}
	}
}
