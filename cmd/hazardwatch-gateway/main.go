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
	"strings"
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
	"github.com/hazardwatch/hazardwatch/internal/version"
	"github.com/hazardwatch/hazardwatch/site"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
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
	metricsAddr := fs.String("metrics", ":9101", "address serving /metrics, /status and /healthz; empty: off")
	ackTimeout := fs.Duration("ack-timeout", forward.DefaultAckTimeout, "how long sent messages wait for the centre's acknowledgement before they are sent again")
	pubackOnly := fs.Bool("puback-only", false, "forget messages at the broker's PUBACK instead of the centre's acknowledgement (only for a centre that publishes none)")
	reprobe := fs.Duration("reprobe", gateway.DefaultReprobeInterval, "how often the addresses a device refused are probed again")
	dryRun := fs.Bool("dry-run", false, "read every device once, print the commissioning report and exit (1 when a point cannot be read)")
	debug := fs.Bool("debug", false, "log at debug level")
	showVersion := version.Flag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		version.Print(stdout, fs.Name())
		return nil
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
		SpoolMaxBytes: *spoolMax, ReplayRate: *replayRate, AckTimeout: *ackTimeout, PubackOnly: *pubackOnly, ReprobeInterval: *reprobe})
	if err != nil {
		return err
	}

	if *dryRun {
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		rows, err := g.PollOnce(pctx)
		sums, werr := g.WriteReport(stdout, rows)
		if werr != nil {
			return werr
		}
		var unread []string
		for _, sm := range sums {
			if sm.Unreadable() {
				unread = append(unread, fmt.Sprintf("%s (%d)", sm.Device, sm.CommFail))
			}
		}
		if len(unread) > 0 {
			if err == nil {
				err = errors.New("see the table")
			}
			return fmt.Errorf("points not read on %s:\n%w", strings.Join(unread, ", "), err)
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
		mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			writeStatus(w, g.Status())
		})
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

// writeStatus is the status page a site engineer reads on the gateway.
func writeStatus(w io.Writer, st gateway.Status) {
	fmt.Fprintf(w, "hazardwatch-gateway %s\nsite %s, gateway %s\n\n", version.String(), st.Site, st.Gateway)
	fmt.Fprintf(w, "last message built:       seq %d\n", st.LastSeq)
	if st.ConfirmedAt.IsZero() {
		fmt.Fprintf(w, "confirmed by the centre:  none yet\n")
	} else {
		fmt.Fprintf(w, "confirmed by the centre:  seq %d (%s ago)\n", st.Confirmed, time.Since(st.ConfirmedAt).Round(time.Second))
	}
	fmt.Fprintf(w, "kept in the spool:        %d messages\n", st.Unsent)
	if st.ClockKnown {
		fmt.Fprintf(w, "clock offset:             %+.3fs (this gateway minus the centre)\n", st.ClockOffset.Seconds())
	} else {
		fmt.Fprintf(w, "clock offset:             unknown (no live acknowledgement yet)\n")
	}
	fmt.Fprintln(w, "\ndevices:")
	for _, d := range st.Devices {
		state := "answering"
		if d.Failures > 0 {
			state = fmt.Sprintf("NOT ANSWERING (%d polls)", d.Failures)
		}
		fmt.Fprintf(w, "  %-20s %s", d.Device, state)
		if d.RefusedPoints > 0 {
			fmt.Fprintf(w, ", %d points refused (see the dry run)", d.RefusedPoints)
		}
		fmt.Fprintln(w)
	}
}
