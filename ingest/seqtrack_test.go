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

func TestSeqTrackerJumpBeyondWindowIsOneReset(t *testing.T) {
	var tr seqTracker
	tr.observe(10)
	if v := tr.observe(10 + resetWindow); v.reset || v.opened != resetWindow-1 {
		t.Fatalf("jump of exactly the window: %+v, want a gap of %d", v, resetWindow-1)
	}
	if tr.missing() != resetWindow-1 {
		t.Fatalf("missing %d", tr.missing())
	}
	top := uint64(10 + resetWindow)
	v := tr.observe(top + resetWindow + 1)
	if !v.reset || v.jump != resetWindow+1 || v.opened != 0 {
		t.Fatalf("jump past the window: %+v, want one reset", v)
	}
	if tr.missing() != 0 {
		t.Fatalf("missing %d after a reset, want 0", tr.missing())
	}
	if v := tr.observe(top + 1); !v.unknown || v.duplicate {
		t.Fatalf("a real seq below the reset: %+v, want accepted unjudged", v)
	}
	if !tr.seen(top+resetWindow+1) || tr.seen(top+resetWindow+2) {
		t.Fatal("after the reset the new start is not tracked")
	}
}
