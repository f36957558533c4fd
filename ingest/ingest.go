// Package ingest is the centre's entry for gateway data: it subscribes to
// the gateways' telemetry and state over MQTT, checks every message against
// the wire contract and the site files, stores the readings and feeds them
// to the rules engine, handing the engine's events to the alerting side. A
// message is acknowledged to the broker only once its readings are stored
// and the events they raised were taken by the sink, so a crash of the
// service loses neither.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/internal/redact"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
)

// Evaluator is the rules engine (rules.Engine satisfies it). It is not safe
// for concurrent use: one goroutine of the service owns it (rulesloop.go).
type Evaluator interface {
	Observe(r rules.Reading, out []rules.Event) []rules.Event
	Tick(now time.Time, out []rules.Event) []rules.Event
}

// EventSink takes the engine's events (the alerting service implements it).
type EventSink interface {
	HandleEvents(ctx context.Context, events []rules.Event) error
}

// Defaults of Config.
const (
	DefaultClientID       = "hazardwatch-ingest"
	DefaultTickInterval   = time.Second
	DefaultMaxFuture      = 5 * time.Minute
	DefaultDeadLetters    = 100
	DefaultEventQueue     = 256
	DefaultSinkWait       = 5 * time.Second
	DefaultStoreAttempts  = 3
	defaultExcerptBytes   = 256
	disconnectQuiesceMsec = 500
)

// Config sets up a Service. Sites, Broker and Store are required.
type Config struct {
	Sites []*site.Site
	// Broker is the MQTT broker URL, e.g. tcp://127.0.0.1:1883.
	Broker string
	// ClientID must stay the same across restarts: the broker keeps the
	// session (subscriptions, unacknowledged messages) under it.
	ClientID string
	Store    storage.Appender
	// Evaluator receives stored readings; nil stores only.
	Evaluator Evaluator
	// Sink receives the evaluator's events; nil drops them (logged).
	Sink EventSink
	// Clock is the time source; default time.Now.
	Clock func() time.Time
	// Logger; default zap.NewNop().
	Logger *zap.Logger
	// Registry receives the service's metrics; nil keeps them private.
	Registry prometheus.Registerer
	// TickInterval is how often Evaluator.Tick runs; default 1s.
	TickInterval time.Duration
	// MaxFuture is how far ahead of Clock a reading may be; default 5m.
	MaxFuture time.Duration
	// DeadLetters is how many rejections DeadLetters keeps; default 100.
	DeadLetters int
	// EventQueue bounds the event batches waiting for the sink; default 256.
	EventQueue int
	// SinkWait bounds how long shutdown waits for the sink to take the
	// events still queued (twice this); default 5s.
	SinkWait time.Duration
	// MQTT holds the rest of the broker connection: TLS files, user name
	// and password, keep-alive (default 15s) and reconnect backoff (1s to
	// 10s). Its Broker and ClientID are ignored: Broker and ClientID above
	// are used.
	MQTT mqttconn.Config
	// MaxInFlight bounds the telemetry messages being handled at once
	// (decoded, stored, waiting for alerting); default 512.
	MaxInFlight int
	// Lanes is how many gateways' messages are decoded and stored at once
	// (each gateway's in order); default 4 × GOMAXPROCS.
	Lanes int
	// OnDurable, when set, hears of every telemetry message whose readings
	// are durable, in each gateway's order (see messageDurable).
	OnDurable func(site, gateway string, seq uint64)
	// AckInterval and AckHoleTimeout tune the end-to-end acknowledgement
	// to gateways (ack.go); defaults DefaultAckInterval, DefaultAckHoleTimeout.
	AckInterval, AckHoleTimeout time.Duration
}

// Service is the ingest service. Create it with New and start it with Run.
type Service struct {
	cfg     Config
	log     *zap.Logger
	metrics *metrics
	sites   atomic.Pointer[map[string]*site.Site] // replaced whole by Reload
	client  mqtt.Client

	mu       sync.Mutex // guards seqs, inFlight, latest, states, dead
	seqs     map[gatewayKey]*seqTracker
	inFlight map[gatewayKey]map[uint64]int // seqs being stored now
	latest   map[pointKey]*storage.Sample  // by pointer: one map lookup a reading
	states   map[gatewayKey]GatewayStatus
	dead     *deadLetters

	// The lanes (pipeline.go); laneMu guards closing them against a send.
	laneMu      sync.RWMutex
	lanes       []lane
	lanesClosed bool
	lanesDone   chan struct{}
	// inFlightSlots holds one token per message in the lanes.
	inFlightSlots chan struct{}

	// The rules loop (rulesloop.go) owns rules and cfg.Evaluator while it
	// runs; rulesMu guards only its start and stop.
	rules     *rulesOwner
	rulesIn   chan rulesReq
	rulesMu   sync.Mutex
	rulesStop chan struct{}
	rulesDone chan struct{}
	reloadMu  sync.Mutex // one Reload at a time

	events chan eventBatch
	// sinkRunning is set once Run has started the sink, so Handle may wait
	// for it.
	sinkRunning atomic.Bool
	// queueMu guards closing events against a concurrent send.
	queueMu     sync.RWMutex
	queueClosed bool
	// sinkCtx lives until the sink has drained after Run returns.
	sinkCtx context.Context
	acks    *acker
}

type gatewayKey struct{ site, gateway string }
type pointKey struct{ site, point string }

// GatewayStatus is a gateway's last known state from its retained state
// topic.
type GatewayStatus struct {
	Site, Gateway string
	State         string    // protocol.Online or protocol.Offline
	Since         time.Time // when it came online; zero when unknown
	Updated       time.Time // when the centre received the state
}

// New checks the configuration and prepares a Service.
func New(cfg Config) (*Service, error) {
	if len(cfg.Sites) == 0 {
		return nil, errors.New("ingest config: no sites")
	}
	if cfg.Broker == "" {
		return nil, errors.New("ingest config: no MQTT broker URL")
	}
	if cfg.Store == nil {
		return nil, errors.New("ingest config: no store")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	if cfg.MaxFuture <= 0 {
		cfg.MaxFuture = DefaultMaxFuture
	}
	if cfg.DeadLetters <= 0 {
		cfg.DeadLetters = DefaultDeadLetters
	}
	if cfg.EventQueue <= 0 {
		cfg.EventQueue = DefaultEventQueue
	}
	if cfg.SinkWait <= 0 {
		cfg.SinkWait = DefaultSinkWait
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	sites, err := siteMap(cfg.Sites)
	if err != nil {
		return nil, fmt.Errorf("ingest config: %w", err)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("ingest config: register metrics: %w", err)
	}
	s := &Service{
		cfg:           cfg,
		log:           cfg.Logger,
		metrics:       m,
		seqs:          map[gatewayKey]*seqTracker{},
		inFlight:      map[gatewayKey]map[uint64]int{},
		latest:        map[pointKey]*storage.Sample{},
		states:        map[gatewayKey]GatewayStatus{},
		dead:          newDeadLetters(cfg.DeadLetters),
		rulesIn:       make(chan rulesReq),
		inFlightSlots: make(chan struct{}, cfg.MaxInFlight),
		events:        make(chan eventBatch, cfg.EventQueue),
		sinkCtx:       context.Background(),
	}
	s.rules = &rulesOwner{s: s, evaluated: map[pointKey]*time.Time{}}
	s.sites.Store(&sites)
	// Built here, not in Run, so Connected may be called from any goroutine.
	if s.client, err = s.newClient(); err != nil {
		return nil, fmt.Errorf("ingest config: %w", err)
	}
	if s.acks, err = newAcker(reg, cfg.Logger, cfg.Clock, cfg.AckInterval, cfg.AckHoleTimeout); err != nil {
		return nil, fmt.Errorf("ingest config: register metrics: %w", err)
	}
	s.acks.publish = mqttPublish(s.client)
	return s, nil
}

// Run connects to the broker, subscribes and serves until ctx is done; then
// it disconnects, stops ticking and hands the queued events to the sink
// before returning. It returns an error only when it cannot start.
func (s *Service) Run(ctx context.Context) error {
	sinkCtx, stopSink := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSink()
	s.sinkCtx = sinkCtx
	sinkDone := make(chan struct{})
	go s.runSink(sinkDone)
	s.sinkRunning.Store(true)
	s.startRules()
	s.startLanes()

	tok := s.client.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			s.stopLanes(0)
			s.stopRules()
			s.closeQueue()
			<-sinkDone
			return fmt.Errorf("ingest: connect to MQTT broker %s: %w", redact.URL(s.cfg.Broker), err)
		}
	case <-ctx.Done():
		// Connect keeps retrying in the background until Disconnect.
	}

	ackCtx, stopAcks := context.WithCancel(ctx)
	acksDone := make(chan struct{})
	go func() { defer close(acksDone); s.acks.run(ackCtx) }()
	<-ctx.Done()
	stopAcks()
	<-acksDone

	s.log.Info("ingest stopping", zap.String("broker", redact.URL(s.cfg.Broker)))
	// Finish what the lanes hold while still connected, so those messages
	// are acknowledged; then disconnect, so no callback races the queue's
	// closing (paho waits for the running handler).
	// The sink has a bounded time to take what is queued; messages whose
	// events it did not take stay unacknowledged.
	drain := time.AfterFunc(2*s.cfg.SinkWait, stopSink)
	s.stopLanes(storeTimeout*DefaultStoreAttempts + 2*s.cfg.SinkWait)
	s.acks.flush(true) // the lanes' last messages confirmed before the disconnect
	s.client.Disconnect(disconnectQuiesceMsec)
	s.stopRules()
	s.closeQueue()
	<-sinkDone
	drain.Stop()
	return nil
}

// newClient sets up the broker connection (internal/mqttconn: TLS,
// credentials, backoff with jitter, masked broker in logs).
func (s *Service) newClient() (*mqttconn.Client, error) {
	conn := s.cfg.MQTT
	conn.Broker, conn.ClientID = s.cfg.Broker, s.cfg.ClientID
	if conn.KeepAlive == 0 {
		conn.KeepAlive = 15 * time.Second
	}
	if conn.MaxReconnectInterval == 0 {
		conn.MaxReconnectInterval = 10 * time.Second
	}
	return mqttconn.New(conn, s.log, func(o *mqtt.ClientOptions) {
		o.SetCleanSession(false).
			SetOrderMatters(true).
			SetAutoAckDisabled(true).
			// The broker resends a kept session's unacknowledged messages
			// right after connecting, before onConnect has subscribed again:
			// without a default handler paho would drop them unacknowledged.
			SetDefaultPublishHandler(s.onMessage).
			SetOnConnectHandler(s.onConnect).
			SetConnectionLostHandler(func(mqtt.Client, error) { s.metrics.connected.Set(0) })
	})
}

// onConnect (re)subscribes on every connection: the broker keeps the
// session, but a session it lost or expired must not leave us deaf.
func (s *Service) onConnect(c mqtt.Client) {
	s.metrics.connected.Set(1)
	s.acks.subscribe(c)
	filters := filtersOf(*s.sites.Load())
	tok := c.SubscribeMultiple(filters, s.onMessage)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		err := tok.Error()
		if err == nil {
			err = errors.New("no SUBACK within 10s")
		}
		s.log.Error("subscribe failed; dropping the connection to retry", zap.String("broker", redact.URL(s.cfg.Broker)), zap.Error(err))
		// A forced reconnect runs this handler again.
		go c.Disconnect(0)
		return
	}
	s.log.Info("connected and subscribed", zap.String("broker", redact.URL(s.cfg.Broker)), zap.Int("filters", len(filters)))
}

// DeadLetters returns the most recent rejections, oldest first.
func (s *Service) DeadLetters() []DeadLetter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dead.list()
}

// GatewayStates returns every gateway's last known state, from the
// retained state topics.
func (s *Service) GatewayStates() []GatewayStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]GatewayStatus, 0, len(s.states))
	for _, st := range s.states {
		out = append(out, st)
	}
	sortStatuses(out)
	return out
}

// Connected reports whether the service is connected to the broker now.
func (s *Service) Connected() bool {
	return s.client.IsConnectionOpen()
}
