// Command hazardwatch-sim serves every Modbus TCP device of a site file from
// simulated plant, calm by default, optionally playing a built-in scenario,
// until interrupted. With -serial it also answers the RTU devices of a bus
// on a local serial port, or on a new pseudo-terminal whose path it prints.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hazardwatch/hazardwatch/simulators"
	"github.com/hazardwatch/hazardwatch/site"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // -h: the usage is printed
		}
		fmt.Fprintln(os.Stderr, "hazardwatch-sim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hazardwatch-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	siteFile := fs.String("site", "", "site file whose TCP devices to serve (required)")
	scenario := fs.String("scenario", "", "built-in scenario to play: "+strings.Join(simulators.BuiltinNames(), ", "))
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
	var opts []simulators.Option
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
	if *scenario != "" {
		sc, ok := simulators.Builtin(*scenario)
		if !ok {
			return fmt.Errorf("no scenario %q (built in: %s)", *scenario, strings.Join(simulators.BuiltinNames(), ", "))
		}
		if sc.Site != "" && sc.Site != s.ID {
			return fmt.Errorf("scenario %s is written for site %s, not %s", sc.Name, sc.Site, s.ID)
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
