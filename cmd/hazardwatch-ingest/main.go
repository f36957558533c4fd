// Command hazardwatch-ingest runs the centre on its own: it loads the site
// files, opens the embedded store and the alarm journal, subscribes to the
// gateways over MQTT, stores their readings, evaluates the rules and
// delivers graded warnings, and serves the status page, the alarm API,
// /metrics, /healthz and /readyz.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hazardwatch/hazardwatch/ingest"
	"github.com/hazardwatch/hazardwatch/internal/center"
	"github.com/hazardwatch/hazardwatch/internal/httpserve"
	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/internal/version"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
	"github.com/hazardwatch/hazardwatch/storage/influx"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
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
	conn := mqttconn.RegisterFlags(fs, mqttconn.DefaultBroker)
	clientID := fs.String("client-id", ingest.DefaultClientID, "MQTT client id; keep it stable so the broker keeps the session")
	dataDir := fs.String("data", "data", "directory of the store (tsdb/) and the alarm journal (alerting/)")
	journalDSN := fs.String("journal-dsn", "", "keep the alarm journal in PostgreSQL at this URL, e.g. postgres://hazardwatch@db:5432/hazardwatch, shared by every ingest node, instead of in -data; leave the password out and use PGPASSWORD or ~/.pgpass")
	alertingFile := fs.String("alerting", "", "alerting configuration: webhook receivers, accounts and API tokens (see configs/alerting.yaml)")
	httpAddr := fs.String("http", ":8080", "address of the status page, alarm API, /metrics, /healthz and /readyz")
	retention := fs.Duration("retention", embedded.DefaultRetention, "how long readings are kept (AQ 3035: at least 30 days)")
	oooWindow := fs.Duration("ooo-window", embedded.DefaultOutOfOrderWindow, "how far behind the newest reading a replayed reading is still stored")
	maxInFlight := fs.Int("max-in-flight", ingest.DefaultMaxInFlight, "telemetry messages (not requests: see -influx-max-in-flight) being decoded, stored and journaled at once; past it the broker keeps the rest. Set the broker's max_inflight_messages at least as high; with few readings a message, raise it so that messages × readings a message reach about 2 × -influx-max-in-flight × -influx-batch-size")
	var ix influx.Options
	fs.StringVar(&ix.URL, "influx-url", "", "store readings in InfluxDB at this URL (e.g. http://127.0.0.1:8086) instead of the embedded store")
	fs.StringVar(&ix.Token, "influx-token", "", "InfluxDB token (1.8: user:password, or empty); shows in the process list: prefer -influx-token-file or $INFLUX_TOKEN")
	influxTokenFile := fs.String("influx-token-file", "", "file holding the InfluxDB token (first line); default: $INFLUX_TOKEN")
	fs.StringVar(&ix.Org, "influx-org", "", "InfluxDB organisation (2.x/3.x)")
	fs.StringVar(&ix.Bucket, "influx-bucket", "hazardwatch", "InfluxDB bucket (1.8: database/retention-policy)")
	fs.IntVar(&ix.BatchSize, "influx-batch-size", influx.DefaultBatchSize, "most readings in one InfluxDB write request")
	fs.DurationVar(&ix.BatchWait, "influx-batch-wait", influx.DefaultBatchWait, "how long a write batch waits to fill before it is sent anyway (what a message's acknowledgement may wait on a quiet system)")
	fs.IntVar(&ix.MaxInFlight, "influx-max-in-flight", influx.DefaultMaxInFlight, "InfluxDB write requests outstanding at once")
	fs.BoolVar(&ix.NoGzip, "influx-no-gzip", false, "send write requests uncompressed (gzipped by default)")
	shardFlag := fs.String("shard", "", "k/n: this is node k of n ingest nodes sharing the sites (by a hash of the site id); give each node its own -client-id, a shared store and a shared -journal-dsn")
	mapTiles := fs.String("map-tiles", "", "optional tile server under the risk map, a Web Mercator URL template such as https://tiles.example/{z}/{x}/{y}.png; empty: the bundled county boundaries alone (no network needed)")
	debug := fs.Bool("debug", false, "log at debug level")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (for go tool pprof)")
	showVersion := version.Flag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		version.Print(os.Stdout, fs.Name())
		return nil
	}

	if *maxInFlight < 1 {
		return fmt.Errorf("-max-in-flight %d: at least 1 telemetry message must be handled at a time", *maxInFlight)
	}
	mc, err := conn.Config(*clientID)
	if err != nil {
		return err
	}
	if ix.Token, err = influxToken(ix.Token, *influxTokenFile); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("create CPU profile %s: %w", *cpuProfile, err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
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
	shard, err := ingest.ParseShard(*shardFlag)
	if err != nil {
		return err
	}
	if sites = shard.Sites(sites); len(sites) == 0 {
		return fmt.Errorf("shard %s owns none of the %s site files: use fewer nodes", shard, *sitesDir)
	}
	var alertCfg center.AlertingFile
	if *alertingFile != "" {
		if alertCfg, err = center.LoadAlertingFile(*alertingFile); err != nil {
			return err
		}
	}
	c, err := center.Open(ctx, center.Config{
		Sites: sites, Broker: mc.Broker, ClientID: *clientID, MQTT: mc, DataDir: *dataDir, JournalDSN: *journalDSN, Shard: shard,
		Retention: *retention, OutOfOrderWindow: *oooWindow, Influx: influxOptions(ix), MaxInFlight: *maxInFlight,
		Receivers: alertCfg.Receivers, Access: alertCfg.Access, MaxShelve: alertCfg.MaxShelve, Logger: log,
		Escalation: alertCfg.Escalation, Flood: alertCfg.Flood, Incidents: alertCfg.Incidents, Notification: alertCfg.Notification,
		MapTiles: *mapTiles,
	})
	if err != nil {
		return err
	}
	defer c.Close()

	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *httpAddr, err)
	}
	srv := httpserve.New(c.Handler(), httpserve.Limits{Streams: center.StreamPaths, Registerer: c.Registerer()})
	srv.ServeBackground(ln, func(err error) { log.Error("http server", zap.Error(err)) })
	log.Info("hazardwatch-ingest started", zap.Int("sites", len(sites)), zap.String("broker", mc.Redacted()),
		zap.String("data", *dataDir), zap.String("http", ln.Addr().String()), zap.Int("receivers", len(alertCfg.Receivers)), zap.Stringer("shard", shard))
	if ready != nil {
		ready <- ln.Addr().String()
	}

	// SIGHUP reloads the site files; a file with problems is refused as a
	// whole, every problem logged, and the running configuration stays.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reloadSites(c, *sitesDir, shard, log)
			}
		}
	}()

	runErr := c.Run(ctx)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx) // a slow scrape must not hold up the store's close
	log.Info("hazardwatch-ingest stopped")
	return runErr
}

func reloadSites(c *center.Center, dir string, shard ingest.Shard, log *zap.Logger) {
	sites, err := site.LoadDir(dir)
	if err == nil {
		sites = shard.Sites(sites)
		err = c.Reload(sites)
	}
	if err != nil {
		log.Error("site files not reloaded; the running configuration stays", zap.String("dir", dir), zap.Error(err))
		return
	}
	log.Info("site files reloaded", zap.String("dir", dir), zap.Int("sites", len(sites)))
}

func influxOptions(o influx.Options) *influx.Options {
	if o.URL == "" {
		return nil
	}
	return &o
}

// influxToken is the InfluxDB token: from -influx-token-file, else the
// -influx-token flag, else $INFLUX_TOKEN — a file or the environment keep
// it out of the process list.
func influxToken(flagValue, file string) (string, error) {
	switch {
	case file != "" && flagValue != "":
		return "", errors.New("give -influx-token-file or -influx-token, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read -influx-token-file: %w", err)
		}
		tok, _, _ := strings.Cut(string(b), "\n")
		if tok = strings.TrimSuffix(tok, "\r"); tok == "" {
			return "", fmt.Errorf("-influx-token-file %s is empty", file)
		}
		return tok, nil
	case flagValue != "":
		return flagValue, nil
	}
	return os.Getenv("INFLUX_TOKEN"), nil
}
