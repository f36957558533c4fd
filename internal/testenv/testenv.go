// Package testenv starts the real external parts that HazardWatch's tests
// talk to — a Mosquitto broker on a free port, an InfluxDB server, a fresh
// database on the machine's PostgreSQL — and fails a test with the install
// step when a tool or server is missing, instead of skipping it.
package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// LookTool returns the path of a tool the tests need, failing the test with
// the command that installs it when it is missing.
func LookTool(t testing.TB, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("%s is not installed; install it with: %s (or run scripts/test.sh, which installs everything the tests need)", name, install)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr is FreePort as an address, 127.0.0.1:PORT.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(FreePort(t))
}

// Broker is a Mosquitto process owned by one test.
type Broker struct {
	t    testing.TB
	bin  string
	conf string
	Port int
	cmd  *exec.Cmd
	// scheme of URL: tcp, or ssl for a TLS listener.
	scheme string
}

// URL is the broker's address for MQTT clients, tcp://127.0.0.1:PORT.
func (b *Broker) URL() string {
	scheme := b.scheme
	if scheme == "" {
		scheme = "tcp"
	}
	return scheme + "://127.0.0.1:" + strconv.Itoa(b.Port)
}

// Mosquitto starts a private Mosquitto on a free port with persistence in a
// temp dir, and stops it when the test ends. Tests that stop or restart the
// broker use this one, never the machine's shared broker.
func Mosquitto(t testing.TB) *Broker {
	t.Helper()
	port := FreePort(t)
	return startMosquitto(t, port, "", func(dir string) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nautosave_interval 1\nmax_queued_messages 1000000\nmax_inflight_messages 100\nlog_dest file %s\n",
			port, dir, filepath.Join(dir, "mosquitto.log"))
	})
}

// Start (re)starts the broker and waits until it accepts connections.
func (b *Broker) Start() {
	b.t.Helper()
	if b.cmd != nil {
		return
	}
	cmd := exec.Command(b.bin, "-c", b.conf)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start mosquitto: %v", err)
	}
	b.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(b.Port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			logText, _ := os.ReadFile(filepath.Join(filepath.Dir(b.conf), "mosquitto.log"))
			b.t.Fatalf("mosquitto did not listen on port %d within 10s; its output:\n%s%s", b.Port, stderr.String(), logText)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the broker gracefully, so it saves its persistent sessions.
func (b *Broker) Stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
	b.cmd = nil
}

// keepUser keeps a broker started as root from dropping to the mosquitto
// user, who could not read or write the test's private temp dirs.
func keepUser() string {
	if os.Geteuid() == 0 {
		return "user root\n"
	}
	return ""
}

// Eventually waits until cond holds, checking it every 20 ms, and fails the
// test naming what it waited for when within passes first. Tests wait for
// an event that proves what they assert with it, never for a fixed time.
func Eventually(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
