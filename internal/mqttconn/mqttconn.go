// Package mqttconn sets up every MQTT connection of HazardWatch — the
// gateways', the ingest service's, the alerting publisher's, the load
// tool's and the demo's — the one same way: TLS with a CA, a client
// certificate and key; a user name with the password read from a file;
// reconnecting with capped exponential backoff and jitter; and the broker
// shown and logged only with its credentials masked. Each binary registers
// the same flags with RegisterFlags.
package mqttconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/internal/redact"
)

// Defaults of Config.
const (
	DefaultBroker               = "tcp://127.0.0.1:1883"
	DefaultKeepAlive            = 30 * time.Second
	DefaultConnectTimeout       = 10 * time.Second
	DefaultMinReconnectInterval = time.Second
	DefaultMaxReconnectInterval = 30 * time.Second
)

// Config says how a client reaches its broker. Only Broker and ClientID
// matter on an open test broker; a secured one (configs/mosquitto) needs
// the CA, the user name and the password too.
type Config struct {
	// Broker is the broker URL: tcp://host:1883, or ssl://host:8883 (also
	// tls://, mqtts://) for TLS. It must not carry a password: use
	// Password (the -password-file flag). Default tcp://127.0.0.1:1883.
	Broker string
	// ClientID names the session on the broker; keep it stable across
	// restarts for persistent sessions.
	ClientID string
	// Username and Password authenticate to the broker. Password is never
	// logged or shown; read it from a file (ReadPasswordFile).
	Username string
	Password string
	// CAFile verifies the broker's certificate (PEM; default: the system's
	// roots). CertFile and KeyFile are the client's own certificate, for
	// brokers that require one.
	CAFile   string
	CertFile string
	KeyFile  string
	// KeepAlive default 30s; ConnectTimeout (TCP, TLS and MQTT handshake of
	// one attempt) default 10s.
	KeepAlive      time.Duration
	ConnectTimeout time.Duration
	// MinReconnectInterval and MaxReconnectInterval bound the wait between
	// connection attempts: it doubles from the first to the second, and a
	// random part of it (jitter) keeps a fleet of gateways from reconnecting
	// in step after a broker restart. Defaults 1s and 30s.
	MinReconnectInterval time.Duration
	MaxReconnectInterval time.Duration
}

func (c *Config) defaults() {
	if c.Broker == "" {
		c.Broker = DefaultBroker
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MinReconnectInterval <= 0 {
		c.MinReconnectInterval = DefaultMinReconnectInterval
	}
	if c.MaxReconnectInterval <= 0 {
		c.MaxReconnectInterval = DefaultMaxReconnectInterval
	}
	if c.MaxReconnectInterval < c.MinReconnectInterval {
		c.MaxReconnectInterval = c.MinReconnectInterval
	}
}

// Redacted is the broker URL safe to show: any password masked.
func (c Config) Redacted() string { return redact.URL(c.Broker) }

// tlsSchemes are the broker URL schemes paho speaks TLS on.
var tlsSchemes = map[string]bool{"ssl": true, "tls": true, "mqtts": true, "tcps": true, "wss": true}

// Check refuses a configuration that would not do what it says: a
// password in the URL (it would show in ps and in logs), TLS files with a
// plain-text URL (paho would silently ignore them), a certificate without
// its key, a password without a user name.
func (c Config) Check() error {
	u, err := url.Parse(c.Broker)
	if err != nil {
		return fmt.Errorf("mqtt broker URL %s: %w", c.Redacted(), errors.Unwrap(err))
	}
	if u.Host == "" {
		return fmt.Errorf("mqtt broker URL %s: no host (want e.g. tcp://127.0.0.1:1883 or ssl://broker:8883)", c.Redacted())
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ws", "ssl", "tls", "mqtts", "tcps", "wss":
	default:
		return fmt.Errorf("mqtt broker URL %s: scheme %q is not tcp://, ssl://, ws:// or wss://", c.Redacted(), u.Scheme)
	}
	if redact.HasPassword(c.Broker) {
		return fmt.Errorf("mqtt broker URL %s carries a password, which would show in the process list and logs: put the user name in -username and the password in a file named by -password-file", c.Redacted())
	}
	if (c.CAFile != "" || c.CertFile != "") && !tlsSchemes[u.Scheme] {
		return fmt.Errorf("mqtt: -ca or -cert given but the broker URL %s is not TLS: use ssl://host:8883", c.Redacted())
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("mqtt tls: give both a client certificate (-cert) and its key (-key), or neither")
	}
	if c.Password != "" && c.Username == "" && (u.User == nil || u.User.Username() == "") {
		return errors.New("mqtt: a password but no user name: give -username too")
	}
	return nil
}

// TLSConfig is the TLS setup of cfg: the CA to verify the broker and the
// client's certificate; nil when the URL is not TLS.
func TLSConfig(cfg Config) (*tls.Config, error) {
	u, err := url.Parse(cfg.Broker)
	if err != nil || !tlsSchemes[u.Scheme] {
		return nil, nil
	}
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
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt tls: load client certificate %s and key %s: %w", cfg.CertFile, cfg.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Client is a paho client set up by New. Disconnect also ends a wait
// between reconnection attempts.
type Client struct {
	mqtt.Client
	broker string
	stop   chan struct{}
	once   sync.Once

	mu          sync.Mutex
	lastFailure string // reason of the last failed attempt, for logging
	lastErr     error  // the same, for LastError
}

// LastError is why the latest connection attempt failed (credentials
// refused, a TLS error, the broker unreachable), nil once connected: what
// to tell when a first connection does not come.
func (c *Client) LastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Broker is the broker URL with credentials masked, safe to log or show.
func (c *Client) Broker() string { return c.broker }

// Disconnect ends the connection, waiting at most quiesce milliseconds
// for work in flight, and stops reconnecting.
func (c *Client) Disconnect(quiesce uint) {
	c.once.Do(func() { close(c.stop) })
	c.Client.Disconnect(quiesce)
}

// New builds a client of cfg; it does not connect. setup, when not nil,
// sets what is the caller's own on the options (session, will, ordering,
// handlers); New then adds the logging of connections and connection
// losses (broker masked) around the handlers it set. Connecting retries
// (ConnectRetry) and reconnecting are on, with the backoff of cfg.
func New(cfg Config, log *zap.Logger, setup func(*mqtt.ClientOptions)) (*Client, error) {
	cfg.defaults()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	tc, err := TLSConfig(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{broker: cfg.Redacted(), stop: make(chan struct{})}
	log = log.With(zap.String("broker", c.broker), zap.String("client_id", cfg.ClientID))
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(cfg.ClientID).
		SetKeepAlive(cfg.KeepAlive).
		SetConnectTimeout(cfg.ConnectTimeout).
		// 3.1.1 explicitly: else paho retries a refused login with 3.1.
		SetProtocolVersion(4).
		SetAutoReconnect(true).
		SetConnectRetry(true)
	if cfg.Username != "" {
		opts.SetUsername(cfg.Username)
	}
	if cfg.Password != "" {
		opts.SetPassword(cfg.Password)
	}
	if tc != nil {
		opts.SetTLSConfig(tc)
	}
	if setup != nil {
		setup(opts)
	}
	// The backoff is ours (with jitter): paho's own waits are zeroed, and
	// each attempt first waits as Backoff says.
	b := Backoff{Min: cfg.MinReconnectInterval, Max: cfg.MaxReconnectInterval}
	opts.SetConnectRetryInterval(0).SetMaxReconnectInterval(0)
	opts.SetConnectionNotificationHandler(func(_ mqtt.Client, n mqtt.ConnectionNotification) {
		if cn, ok := n.(mqtt.ConnectionNotificationConnecting); ok {
			c.wait(b.Delay(cn.IsReconnect, cn.Attempt, rand.Float64()))
		}
		// Failed covers both a network or TLS error and a refusing CONNACK.
		if f, ok := n.(mqtt.ConnectionNotificationFailed); ok {
			c.attemptFailed(log, f.Reason)
		}
	})
	onConnect, onLost := opts.OnConnect, opts.OnConnectionLost
	opts.SetOnConnectHandler(func(pc mqtt.Client) {
		c.mu.Lock()
		c.lastFailure, c.lastErr = "", nil
		c.mu.Unlock()
		log.Info("connected to the MQTT broker")
		if onConnect != nil {
			onConnect(pc)
		}
	})
	opts.SetConnectionLostHandler(func(pc mqtt.Client, err error) {
		log.Warn("lost the MQTT broker; reconnecting", zap.Error(redactErr(err)))
		if onLost != nil {
			onLost(pc, err)
		}
	})
	c.Client = mqtt.NewClient(opts)
	return c, nil
}

// attemptFailed logs why an attempt failed: as a warning when the reason
// is new (refused credentials, a TLS error, the broker down), then quietly
// while it stays the same, so a long outage does not flood the log.
func (c *Client) attemptFailed(log *zap.Logger, reason error) {
	err := redactErr(reason)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	c.mu.Lock()
	repeated := msg == c.lastFailure
	c.lastFailure, c.lastErr = msg, err
	c.mu.Unlock()
	if repeated {
		log.Debug("MQTT connection attempt failed again", zap.Error(err))
		return
	}
	log.Warn("MQTT connection attempt failed; retrying with backoff", zap.Error(err))
}

// wait sleeps d, or less when the client is disconnected meanwhile.
func (c *Client) wait(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.stop:
	}
}

// redactErr keeps a URL with a password out of an error's text (paho's
// errors name the broker).
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(redactText(err.Error()))
}
