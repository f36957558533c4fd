package alerting

import (
	"context"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"
)

// Publisher sends a message to the MQTT broker.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
}

// MQTTPublisher is a Publisher on a paho client of its own that reconnects
// by itself.
type MQTTPublisher struct {
	client mqtt.Client
	log    *zap.Logger
}

// DefaultPublisherClientID is the MQTT client id of the alerting publisher.
const DefaultPublisherClientID = "hazardwatch-alerting"

// NewMQTTPublisher connects to broker (e.g. tcp://127.0.0.1:1883), waiting
// at most until ctx is done for the first connection.
func NewMQTTPublisher(ctx context.Context, broker, clientID string, log *zap.Logger) (*MQTTPublisher, error) {
	if clientID == "" {
		clientID = DefaultPublisherClientID
	}
	if log == nil {
		log = zap.NewNop()
	}
	p := &MQTTPublisher{log: log}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).SetOrderMatters(true).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			log.Warn("alerting publisher lost the MQTT broker", zap.String("broker", broker), zap.Error(err))
		}).
		SetOnConnectHandler(func(mqtt.Client) { log.Info("alerting publisher connected", zap.String("broker", broker)) })
	p.client = mqtt.NewClient(opts)
	tok := p.client.Connect()
	if err := wait(ctx, tok); err != nil {
		p.client.Disconnect(0)
		return nil, fmt.Errorf("connect alerting publisher to %s: %w", broker, err)
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
