package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// Publisher sends one message and returns once the broker has acknowledged
// it (PUBACK for QoS 1). A durable store-and-forward queue can stand in
// front of the broker behind this interface.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
}

// MQTTConfig says how the gateway reaches its broker.
type MQTTConfig struct {
	// Broker is the broker URL: tcp://host:1883, or ssl://host:8883 for
	// TLS. Default tcp://127.0.0.1:1883.
	Broker string
	// ClientID defaults to hazardwatch-gw-{site}-{gateway}; it must stay
	// the same across restarts so the broker keeps the session.
	ClientID string
	Username string
	Password string
	// CAFile verifies the broker's certificate (PEM); CertFile and KeyFile
	// are the gateway's own certificate for brokers that require one.
	CAFile   string
	CertFile string
	KeyFile  string
	// KeepAlive default 30s; ConnectTimeout default 10s;
	// MaxReconnectInterval caps the reconnect backoff, default 30s.
	KeepAlive            time.Duration
	ConnectTimeout       time.Duration
	MaxReconnectInterval time.Duration
}

// MQTTPublisher publishes over one paho client: QoS 1, persistent session,
// automatic reconnect, retained online state with an offline will.
type MQTTPublisher struct {
	client     mqtt.Client
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
	if cfg.Broker == "" {
		cfg.Broker = "tcp://127.0.0.1:1883"
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "hazardwatch-gw-" + siteID + "-" + gatewayID
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.MaxReconnectInterval == 0 {
		cfg.MaxReconnectInterval = 30 * time.Second
	}
	p := &MQTTPublisher{stateTopic: protocol.StateTopic(siteID, gatewayID), log: log}
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(cfg.ClientID).
		SetCleanSession(false).
		SetOrderMatters(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(cfg.MaxReconnectInterval).
		SetKeepAlive(cfg.KeepAlive).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetBinaryWill(p.stateTopic, protocol.EncodeState(protocol.Offline, time.Time{}), 1, true).
		SetOnConnectHandler(func(c mqtt.Client) {
			log.Info("connected to broker", zap.String("broker", cfg.Broker), zap.String("client_id", cfg.ClientID))
			// Not waited on: the handler must not block paho's loop.
			c.Publish(p.stateTopic, 1, true, protocol.EncodeState(protocol.Online, time.Now()))
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			log.Warn("connection to broker lost; reconnecting", zap.String("broker", cfg.Broker), zap.Error(err))
		})
	if cfg.Username != "" {
		opts.SetUsername(cfg.Username).SetPassword(cfg.Password)
	}
	if cfg.CAFile != "" || cfg.CertFile != "" {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		opts.SetTLSConfig(tc)
	}
	p.client = mqtt.NewClient(opts)
	p.client.Connect() // retried in the background (ConnectRetry)
	return p, nil
}

func tlsConfig(cfg MQTTConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt tls: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt tls: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("mqtt tls: give both a client certificate and its key, or neither")
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt tls: load client certificate %s: %w", cfg.CertFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
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
