// Command hazardwatch-load measures the ingest path under load: N simulated
// gateways × M points publish telemetry at a rate over a real MQTT broker
// to a centre, and the tool reports stored readings per second (per core),
// end-to-end latency percentiles from a reading's time to its being stored,
// and exactly which readings were lost or stored twice. With -embedded it
// runs the centre's pipeline (embedded store, rules, alerting, ingest)
// in-process; with -target it publishes to a running hazardwatch-ingest
// (embedded store or InfluxDB) and verifies through the centre's query
// API that every reading was stored once; -write-site writes the
// generated site file such a centre loads. -alarm-probes measures alarm
// latency under the load: readings that raise alarms on hazard sources of
// their own, timed from their publish to the centre's webhook, which the
// tool receives (-write-alerting writes the centre's receiver for it).
// docs/load.md has the figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/mqttconn"
	"github.com/hazardwatch/hazardwatch/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "hazardwatch-load:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	conn          *mqttconn.Flags
	mqtt          mqttconn.Config // of conn, once parsed
	gateways      int
	points        int
	rate          float64
	duration      time.Duration
	drain         time.Duration
	siteID        string
	embedded      bool
	target        string
	publishOnly   bool
	mosquittoConf string
	writeSite     string
	cpuProfile    string
	debug         bool

	// Alarm probes (probe.go): alarm latency under the load.
	alarmProbes   int
	alarmTimeout  time.Duration
	webhookListen string
	alertingFile  string // -target: the centre's alerting file, for the receiver
	writeAlerting string
}

// maxPoints keeps one gateway's message within the contract's limits.
const maxPoints = 4096

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("hazardwatch-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.conn = mqttconn.RegisterFlags(fs, mqttconn.DefaultBroker)
	fs.IntVar(&o.gateways, "gateways", 10, "simulated gateways, each its own MQTT client")
	fs.IntVar(&o.points, "points", 100, "points per gateway; each message carries all of them")
	fs.Float64Var(&o.rate, "rate", 1, "messages per second per gateway")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long to publish")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "after publishing, how long to wait without progress for the last readings to be stored")
	fs.StringVar(&o.siteID, "site-id", "load", "site id of the generated site")
	fs.BoolVar(&o.embedded, "embedded", false, "run the centre's pipeline in-process with a temporary data directory")
	fs.StringVar(&o.target, "target", "", "publish to a running hazardwatch-ingest with this HTTP address (e.g. http://127.0.0.1:8080) and verify through its query API; token from $"+TokenEnv)
	fs.BoolVar(&o.publishOnly, "publish-only", false, "only publish (e.g. a backlog for a consumer that connects later) and report what the broker acknowledged")
	fs.StringVar(&o.mosquittoConf, "mosquitto-conf", "", "the broker's Mosquitto configuration file, to state its queue limits before the run")
	fs.StringVar(&o.writeSite, "write-site", "", "write the generated site file into this directory and exit (to load it into a centre run on its own)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured run to this file")
	fs.BoolVar(&o.debug, "debug", false, "log the centre's warnings and errors on stderr")
	fs.IntVar(&o.alarmProbes, "alarm-probes", 0, "measure alarm latency: publish this many alarm-raising readings through the run, each on a hazard source of its own, and time the centre's webhook (0: off)")
	fs.DurationVar(&o.alarmTimeout, "alarm-timeout", 10*time.Second, "how long after its publish a probe's webhook may take before the probe counts as not notified")
	fs.StringVar(&o.webhookListen, "webhook-listen", "", "host:port of the tool's webhook receiver: with -write-alerting the address the centre is to POST to; in a run, where to listen (default: the receiver's address in -alerting, or a free port with -embedded)")
	fs.StringVar(&o.alertingFile, "alerting", "", "with -target and -alarm-probes: the centre's alerting file (from -write-alerting), for the webhook receiver's address and signing secret")
	fs.StringVar(&o.writeAlerting, "write-alerting", "", "write the alerting file a centre needs for -alarm-probes (receiver at -webhook-listen, the viewer token of $"+TokenEnv+") to this path and exit")
	showVersion := version.Flag(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *showVersion {
		version.Print(os.Stdout, fs.Name())
		return o, flag.ErrHelp // nothing else to do: exit 0
	}
	var err error
	if o.mqtt, err = o.conn.Config(""); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.gateways < 1 || o.gateways > 10000:
		return o, fmt.Errorf("-gateways %d: must be 1 to 10000", o.gateways)
	case o.points < 1 || o.points > maxPoints:
		return o, fmt.Errorf("-points %d: must be 1 to %d (the readings of one message)", o.points, maxPoints)
	case !(o.rate > 0 && o.rate <= 1000):
		return o, fmt.Errorf("-rate %v: must be above 0 and at most 1000 messages per second per gateway", o.rate)
	case o.duration <= 0:
		return o, fmt.Errorf("-duration %v: must be positive", o.duration)
	case o.drain <= 0:
		return o, fmt.Errorf("-drain %v: must be positive", o.drain)
	case o.alarmProbes < 0 || o.alarmProbes > maxProbes:
		return o, fmt.Errorf("-alarm-probes %d: must be 0 to %d", o.alarmProbes, maxProbes)
	case o.alarmTimeout <= 0:
		return o, fmt.Errorf("-alarm-timeout %v: must be positive", o.alarmTimeout)
	case o.writeAlerting != "" && o.webhookListen == "":
		return o, errors.New("-write-alerting needs -webhook-listen HOST:PORT, the address the centre is to POST its webhook to")
	case o.writeSite != "" || o.writeAlerting != "":
		return o, nil // write and exit
	case o.alarmProbes > 0 && o.publishOnly:
		return o, errors.New("-alarm-probes needs a centre (-target or -embedded), not -publish-only")
	case o.alarmProbes > 0 && o.target != "" && o.alertingFile == "":
		return o, errors.New("-alarm-probes with -target needs -alerting FILE, the centre's alerting file (hazardwatch-load -write-alerting writes one), for the webhook receiver's address and signing secret")
	case !o.publishOnly && o.embedded == (o.target != ""):
		return o, errors.New("give -target URL (a running hazardwatch-ingest) or -embedded (the centre's pipeline in-process), one of them")
	}
	return o, nil
}

// run parses the flags, runs the load and prints the report on stdout. It
// returns an error when the run could not be made or when any reading was
// lost or stored twice.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (*report, error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return nil, err
	}
	if o.writeSite != "" || o.writeAlerting != "" {
		return nil, writeFiles(o, stdout)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return nil, fmt.Errorf("create CPU profile %s: %w", o.cpuProfile, err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("start CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintf(stdout, "hazardwatch-load: %d gateways × %d points at %g msg/s each for %v (offered %.0f readings/s), broker %s, GOMAXPROCS %d\n",
		o.gateways, o.points, o.rate, o.duration, float64(o.gateways*o.points)*o.rate, o.mqtt.Redacted(), runtime.GOMAXPROCS(0))
	if o.publishOnly {
		return nil, publishOnly(ctx, o, stdout)
	}
	var rep *report
	if o.target != "" {
		rep, err = runRemote(ctx, o, stdout)
	} else {
		rep, err = runEmbedded(ctx, o, stdout, stderr)
	}
	if err != nil {
		return rep, err
	}
	rep.print(stdout)
	var errs []error
	switch {
	case rep.Lost > 0 && rep.GapMessages > 0:
		errs = append(errs, fmt.Errorf("%d readings lost: the broker dropped %d messages before they reached the centre (its queue limit, max_queued_messages), %d duplicated", rep.Lost, rep.GapMessages, rep.Duplicated))
	case rep.Lost > 0 || rep.Duplicated > 0:
		errs = append(errs, fmt.Errorf("%d readings lost, %d duplicated", rep.Lost, rep.Duplicated))
	}
	if rep.Alarms != nil {
		errs = append(errs, rep.Alarms.err())
	}
	return rep, errors.Join(errs...)
}

// writeFiles writes the generated site file (-write-site) and the
// centre's alerting file (-write-alerting) for a centre run on its own.
func writeFiles(o options, stdout io.Writer) error {
	if o.writeSite != "" {
		if err := os.MkdirAll(o.writeSite, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", o.writeSite, err)
		}
		if _, err := loadSite(o.writeSite, o.siteID, o.gateways, o.points, o.rate, o.alarmProbes); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s/%s.yaml\n", o.writeSite, o.siteID)
	}
	if o.writeAlerting != "" {
		if err := writeAlertingFile(o.writeAlerting, o.webhookListen, os.Getenv(TokenEnv)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (receiver %s at http://%s%s)\n", o.writeAlerting, receiverName, o.webhookListen, webhookPath)
	}
	return nil
}

// runID keeps this run's MQTT client ids apart from any other run's on a
// shared broker.
func runID() string {
	return strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + strconv.Itoa(os.Getpid())
}
