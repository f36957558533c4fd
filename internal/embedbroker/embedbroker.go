// Package embedbroker runs the MQTT broker built into HazardWatch's
// all-in-one mode (mochi-mqtt), so that HazardWatch can be tried without
// installing a broker. Production sites use Mosquitto or EMQX.
package embedbroker

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Broker is a running embedded MQTT broker.
type Broker struct {
	srv  *mqtt.Server
	addr string
}

// Start listens on addr (host:port; port 0 picks a free one) and serves
// MQTT until Close. Anyone on that address may connect: bind it to
// 127.0.0.1 unless the gateways are elsewhere.
func Start(addr string, log *slog.Logger) (*Broker, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker address %q: %w", addr, err)
	}
	if port == "0" {
		// mochi binds inside Serve; find the port first so URL is known.
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("embedded broker: find a free port on %s: %w", host, err)
		}
		port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		addr = net.JoinHostPort(host, port)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: log})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		return nil, fmt.Errorf("embedded broker: listen on %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		return nil, fmt.Errorf("embedded broker: serve on %s: %w", addr, err)
	}
	return &Broker{srv: srv, addr: addr}, nil
}

// URL is the broker's address for MQTT clients.
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Close disconnects every client and stops listening.
func (b *Broker) Close() error { return b.srv.Close() }
