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
	bin := LookTool(t, "mosquitto", "apt-get install -y mosquitto")
	dir := t.TempDir()
	b := &Broker{t: t, bin: bin, Port: port, conf: filepath.Join(dir, "mosquitto.conf"), scheme: scheme}
	if err := os.WriteFile(b.conf, []byte(keepUser()+conf), 0o600); err != nil {
		t.Fatalf("write mosquitto config: %v", err)
	}
	b.Start()
	t.Cleanup(b.Stop)
	return b
}
