package ingest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
)

// TestReloadAddsSitesAndClearsRemovedPoints runs the real rules engine:
// after a reload, a new site's telemetry is accepted and an alarm of a
// point removed from the site file is cleared.
func TestReloadAddsSitesAndClearsRemovedPoints(t *testing.T) {
	a, b := newSite(t), newSite(t)
	engine, err := rules.New([]*site.Site{a})
	if err != nil {
		t.Fatal(err)
	}
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg, sk := prometheus.NewRegistry(), &sink{}
	svc, err := New(Config{Sites: []*site.Site{a}, Broker: broker, ClientID: "ingest-" + a.ID, Store: store, Evaluator: engine, Sink: sk, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testenv.Eventually(t, "connected", 20*time.Second, func() bool { return gauge(reg, "hazardwatch_ingest_connected") == 1 })

	h := &harness{site: a, store: store, svc: svc, reg: reg, pub: publisher(t, a.ID)}
	h.awaitSubscribed(t)
	// gas1 over HH for longer than the gas on-delay: the engine raises.
	t0 := time.Now().Add(-10 * time.Second).Truncate(time.Millisecond)
	for i, at := range []time.Duration{0, 3 * time.Second, 6 * time.Second} {
		h.publish(t, protocol.TelemetryTopic(a.ID, "gw1"), h.telemetry(t, "gw1", uint64(i+1), t0.Add(at), protocol.Reading{Point: "gas1", Value: protocol.F(90)}), false)
	}
	key := a.ID + "/s1/gas1/HH"
	testenv.Eventually(t, "HH raised", 20*time.Second, func() bool { return hasEvent(sk.got(), key, rules.Raised) })

	hb := &harness{site: b, store: store, svc: svc, reg: reg, pub: h.pub}

	// Reload: b added, gas1 removed from a.
	text := strings.Replace(strings.Replace(siteYAML, "%%", "%", 1), "%s", a.ID, 1)
	i := strings.Index(text, "      - id: gas1")
	j := strings.Index(text, "      - id: gas2")
	a2, err := site.Parse("a.yaml", []byte(text[:i]+text[j:]))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Reload([]*site.Site{a2, b}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "removed point's alarm cleared", 20*time.Second, func() bool { return hasEvent(sk.got(), key, rules.Cleared) })

	testenv.Eventually(t, "telemetry of the added site stored", 20*time.Second, func() bool {
		hb.publish(t, protocol.TelemetryTopic(b.ID, "gw1"), hb.telemetry(t, "gw1", 2, time.Now(), protocol.Reading{Point: "gas1", Value: protocol.F(2)}), false)
		got, err := store.Range(context.Background(), storage.Point{Site: b.ID, Point: "gas1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Minute), 0)
		return err == nil && len(got) > 0 && got[len(got)-1].Value == 2
	})
	// Telemetry for the removed point is now refused.
	h.publish(t, protocol.TelemetryTopic(a.ID, "gw1"), h.telemetry(t, "gw1", 10, time.Now(), protocol.Reading{Point: "gas1", Value: protocol.F(1)}), false)
	testenv.Eventually(t, "removed point refused", 20*time.Second, func() bool { return rejected(reg)[protocol.ReasonUnknownPoint] >= 1 })

	// A reload the rules refuse changes nothing.
	if err := svc.Reload([]*site.Site{a2, a2}); err == nil {
		t.Error("a reload with a site twice was accepted")
	}
}

func hasEvent(events []rules.Event, key string, typ rules.EventType) bool {
	for _, e := range events {
		if e.Key == key && e.Type == typ {
			return true
		}
	}
	return false
}
