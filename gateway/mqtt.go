package gateway

import (
	"context"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// Publisher sends one message and returns once the broker has acknowledged
// it (PUBACK for QoS 1). A durable store-and-forward queue can stand in
// front of the broker behind this interface.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
}

// MQTTConfig says how the gateway reaches its broker: the one connection
// setup of every HazardWatch client (internal/mqttconn): Broker (default
// tcp://127.0.0.1:1883; ssl:// for TLS), ClientID (default
// hazardwatch-gw-{site}-{gateway}; it must stay the same across restarts so
// the broker keeps the session), Username and Password, CAFile, CertFile
// and KeyFile, KeepAlive (30s), ConnectTimeout (10s), and the reconnect
// backoff bounds MinReconnectInterval (1s) and MaxReconnectInterval (30s).
type MQTTConfig = mqttconn.Config

// MQTTPublisher publishes over one paho client: QoS 1, persistent session,
// automatic reconnect, retained online state with an offline will.
type MQTTPublisher struct {
	client     *mqttconn.Client
	stateTopic string
	log        *zap.Logger
}

// ConnectMQTT starts connecting to the broker and returns at once; until
// the first connection succeeds, publishes wait (bounded by their ctx).
// Each (re)connect publishes the retained online state; the broker
// publishes the retained offline will if the gateway vanishes.
func ConnectMQTT(cfg MQTTConfig, siteID, gatewayID string, log *zap.Logger) (*MQTTPublisher, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "hazardwatch-gw-" + siteID + "-" + gatewayID
	}
	p := &MQTTPublisher{stateTopic: protocol.StateTopic(siteID, gatewayID), log: log}
	client, err := mqttconn.New(cfg, log, func(o *mqtt.ClientOptions) {
		o.SetCleanSession(false).
			SetOrderMatters(false).
			SetBinaryWill(p.stateTopic, protocol.EncodeState(protocol.Offline, time.Time{}), 1, true).
			SetOnConnectHandler(func(c mqtt.Client) {
				// Not waited on: the handler must not block paho's loop.
				c.Publish(p.stateTopic, 1, true, protocol.EncodeState(protocol.Online, time.Now()))
			})
	})
	if err != nil {
		return nil, err
	}
	p.client = client
	p.client.Connect() // retried in the background (ConnectRetry)
	return p, nil
}

// Publish sends a message and waits for the broker's acknowledgement or ctx.
func (p *MQTTPublisher) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	tok := p.client.Publish(topic, qos, retained, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish to %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publish to %s: no acknowledgement from the broker: %w", topic, ctx.Err())
	}
}

// Connected reports whether the client is connected now.
func (p *MQTTPublisher) Connected() bool { return p.client.IsConnectionOpen() }

// Close publishes the retained offline state (a clean disconnect does not
// fire the will) and disconnects.
func (p *MQTTPublisher) Close() {
	if p.client.IsConnectionOpen() {
		tok := p.client.Publish(p.stateTopic, 1, true, protocol.EncodeState(protocol.Offline, time.Time{}))
		if !tok.WaitTimeout(2*time.Second) || tok.Error() != nil {
			p.log.Warn("could not publish offline state before disconnecting", zap.Error(tok.Error()))
		}
	}
	p.client.Disconnect(500)
}
