package forward

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hazardwatch/hazardwatch/internal/queue"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// countingPublisher takes every message at once and counts them by seq.
type countingPublisher struct {
	mu    sync.Mutex
	sends map[uint64]int
}

func (p *countingPublisher) Publish(_ context.Context, _ string, _ byte, _ bool, payload []byte) error {
	m, err := protocol.DecodeTelemetry(payload)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.sends[m.Seq]++
	p.mu.Unlock()
	return nil
}

func (p *countingPublisher) count(seq uint64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sends[seq]
}

func TestEndToEndKeepsUntilConfirmedAndResends(t *testing.T) {
	sp, err := queue.Open(t.TempDir(), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	pub := &countingPublisher{sends: map[uint64]int{}}
	resends := 0
	var mu sync.Mutex
	reg := prometheus.NewRegistry()
	fw, err := New(Config{Spool: sp, Publisher: pub, EndToEnd: true, AckTimeout: 300 * time.Millisecond, ReplayRate: 1000, Registerer: reg,
		OnResend: func() { mu.Lock(); resends++; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	defer func() { cancel(); <-done }()

	enqueue(t, sp, 1, 5, 0)
	testenv.Eventually(t, "5 messages published", 10*time.Second, func() bool { return pub.count(5) >= 1 })
	// Published, the broker has them; the centre has not confirmed: kept.
	if n, _ := sp.Depth(); n != 5 {
		t.Fatalf("spool holds %d after PUBACK without confirmation, want 5", n)
	}
	testenv.Eventually(t, "the unconfirmed messages sent again", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return resends >= 1 && pub.count(1) >= 2 && pub.count(5) >= 2
	})
	fw.Confirm(3)
	testenv.Eventually(t, "confirmed messages leave the spool", 10*time.Second, func() bool { n, _ := sp.Depth(); return n == 2 })
	if rec, err := sp.Peek(); err != nil || rec.ID != 4 {
		t.Fatalf("oldest kept record %d (%v), want 4", rec.ID, err)
	}
	fw.Confirm(2) // older: ignored
	fw.Confirm(5)
	testenv.Eventually(t, "the spool empty once all is confirmed", 10*time.Second, func() bool { n, _ := sp.Depth(); return n == 0 })
	if got := metricValue(t, reg, "hazardwatch_gateway_forward_confirmed_id"); got != 5 {
		t.Errorf("confirmed id metric %v, want 5", got)
	}
}
