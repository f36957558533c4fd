// Package influx keeps readings in InfluxDB (2.x, 3.x, or 1.8+ through its
// v2 API) as a storage.Store. Append returns once InfluxDB acknowledged the
// points or, when InfluxDB is down, slow or failing, once they are fsynced
// to a local spill that a background loop replays in order; points InfluxDB
// refuses as bad data are counted as rejected instead of retried forever.
// Every reading is one point of measurement "reading"; docs/storage.md
// describes the schema.
package influx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/storage"
)

// Schema names.
const (
	Measurement  = "reading"
	TagSite      = "site"
	TagSource    = "source" // written by earlier versions; read if present
	TagPoint     = "point"
	FieldValue   = "value"
	FieldQuality = "quality"
)

// Defaults of Options.
const (
	DefaultBatchSize      = 10000
	DefaultBatchWait      = 20 * time.Millisecond
	DefaultMaxInFlight    = 4
	DefaultFlushInterval  = time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultRetryInitial   = time.Second
	DefaultRetryMax       = time.Minute
	DefaultSpillMaxBytes  = 1 << 30
)

// RejectInflux is the rejection reason of a sample InfluxDB answered 4xx for
// (e.g. 400 field type conflict).
const RejectInflux = "influx_rejected"

// Options configure the store. URL, Bucket and SpillDir are required.
type Options struct {
	URL    string // e.g. http://127.0.0.1:8086
	Token  string // 2.x/3.x token; 1.8: "user:password" or empty
	Org    string // 2.x org; ignored by 1.8
	Bucket string // 2.x/3.x bucket; 1.8: "database/retention-policy"

	// BatchSize is the most lines sent in one write request; default
	// 10,000 (InfluxDB 1.8 spends about a tenth less CPU a point than at
	// 5,000: BenchmarkInfluxdCostPerPoint).
	// Lines of concurrent Append calls share a request.
	BatchSize int
	// BatchWait is how long a batch waits for more lines after its first
	// before it is sent anyway; it is what a reading's acknowledgement may
	// wait on a quiet system; default 20ms.
	BatchWait time.Duration
	// MaxInFlight is how many write requests may be outstanding at once;
	// default 4.
	MaxInFlight int
	// NoGzip sends write requests uncompressed (they are gzipped by
	// default, about a sixth of the bytes on the wire).
	NoGzip bool
	// FlushInterval is how often the replay loop looks at the spill when
	// nothing woke it; default 1s.
	FlushInterval time.Duration
	// RequestTimeout bounds one write or query request; past it InfluxDB
	// counts as slow and Append spills; default 10s.
	RequestTimeout time.Duration
	// RetryInitial and RetryMax bound the replay loop's exponential backoff
	// while InfluxDB stays unavailable; defaults 1s and 1m.
	RetryInitial, RetryMax time.Duration
	// SpillDir holds the spill; it must be local, durable and owned by this
	// store alone.
	SpillDir string
	// SpillMaxBytes caps the spill; past it Append fails with ErrSpillFull
	// while InfluxDB is unavailable; default 1 GiB.
	SpillMaxBytes int64

	Logger     *zap.Logger           // nil discards logs
	Registerer prometheus.Registerer // nil registers no metrics
}

func (o *Options) withDefaults() error {
	if o.URL == "" {
		return errors.New("influx: URL is required")
	}
	if o.Bucket == "" {
		return errors.New("influx: Bucket is required")
	}
	if o.SpillDir == "" {
		return errors.New("influx: SpillDir is required")
	}
	for name, d := range map[string]time.Duration{"BatchWait": o.BatchWait, "FlushInterval": o.FlushInterval, "RequestTimeout": o.RequestTimeout,
		"RetryInitial": o.RetryInitial, "RetryMax": o.RetryMax} {
		if d < 0 {
			return fmt.Errorf("influx: %s is negative (%s)", name, d)
		}
	}
	if o.BatchSize < 0 || o.SpillMaxBytes < 0 || o.MaxInFlight < 0 {
		return fmt.Errorf("influx: BatchSize (%d), MaxInFlight (%d) and SpillMaxBytes (%d) must not be negative", o.BatchSize, o.MaxInFlight, o.SpillMaxBytes)
	}
	if o.BatchWait == 0 {
		o.BatchWait = DefaultBatchWait
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.RetryInitial == 0 {
		o.RetryInitial = DefaultRetryInitial
	}
	if o.RetryMax == 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.RetryMax < o.RetryInitial {
		o.RetryMax = o.RetryInitial
	}
	if o.SpillMaxBytes == 0 {
		o.SpillMaxBytes = DefaultSpillMaxBytes
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return nil
}

// Store is a storage.Store on InfluxDB with a local spill.
type Store struct {
	opts     Options
	client   influxdb2.Client
	writeURL string
	querier  api.QueryAPI
	spill    *spill
	m        *metrics
	log      *zap.Logger

	reqs      chan *writeReq   // Append calls to the batcher
	batches   chan *writeBatch // batcher to senders
	senders   sync.WaitGroup   // batcher and senders
	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var _ storage.Store = (*Store)(nil)

// Open connects to InfluxDB (lazily: it may be down) and opens the spill,
// starting the replay of anything left in it.
func Open(opts Options) (*Store, error) {
	if err := opts.withDefaults(); err != nil {
		return nil, err
	}
	sp, warnings, err := openSpill(opts.SpillDir, opts.SpillMaxBytes, opts.Logger.Named("spill"))
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		opts.Logger.Warn("influx spill opened", zap.String("detail", w))
	}
	clientOpts := influxdb2.DefaultOptions().
		SetPrecision(time.Millisecond).
		// Our own context deadline bounds requests; this is a backstop.
		SetHTTPRequestTimeout(uint(opts.RequestTimeout/time.Second) + 5).
		SetMaxRetries(0).
		SetLogLevel(0)
	client := influxdb2.NewClientWithOptions(opts.URL, opts.Token, clientOpts)
	s := &Store{
		opts:     opts,
		client:   client,
		writeURL: writeURLOf(client.HTTPService().ServerAPIURL(), opts.Org, opts.Bucket),
		querier:  client.QueryAPI(opts.Org),
		spill:    sp,
		m:        newMetrics(opts.Registerer, sp),
		log:      opts.Logger,
		reqs:     make(chan *writeReq),
		batches:  make(chan *writeBatch),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.senders.Add(1 + opts.MaxInFlight)
	go func() {
		defer s.senders.Done()
		s.batchLoop()
	}()
	for range opts.MaxInFlight {
		go s.sendLoop(&s.senders)
	}
	if _, records, lines, _ := sp.depth(); records > 0 {
		s.log.Info("influx spill holds data from before; replaying", zap.Int("records", records), zap.Int("points", lines))
		s.kick()
	}
	go s.replayLoop()
	return s, nil
}

// Close stops the replay loop (what is left stays in the spill for the next
// Open) and releases the client.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		s.senders.Wait()
		<-s.done
		err = s.spill.close()
		s.client.Close()
	})
	return err
}

// Flush waits until the spill is empty, i.e. InfluxDB acknowledged every
// spilled point, or ctx ends.
func (s *Store) Flush(ctx context.Context) error {
	for !s.spill.empty() {
		s.kick()
		select {
		case <-ctx.Done():
			_, records, lines, _ := s.spill.depth()
			return fmt.Errorf("influx: flush: %d records (%d points) still spilled: %w", records, lines, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// SpillDepth reports the records and points waiting in the spill.
func (s *Store) SpillDepth() (records, points int) {
	_, records, points, _ = s.spill.depth()
	return records, points
}

// Append stores samples: written to InfluxDB (in a batch with the samples
// of other Append calls made meanwhile), or fsynced to the spill when
// InfluxDB cannot take them now. Invalid samples and samples InfluxDB
// refuses are reported in a *storage.RejectedError while the others are
// stored. It fails (the caller must not acknowledge) only when the samples
// could be neither written nor spilled. Append is safe for concurrent use;
// calls from many goroutines are what fills the batches.
func (s *Store) Append(ctx context.Context, samples []storage.Sample) error {
	var rejected []storage.Rejected
	req := &writeReq{body: make([]byte, 0, 96*len(samples)), ends: make([]int32, 0, len(samples)), done: make(chan writeResult, 1)}
	sampleOf := make([]int, 0, len(samples))
	for i := range samples {
		if reason, err := check(&samples[i]); err != nil {
			rejected = append(rejected, storage.Rejected{Index: i, Reason: reason, Err: err})
			s.m.rejected.WithLabelValues(reason).Inc()
			continue
		}
		req.body = appendLine(req.body, &samples[i])
		req.ends = append(req.ends, int32(len(req.body)))
		sampleOf = append(sampleOf, i)
	}
	return s.appendReq(ctx, req, sampleOf, rejected, "samples")
}

// appendLines writes or spills lines (without newlines); sampleOf maps
// each line to its index in the caller's input, rejected holds what
// encoding already refused, and what names the input in errors.
func (s *Store) appendLines(ctx context.Context, lines []string, sampleOf []int, rejected []storage.Rejected, what string) error {
	req := &writeReq{ends: make([]int32, 0, len(lines)), done: make(chan writeResult, 1)}
	for _, l := range lines {
		req.body = append(append(req.body, l...), '\n')
		req.ends = append(req.ends, int32(len(req.body)))
	}
	return s.appendReq(ctx, req, sampleOf, rejected, what)
}

func (s *Store) appendReq(ctx context.Context, req *writeReq, sampleOf []int, rejected []storage.Rejected, what string) error {
	if req.lines() == 0 {
		return rejectedError(rejected)
	}
	res := s.submit(ctx, req)
	if res.err != nil {
		return fmt.Errorf("influx: append %d %s: %w", req.lines(), what, res.err)
	}
	for _, r := range res.refused {
		rejected = append(rejected, storage.Rejected{Index: sampleOf[r.line], Reason: RejectInflux, Err: r.err})
	}
	return rejectedError(rejected)
}

func rejectedError(rejected []storage.Rejected) error {
	if len(rejected) == 0 {
		return nil
	}
	return &storage.RejectedError{Rejected: rejected}
}

// check refuses a sample that cannot be stored, with a reason. A sample
// must keep the contract's pairing of quality and value (good and
// over_range readings carry a value, bad and comm_fail ones none): the
// schema leaves good out and counts readings by it.
func check(sm *storage.Sample) (reason string, err error) {
	q := sm.Quality
	if q == "" {
		q = protocol.Good
	}
	switch {
	case sm.Site == "" || sm.Point == "":
		return storage.RejectInvalid, fmt.Errorf("sample site %q point %q: site and point are required", sm.Site, sm.Point)
	case !q.Valid():
		return storage.RejectInvalid, fmt.Errorf("sample %s/%s: unknown quality %q", sm.Site, sm.Point, sm.Quality)
	case sm.Time.IsZero():
		return storage.RejectInvalid, fmt.Errorf("sample %s/%s: no time", sm.Site, sm.Point)
	case sm.HasValue && (math.IsNaN(sm.Value) || math.IsInf(sm.Value, 0)):
		return storage.RejectNotNumber, fmt.Errorf("sample %s/%s at %s: value %v is not a number", sm.Site, sm.Point, sm.Time.Format(time.RFC3339Nano), sm.Value)
	case q.CarriesValue() && !sm.HasValue:
		return storage.RejectInvalid, fmt.Errorf("sample %s/%s at %s: a %s reading carries no value", sm.Site, sm.Point, sm.Time.Format(time.RFC3339Nano), q)
	case !q.CarriesValue() && sm.HasValue:
		return storage.RejectInvalid, fmt.Errorf("sample %s/%s at %s: a %s reading may not carry a value", sm.Site, sm.Point, sm.Time.Format(time.RFC3339Nano), q)
	}
	return "", nil
}

// appendLine appends a checked sample's line, newline included, to b:
// tags point and site in key order (what InfluxDB sorts them into anyway;
// no source tag: no query reads it, and the site file says which source a
// point belongs to — it cost InfluxDB a sixth of its CPU), the value
// field when there is one, the quality field only when the reading is not
// good (a second field would cost InfluxDB a third more CPU per reading),
// time in ms. So a line has value, quality or both (over_range), and the
// readings of a series are its values plus its bad and comm_fail qualities.
func appendLine(b []byte, sm *storage.Sample) []byte {
	b = append(b, Measurement...)
	b = append(b, ","+TagPoint+"="...)
	b = appendTagValue(b, sm.Point)
	b = append(b, ","+TagSite+"="...)
	b = appendTagValue(b, sm.Site)
	b = append(b, ' ')
	if sm.HasValue {
		b = append(b, FieldValue+"="...)
		b = strconv.AppendFloat(b, sm.Value, 'f', -1, 64)
	}
	if q := sm.Quality; q != "" && q != protocol.Good {
		if sm.HasValue {
			b = append(b, ',')
		}
		b = append(b, FieldQuality+"=\""...)
		b = append(b, q...) // one of the valid qualities: nothing to escape
		b = append(b, '"')
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, sm.Time.UnixMilli(), 10)
	return append(b, '\n')
}

// appendTagValue escapes a tag value as the client library does: comma,
// equals sign and space with a backslash, control characters as \t \n \f
// \r. A trailing backslash is doubled so it cannot escape the separator
// (the library drops such a tag instead; ids from site files hold none).
func appendTagValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case ',', '=', ' ':
			b = append(b, '\\', c)
		case '\t':
			b = append(b, `\t`...)
		case '\n':
			b = append(b, `\n`...)
		case '\f':
			b = append(b, `\f`...)
		case '\r':
			b = append(b, `\r`...)
		case '\\':
			b = append(b, c)
			if i == len(v)-1 {
				b = append(b, c)
			}
		default:
			b = append(b, c)
		}
	}
	return b
}

// refusal is a line InfluxDB refused as bad data.
type refusal struct {
	line int
	err  error
}

func withoutRefused(lines []string, refused []refusal) []string {
	if len(refused) == 0 {
		return lines
	}
	skip := make(map[int]bool, len(refused))
	for _, r := range refused {
		skip[r.line] = true
	}
	kept := make([]string, 0, len(lines)-len(refused))
	for i, l := range lines {
		if !skip[i] {
			kept = append(kept, l)
		}
	}
	return kept
}

// writeLines sends lines in batches of BatchSize. Lines InfluxDB refuses as
// bad data are found by splitting the batch and returned; any other failure
// is returned as an error meaning "try all of it again later", which is safe
// because rewriting a point overwrites it with itself.
func (s *Store) writeLines(ctx context.Context, lines []string, path string) ([]refusal, error) {
	var refused []refusal
	for start := 0; start < len(lines); start += s.opts.BatchSize {
		end := min(start+s.opts.BatchSize, len(lines))
		if err := s.writeSplitting(ctx, lines[start:end], start, path, &refused); err != nil {
			return refused, err
		}
	}
	for _, r := range refused {
		s.m.rejected.WithLabelValues(RejectInflux).Inc()
		s.log.Error("influx refused a point; dropping it", zap.String("path", path), zap.String("line", lines[r.line]), zap.Error(r.err))
	}
	return refused, nil
}

func (s *Store) writeSplitting(ctx context.Context, lines []string, base int, path string, refused *[]refusal) error {
	kind, err := s.post(ctx, lines, path)
	if err == nil {
		return nil
	}
	if kind != ErrKindBadData {
		return err
	}
	if len(lines) == 1 {
		*refused = append(*refused, refusal{line: base, err: err})
		return nil
	}
	mid := len(lines) / 2
	if err := s.writeSplitting(ctx, lines[:mid], base, path, refused); err != nil {
		return err
	}
	return s.writeSplitting(ctx, lines[mid:], base+mid, path, refused)
}

// post sends lines in one write request and classifies its failure.
func (s *Store) post(ctx context.Context, lines []string, path string) (kind string, err error) {
	n := len(lines)
	for _, l := range lines {
		n += len(l)
	}
	body := make([]byte, 0, n)
	for _, l := range lines {
		body = append(append(body, l...), '\n')
	}
	return s.postBody(ctx, body, len(lines), path)
}

// classify names why a write failed.
func classify(parent, req context.Context, err error) string {
	if parent.Err() == nil && req.Err() != nil {
		return ErrKindTimeout
	}
	var he *influxhttp.Error
	if !errors.As(err, &he) || he.StatusCode == 0 {
		if errors.Is(err, context.DeadlineExceeded) {
			return ErrKindTimeout
		}
		return ErrKindUnreachable
	}
	switch code := he.StatusCode; {
	case code == http.StatusBadRequest, code == http.StatusRequestEntityTooLarge, code == http.StatusUnprocessableEntity:
		return ErrKindBadData
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return ErrKindAuth
	case code == http.StatusNotFound:
		return ErrKindNotFound
	case code == http.StatusTooManyRequests:
		return ErrKindThrottled
	case code >= 500:
		return ErrKindServer
	}
	return ErrKindOther
}

func (s *Store) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// replayLoop sends the spill to InfluxDB in order, backing off while it
// is unavailable, and drops each batch only once acknowledged.
func (s *Store) replayLoop() {
	defer close(s.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-s.done:
		}
	}()
	backoff := time.Duration(0)
	for {
		wait := s.opts.FlushInterval
		if backoff > 0 {
			wait = backoff
		}
		timer := time.NewTimer(wait)
		select {
		case <-s.stop:
			timer.Stop()
			return
		case <-s.wake:
			if backoff > 0 {
				// Woken by a new spill while backing off: keep waiting.
				select {
				case <-s.stop:
					timer.Stop()
					return
				case <-timer.C:
				}
			}
		case <-timer.C:
		}
		timer.Stop()
		if err := s.replayAll(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			if backoff == 0 {
				backoff = s.opts.RetryInitial
			} else {
				backoff = min(2*backoff, s.opts.RetryMax)
			}
			_, records, lines, oldest := s.spill.depth()
			s.log.Warn("influx replay failed; will retry", zap.Duration("backoff", backoff), zap.Int("records", records),
				zap.Int("points", lines), zap.Time("oldest", oldest), zap.Error(err))
			continue
		}
		backoff = 0
	}
}

// replayAll drains the spill until it is empty or a write fails.
func (s *Store) replayAll(ctx context.Context) error {
	for {
		batch, ok, err := s.spill.next(s.opts.BatchSize)
		if err != nil {
			s.m.writeErrors.WithLabelValues(ErrKindSpillIO).Inc()
			return err
		}
		if !ok {
			return nil
		}
		refused, err := s.writeLines(ctx, batch.lines, "replay")
		if err != nil {
			return err
		}
		if err := s.spill.ack(batch); err != nil {
			s.m.writeErrors.WithLabelValues(ErrKindSpillIO).Inc()
			return err
		}
		s.m.replayed.Add(float64(len(batch.lines) - len(refused)))
	}
}
