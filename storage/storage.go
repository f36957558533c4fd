// Package storage defines how readings are kept: the small interfaces the
// ingest service writes to and the query API reads from. Implementations
// live in subpackages: embedded (Prometheus TSDB on local disk, the default)
// and influx (InfluxDB through its v2 API).
package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// Sample is one reading as stored.
type Sample struct {
	Site     string
	Gateway  string
	Source   string
	Point    string
	Time     time.Time
	Value    float64 // meaningful when HasValue
	HasValue bool
	Quality  protocol.Quality
}

// Appender stores samples. Append returns only once the samples are durable
// (written to the store's write-ahead log or acknowledged by the server), so
// the caller may then acknowledge the message they came in.
type Appender interface {
	Append(ctx context.Context, samples []Sample) error
}

// Metric is one sample of one of the centre's own series — hazard source
// grades, alarm counts, ingest health — kept in the store beside the
// readings, so dashboards read everything from one data source.
type Metric struct {
	Name   string            // e.g. hazardwatch_source_grade
	Labels map[string]string // e.g. site, source; never __name__
	Time   time.Time
	Value  float64
}

// MetricAppender stores the centre's own metrics. Like Append, it returns
// once they are durable; a store lists the ones it refused in a
// *RejectedError and keeps the others.
type MetricAppender interface {
	AppendMetrics(ctx context.Context, metrics []Metric) error
}

// Point names one stored series.
type Point struct{ Site, Point string }

// Querier reads stored samples back.
type Querier interface {
	// Latest returns the newest sample of each point of a site (all sites
	// when site is empty).
	Latest(ctx context.Context, site string) ([]Sample, error)
	// Range returns a point's samples in [from, to], at most one per step
	// (the last of each step) when step > 0.
	Range(ctx context.Context, p Point, from, to time.Time, step time.Duration) ([]Sample, error)
}

// Store is a storage backend.
type Store interface {
	Appender
	Querier
	Close() error
}

// Rejected is one sample a store refused while storing the others of the
// same Append call.
type Rejected struct {
	Index  int    // position in the samples given to Append
	Reason string // short stable word for metrics, e.g. too_old
	Err    error
}

// RejectedError is what Append returns when it stored every sample but the
// listed ones (too old for the store's out-of-order window, a different
// value at a time already stored, not a number). The stored samples are
// durable, so the caller may acknowledge the message and count the rest.
type RejectedError struct {
	Rejected []Rejected
}

func (e *RejectedError) Error() string {
	if len(e.Rejected) == 0 {
		return "no samples rejected"
	}
	first := e.Rejected[0]
	if len(e.Rejected) == 1 {
		return fmt.Sprintf("sample %d rejected: %s: %v", first.Index, first.Reason, first.Err)
	}
	return fmt.Sprintf("%d samples rejected, first: sample %d: %s: %v", len(e.Rejected), first.Index, first.Reason, first.Err)
}

// Reasons a store rejects a single sample.
const (
	RejectTooOld    = "too_old"        // older than the out-of-order window allows
	RejectConflict  = "value_conflict" // a different value already stored at that time
	RejectNotNumber = "not_a_number"   // NaN or ±Inf
	RejectInvalid   = "invalid_sample" // missing site or point, unknown quality
)

// Counter counts stored readings, for checking that a load or a migration
// stored every reading once. Stores that can count cheaply implement it.
type Counter interface {
	// Count returns, per point of site, how many readings are stored with
	// a time in [from, to]. Writing a reading again does not change it.
	Count(ctx context.Context, site string, from, to time.Time) (map[string]int64, error)
}
