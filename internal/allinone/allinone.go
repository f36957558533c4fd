// Package allinone runs the whole of HazardWatch in one process on its
// embedded defaults: an MQTT broker, the Modbus simulators of the example
// sites with a scripted incident, their gateways, and the centre (store,
// rules, alerting, ingest) with its status page and a demo command-platform
// receiver. It is what `go run ./cmd/hazardwatch` starts, and what the
// end-to-end test drives against a real Mosquitto.
package allinone

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/gateway"
	"github.com/hazardwatch/hazardwatch/ingest"
	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/internal/center"
	"github.com/hazardwatch/hazardwatch/internal/embedbroker"
	"github.com/hazardwatch/hazardwatch/internal/httpserve"
	"github.com/hazardwatch/hazardwatch/internal/i18n"
	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/internal/redact"
	"github.com/hazardwatch/hazardwatch/simulators"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
)

// Defaults of Config.
const (
	DefaultSitesDir = "configs/sites"
	DefaultDataDir  = "hazardwatch-data"
	// DefaultMQTTAddr is off 1883 so the demo runs beside an installed
	// Mosquitto.
	DefaultMQTTAddr = "127.0.0.1:18830"
	DefaultHTTPAddr = "127.0.0.1:8080"
	DefaultScenario = "nh3-leak"
)

// Config says what to run. Zero values take the defaults above.
type Config struct {
	SitesDir string
	DataDir  string
	// MQTTAddr is where the embedded broker listens; ignored with Broker.
	MQTTAddr string
	// Broker, when set, is an external broker to use instead of the
	// embedded one, e.g. tcp://127.0.0.1:1883.
	Broker string
	// MQTT is the rest of the connection to the external Broker: TLS files,
	// user name and password (internal/mqttconn). Every client of the demo
	// — gateways and centre — uses it; its Broker and ClientID are ignored.
	MQTT     mqttconn.Config
	HTTPAddr string
	// Scenario is played on the simulators of the site it is written
	// for; "none" plays nothing.
	Scenario string
	// Play, when set, is played instead of the named Scenario.
	Play *simulators.Scenario
	// Webhooks are extra command-platform receivers (URLs), beside the
	// built-in demo receiver; Receivers are more, fully configured.
	Webhooks  []string
	Receivers []alerting.Receiver
	// Access adds accounts and API tokens beside the demo officer.
	Access access.Config
	// Out receives the one-line-per-warning terminal view; nil: none.
	Out   io.Writer
	Color bool
	// Lang is the terminal view's language (zh, the default, or en).
	Lang i18n.Lang
	// Logger receives the services' logs; default: none.
	Logger *zap.Logger
	// Ready, when set, is called once everything runs.
	Ready func(Info)
}

// Info says where to look once the system runs.
type Info struct {
	Broker string // MQTT broker URL
	HTTP   string // base URL of the console, status page and APIs
	// Console is the officers' console link that logs in as the demo
	// officer: the credential rides in the fragment (#user=…&password=…),
	// which the browser never sends, and the page removes it at once.
	Console string
	// DemoUser and DemoPassword are the demo officer's account; the
	// password is new at every start.
	DemoUser, DemoPassword string
	// Levels are the links of the city's, the county's and the
	// enterprise's accounts and the wall screen's, around the scenario's
	// site (docs/regions.md); same password.
	Levels         []Link
	CommandWebhook string // the demo command-platform receiver's URL
	Sites          []*site.Site
	Scenario       string
	// Store answers queries on the stored readings.
	Store storage.Querier
}

// demoSecret signs deliveries to the built-in demo receiver.
const demoSecret = "hazardwatch-demo"

// DemoUser is the demo officer's account, created at every start with a
// fresh random password that the banner prints. The demo listens on
// 127.0.0.1 only by default.
const DemoUser = "demo"

func (c *Config) defaults() {
	if c.SitesDir == "" {
		c.SitesDir = DefaultSitesDir
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.MQTTAddr == "" {
		c.MQTTAddr = DefaultMQTTAddr
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.Scenario == "" {
		c.Scenario = DefaultScenario
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Run starts everything and runs until ctx is done, then stops it all in
// order: simulators and gateways first, so the centre drains what they sent.
func Run(ctx context.Context, cfg Config) error {
	cfg.defaults()
	log := cfg.Logger
	scenario := cfg.Play
	if scenario == nil && cfg.Scenario != "none" {
		sc, ok := simulators.Builtin(cfg.Scenario)
		if !ok {
			return fmt.Errorf("unknown scenario %q (have: none, %v)", cfg.Scenario, simulators.BuiltinNames())
		}
		scenario = &sc
	}
	sites, err := site.LoadDir(cfg.SitesDir)
	if err != nil {
		return fmt.Errorf("load site files from %s: %w", cfg.SitesDir, err)
	}

	broker := cfg.Broker
	if broker == "" {
		b, err := embedbroker.Start(cfg.MQTTAddr, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer b.Close()
		broker = b.URL()
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen for the status page on %s: %w", cfg.HTTPAddr, err)
	}
	base := "http://" + ln.Addr().String()
	demo := &demoReceiver{out: cfg.Out, color: cfg.Color, lang: cfg.Lang}
	receivers := []alerting.Receiver{{Name: "demo-command-platform", URL: base + "/demo/command-platform", Secret: demoSecret,
		MinBackoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second}}
	for i, u := range cfg.Webhooks {
		receivers = append(receivers, alerting.Receiver{Name: fmt.Sprintf("webhook-%d", i+1), URL: u})
	}
	receivers = append(receivers, cfg.Receivers...)

	sims, err := startSimulators(sites)
	if err != nil {
		ln.Close()
		return err
	}
	defer func() {
		for _, s := range sims {
			_ = s.Close()
		}
	}()

	demoPassword := access.NewPassword()
	demoHash, err := access.HashPassword(demoPassword)
	if err != nil {
		ln.Close()
		return err
	}
	accounts := cfg.Access
	var played *site.Site
	for _, s := range sites {
		if scenario != nil && s.ID == scenario.Site {
			played = s
		}
	}
	levels, levelLinks := levelAccounts(played, demoHash)
	accounts.Accounts = append(append([]access.Account{{Name: DemoUser, Display: "演示值班员", Role: access.Officer, PasswordHash: demoHash}}, levels...), accounts.Accounts...)
	c, err := center.Open(ctx, center.Config{
		Sites: sites, Broker: broker, MQTT: cfg.MQTT, DataDir: filepath.Join(cfg.DataDir, "center"), Receivers: receivers,
		Access: accounts, Logger: log,
		WrapSink: func(next ingest.EventSink) ingest.EventSink {
			if cfg.Out == nil {
				return next
			}
			return &terminalSink{next: next, w: cfg.Out, color: cfg.Color, lang: cfg.Lang}
		},
	})
	if err != nil {
		ln.Close()
		return err
	}
	defer c.Close()

	mux := http.NewServeMux()
	mux.Handle("/", c.Handler())
	mux.Handle("POST /demo/command-platform", demo)
	srv := httpserve.New(mux, httpserve.Limits{Streams: center.StreamPaths, Registerer: c.Registerer()})
	srv.ServeBackground(ln, func(err error) { log.Error("status page server", zap.Error(err)) })
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()

	centerCtx, stopCenter := context.WithCancel(context.WithoutCancel(ctx))
	centerDone := make(chan error, 1)
	go func() { centerDone <- c.Run(centerCtx) }()

	edgeCtx, stopEdge := context.WithCancel(ctx)
	defer stopEdge()
	var edge sync.WaitGroup
	for _, s := range sites {
		for _, gw := range s.Gateways {
			g, err := gateway.New(gateway.Config{Site: s, GatewayID: gw.ID,
				DataDir: filepath.Join(cfg.DataDir, "gateways", s.ID+"-"+gw.ID),
				MQTT:    gatewayConn(cfg.MQTT, broker), Logger: log.Named("gateway")})
			if err != nil {
				stopEdge()
				edge.Wait()
				stopCenter()
				<-centerDone
				return err
			}
			edge.Go(func() {
				if err := g.Run(edgeCtx); err != nil {
					log.Error("gateway stopped with an error", zap.String("site", s.ID), zap.String("gateway", gw.ID), zap.Error(err))
				}
			})
		}
	}
	if scenario != nil {
		for i, s := range sites {
			if s.ID == scenario.Site {
				edge.Go(func() { _ = sims[i].Play(edgeCtx, *scenario) })
			}
		}
	}
	if cfg.Ready != nil {
		login := "user=" + url.QueryEscape(DemoUser) + "&password=" + url.QueryEscape(demoPassword)
		var links []Link
		for _, l := range levelLinks {
			links = append(links, l.url(base, demoPassword))
		}
		cfg.Ready(Info{Broker: redact.URL(broker), HTTP: base, Console: base + "/#" + login, DemoUser: DemoUser, DemoPassword: demoPassword, Levels: links,
			CommandWebhook: base + "/demo/command-platform", Sites: sites, Scenario: cfg.Scenario, Store: c.Store()})
	}

	<-ctx.Done()
	stopEdge()
	edge.Wait()
	stopCenter()
	return <-centerDone
}

// gatewayConn is a demo gateway's connection: the shared settings on
// broker, with the gateway's default client id.
func gatewayConn(shared mqttconn.Config, broker string) gateway.MQTTConfig {
	shared.Broker, shared.ClientID = broker, ""
	return shared
}

func startSimulators(sites []*site.Site) ([]*simulators.Sim, error) {
	var sims []*simulators.Sim
	for _, s := range sites {
		sim, err := simulators.New(s)
		if err == nil {
			err = sim.Start()
		}
		if err != nil {
			for _, started := range sims {
				_ = started.Close()
			}
			return nil, fmt.Errorf("simulators of site %s: %w", s.ID, err)
		}
		sims = append(sims, sim)
	}
	return sims, nil
}
