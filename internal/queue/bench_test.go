package queue

import (
	"testing"
)

// BenchmarkAppend measures durable appends of 300-byte records (about one
// telemetry message): one fsync per record, and group commit of 64.
func BenchmarkAppend(b *testing.B) {
	rec := make([]byte, 300)
	b.Run("fsync-each", func(b *testing.B) {
		s, err := Open(b.TempDir(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.SetBytes(int64(len(rec)))
		for b.Loop() {
			if _, err := s.Append(rec); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("batch-64", func(b *testing.B) {
		s, err := Open(b.TempDir(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		batch := make([][]byte, 64)
		for i := range batch {
			batch[i] = rec
		}
		b.SetBytes(int64(len(rec) * len(batch)))
		for b.Loop() {
			if _, err := s.AppendBatch(batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "records/s")
	})
}
