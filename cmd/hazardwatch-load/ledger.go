package main

import (
	"context"
	"math/bits"
	"sync"
	"time"

	"github.com/hazardwatch/hazardwatch/storage"
)

// ledger knows every reading the publishers sent and counts how often each
// was stored, so that lost and duplicated readings are exact, not guessed
// from counters. A reading's key is (gateway, point, time) within the one
// generated site; times are unique per gateway (see publisher.nextTS).
type ledger struct {
	points   int
	gateways map[string]int // gateway id → index
	pointIdx map[string]int // point id → index within its gateway
	gws      []gatewayLedger
}

type gatewayLedger struct {
	mu     sync.Mutex
	byTime map[int64]int32 // message time in ms → message index
	stored [][]uint8       // per message, per point: times stored (saturating)
}

func newLedger(gateways, points int) *ledger {
	l := &ledger{points: points, gateways: make(map[string]int, gateways), pointIdx: make(map[string]int, gateways*points),
		gws: make([]gatewayLedger, gateways)}
	for g := range gateways {
		l.gateways[gatewayID(g)] = g
		l.gws[g].byTime = map[int64]int32{}
		for p := range points {
			l.pointIdx[pointID(g, p)] = p
		}
	}
	return l
}

// sent records that gateway g sends a message of every point at ts.
func (l *ledger) sent(g int, ts time.Time) {
	gl := &l.gws[g]
	gl.mu.Lock()
	gl.byTime[ts.UnixMilli()] = int32(len(gl.stored))
	gl.stored = append(gl.stored, make([]uint8, l.points))
	gl.mu.Unlock()
}

// storedSample counts one stored sample; it returns false for a sample
// the publishers never sent.
func (l *ledger) storedSample(s storage.Sample) bool {
	g, ok := l.gateways[s.Gateway]
	if !ok {
		return false
	}
	p, ok := l.pointIdx[s.Point]
	if !ok {
		return false
	}
	gl := &l.gws[g]
	gl.mu.Lock()
	defer gl.mu.Unlock()
	m, ok := gl.byTime[s.Time.UnixMilli()]
	if !ok {
		return false
	}
	if c := &gl.stored[m][p]; *c < 255 {
		*c++
	}
	return true
}

// tally counts readings sent, stored at least once, and stored more than
// once (each extra copy counts).
type tally struct{ sent, distinct, duplicated int64 }

func (l *ledger) tally() tally {
	var t tally
	for g := range l.gws {
		gl := &l.gws[g]
		gl.mu.Lock()
		for _, row := range gl.stored {
			for _, c := range row {
				t.sent++
				if c > 0 {
					t.distinct++
					t.duplicated += int64(c) - 1
				}
			}
		}
		gl.mu.Unlock()
	}
	return t
}

// recorder is the store as ingest sees it: it passes every Append to the
// real store and, once the store has made the samples durable, records
// each sample's end-to-end latency and counts it in the ledger.
type recorder struct {
	next   storage.Appender
	ledger *ledger

	mu         sync.Mutex
	hist       histogram
	stored     int64 // samples the store accepted, including duplicates
	unexpected int64 // samples the publishers never sent
	probes     int64 // samples of the alarm probes: not the background's
	first      time.Time
	last       time.Time
	recentMax  time.Duration // largest latency since the last progress line
}

// Append implements storage.Appender.
func (r *recorder) Append(ctx context.Context, samples []storage.Sample) error {
	err := r.next.Append(ctx, samples)
	now := time.Now()
	refused := map[int]bool{}
	if rej, ok := err.(*storage.RejectedError); ok {
		for _, x := range rej.Rejected {
			refused[x.Index] = true
		}
	} else if err != nil {
		return err // nothing stored; ingest retries
	}
	var unexpected int64
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first.IsZero() {
		r.first = now
	}
	r.last = now
	for i, s := range samples {
		if refused[i] {
			continue
		}
		if s.Gateway == probeGatewayID {
			r.probes++ // measured at the webhook (probe.go), not here
			continue
		}
		lat := now.Sub(s.Time)
		r.hist.add(lat)
		r.recentMax = max(r.recentMax, lat)
		r.stored++
		if !r.ledger.storedSample(s) {
			unexpected++
		}
	}
	r.unexpected += unexpected
	return err
}

// progress returns the samples stored so far and the largest latency since
// the previous call.
func (r *recorder) progress() (stored int64, recentMax time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stored, recentMax = r.stored, r.recentMax
	r.recentMax = 0
	return stored, recentMax
}

// histogram is an HDR-like latency histogram over microseconds: exact
// below 128 µs, then 64 buckets per power of two (under 1.6 % error), in
// constant memory whatever the number of samples.
type histogram struct {
	counts [64 * 64]int64
	total  int64
	max    time.Duration
}

const histLinear = 128

func bucketOf(us uint64) int {
	if us < histLinear {
		return int(us)
	}
	e := bits.Len64(us) - 7 // us>>e is in [64, 128)
	return e*64 + int(us>>e)
}

// bucketUpper is the largest microsecond value of bucket i.
func bucketUpper(i int) uint64 {
	if i < histLinear {
		return uint64(i)
	}
	e := i/64 - 1
	m := uint64(i%64 + 64)
	return (m+1)<<e - 1
}

func (h *histogram) add(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	i := min(bucketOf(us), len(h.counts)-1)
	h.counts[i]++
	h.total++
	h.max = max(h.max, d)
}

// quantile returns the upper bound of the bucket holding quantile q (0–1),
// never above the largest value seen.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := int64(q*float64(h.total) + 0.5)
	rank = min(max(rank, 1), h.total)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketUpper(i))*time.Microsecond, h.max)
		}
	}
	return h.max
}
