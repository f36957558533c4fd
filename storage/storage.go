// Package storage defines how readings are kept: the small interfaces the
// ingest service writes to and the query API reads from. Implementations
// live in subpackages: embedded (Prometheus TSDB on local disk, the default)
// and influx (InfluxDB through its v2 API).
package storage

import (
	"context"
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
