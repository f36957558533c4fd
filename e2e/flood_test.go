package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/httpserve"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
)

// TestIdleConnectionFloodLeavesHealthzAnswering is the flood that once
// exhausted the centre's file descriptors: one client opens three times the
// connection bound of idle keep-alive connections against a
// hazardwatch-ingest whose descriptors are limited to 1536, and /healthz
// still answers every time — the server closes its oldest idle
// connections instead of running out.
func TestIdleConnectionFloodLeavesHealthzAnswering(t *testing.T) {
	prlimit := testenv.LookTool(t, "prlimit", "apt-get install -y util-linux")
	broker := testenv.Mosquitto(t)
	bin := buildCommand(t, "hazardwatch-ingest")
	addr := testenv.FreeAddr(t)
	logFile := filepath.Join(t.TempDir(), "ingest.log")
	p := startProcess(t, prlimit, logFile, "--nofile=1536:1536", "--", bin, "-sites", "../configs/sites", "-data", t.TempDir(),
		"-http", addr, "-broker", broker.URL(), "-client-id", "flood-test")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	healthz := func() error {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
			return fmt.Errorf("%d %q", resp.StatusCode, body)
		}
		return nil
	}
	testenv.Eventually(t, "hazardwatch-ingest serves /healthz", 60*time.Second, func() bool { return !p.exited() && healthz() == nil })

	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for i := range 3 * httpserve.DefaultMaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		flood = append(flood, c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			log, _ := os.ReadFile(logFile)
			t.Fatalf("flood request %d: %v\n%s", i, err, log)
		}
		resp.Body.Close()
	}
	for i := range 10 {
		if err := healthz(); err != nil {
			t.Fatalf("/healthz %d during the flood: %v", i, err)
		}
	}
}
