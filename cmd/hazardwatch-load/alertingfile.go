package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/internal/center"
)

// probeAutoClose is the auto-close time the written alerting file gives
// the centre: the tool brings its probes back inside their limits after a
// run, and their (yellow) incidents then close this soon, leaving the
// probes' sources free to open new incidents in the next run.
const probeAutoClose = time.Second

// newSecret is a fresh random signing secret for the receiver.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// writeAlertingFile writes the alerting configuration a centre needs for
// a -target run with alarm probes: this tool's webhook receiver at listen
// (host:port, the address the centre POSTs to) with a fresh signing
// secret, the viewer token the tool reads the centre with (its hash; the
// token is $HAZARDWATCH_TOKEN), and a short auto-close for the probes'
// incidents. It loads the file back the way the centre does.
func writeAlertingFile(path, listen, token string) error {
	host, port, err := net.SplitHostPort(listen)
	switch {
	case err != nil || port == "" || port == "0":
		return fmt.Errorf("-webhook-listen %q: give host:port with a fixed port, where the centre is to POST its webhook (e.g. 127.0.0.1:18090)", listen)
	case host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified():
		return fmt.Errorf("-webhook-listen %q: give the host the centre reaches this tool at (e.g. 127.0.0.1:%s), not a wildcard", listen, port)
	case token == "":
		return fmt.Errorf("-write-alerting: set %s to the viewer token this tool reads the centre with (hazardwatch passwd -token makes one); the file holds only its hash", TokenEnv)
	}
	u := url.URL{Scheme: "http", Host: listen, Path: webhookPath}
	text := fmt.Sprintf(`# Written by hazardwatch-load -write-alerting: the alerting configuration of
# a centre measured with alarm probes (docs/load.md, "Alarm latency under
# load"). Give the same file to hazardwatch-load -alerting.
receivers:
  - name: %s
    url: %s
    # HMAC-SHA256 key of each body's signature, which the tool checks.
    secret: %q
    events: incidents       # the incidents' lifecycle, as the command platform gets it by default
    timeout: 5s
    min_backoff: 1s
    max_backoff: 5s         # a failed POST holds the queue at most this long
incidents:
  # The tool brings its probes back inside their limits after a run; their
  # incidents then close this soon and the next run's probes open new ones.
  # The background load raises no alarms, so nothing else is affected.
  auto_close_after: %s
tokens:
  - {name: %s, role: viewer, hash: %q}
`, receiverName, u.String(), newSecret(), probeAutoClose, receiverName, access.HashToken(token))
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return fmt.Errorf("write alerting file %s: %w", path, err)
	}
	if _, _, err := readProbeReceiver(path); err != nil {
		return fmt.Errorf("written alerting file: %w", err)
	}
	return nil
}

// readProbeReceiver reads the centre's alerting file as the centre does
// and returns this tool's receiver in it (its URL and secret) and how long
// the centre lets a normal yellow incident stay open; negative: never
// closes by itself.
func readProbeReceiver(path string) (alerting.Receiver, time.Duration, error) {
	f, err := center.LoadAlertingFile(path)
	if err != nil {
		return alerting.Receiver{}, 0, err
	}
	for _, r := range f.Receivers {
		if r.Name != receiverName {
			continue
		}
		u, err := url.Parse(r.URL)
		if err != nil || u.Scheme != "http" || u.Port() == "" {
			return r, 0, fmt.Errorf("alerting file %s: receiver %s: url %q: want http://HOST:PORT/…, the address this tool listens at", path, receiverName, r.URL)
		}
		if r.Events == alerting.EventsPoints {
			return r, 0, fmt.Errorf("alerting file %s: receiver %s has events: points; the probes are measured by their incidents (events: incidents or all)", path, receiverName)
		}
		if r.Escalation {
			return r, 0, fmt.Errorf("alerting file %s: receiver %s is an escalation receiver, which gets no incidents", path, receiverName)
		}
		closeAfter := f.Incidents.AutoCloseAfter
		switch {
		case f.Incidents.NoAutoClose:
			closeAfter = -1
		case closeAfter == 0:
			closeAfter = incident.DefaultAutoCloseAfter
		}
		return r, closeAfter, nil
	}
	return alerting.Receiver{}, 0, errors.New("alerting file " + path + " has no receiver named " + receiverName + ": write one with hazardwatch-load -write-alerting FILE -webhook-listen HOST:PORT and start the centre with it")
}
