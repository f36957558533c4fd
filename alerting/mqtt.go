package alerting

import (
	"context"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
)

// Publisher sends a message to the MQTT broker.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
}

// MQTTPublisher is a Publisher on a paho client of its own that reconnects
// by itself.
type MQTTPublisher struct {
	client *mqttconn.Client
	log    *zap.Logger
}

// DefaultPublisherClientID is the MQTT client id of the alerting publisher.
const DefaultPublisherClientID = "hazardwatch-alerting"

// NewMQTTPublisher connects to the broker of cfg (internal/mqttconn: TLS,
// credentials, backoff), waiting at most until ctx is done for the first
// connection. cfg.ClientID defaults to DefaultPublisherClientID.
func NewMQTTPublisher(ctx context.Context, cfg mqttconn.Config, log *zap.Logger) (*MQTTPublisher, error) {
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultPublisherClientID
	}
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.MaxReconnectInterval == 0 {
		cfg.MaxReconnectInterval = 10 * time.Second
	}
	client, err := mqttconn.New(cfg, log, func(o *mqtt.ClientOptions) {
		o.SetCleanSession(true).SetOrderMatters(true)
	})
	if err != nil {
		return nil, fmt.Errorf("alerting publisher: %w", err)
	}
	p := &MQTTPublisher{client: client, log: log}
	tok := p.client.Connect()
	if err := wait(ctx, tok); err != nil {
		last := p.client.LastError()
		p.client.Disconnect(0)
		if last != nil {
			return nil, fmt.Errorf("connect alerting publisher to %s: %w (last attempt: %v)", client.Broker(), err, last)
		}
		return nil, fmt.Errorf("connect alerting publisher to %s: %w", client.Broker(), err)
	}
	return p, nil
}

// Publish sends payload and, for QoS 1, waits for the broker's PUBACK or
// ctx's end.
func (p *MQTTPublisher) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	if err := wait(ctx, p.client.Publish(topic, qos, retained, payload)); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

// Close disconnects, giving in-flight messages a moment.
func (p *MQTTPublisher) Close() { p.client.Disconnect(250) }

func wait(ctx context.Context, tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
