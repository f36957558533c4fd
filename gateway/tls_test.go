package gateway

import (
	"context"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// TestMQTTOverTLSWithClientCertificate publishes to a Mosquitto that
// speaks only TLS and requires a client certificate from the site's CA.
func TestMQTTOverTLSWithClientCertificate(t *testing.T) {
	files := testenv.NewTLSFiles(t)
	broker := testenv.MosquittoTLS(t, files)

	// A watcher with its own certificate, as a centre would connect.
	tc, err := mqttconn.TLSConfig(MQTTConfig{Broker: broker.URL(), CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 10)
	w := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("tls-watcher").SetTLSConfig(tc))
	if tok := w.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher connect over TLS: %v", tok.Error())
	}
	defer w.Disconnect(100)
	topic := protocol.TelemetryTopic("tls-site", "gw")
	if tok := w.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Payload() }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	pub, err := ConnectMQTT(MQTTConfig{Broker: broker.URL(), CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}, "tls-site", "gw", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, topic, 1, false, []byte("over tls")); err != nil {
		t.Fatalf("publish over TLS: %v", err)
	}
	select {
	case m := <-got:
		if string(m) != "over tls" {
			t.Errorf("got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("message over TLS not received")
	}

	// Without a client certificate the broker refuses the gateway.
	noCert, err := ConnectMQTT(MQTTConfig{Broker: broker.URL(), CAFile: files.CA, ClientID: "no-cert", ConnectTimeout: 2 * time.Second}, "tls-site", "gw2", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	short, cancelShort := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancelShort()
	if err := noCert.Publish(short, topic, 1, false, []byte("must not pass")); err == nil {
		t.Error("a gateway without a client certificate published to a broker that requires one")
	}
	if _, err := ConnectMQTT(MQTTConfig{Broker: broker.URL(), CAFile: files.CA, CertFile: files.ClientCert}, "tls-site", "gw3", nil); err == nil {
		t.Error("a client certificate without its key was accepted")
	}
}
