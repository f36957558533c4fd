package mqttconn

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
)

func TestBackoffDoublesWithJitterWithinBounds(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 30 * time.Second}
	if d := b.Delay(false, 0, 0.99); d != 0 {
		t.Errorf("first connection attempt waits %v, want none", d)
	}
	if d := b.Delay(true, 0, 0.5); d != 500*time.Millisecond {
		t.Errorf("first reconnect attempt waits %v, want half of Min at rnd 0.5", d)
	}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 40: 30 * time.Second} {
		lo, hi := b.Delay(true, attempt, 0), b.Delay(true, attempt, 0.999999)
		if lo != want/2 || hi < want*99/100 || hi > want {
			t.Errorf("attempt %d waits %v to %v, want %v to %v", attempt, lo, hi, want/2, want)
		}
	}
}

func TestCheckRefusesWhatWouldNotDoWhatItSays(t *testing.T) {
	for name, c := range map[string]Config{
		"password in URL":       {Broker: "tcp://gw:s3cret-pw@127.0.0.1:1883"},
		"TLS files, plain URL":  {Broker: "tcp://127.0.0.1:1883", CAFile: "ca.pem"},
		"cert without key":      {Broker: "ssl://127.0.0.1:8883", CertFile: "c.pem"},
		"password without user": {Broker: "ssl://127.0.0.1:8883", Password: "s3cret-pw"},
		"unknown scheme":        {Broker: "http://127.0.0.1:1883"},
		"no host":               {Broker: "tcp://"},
	} {
		err := c.Check()
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
	if err := (Config{Broker: "ssl://broker:8883", CAFile: "ca.pem", Username: "gw", Password: "x"}).Check(); err != nil {
		t.Errorf("a good TLS config: %v", err)
	}
}

func TestFlagsReadThePasswordFromItsFile(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("p4ss word\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	f := RegisterFlags(fs, DefaultBroker)
	for _, name := range []string{"broker", "ca", "cert", "key", "username", "password-file"} {
		if fs.Lookup(name) == nil {
			t.Errorf("flag -%s not registered", name)
		}
	}
	if err := fs.Parse([]string{"-broker", "ssl://127.0.0.1:8883", "-username", "gw", "-password-file", pwFile}); err != nil {
		t.Fatal(err)
	}
	c, err := f.Config("id")
	if err != nil {
		t.Fatal(err)
	}
	if c.Password != "p4ss word" || c.Username != "gw" || c.ClientID != "id" {
		t.Errorf("config %+v", c)
	}

	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	for _, args := range [][]string{
		{"-username", "gw", "-password-file", empty},
		{"-username", "gw", "-password-file", filepath.Join(dir, "missing")},
		{"-password-file", pwFile},
	} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		f := RegisterFlags(fs, DefaultBroker)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Config(""); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestRedactText(t *testing.T) {
	got := redactText(`dial "ssl://gw:hunter2@broker:8883": refused`)
	if strings.Contains(got, "hunter2") || !strings.Contains(got, "gw:xxxxx@broker") {
		t.Errorf("got %q", got)
	}
}

// TestReconnectsAfterTheBrokerRestarts: the backoff of New brings a client
// back once the broker returns.
func TestReconnectsAfterTheBrokerRestarts(t *testing.T) {
	broker := testenv.Mosquitto(t)
	connects := make(chan struct{}, 10)
	c, err := New(Config{Broker: broker.URL(), ClientID: "mqttconn-reconnect", MinReconnectInterval: 50 * time.Millisecond, MaxReconnectInterval: 200 * time.Millisecond}, nil,
		func(o *mqtt.ClientOptions) {
			o.SetOnConnectHandler(func(mqtt.Client) { connects <- struct{}{} })
		})
	if err != nil {
		t.Fatal(err)
	}
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	<-connects
	broker.Stop()
	testenv.Eventually(t, "client notices the broker is gone", 10*time.Second, func() bool { return !c.IsConnectionOpen() })
	broker.Start()
	select {
	case <-connects:
	case <-time.After(20 * time.Second):
		t.Fatal("no reconnection within 20s of the broker's return")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok := c.Publish("mqttconn/test", 1, false, []byte("back"))
	select {
	case <-tok.Done():
		if tok.Error() != nil {
			t.Fatalf("publish after reconnect: %v", tok.Error())
		}
	case <-ctx.Done():
		t.Fatal("publish after reconnect not acknowledged")
	}
	c.Disconnect(100)
}
