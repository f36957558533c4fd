package ingest

import "sort"

// maxPending bounds how many out-of-order seqs one gateway may have above
// its contiguous mark before the oldest holes are given up as lost.
const maxPending = 1 << 16

// resetWindow is the largest jump ahead counted as a gap. A longer jump is
// no outage a gateway's queue could explain (a forged or corrupt seq, a
// gateway whose counter was set by hand): the sequence is taken to start
// over there, counted once, so one message with seq 99999999 cannot leave
// 10⁸ messages "missing" for good.
const resetWindow = 1 << 20

// seqTracker remembers which seqs of one gateway were seen, so duplicates
// are dropped while a store-and-forward backlog may arrive after newer live
// messages (backlog seqs are below live ones but were never seen).
//
// Correctness never rests on it: stores are idempotent for a repeated
// reading, so a message it cannot judge is accepted, never dropped.
type seqTracker struct {
	// floor is the first seq seen since the tracker started; nothing is
	// known of seqs below it (sent before an ingest restart, or backlog).
	floor uint64
	// contiguous: every seq in [floor, contiguous] was seen.
	contiguous uint64
	// pending holds seen seqs above contiguous+1, sorted.
	pending []uint64
}

// seqVerdict is what a tracker says of one seq.
type seqVerdict struct {
	duplicate bool
	// unknown: below the floor, so it cannot be judged; accept it.
	unknown bool
	// restarted: seq 1 again, the gateway began a new sequence.
	restarted bool
	// opened is how many seqs a jump ahead left missing (new holes);
	// filled is 1 when the seq filled an existing hole.
	opened, filled uint64
	// givenUp is how many missing seqs were declared lost to bound memory.
	givenUp uint64
	// reset: seq jumped more than resetWindow ahead of the newest seen
	// (by jump); the sequence starts over at seq.
	reset bool
	jump  uint64
}

// observe records seq and says what it was.
func (t *seqTracker) observe(seq uint64) seqVerdict {
	var v seqVerdict
	switch {
	case t.floor == 0 || seq == 1 && t.contiguous > 1:
		// First message seen, or the gateway restarted from seq 1 (its
		// state was lost): start over.
		v.restarted = t.floor != 0
		t.floor, t.contiguous, t.pending = seq, seq, t.pending[:0]
		return v
	case seq < t.floor:
		v.unknown = true
		return v
	case seq <= t.contiguous:
		v.duplicate = true
		return v
	}
	i := sort.Search(len(t.pending), func(i int) bool { return t.pending[i] >= seq })
	if i < len(t.pending) && t.pending[i] == seq {
		v.duplicate = true
		return v
	}
	top := t.top()
	if seq > top && seq-top > resetWindow {
		v.reset, v.jump = true, seq-top
		t.floor, t.contiguous, t.pending = seq, seq, t.pending[:0]
		return v
	}
	if seq > top {
		v.opened = seq - top - 1
	} else {
		v.filled = 1
	}
	t.pending = append(t.pending, 0)
	copy(t.pending[i+1:], t.pending[i:])
	t.pending[i] = seq
	t.advance()
	for len(t.pending) > maxPending {
		// Give up the holes below the oldest pending seq.
		v.givenUp += t.pending[0] - t.contiguous - 1
		t.contiguous = t.pending[0]
		t.pending = t.pending[1:]
		t.advance()
	}
	return v
}

// top is the newest seq seen.
func (t *seqTracker) top() uint64 {
	if n := len(t.pending); n > 0 {
		return t.pending[n-1]
	}
	return t.contiguous
}

func (t *seqTracker) advance() {
	n := 0
	for n < len(t.pending) && t.pending[n] == t.contiguous+1 {
		t.contiguous++
		n++
	}
	t.pending = t.pending[n:]
}

// missing is how many seqs between the floor and the newest seen are not
// yet seen.
func (t *seqTracker) missing() uint64 {
	if len(t.pending) == 0 {
		return 0
	}
	return t.pending[len(t.pending)-1] - t.contiguous - uint64(len(t.pending))
}

// seen reports whether seq is known to have been handled already.
func (t *seqTracker) seen(seq uint64) bool {
	if t.floor == 0 || seq < t.floor || seq == 1 && t.contiguous > 1 {
		return false
	}
	if seq <= t.contiguous {
		return true
	}
	i := sort.Search(len(t.pending), func(i int) bool { return t.pending[i] >= seq })
	return i < len(t.pending) && t.pending[i] == seq
}
