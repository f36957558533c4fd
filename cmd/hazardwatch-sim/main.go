// Command hazardwatch-sim serves every Modbus TCP device of a site file from
// simulated plant, calm by default (from each point's range and limits),
// optionally playing a scenario (a YAML file, or a built-in one of
// configs/scenarios), with -addr serving a device elsewhere,
// until interrupted. With -serial it also answers the RTU devices of a bus
// on a local serial port, or on a new pseudo-terminal whose path it prints.
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
	"strings"
	"syscall"

	"github.com/hazardwatch/hazardwatch/internal/version"
	"github.com/hazardwatch/hazardwatch/simulators"
	"github.com/hazardwatch/hazardwatch/site"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "hazardwatch-sim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hazardwatch-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	siteFile := fs.String("site", "", "site file whose TCP devices to serve (required)")
	scenario := fs.String("scenario", "", "scenario to play: a scenario file (YAML, see configs/scenarios), or a built-in one: "+strings.Join(simulators.BuiltinNames(), ", ")+"; none: calm")
	var addrs []simulators.Option
	fs.Func("addr", "serve device `DEVICE=HOST:PORT` there instead of at the site file's address (e.g. gds-1=0.0.0.0:1502); repeatable", func(v string) error {
		dev, a, ok := strings.Cut(v, "=")
		if !ok || dev == "" || a == "" {
			return fmt.Errorf("-addr %q: want DEVICE=HOST:PORT", v)
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("-addr %q: %v", v, err)
		}
		addrs = append(addrs, simulators.WithAddress(dev, a))
		return nil
	})
	noNoise := fs.Bool("no-noise", false, "hold values still (no jitter)")
	// Site bus name → local device ("pty" for a new pseudo-terminal).
	var serials [][2]string
	fs.Func("serial", "serve the RTU devices of the site's serial port `PORT=DEVICE` on local DEVICE (e.g. /dev/ttyS1=/dev/ttyUSB0), or on a new pseudo-terminal with PORT=pty; repeatable", func(v string) error {
		port, dev, ok := strings.Cut(v, "=")
		if !ok || port == "" || dev == "" {
			return fmt.Errorf("-serial %q: want PORT=DEVICE or PORT=pty", v)
		}
		serials = append(serials, [2]string{port, dev})
		return nil
	})
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
	opts := addrs
	if *noNoise {
		opts = append(opts, simulators.WithoutNoise())
	}
	sim, err := simulators.New(s, opts...)
	if err != nil {
		return err
	}
	if err := sim.Start(); err != nil {
		return err
	}
	defer sim.Close()
	for _, g := range s.Gateways {
		for _, d := range g.Devices {
			if a := sim.Addr(d.ID); a != "" {
				fmt.Fprintf(stdout, "serving %s (unit %d) on %s\n", d.ID, d.UnitID, a)
			}
		}
	}
	for _, sp := range serials {
		port, dev := sp[0], sp[1]
		var conn io.ReadWriteCloser
		if dev == "pty" {
			master, slave, err := simulators.OpenPTY()
			if err != nil {
				return fmt.Errorf("-serial %s: %w", port, err)
			}
			conn, dev = master, slave
		} else if conn, err = sim.OpenSerial(port, dev); err != nil {
			return err
		}
		if err := sim.ServeRTU(port, conn); err != nil {
			conn.Close()
			return err
		}
		fmt.Fprintf(stdout, "serving RTU bus %s on %s\n", port, dev)
	}
	if *scenario != "" && *scenario != "none" {
		sc, ok := simulators.Builtin(*scenario)
		if !ok {
			if !strings.HasSuffix(*scenario, ".yaml") && !strings.HasSuffix(*scenario, ".yml") {
				return fmt.Errorf("no scenario %q: give a scenario file (.yaml) or a built-in one (%s)", *scenario, strings.Join(simulators.BuiltinNames(), ", "))
			}
			if sc, err = simulators.LoadScenario(*scenario); err != nil {
				return err
			}
		}
		if err := sc.Check(s); err != nil {
			return err
		}
		if err := sim.Play(ctx, sc); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "playing %s: %s\n", sc.Name, sc.Description)
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping")
	return nil
}
