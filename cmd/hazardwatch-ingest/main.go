// Command hazardwatch-ingest runs the ingest service on its own: it loads
// the site files, opens the embedded store, subscribes to the gateways over
// MQTT, stores their readings, feeds the rules engine and serves /metrics
// and /healthz.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hazardwatch/hazardwatch/ingest"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "hazardwatch-ingest:", err)
		os.Exit(1)
	}
}

// run parses flags and serves until ctx is done. When ready is not nil, it
// receives the HTTP listener's address once serving.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("hazardwatch-ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sitesDir := fs.String("sites", "configs/sites", "directory of site files (*.yaml)")
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	clientID := fs.String("client-id", ingest.DefaultClientID, "MQTT client id; keep it stable so the broker keeps the session")
	dataDir := fs.String("data", "data/tsdb", "directory of the embedded time series store")
	httpAddr := fs.String("http", ":8080", "address serving /metrics, /healthz, /deadletters and /gateways")
	retention := fs.Duration("retention", embedded.DefaultRetention, "how long readings are kept (AQ 3035: at least 30 days)")
	oooWindow := fs.Duration("ooo-window", embedded.DefaultOutOfOrderWindow, "how far behind the newest reading a replayed reading is still stored")
	debug := fs.Bool("debug", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return err
	}

	level := zap.InfoLevel
	if *debug {
		level = zap.DebugLevel
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(stderr), level))
	defer func() { _ = log.Sync() }()

	sites, err := site.LoadDir(*sitesDir)
	if err != nil {
		return fmt.Errorf("load site files from %s: %w", *sitesDir, err)
	}
	engine, err := rules.New(sites)
	if err != nil {
		return fmt.Errorf("rules engine: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store, err := embedded.Open(*dataDir, embedded.Options{Retention: *retention, OutOfOrderWindow: *oooWindow, Registerer: reg})
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close store", zap.Error(err))
		}
	}()

	svc, err := ingest.New(ingest.Config{
		Sites: sites, Broker: *broker, ClientID: *clientID, Store: store,
		Evaluator: engine,
		// TODO: the alerting service's sink, once package alerting exists.
		Sink:     logSink{log: log.Named("events")},
		Logger:   log,
		Registry: reg,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *httpAddr, err)
	}
	srv := &http.Server{Handler: routes(svc, reg), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", zap.Error(err))
		}
	}()
	log.Info("hazardwatch-ingest started", zap.Int("sites", len(sites)), zap.String("broker", *broker),
		zap.String("data", *dataDir), zap.String("http", ln.Addr().String()))
	if ready != nil {
		ready <- ln.Addr().String()
	}

	runErr := svc.Run(ctx)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx) // a slow scrape must not hold up the store's close
	log.Info("hazardwatch-ingest stopped")
	return runErr
}

func routes(svc *ingest.Service, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !svc.Connected() {
			http.Error(w, "not connected to the MQTT broker", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /deadletters", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, svc.DeadLetters()) })
	mux.HandleFunc("GET /gateways", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, svc.GatewayStates()) })
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}

// logSink stands in for the alerting service: it logs each event.
type logSink struct{ log *zap.Logger }

func (s logSink) HandleEvents(_ context.Context, events []rules.Event) error {
	for _, e := range events {
		s.log.Warn(e.Message, zap.String("type", e.Type.String()), zap.String("key", e.Key),
			zap.String("grade", e.Grade.String()), zap.Float64("value", e.Value), zap.Float64("limit", e.Limit))
	}
	return nil
}
