// Package embedded keeps readings in a Prometheus TSDB in a local directory:
// the default storage.Store of HazardWatch, needing no server. Every
// reading becomes a hazardwatch_quality sample and, when it carries a
// value, a hazardwatch_value sample, both labelled site, source and point;
// docs/storage.md describes the schema.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/storage"
)

// Series names and labels of the schema.
const (
	ValueMetric   = "hazardwatch_value"
	QualityMetric = "hazardwatch_quality"
	LabelSite     = "site"
	LabelSource   = "source"
	LabelPoint    = "point"
)

// Defaults of Options.
const (
	// DefaultRetention keeps 30 days: AQ 3035-2010 asks for at least 30
	// days of monitoring history.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultOutOfOrderWindow lets a gateway's store-and-forward replay of
	// up to a day of buffered readings land behind newer ones.
	DefaultOutOfOrderWindow = 24 * time.Hour
)

// Options tune the store; the zero value gives the defaults.
type Options struct {
	// Retention is how long samples are kept; default DefaultRetention.
	Retention time.Duration
	// OutOfOrderWindow is how far behind the newest sample a sample may
	// still be stored; default DefaultOutOfOrderWindow, negative disables.
	OutOfOrderWindow time.Duration
	// Logger receives the TSDB's own logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the TSDB's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// QualityCode is the number a quality is stored as in hazardwatch_quality.
func QualityCode(q protocol.Quality) (float64, bool) {
	switch q {
	case protocol.Good, "":
		return 0, true
	case protocol.Bad:
		return 1, true
	case protocol.CommFail:
		return 2, true
	case protocol.OverRange:
		return 3, true
	}
	return 0, false
}

// QualityOf is the inverse of QualityCode; unknown codes read as bad.
func QualityOf(code float64) protocol.Quality {
	switch code {
	case 0:
		return protocol.Good
	case 2:
		return protocol.CommFail
	case 3:
		return protocol.OverRange
	}
	return protocol.Bad
}

// Store is a storage.Store on a Prometheus TSDB. It is safe for concurrent
// use.
type Store struct {
	db  *tsdb.DB
	dir string

	mu   sync.Mutex
	refs map[seriesKey]*seriesRefs
}

type seriesKey struct{ site, source, point string }

// seriesRefs caches a point's two label sets and the TSDB's series
// references, so repeated appends skip hashing labels.
type seriesRefs struct {
	value, quality       labels.Labels
	valueRef, qualityRef promstorage.SeriesRef
}

var _ storage.Store = (*Store)(nil)

// Open opens or creates the store in dir, replaying its write-ahead log:
// samples committed before a crash are there again.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Retention < 0 {
		return nil, fmt.Errorf("open embedded store %s: retention %v is negative", dir, opts.Retention)
	}
	if opts.OutOfOrderWindow == 0 {
		opts.OutOfOrderWindow = DefaultOutOfOrderWindow
	}
	if opts.OutOfOrderWindow < 0 {
		opts.OutOfOrderWindow = 0
	}
	o := tsdb.DefaultOptions()
	o.RetentionDuration = opts.Retention.Milliseconds()
	o.OutOfOrderTimeWindow = opts.OutOfOrderWindow.Milliseconds()
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db, err := tsdb.Open(dir, logger, opts.Registerer, o, nil)
	if err != nil {
		return nil, fmt.Errorf("open embedded store %s: %w", dir, err)
	}
	return &Store{db: db, dir: dir, refs: map[seriesKey]*seriesRefs{}}, nil
}

// DB returns the underlying TSDB, e.g. for snapshots or compaction.
func (s *Store) DB() *tsdb.DB { return s.db }

// Queryable returns the store as a Prometheus storage.Queryable, so the
// PromQL engine can evaluate queries over it.
func (s *Store) Queryable() promstorage.Queryable { return s.db }

// Close writes out the write-ahead log and closes the TSDB. Data not yet
// compacted into blocks is replayed from the log on the next Open.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close embedded store %s: %w", s.dir, err)
	}
	return nil
}

// Append stores samples in one TSDB transaction and returns after it was
// committed through the write-ahead log (written to the operating system;
// a process crash loses nothing, a power cut may lose the last writes). A
// sample the TSDB refuses does not cost the others: they are stored and a
// *storage.RejectedError lists the refused ones.
func (s *Store) Append(ctx context.Context, samples []storage.Sample) error {
	if len(samples) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append to embedded store: %w", err)
	}
	app := s.db.Appender(ctx)
	var rejected []storage.Rejected
	reject := func(i int, reason string, err error) {
		rejected = append(rejected, storage.Rejected{Index: i, Reason: reason, Err: err})
	}
	s.mu.Lock()
	for i := range samples {
		sm := &samples[i]
		code, ok := QualityCode(sm.Quality)
		switch {
		case sm.Site == "" || sm.Point == "":
			reject(i, storage.RejectInvalid, errors.New("site and point are required"))
			continue
		case !ok:
			reject(i, storage.RejectInvalid, fmt.Errorf("point %s/%s: unknown quality %q", sm.Site, sm.Point, sm.Quality))
			continue
		case sm.HasValue && (math.IsNaN(sm.Value) || math.IsInf(sm.Value, 0)):
			reject(i, storage.RejectNotNumber, fmt.Errorf("point %s/%s: value is not a finite number", sm.Site, sm.Point))
			continue
		}
		refs := s.series(sm)
		t := sm.Time.UnixMilli()
		ref, err := app.Append(refs.qualityRef, refs.quality, t, code)
		if err != nil {
			if reason, ok := sampleReason(err); ok {
				reject(i, reason, fmt.Errorf("point %s/%s at %s: %w", sm.Site, sm.Point, sm.Time.UTC().Format(protocol.TimeFormat), err))
				continue
			}
			s.mu.Unlock()
			_ = app.Rollback() // the append error is the one worth reporting
			return fmt.Errorf("append point %s/%s to embedded store %s: %w", sm.Site, sm.Point, s.dir, err)
		}
		refs.qualityRef = ref
		if !sm.HasValue {
			continue
		}
		ref, err = app.Append(refs.valueRef, refs.value, t, sm.Value)
		if err != nil {
			if reason, ok := sampleReason(err); ok {
				reject(i, reason, fmt.Errorf("point %s/%s at %s: %w", sm.Site, sm.Point, sm.Time.UTC().Format(protocol.TimeFormat), err))
				continue
			}
			s.mu.Unlock()
			_ = app.Rollback()
			return fmt.Errorf("append point %s/%s to embedded store %s: %w", sm.Site, sm.Point, s.dir, err)
		}
		refs.valueRef = ref
	}
	s.mu.Unlock()
	if err := app.Commit(); err != nil {
		return fmt.Errorf("commit %d samples to embedded store %s: %w", len(samples), s.dir, err)
	}
	if len(rejected) > 0 {
		return &storage.RejectedError{Rejected: rejected}
	}
	return nil
}

// sampleReason tells the errors that refuse one sample from those that
// break the whole transaction.
func sampleReason(err error) (string, bool) {
	switch {
	case errors.Is(err, promstorage.ErrOutOfBounds),
		errors.Is(err, promstorage.ErrOutOfOrderSample),
		errors.Is(err, promstorage.ErrTooOldSample):
		return storage.RejectTooOld, true
	case errors.Is(err, promstorage.ErrDuplicateSampleForTimestamp):
		return storage.RejectConflict, true
	}
	return "", false
}

// series returns the cached label sets and references of a sample's
// point; the caller holds s.mu.
func (s *Store) series(sm *storage.Sample) *seriesRefs {
	k := seriesKey{sm.Site, sm.Source, sm.Point}
	r := s.refs[k]
	if r == nil {
		r = &seriesRefs{value: pointLabels(ValueMetric, sm), quality: pointLabels(QualityMetric, sm)}
		s.refs[k] = r
	}
	return r
}

// pointLabels names a point's series; an empty source is left out, as
// Prometheus treats an empty label as an absent one.
func pointLabels(metric string, sm *storage.Sample) labels.Labels {
	b := labels.NewScratchBuilder(4)
	b.Add(model.MetricNameLabel, metric)
	b.Add(LabelSite, sm.Site)
	if sm.Source != "" {
		b.Add(LabelSource, sm.Source)
	}
	b.Add(LabelPoint, sm.Point)
	b.Sort()
	return b.Labels()
}
