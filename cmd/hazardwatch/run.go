package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hazardwatch/hazardwatch/internal/allinone"
	"github.com/hazardwatch/hazardwatch/internal/i18n"
	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/simulators"
)

// run starts the all-in-one system and serves until Ctrl-C.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hazardwatch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nflags of hazardwatch [run]:\n", usage)
		fs.PrintDefaults()
	}
	var cfg allinone.Config
	fs.StringVar(&cfg.SitesDir, "sites", allinone.DefaultSitesDir, "directory of site files (*.yaml)")
	fs.StringVar(&cfg.DataDir, "data", allinone.DefaultDataDir, "directory for the store, the alarm journal, gateway state and the log")
	fs.StringVar(&cfg.MQTTAddr, "mqtt", allinone.DefaultMQTTAddr, "address of the embedded MQTT broker")
	conn := mqttconn.RegisterFlags(fs, "")
	fs.StringVar(&cfg.HTTPAddr, "http", allinone.DefaultHTTPAddr, "address of the status page and APIs")
	fs.StringVar(&cfg.Scenario, "scenario", allinone.DefaultScenario, "incident to play: none, "+strings.Join(simulators.BuiltinNames(), ", "))
	webhooks := fs.String("webhook", "", "comma-separated extra command-platform webhook URLs")
	noColor := fs.Bool("no-color", false, "plain terminal output")
	lang := fs.String("lang", "zh", "language of the terminal's warnings: zh or en")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var err error
	if cfg.Lang, err = i18n.Parse(*lang); err != nil {
		fmt.Fprintln(stderr, "hazardwatch: -lang:", err)
		return 2
	}
	mc, err := conn.Config("")
	if err != nil {
		fmt.Fprintln(stderr, "hazardwatch:", err)
		return 1
	}
	cfg.Broker, cfg.MQTT = mc.Broker, mc
	if *webhooks != "" {
		cfg.Webhooks = strings.Split(*webhooks, ",")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		fmt.Fprintln(stderr, "hazardwatch:", err)
		return 1
	}
	logPath := filepath.Join(cfg.DataDir, "hazardwatch.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(stderr, "hazardwatch: open log:", err)
		return 1
	}
	defer logFile.Close()
	// Everything goes to the log file; only errors reach the terminal,
	// which shows the warnings themselves.
	cfg.Logger = zap.New(zapcore.NewTee(
		zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(logFile), zap.InfoLevel),
		zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(stderr), zap.ErrorLevel),
	))
	defer func() { _ = cfg.Logger.Sync() }()
	cfg.Out = stdout
	cfg.Color = !*noColor && isTerminal(stdout)
	cfg.Ready = func(info allinone.Info) { printBanner(stdout, info, logPath) }

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := allinone.Run(ctx, cfg); err != nil {
		fmt.Fprintln(stderr, "hazardwatch:", err)
		return 1
	}
	fmt.Fprintln(stdout, "HazardWatch stopped cleanly.")
	return 0
}

func printBanner(w io.Writer, info allinone.Info, logPath string) {
	fmt.Fprintln(w, "HazardWatch is running (Ctrl-C stops it).")
	for _, s := range info.Sites {
		fmt.Fprintf(w, "  site %-8s %s: %d hazard source(s), simulated Modbus devices polled by %d gateway(s)\n", s.ID, s.Name, len(s.Sources), len(s.Gateways))
	}
	fmt.Fprintf(w, "  console:          %s (officers' console, logs in as the demo officer)\n", info.Console)
	fmt.Fprintf(w, "  demo login:       user %s, password %s (new at every start; status page, APIs and /metrics need it too)\n", info.DemoUser, info.DemoPassword)
	for _, l := range info.Levels {
		fmt.Fprintf(w, "  %-17s %s (%s)\n", l.User+":", l.URL, l.Who)
	}
	fmt.Fprintf(w, "  status page:      %s/status\n", info.HTTP)
	fmt.Fprintf(w, "  alarms (JSON):    %s/api/status\n", info.HTTP)
	fmt.Fprintf(w, "  metrics:          %s/metrics\n", info.HTTP)
	fmt.Fprintf(w, "  MQTT broker:      %s (alarms on hazardwatch/v1/+/alarms)\n", info.Broker)
	fmt.Fprintf(w, "  command platform: %s (demo receiver; add yours with -webhook)\n", info.CommandWebhook)
	fmt.Fprintf(w, "  log:              %s\n", logPath)
	if info.Scenario != "none" {
		fmt.Fprintf(w, "Playing scenario %q: the first warning appears within about 30 seconds.\n", info.Scenario)
	}
	fmt.Fprintln(w)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
