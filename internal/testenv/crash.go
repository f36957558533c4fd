package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// MosquittoAsShipped starts a private Mosquitto with persistence on and
// Mosquitto's own defaults otherwise (autosave_interval 1800 s, queue and
// in-flight limits as shipped), as a site's broker usually runs: what it
// acknowledged but has not saved yet dies with it. For tests that Kill it.
func MosquittoAsShipped(t testing.TB) *Broker {
	t.Helper()
	bin := LookTool(t, "mosquitto", "apt-get install -y mosquitto")
	dir := t.TempDir()
	b := &Broker{t: t, bin: bin, Port: FreePort(t), conf: filepath.Join(dir, "mosquitto.conf")}
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nlog_dest file %s\n%s",
		b.Port, dir, filepath.Join(dir, "mosquitto.log"), keepUser())
	if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
		t.Fatalf("write mosquitto config: %v", err)
	}
	b.Start()
	t.Cleanup(b.Stop)
	return b
}

// Kill ends the broker with SIGKILL, as a crash or power cut would: no
// save of its sessions, queues or retained messages.
func (b *Broker) Kill() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	b.cmd = nil
}
