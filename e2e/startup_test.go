package e2e

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/center"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/site"
)

// TestFailedStartExitsOneWithTheCause: each binary that cannot start —
// journal database unreachable, a broker URL carrying a password, TLS files
// with a plain-text broker, a missing site file, its HTTP address taken —
// prints the cause on stderr and exits 1, without a panic and without
// showing the password.
func TestFailedStartExitsOneWithTheCause(t *testing.T) {
	broker := testenv.Mosquitto(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ingest, gw, all := buildCommand(t, "hazardwatch-ingest"), buildCommand(t, "hazardwatch-gateway"), buildCommand(t, "hazardwatch")
	tankFarm := filepath.Join(tankFarmOnFreePorts(t), "tank-farm.yaml")
	for _, c := range []struct {
		name  string
		bin   string
		args  []string
		cause string
	}{
		{"journal database unreachable", ingest, []string{"-sites", "../configs/sites", "-data", t.TempDir(), "-http", "127.0.0.1:0", "-broker", broker.URL(),
			"-journal-dsn", "postgres://hazardwatch@127.0.0.1:1/hazardwatch"}, "alerting journal"},
		{"password in the broker URL", ingest, []string{"-sites", "../configs/sites", "-data", t.TempDir(), "-broker", "tcp://centre:hunter2@127.0.0.1:1883"}, "-password-file"},
		{"TLS files, plain broker", ingest, []string{"-sites", "../configs/sites", "-data", t.TempDir(), "-broker", broker.URL(), "-ca", "ca.pem"}, "is not TLS"},
		{"HTTP address taken", ingest, []string{"-sites", "../configs/sites", "-data", t.TempDir(), "-broker", broker.URL(), "-http", taken.Addr().String()}, "address already in use"},
		{"no site file", gw, []string{"-site", filepath.Join(t.TempDir(), "missing.yaml"), "-broker", broker.URL()}, "missing.yaml"},
		{"gateway password file missing", gw, []string{"-site", tankFarm, "-broker", broker.URL(), "-username", "jh-chem/gw-tank", "-password-file", "/nonexistent/pw"}, "password file"},
		{"demo's HTTP address taken", all, []string{"-sites", "../configs/sites", "-data", t.TempDir(), "-http", taken.Addr().String(), "-mqtt", testenv.FreeAddr(t), "-scenario", "none"}, "address already in use"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, c.bin, c.args...)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1; output:\n%s", err, stderr.String())
			}
			out := stderr.String()
			if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
				t.Errorf("panicked:\n%s", out)
			}
			if !strings.Contains(out, c.cause) {
				t.Errorf("output does not name the cause %q:\n%s", c.cause, out)
			}
			if strings.Contains(out, "hunter2") {
				t.Errorf("output shows the password:\n%s", out)
			}
		})
	}
}

// TestCentreOpenFailsCleanlyWhenTheBrokerRefuses: a centre whose broker
// refuses its login returns the broker's reason from Open, and closing
// what it had built does not panic.
func TestCentreOpenFailsCleanlyWhenTheBrokerRefuses(t *testing.T) {
	b := startSecuredBroker(t)
	sites, err := site.LoadDir("../configs/sites")
	if err != nil {
		t.Fatal(err)
	}
	conn := b.conn(t, "hazardwatch-centre", "")
	conn.Password = "wrong"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := center.Open(ctx, center.Config{Sites: sites, Broker: conn.Broker, MQTT: conn, DataDir: t.TempDir()})
	if err == nil {
		c.Close()
		t.Fatal("Open succeeded with a refused password")
	}
	if !strings.Contains(strings.ToLower(err.Error()), "not authorized") && !strings.Contains(strings.ToLower(err.Error()), "bad user name or password") {
		t.Errorf("error does not give the broker's reason: %v", err)
	}
}
