package ingest

import "testing"

func TestSeqTracker(t *testing.T) {
	var tr seqTracker
	steps := []struct {
		seq       uint64
		dup       bool
		opened    uint64
		filled    uint64
		missing   uint64
		restarted bool
		unknown   bool
	}{
		{seq: 100},                        // first seen: the floor
		{seq: 101},                        // in order
		{seq: 101, dup: true},             // QoS 1 redelivery
		{seq: 105, opened: 3, missing: 3}, // link back: live data first
		{seq: 106, missing: 3},            // more live
		{seq: 102, filled: 1, missing: 2}, // backlog replay, older seqs
		{seq: 103, filled: 1, missing: 1}, //
		{seq: 106, dup: true, missing: 1}, // live redelivered
		{seq: 104, filled: 1},             // backlog done: no hole left
		{seq: 99, unknown: true},          // from before the ingest started: cannot judge, accept
		{seq: 1, restarted: true},         // gateway lost its state and starts over
		{seq: 2},                          //
	}
	for i, s := range steps {
		dup := tr.seen(s.seq)
		v := tr.observe(s.seq)
		if dup != s.dup || v.duplicate != s.dup || v.opened != s.opened || v.filled != s.filled || v.restarted != s.restarted || v.unknown != s.unknown {
			t.Fatalf("step %d seq %d: seen %v verdict %+v, want %+v", i, s.seq, dup, v, s)
		}
		if got := tr.missing(); got != s.missing {
			t.Fatalf("step %d seq %d: missing %d, want %d", i, s.seq, got, s.missing)
		}
	}
}

func TestSeqTrackerBoundsMemory(t *testing.T) {
	var tr seqTracker
	tr.observe(1)
	// Every other seq arrives: holes pile up until the oldest are given up.
	var givenUp uint64
	for s := uint64(3); s < 3+2*(maxPending+10); s += 2 {
		givenUp += tr.observe(s).givenUp
	}
	if len(tr.pending) > maxPending {
		t.Fatalf("pending grew to %d, over %d", len(tr.pending), maxPending)
	}
	if givenUp == 0 {
		t.Fatal("no hole given up although memory was bounded")
	}
}
