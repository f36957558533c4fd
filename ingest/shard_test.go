package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
)

func TestParseShard(t *testing.T) {
	for _, bad := range []string{"1", "2/2", "-1/2", "a/b", "0/0"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if sh, err := ParseShard("1/3"); err != nil || sh != (Shard{1, 3}) {
		t.Errorf("1/3 = %v, %v", sh, err)
	}
}

// TestTwoNodesShareSitesThroughOneBroker runs two ingest nodes, shards 0/2
// and 1/2, against the machine's Mosquitto: each site's readings are
// stored by exactly one node.
func TestTwoNodesShareSitesThroughOneBroker(t *testing.T) {
	// Random site ids, until each node owns at least two.
	var sites []*site.Site
	owned := [2]int{}
	for owned[0] < 2 || owned[1] < 2 {
		s := newSite(t)
		sites = append(sites, s)
		if (Shard{0, 2}).Owns(s.ID) {
			owned[0]++
		} else {
			owned[1]++
		}
	}
	type node struct {
		store *embedded.Store
		reg   *prometheus.Registry
	}
	var nodes []node
	for k := range 2 {
		sh := Shard{k, 2}
		store := tempStore(t)
		reg := prometheus.NewRegistry()
		mine := sh.Sites(sites)
		svc, err := New(Config{Sites: mine, Broker: broker, ClientID: fmt.Sprintf("ingest-%s-%d", sites[0].ID, k), Store: store, Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		testenv.Eventually(t, "node connected", 20*time.Second, func() bool { return gauge(reg, "hazardwatch_ingest_connected") == 1 })
		nodes = append(nodes, node{store, reg})
	}
	h := &harness{pub: publisher(t, sites[0].ID+"-pub")}
	at := time.Now().Truncate(time.Millisecond)
	stored := func(n node, s *site.Site) int {
		got, err := n.store.Range(context.Background(), storage.Point{Site: s.ID, Point: "gas1"}, at.Add(-time.Minute), at.Add(time.Minute), 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	for _, s := range sites {
		h.site = s
		testenv.Eventually(t, "site "+s.ID+" stored by its node", 20*time.Second, func() bool {
			// Republish until the owner's subscription is in place.
			h.publish(t, protocol.TelemetryTopic(s.ID, "gw1"), h.telemetry(t, "gw1", 1, at, protocol.Reading{Point: "gas1", Value: protocol.F(5)}), false)
			time.Sleep(50 * time.Millisecond)
			return stored(nodes[0], s)+stored(nodes[1], s) > 0
		})
	}
	for _, s := range sites {
		owner := 0
		if !(Shard{0, 2}).Owns(s.ID) {
			owner = 1
		}
		if stored(nodes[owner], s) != 1 || stored(nodes[1-owner], s) != 0 {
			t.Errorf("site %s: owner node %d stored %d, the other %d; want 1 and 0", s.ID, owner, stored(nodes[owner], s), stored(nodes[1-owner], s))
		}
	}
}
