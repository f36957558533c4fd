package ingest

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/protocol"
)

type ackRecorder struct {
	mu   sync.Mutex
	acks []protocol.Ack
}

func (r *ackRecorder) publish(topic string, payload []byte) error {
	a, err := protocol.DecodeAck(payload)
	if err != nil {
		return err
	}
	if topic != protocol.AckTopic(a.Site, a.Gateway) {
		panic("ack on topic " + topic)
	}
	r.mu.Lock()
	r.acks = append(r.acks, a)
	r.mu.Unlock()
	return nil
}

func (r *ackRecorder) last(t *testing.T) uint64 {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.acks) == 0 {
		return 0
	}
	return r.acks[len(r.acks)-1].Seq
}

func newTestAcker(t *testing.T, now *time.Time) (*acker, *ackRecorder) {
	t.Helper()
	a, err := newAcker(prometheus.NewRegistry(), zap.NewNop(), func() time.Time { return *now }, time.Second, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rec := &ackRecorder{}
	a.publish = rec.publish
	return a, rec
}

func TestAckOnlyOverContiguousDurableSeqs(t *testing.T) {
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	a, rec := newTestAcker(t, &now)
	for _, seq := range []uint64{1, 2, 4, 5} {
		a.durable("s", "g", seq)
	}
	a.flush(false)
	if got := rec.last(t); got != 2 {
		t.Fatalf("ack %d with 3 not durable, want 2", got)
	}
	// Parallel stores finish out of order: 3 completes the run.
	a.durable("s", "g", 3)
	now = now.Add(time.Second)
	a.flush(false)
	if got := rec.last(t); got != 5 {
		t.Fatalf("ack %d after 3 became durable, want 5", got)
	}
	if ts := rec.acks[len(rec.acks)-1].TS.Time; !ts.Equal(now) {
		t.Errorf("ack ts %v, want the centre's clock %v", ts, now)
	}
	// At most one ack per interval per gateway.
	a.durable("s", "g", 6)
	n := len(rec.acks)
	a.flush(false)
	if len(rec.acks) != n {
		t.Errorf("ack published again within the interval")
	}
}

func TestAckGivesUpAHoleAfterTheTimeout(t *testing.T) {
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	a, rec := newTestAcker(t, &now)
	a.durable("s", "g", 1)
	a.durable("s", "g", 3)
	now = now.Add(59 * time.Second)
	a.flush(false)
	if got := rec.last(t); got != 1 {
		t.Fatalf("ack %d before the hole timeout, want 1", got)
	}
	now = now.Add(2 * time.Second)
	a.flush(false)
	if got := rec.last(t); got != 3 {
		t.Fatalf("ack %d after the hole timeout, want 3 (2 given up)", got)
	}
}

func TestAckStartsFromTheRetainedAck(t *testing.T) {
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	a, rec := newTestAcker(t, &now)
	// After a restart the broker's queue delivers 101 before the retained
	// ack of 100 is read back: 101 waits, then the ack moves on.
	a.durable("s", "g", 101)
	a.flush(false)
	if got := rec.last(t); got != 0 {
		t.Fatalf("ack %d before the retained ack was known, want none", got)
	}
	a.retained(protocol.Ack{V: 1, Site: "s", Gateway: "g", Seq: 100, TS: protocol.Time{Time: now}})
	now = now.Add(time.Second)
	a.flush(false)
	if got := rec.last(t); got != 101 {
		t.Fatalf("ack %d, want 101", got)
	}
	// A gateway that lost its state starts again at 1.
	a.durable("s", "g", 1)
	now = now.Add(time.Second)
	a.flush(false)
	if got := rec.last(t); got != 1 {
		t.Fatalf("ack %d after the gateway restarted at 1, want 1", got)
	}
}
