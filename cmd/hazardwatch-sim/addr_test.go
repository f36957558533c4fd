package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
)

// -addr serves a device elsewhere than the site file says, and -scenario
// plays a scenario file written for the site.
func TestAddrAndScenarioFile(t *testing.T) {
	path, _ := testenv.ExampleSite(t, "tank-farm.yaml", "127.0.0.1:15021", "127.0.0.1:15022")
	elsewhere := testenv.FreeAddr(t)
	leak := filepath.Join(t.TempDir(), "leak.yaml")
	if err := os.WriteFile(leak, []byte("name: my-leak\nsite: jh-chem\nsteps:\n  - {at: 1s, point: nh3-gas-3, to: 60, over: 10s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errs bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-site", path, "-addr", "gds=" + elsewhere, "-scenario", leak}, &out, &errs)
	}()
	testenv.Eventually(t, "gds served on the -addr address", 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", elsewhere, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "serving gds (unit 1) on "+elsewhere) || !strings.Contains(out.String(), "playing my-leak") {
		t.Errorf("output %q, want gds served on %s and my-leak playing", out.String(), elsewhere)
	}
	for args, want := range map[string]string{
		"-addr nope=127.0.0.1:1": "unknown device",
		"-addr gds":              "DEVICE=HOST:PORT",
		"-scenario nope":         "scenario file",
	} {
		err := run(context.Background(), append([]string{"-site", path}, strings.Fields(args)...), &out, &errs)
		if err == nil || !strings.Contains(err.Error()+errs.String(), want) {
			t.Errorf("%s: %v, want an error naming %q", args, err, want)
		}
	}
}
