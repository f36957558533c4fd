// Command hazardwatch-gateway runs one edge gateway of a site: it polls the
// gateway's Modbus devices and publishes their readings to the MQTT broker,
// serving /metrics and /healthz. With -dry-run it reads every device once,
// prints the commissioning table and exits.
package main

import (
	"context"
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

	"github.com/hazardwatch/hazardwatch/gateway"
	"github.com/hazardwatch/hazardwatch/gateway/forward"
	"github.com/hazardwatch/hazardwatch/internal/httpserve"
	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/internal/queue"
	"github.com/hazardwatch/hazardwatch/site"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // -h: the usage is printed
		}
		fmt.Fprintln(os.Stderr, "hazardwatch-gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hazardwatch-gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	siteFile := fs.String("site", "", "site file (required)")
	gatewayID := fs.String("gateway", "", "id of the gateway in the site file; default: the site's only gateway")
	conn := mqttconn.RegisterFlags(fs, mqttconn.DefaultBroker)
	clientID := fs.String("client-id", "", "MQTT client id; default hazardwatch-gw-{site}-{gateway}")
	dataDir := fs.String("data", "data/gateway", "directory of the gateway's state: telemetry seq and the store-and-forward spool")
	spoolMax := fs.Int64("spool-max-bytes", queue.DefaultMaxBytes, "bound of the store-and-forward spool on disk; when full the oldest messages are dropped (counted)")
	replayRate := fs.Float64("replay-rate", forward.DefaultReplayRate, "backlog messages per second replayed after an outage, beside live data")
	metricsAddr := fs.String("metrics", ":9101", "address serving /metrics and /healthz; empty: off")
	dryRun := fs.Bool("dry-run", false, "read every device once, print the table and exit")
	debug := fs.Bool("debug", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *siteFile == "" {
		return errors.New("-site is required")
	}
	s, err := site.Load(*siteFile)
	if err != nil {
		return err
	}
	if *gatewayID == "" {
		if len(s.Gateways) != 1 {
			return fmt.Errorf("site %s has %d gateways: choose one with -gateway", s.ID, len(s.Gateways))
		}
		*gatewayID = s.Gateways[0].ID
	}
	level := zap.InfoLevel
	if *debug {
		level = zap.DebugLevel
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(stderr), level))
	defer func() { _ = log.Sync() }()

	mc, err := conn.Config(*clientID)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g, err := gateway.New(gateway.Config{Site: s, GatewayID: *gatewayID, DataDir: *dataDir, MQTT: mc, Registry: reg, Logger: log,
		SpoolMaxBytes: *spoolMax, ReplayRate: *replayRate})
	if err != nil {
		return err
	}

	if *dryRun {
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		rows, err := g.PollOnce(pctx)
		if werr := gateway.WriteTable(stdout, rows); werr != nil {
			return werr
		}
		if err != nil {
			return fmt.Errorf("some devices failed:\n%w", err)
		}
		return nil
	}

	if *metricsAddr != "" {
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		srv := httpserve.New(mux, httpserve.Limits{Registerer: reg})
		srv.ServeBackground(ln, func(err error) { log.Error("metrics server", zap.Error(err)) })
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		log.Info("serving metrics", zap.String("addr", ln.Addr().String()))
	}
	return g.Run(ctx)
}
