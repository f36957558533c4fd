package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/hazardwatch/hazardwatch/gateway"
	"github.com/hazardwatch/hazardwatch/internal/brokerconf"
	"github.com/hazardwatch/hazardwatch/internal/center"
	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// securedBroker is the shipped Mosquitto configuration
// (configs/mosquitto) with the password file, ACL and certificates that
// `hazardwatch broker-config` writes for the example sites.
type securedBroker struct {
	*testenv.Broker
	dir    string // broker-config's output
	log    string // the broker's log file
	health int    // port of the loopback healthcheck listener
	sites  []*site.Site
}

func startSecuredBroker(t *testing.T) *securedBroker {
	t.Helper()
	sites, err := site.LoadDir("../configs/sites")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := brokerconf.Generate(dir, brokerconf.Options{Sites: sites, TLSHosts: []string{"127.0.0.1", "localhost"}}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../configs/mosquitto/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := filepath.Abs("../configs/mosquitto")
	if err != nil {
		t.Fatal(err)
	}
	port, health := testenv.FreePort(t), testenv.FreePort(t)
	logFile := filepath.Join(t.TempDir(), "mosquitto.log")
	conf := string(raw)
	for old, repl := range map[string]string{
		"/mosquitto/state/":           dir + "/",
		"/mosquitto/config/":          shipped + "/",
		"\nlistener 8883\n":           fmt.Sprintf("\nlistener %d 127.0.0.1\n", port),
		"\nlistener 1883 127.0.0.1\n": fmt.Sprintf("\nlistener %d 127.0.0.1\n", health),
		"\nlog_dest stdout\n":         "\nlog_dest file " + logFile + "\nlog_type debug\n",
	} {
		if !strings.Contains(conf, old) {
			t.Fatalf("configs/mosquitto/mosquitto.conf no longer has %q; update the test", old)
		}
		conf = strings.ReplaceAll(conf, old, repl)
	}
	b := testenv.MosquittoConfig(t, conf, port, "ssl")
	t.Cleanup(func() {
		if t.Failed() {
			raw, _ := os.ReadFile(logFile)
			t.Logf("broker log:\n%s", raw)
		}
	})
	return &securedBroker{Broker: b, dir: dir, log: logFile, sites: sites, health: health}
}

// conn is the connection of account user, with its generated password.
func (b *securedBroker) conn(t *testing.T, user, clientID string) mqttconn.Config {
	t.Helper()
	c := mqttconn.Config{Broker: b.URL(), ClientID: clientID, CAFile: filepath.Join(b.dir, "tls", "ca.pem"), Username: user,
		ConnectTimeout: 5 * time.Second, MinReconnectInterval: 100 * time.Millisecond, MaxReconnectInterval: time.Second}
	accounts, err := brokerconf.Accounts(brokerconf.Options{Sites: b.sites})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		if a.User == user {
			pw, err := mqttconn.ReadPasswordFile(filepath.Join(b.dir, a.SecretFile))
			if err != nil {
				t.Fatal(err)
			}
			c.Password = pw
		}
	}
	return c
}

// forge connects as user and publishes payload on topic, which the broker
// must refuse: it waits for the broker's log to say so. Mosquitto answers
// a refused QoS 1 publish with a PUBACK carrying "not authorized", which a
// 3.1.1 client takes as a broken connection, so each forgery has a
// connection of its own.
func (b *securedBroker) forge(t *testing.T, user, clientID, topic, payload string) {
	t.Helper()
	c := connect(t, b.conn(t, user, clientID))
	c.Publish(topic, 1, false, payload).WaitTimeout(10 * time.Second)
	testenv.Eventually(t, "broker logs: denied "+clientID+"'s publish on "+topic, 10*time.Second, func() bool {
		raw, _ := os.ReadFile(b.log)
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.Contains(line, "Denied PUBLISH from "+clientID+" ") && strings.Contains(line, "'"+topic+"'") {
				return true
			}
		}
		return false
	})
	c.Disconnect(0)
}

// watcher is an MQTT client collecting what it receives.
type watcher struct {
	mu  sync.Mutex
	got map[string][]string // topic → payloads
}

func (w *watcher) handle(_ mqtt.Client, m mqtt.Message) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got[m.Topic()] = append(w.got[m.Topic()], string(m.Payload()))
}

func (w *watcher) has(topic, payload string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.got[topic] {
		if p == payload {
			return true
		}
	}
	return false
}

func connect(t *testing.T, cfg mqttconn.Config) *mqttconn.Client {
	t.Helper()
	c, err := mqttconn.New(cfg, nil, func(o *mqtt.ClientOptions) { o.SetCleanSession(true).SetConnectRetry(false).SetAutoReconnect(false) })
	if err != nil {
		t.Fatal(err)
	}
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("%s connects as %s: %v", cfg.ClientID, cfg.Username, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func subscribe(t *testing.T, c mqtt.Client, w *watcher, filters ...string) {
	t.Helper()
	for _, f := range filters {
		tok := c.Subscribe(f, 1, w.handle)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
}

func publish(t *testing.T, c mqtt.Client, topic string, retained bool, payload string) {
	t.Helper()
	tok := c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// TestSecuredBrokerKeepsEachGatewayToItsOwnTopics: against the shipped
// broker configuration with the generated ACL, a gateway publishes its own
// telemetry and reads its own acknowledgements; what it sends to another
// site's or gateway's topics, and what a viewer sends anywhere, is refused
// by the broker and never reaches the centre; anonymous clients, a wrong
// password and plain TCP are refused at the door.
func TestSecuredBrokerKeepsEachGatewayToItsOwnTopics(t *testing.T) {
	b := startSecuredBroker(t)
	gwA := brokerconf.GatewayUser("jh-chem", "gw-tank")
	gwB := brokerconf.GatewayUser("xs-coal", "gw-mine")

	centre := &watcher{got: map[string][]string{}}
	cc := connect(t, b.conn(t, brokerconf.DefaultCentre, "centre-watch"))
	subscribe(t, cc, centre, protocol.Prefix+"+/+/telemetry", protocol.Prefix+"+/+/state", protocol.AckFilter, protocol.Prefix+"+/alarms")

	// The gateway's own MQTT client, as it runs at the site.
	pub, err := gateway.ConnectMQTT(b.conn(t, gwA, ""), "jh-chem", "gw-tank", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	own := protocol.TelemetryTopic("jh-chem", "gw-tank")
	if err := pub.Publish(ctx, own, 1, false, []byte("own-1")); err != nil {
		t.Fatalf("gateway publishes its own telemetry: %v", err)
	}
	testenv.Eventually(t, "centre receives the gateway's telemetry", 10*time.Second, func() bool { return centre.has(own, "own-1") })
	testenv.Eventually(t, "centre receives the gateway's online state", 10*time.Second, func() bool {
		centre.mu.Lock()
		defer centre.mu.Unlock()
		return len(centre.got[protocol.StateTopic("jh-chem", "gw-tank")]) > 0
	})

	// With the gateway's account: another site's gateway, another gateway
	// of its site. The broker refuses and delivers nothing.
	forged := []string{protocol.TelemetryTopic("xs-coal", "gw-mine"), protocol.TelemetryTopic("jh-chem", "gw-other"), protocol.StateTopic("xs-coal", "gw-mine"),
		protocol.AckTopic("jh-chem", "gw-tank"), protocol.AlarmsTopic("jh-chem")}
	for i, topic := range forged {
		b.forge(t, gwA, fmt.Sprintf("gw-a-forger-%d", i), topic, "forged by "+gwA)
	}
	if err := pub.Publish(ctx, own, 1, false, []byte("own-2")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "centre receives own-2", 10*time.Second, func() bool { return centre.has(own, "own-2") })
	for _, topic := range forged {
		if centre.has(topic, "forged by "+gwA) {
			t.Errorf("the broker delivered %s's message on %s", gwA, topic)
		}
	}

	// Acknowledgements: the centre writes them retained; a gateway reads
	// its own only.
	publish(t, cc, "hazardwatch/v1/jh-chem/gw-tank/ack", true, "ack-A")
	publish(t, cc, "hazardwatch/v1/xs-coal/gw-mine/ack", true, "ack-B")
	testenv.Eventually(t, "centre reads its acks back", 10*time.Second, func() bool { return centre.has("hazardwatch/v1/xs-coal/gw-mine/ack", "ack-B") })
	gw := &watcher{got: map[string][]string{}}
	gc := connect(t, b.conn(t, gwA, "gw-a-acks"))
	// Retained messages come in the order of the subscriptions: once its
	// own is in, the other's would be too, were it readable.
	subscribe(t, gc, gw, "hazardwatch/v1/xs-coal/gw-mine/ack")
	subscribe(t, gc, gw, "hazardwatch/v1/jh-chem/gw-tank/ack")
	testenv.Eventually(t, "gateway reads its own retained ack", 10*time.Second, func() bool { return gw.has("hazardwatch/v1/jh-chem/gw-tank/ack", "ack-A") })
	if gw.has("hazardwatch/v1/xs-coal/gw-mine/ack", "ack-B") {
		t.Error("a gateway read another site's gateway's acknowledgement")
	}

	// A viewer reads everything and writes nothing.
	viewer := &watcher{got: map[string][]string{}}
	vc := connect(t, b.conn(t, brokerconf.DefaultViewer, "viewer"))
	subscribe(t, vc, viewer, protocol.Prefix+"#")
	b.forge(t, brokerconf.DefaultViewer, "viewer-forger-1", protocol.AlarmsTopic("jh-chem"), "forged alarm")
	b.forge(t, brokerconf.DefaultViewer, "viewer-forger-2", own, "forged by viewer")
	if err := pub.Publish(ctx, own, 1, false, []byte("own-3")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "viewer reads the gateway's telemetry", 10*time.Second, func() bool { return viewer.has(own, "own-3") })
	testenv.Eventually(t, "centre receives own-3", 10*time.Second, func() bool { return centre.has(own, "own-3") })
	if centre.has(own, "forged by viewer") || viewer.has(protocol.AlarmsTopic("jh-chem"), "forged alarm") {
		t.Error("the broker delivered a viewer's message")
	}
	// Another gateway cannot write the first one's telemetry either, nor a
	// gateway the centre's alarms.
	b.forge(t, gwB, "gw-b-forger", own, "forged by "+gwB)
	b.forge(t, gwB, "gw-b-forger-2", protocol.AlarmsTopic("xs-coal"), "forged alarm")

	// The loopback healthcheck listener: anonymous, the uptime only.
	hw := &watcher{got: map[string][]string{}}
	hc := connect(t, mqttconn.Config{Broker: "tcp://127.0.0.1:" + strconv.Itoa(b.health), ClientID: "healthcheck"})
	subscribe(t, hc, hw, protocol.Prefix+"#", "$SYS/broker/uptime")
	testenv.Eventually(t, "healthcheck reads the broker's uptime", 30*time.Second, func() bool {
		hw.mu.Lock()
		defer hw.mu.Unlock()
		return len(hw.got["$SYS/broker/uptime"]) > 0
	})
	if err := pub.Publish(ctx, own, 1, false, []byte("own-4")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "centre receives own-4", 10*time.Second, func() bool { return centre.has(own, "own-4") })
	if hw.has(own, "own-4") {
		t.Error("the anonymous healthcheck listener delivers telemetry")
	}

	// At the door: no account, a wrong password, plain TCP.
	for name, cfg := range map[string]mqttconn.Config{
		"anonymous":      {Broker: b.URL(), ClientID: "anon", CAFile: filepath.Join(b.dir, "tls", "ca.pem"), ConnectTimeout: 5 * time.Second},
		"wrong password": {Broker: b.URL(), ClientID: "wrong", CAFile: filepath.Join(b.dir, "tls", "ca.pem"), Username: gwA, Password: "guess", ConnectTimeout: 5 * time.Second},
		"plain TCP":      {Broker: "tcp://127.0.0.1:" + strconv.Itoa(b.Port), ClientID: "plain", Username: gwA, Password: b.conn(t, gwA, "").Password, ConnectTimeout: 2 * time.Second},
		"unknown CA":     {Broker: b.URL(), ClientID: "no-ca", Username: gwA, Password: b.conn(t, gwA, "").Password, ConnectTimeout: 5 * time.Second},
	} {
		c, err := mqttconn.New(cfg, nil, func(o *mqtt.ClientOptions) { o.SetConnectRetry(false).SetAutoReconnect(false) })
		if err != nil {
			t.Fatal(err)
		}
		tok := c.Connect()
		if !tok.WaitTimeout(15 * time.Second) {
			t.Errorf("%s: no answer", name)
		} else if tok.Error() == nil {
			t.Errorf("%s: the broker let the client in", name)
			c.Disconnect(0)
		}
	}
}

// TestCentreOverTLSIgnoresForgedTelemetry is the attack the open broker
// allowed: another client publishes a gateway's next seq numbers so that
// the centre drops the real messages as duplicates. With the secured
// broker the centre connects over TLS with its account, the forged
// messages are refused by the broker, and the real ones are stored.
func TestCentreOverTLSIgnoresForgedTelemetry(t *testing.T) {
	b := startSecuredBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	centreConn := b.conn(t, brokerconf.DefaultCentre, "")
	c, err := center.Open(ctx, center.Config{Sites: b.sites, Broker: centreConn.Broker, MQTT: centreConn, DataDir: t.TempDir(), RecordInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() { stop(); <-done }()
	readyz := func() bool {
		rec := httptestGet(c, "/readyz")
		return rec == 200
	}
	testenv.Eventually(t, "centre connected to the secured broker over TLS with its account", 30*time.Second, readyz)

	t0 := time.Now().UTC().Truncate(time.Millisecond)
	telemetry := func(seq uint64, value float64) string {
		// One reading per seq and millisecond, so no two carry one time.
		p, err := protocol.Telemetry{V: protocol.Version, Site: "jh-chem", Gateway: "gw-tank", Seq: seq, TS: protocol.Time{Time: t0.Add(time.Duration(seq) * time.Millisecond)},
			Readings: []protocol.Reading{{Point: "nh3-t1-level", Value: protocol.F(value)}}}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return string(p)
	}
	topic := protocol.TelemetryTopic("jh-chem", "gw-tank")
	real := connect(t, b.conn(t, brokerconf.GatewayUser("jh-chem", "gw-tank"), "real-gw"))
	publish(t, real, topic, false, telemetry(1, 41))
	stored := func(want float64) bool {
		samples, err := c.Store().Latest(ctx, "jh-chem")
		if err != nil {
			return false
		}
		for _, s := range samples {
			if s.Point == "nh3-t1-level" && s.Value == want {
				return true
			}
		}
		return false
	}
	testenv.Eventually(t, "seq 1 stored", 30*time.Second, func() bool { return stored(41) })

	// Ten forged messages carrying the gateway's next seq, from the other
	// site's gateway and from a viewer.
	for seq := uint64(2); seq <= 11; seq++ {
		b.forge(t, brokerconf.GatewayUser("xs-coal", "gw-mine"), fmt.Sprintf("forger-%d", seq), topic, telemetry(seq, 99))
		b.forge(t, brokerconf.DefaultViewer, fmt.Sprintf("forger-viewer-%d", seq), topic, telemetry(seq, 98))
	}
	for seq, v := range []float64{42, 43, 44} {
		publish(t, real, topic, false, telemetry(uint64(seq)+2, v))
	}
	testenv.Eventually(t, "the real seq 2 to 4 stored, not dropped as duplicates", 30*time.Second, func() bool { return stored(44) })
	for _, d := range c.Status().Rejected {
		t.Errorf("dead letter: %+v", d)
	}
}

// httptestGet is the status code of GET path on the centre's handler.
func httptestGet(c *center.Center, path string) int {
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code
}
