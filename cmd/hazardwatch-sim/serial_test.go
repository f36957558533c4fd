package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goburrow/modbus"
)

// syncBuffer is an io.Writer the test may read while run writes.
type syncBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

func TestServesRTUBusOnPseudoTerminal(t *testing.T) {
	site := `id: rtu-cmd
name: RTU command test
gateways:
  - id: gw1
    devices:
      - {id: gds, transport: rtu, unit_id: 5, serial: {port: /dev/ttyHW0, baud_rate: 19200}}
sources:
  - id: src
    name: tanks
    type: tank_farm
    grade: 3
    points:
      - {id: nh3, name: nh3, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: gds, table: input, address: 0, scale: 0.1}}
`
	path := filepath.Join(t.TempDir(), "rtu.yaml")
	if err := os.WriteFile(path, []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-site", path, "-no-noise", "-serial", "/dev/ttyHW0=pty"}, &out, &errs)
	}()

	served := regexp.MustCompile(`serving RTU bus /dev/ttyHW0 on (/dev/pts/\d+)`)
	var pts string
	for deadline := time.Now().Add(10 * time.Second); pts == ""; {
		if m := served.FindStringSubmatch(out.String()); m != nil {
			pts = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pty announced; stdout %q, stderr %q", out.String(), errs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	h := modbus.NewRTUClientHandler(pts)
	h.BaudRate, h.SlaveId, h.Timeout = 19200, 5, time.Second
	defer h.Close()
	c := modbus.NewClient(h)
	b, err := c.ReadInputRegisters(0, 1)
	if err != nil || len(b) != 2 {
		t.Fatalf("read nh3 over %s: % x, %v", pts, b, err)
	}
	if raw := int(b[0])<<8 | int(b[1]); raw > 1000 {
		t.Errorf("nh3 raw %d: beyond the 0–100 ppm range at rest", raw)
	}
	var me *modbus.ModbusError
	if _, err := c.ReadInputRegisters(100, 1); !errors.As(err, &me) || me.ExceptionCode != 2 {
		t.Errorf("read of an address the device lacks: %v, want exception 2", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if err := run(context.Background(), []string{"-site", path, "-serial", "/dev/ttyHW9=pty"}, &out, &errs); err == nil || !strings.Contains(err.Error(), "/dev/ttyHW9") {
		t.Errorf("-serial for a bus the site lacks: %v", err)
	}
	if err := run(context.Background(), []string{"-site", path, "-serial", "nonsense"}, &out, &errs); err == nil {
		t.Error("-serial without PORT=DEVICE accepted")
	}
}
