package testenv

import (
	"fmt"
	"path/filepath"
	"testing"
)

// MosquittoAsShipped starts a private Mosquitto with persistence on and
// Mosquitto's own defaults otherwise (autosave_interval 1800 s, queue and
// in-flight limits as shipped), as a site's broker usually runs: what it
// acknowledged but has not saved yet dies with it. For tests that Kill it.
func MosquittoAsShipped(t testing.TB) *Broker {
	t.Helper()
	port := FreePort(t)
	return startMosquitto(t, port, "", func(dir string) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nlog_dest file %s\n",
			port, dir, filepath.Join(dir, "mosquitto.log"))
	})
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
