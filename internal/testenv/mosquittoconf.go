package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// MosquittoConfig starts a private Mosquitto with the given configuration
// text, whose client listener is port (use FreePort) and speaks scheme
// (tcp, or ssl for TLS), and stops it when the test ends. Tests of a
// secured broker use it with the shipped configs/mosquitto/mosquitto.conf,
// its paths pointed into the test's temp dirs.
func MosquittoConfig(t testing.TB, conf string, port int, scheme string) *Broker {
	t.Helper()
	return startMosquitto(t, port, scheme, func(string) string { return conf })
}

// startMosquitto starts a private Mosquitto whose client listener is port
// and speaks scheme, and stops it when the test ends. conf writes its
// configuration for a fresh temp dir, the one its config file is in and
// where its log (mosquitto.log) and any persistence belong; Start shows
// that log when the broker does not come up.
func startMosquitto(t testing.TB, port int, scheme string, conf func(dir string) string) *Broker {
	t.Helper()
	bin := LookTool(t, "mosquitto", "apt-get install -y mosquitto")
	dir := t.TempDir()
	b := &Broker{t: t, bin: bin, Port: port, conf: filepath.Join(dir, "mosquitto.conf"), scheme: scheme}
	if err := os.WriteFile(b.conf, []byte(keepUser()+conf(dir)), 0o600); err != nil {
		t.Fatalf("write mosquitto config: %v", err)
	}
	b.Start()
	t.Cleanup(b.Stop)
	return b
}
