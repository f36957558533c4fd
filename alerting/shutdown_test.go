package alerting

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
)

// TestRestartSendsNothingTwice: the service stopping while the receiver
// holds a POST finishes that POST and records it, so the next start does
// not send the event again — a restart is normal operation, not a reason
// for a duplicate (at least once covers crashes and timeouts). On SQLite
// and PostgreSQL.
func TestRestartSendsNothingTwice(t *testing.T) {
	eachJournal(t, func(t *testing.T, j journal) {
		ctx := context.Background()
		var mu sync.Mutex
		var ids []string
		var stopping func() // the service's shutdown signal, Close's first step
		shutdown := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			var ce CloudEvent
			if err := json.Unmarshal(body, &ce); err != nil || !VerifySignature(secret, body, req.Header.Get(SignatureHeader)) {
				t.Errorf("receiver got %q (%v)", body, err)
			}
			mu.Lock()
			ids = append(ids, ce.ID)
			stop := stopping
			stopping = nil
			mu.Unlock()
			if stop != nil {
				// The receiver has taken the event; before it answers,
				// the service begins to shut down.
				stop()
				close(shutdown)
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		got := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(ids)
		}

		cfg := j.with(Config{TickInterval: -1, Receivers: []Receiver{testReceiver(srv.URL)}})
		svc, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		stopping = svc.cancel
		mu.Unlock()
		now := time.Now().UTC().Truncate(time.Millisecond)
		k := "jh-chem/nh3-tanks/nh3-gas-1/HH"
		if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Raised, k, now, protocol.Orange, protocol.None, 86)}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-shutdown:
		case <-time.After(20 * time.Second):
			t.Fatal("the receiver got no event within 20 s")
		}
		if err := svc.Close(); err != nil {
			t.Fatal(err)
		}

		// The next start: a new event goes out, and nothing before it.
		if svc, err = New(cfg); err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Cleared, k, now.Add(time.Minute), protocol.None, protocol.Orange, 40)}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "the receiver gets the event after the restart", 20*time.Second, func() bool { return len(got()) >= 2 })
		if ids := got(); len(ids) != 2 || ids[0] == ids[1] {
			t.Errorf("receiver got %v; want the raise once, then the clear: the POST under way at the shutdown was sent again", ids)
		}
	})
}
