package influx

import (
	"bytes"

	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.uber.org/zap"
)

// A write request of one Append (or AppendMetrics) call waits in the
// batcher with those of other calls until BatchSize lines are together or
// BatchWait has passed since the first; then one of MaxInFlight senders
// posts the batch, gzipped, and every call learns the outcome at once. A
// batch InfluxDB cannot take now goes to the spill as one fsynced record,
// so a slow or down server costs one fsync per batch, not one per message.

// writeReq is the encoded lines of one call, waiting for its batch.
type writeReq struct {
	body   []byte  // lines, each ended by '\n'
	ends   []int32 // ends[i] is the offset just past line i's '\n'
	done   chan writeResult
	queued time.Time // when the batcher took it
}

// writeResult is what became of a writeReq: refused holds the indexes of
// lines InfluxDB refused as bad data; err means nothing was made durable.
type writeResult struct {
	refused []refusal
	spilled bool
	err     error
}

func (r *writeReq) lines() int { return len(r.ends) }

// line returns line i without its newline.
func (r *writeReq) line(i int) []byte {
	start := int32(0)
	if i > 0 {
		start = r.ends[i-1]
	}
	return r.body[start : r.ends[i]-1]
}

// lineStrings returns the lines as strings, for the slow paths.
func (r *writeReq) lineStrings() []string {
	out := make([]string, r.lines())
	for i := range out {
		out[i] = string(r.line(i))
	}
	return out
}

// writeBatch is the requests sent in one write request.
type writeBatch struct {
	reqs  []*writeReq
	lines int
	bytes int
}

// submit queues req and waits for its outcome or ctx.
func (s *Store) submit(ctx context.Context, req *writeReq) writeResult {
	req.queued = time.Now()
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		return writeResult{err: ctx.Err()}
	case <-s.stop:
		return writeResult{err: errors.New("influx: store closed")}
	}
	select {
	case res := <-req.done:
		return res
	case <-ctx.Done():
		// The batch may still land; the caller does not acknowledge, and
		// writing the same points again later is harmless.
		return writeResult{err: ctx.Err()}
	}
}

// batchLoop gathers requests into batches and hands them to the senders.
func (s *Store) batchLoop() {
	defer close(s.batches)
	var (
		cur   *writeBatch
		timer = time.NewTimer(time.Hour)
		due   <-chan time.Time // fires BatchWait after a batch's first request
		out   chan<- *writeBatch
		in    = s.reqs
	)
	timer.Stop()
	for {
		select {
		case <-s.stop:
			timer.Stop()
			if cur != nil {
				s.batches <- cur
			}
			return
		case req := <-in:
			if cur == nil {
				cur = &writeBatch{}
				timer.Reset(s.opts.BatchWait)
				due = timer.C
			}
			cur.reqs = append(cur.reqs, req)
			cur.lines += req.lines()
			cur.bytes += len(req.body)
			if cur.lines >= s.opts.BatchSize {
				// Full: stop taking requests until a sender takes it.
				in, out, due = nil, s.batches, nil
				timer.Stop()
			}
		case <-due:
			due, out = nil, s.batches
		case out <- cur:
			cur, out, in = nil, nil, s.reqs
		}
	}
}

// sendLoop posts batches until the batcher closes.
func (s *Store) sendLoop(wg *sync.WaitGroup) {
	defer wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	var buf bytes.Buffer
	for b := range s.batches {
		s.sendBatch(ctx, b, &buf)
	}
}

// sendBatch writes a batch to InfluxDB, or to the spill when InfluxDB
// cannot take it (or the spill already holds data), and tells each request.
func (s *Store) sendBatch(ctx context.Context, b *writeBatch, buf *bytes.Buffer) {
	s.m.batchLines.Observe(float64(b.lines))
	spillFirst := !s.spill.empty()
	// A batch that waited RequestTimeout for a sender means InfluxDB is
	// slower than the points come: spill it, as a request that timed out
	// would be, so every Append ends within about twice RequestTimeout.
	if waited := time.Since(b.reqs[0].queued); !spillFirst && waited > s.opts.RequestTimeout {
		s.m.writeErrors.WithLabelValues(ErrKindTimeout).Inc()
		s.log.Warn("influx write batch waited too long for a sender; spilling", zap.Duration("waited", waited), zap.Int("points", b.lines))
		spillFirst = true
	}
	if !spillFirst {
		buf.Reset()
		for _, r := range b.reqs {
			buf.Write(r.body)
		}
		kind, err := s.postBody(ctx, buf.Bytes(), b.lines, "direct")
		switch {
		case err == nil:
			s.m.pointsWritten.Add(float64(b.lines))
			for _, r := range b.reqs {
				r.done <- writeResult{}
			}
			return
		case kind == ErrKindBadData:
			// Some line is refused: find which, request by request.
			for _, r := range b.reqs {
				s.sendAlone(ctx, r)
			}
			return
		case ctx.Err() != nil:
			for _, r := range b.reqs {
				r.done <- writeResult{err: fmt.Errorf("influx: store closing: %w", ctx.Err())}
			}
			return
		}
		s.log.Warn("influx write failed; spilling", zap.String("url", s.opts.URL), zap.Int("points", b.lines), zap.Error(err))
	}
	lines := make([]string, 0, b.lines)
	for _, r := range b.reqs {
		lines = append(lines, r.lineStrings()...)
	}
	err := s.spill.append(lines, time.Now())
	if err != nil && errors.Is(err, ErrSpillFull) && spillFirst {
		// InfluxDB may be back while the replay catches up: write
		// directly rather than refuse.
		for _, r := range b.reqs {
			s.sendAlone(ctx, r)
		}
		return
	}
	if err != nil {
		kind := ErrKindSpillIO
		if errors.Is(err, ErrSpillFull) {
			kind = ErrKindSpillFull
		}
		s.m.writeErrors.WithLabelValues(kind).Inc()
		s.log.Error("influx unavailable and points cannot be spilled; refusing them", zap.Int("points", b.lines), zap.String("spill_dir", s.opts.SpillDir), zap.Error(err))
		for _, r := range b.reqs {
			r.done <- writeResult{err: fmt.Errorf("influx: InfluxDB unavailable and spill failed: %w", err)}
		}
		return
	}
	s.m.spilledPoints.Add(float64(b.lines))
	s.kick()
	for _, r := range b.reqs {
		r.done <- writeResult{spilled: true}
	}
}

// sendAlone writes one request by itself, finding refused lines by
// splitting; what InfluxDB cannot take now is spilled.
func (s *Store) sendAlone(ctx context.Context, r *writeReq) {
	lines := r.lineStrings()
	refused, err := s.writeLines(ctx, lines, "direct")
	if err == nil {
		s.m.pointsWritten.Add(float64(len(lines) - len(refused)))
		r.done <- writeResult{refused: refused}
		return
	}
	if ctx.Err() != nil {
		r.done <- writeResult{err: fmt.Errorf("influx: store closing: %w", ctx.Err())}
		return
	}
	rest := withoutRefused(lines, refused)
	if serr := s.spill.append(rest, time.Now()); serr != nil {
		kind := ErrKindSpillIO
		if errors.Is(serr, ErrSpillFull) {
			kind = ErrKindSpillFull
		}
		s.m.writeErrors.WithLabelValues(kind).Inc()
		s.log.Error("influx unavailable and points cannot be spilled; refusing them", zap.Int("points", len(rest)), zap.String("spill_dir", s.opts.SpillDir), zap.Error(serr))
		r.done <- writeResult{err: fmt.Errorf("influx: write failed (%v) and spill failed: %w", err, serr)}
		return
	}
	s.m.spilledPoints.Add(float64(len(rest)))
	s.kick()
	r.done <- writeResult{refused: refused, spilled: true}
}

// gzipWriters are reused: a gzip.Writer holds about 1 MB of state.
// klauspost/compress rather than compress/gzip: at BestSpeed it takes half
// the CPU for the same ratio (BenchmarkGzipBatch: about 230 against 425 ns
// a line, 12:1).
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return w
}}

// gzipBody appends body, gzipped, to zb.
func gzipBody(zb *bytes.Buffer, body []byte) {
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(zb)
	_, _ = zw.Write(body) // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	gzipWriters.Put(zw)
}

// postBody sends one write request of body (lines ended by newlines) and
// classifies its failure.
func (s *Store) postBody(ctx context.Context, body []byte, lines int, path string) (kind string, err error) {
	reqCtx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	var payload io.Reader = bytes.NewReader(body)
	if !s.opts.NoGzip {
		var zb bytes.Buffer
		zb.Grow(len(body)/6 + 64)
		gzipBody(&zb, body)
		payload = &zb
	}
	began := time.Now()
	herr := s.client.HTTPService().DoPostRequest(reqCtx, s.writeURL, payload, func(req *http.Request) {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		if !s.opts.NoGzip {
			req.Header.Set("Content-Encoding", "gzip")
		}
	}, func(resp *http.Response) error {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	})
	if herr == nil {
		s.m.writeLatency.WithLabelValues(path, "ok").Observe(time.Since(began).Seconds())
		return "", nil
	}
	kind = classify(ctx, reqCtx, herr)
	s.m.writeLatency.WithLabelValues(path, kind).Observe(time.Since(began).Seconds())
	s.m.writeErrors.WithLabelValues(kind).Inc()
	return kind, fmt.Errorf("influx: write %d points to %s bucket %s: %s: %w", lines, s.opts.URL, s.opts.Bucket, kind, herr)
}

// writeURLOf is the v2 write endpoint for the store's org and bucket.
func writeURLOf(serverAPIURL, org, bucket string) string {
	q := url.Values{}
	q.Set("org", org)
	q.Set("bucket", bucket)
	q.Set("precision", "ms")
	return strings.TrimSuffix(serverAPIURL, "/") + "/write?" + q.Encode()
}
