package influx

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/storage"
)

// BenchmarkInfluxdCostPerPoint writes readings in the store's batches to
// a private InfluxDB 1.8 and reports influxd's own CPU time per point, for
// the schema as written and for the variants docs/load.md weighs: the
// earlier schema (quality="good" on good readings and a source tag), with
// the source tag alone, uncompressed, in batches of 5,000 lines (the
// earlier default). Each variant has an influxd of its own: one that
// already holds the earlier variants' series and cache spends more per
// point, whatever the schema.
//
//	go test ./storage/influx/ -run '^$' -bench InfluxdCost -benchtime 1000000x
func BenchmarkInfluxdCostPerPoint(b *testing.B) {
	for _, variant := range []string{"as_written", "earlier_schema", "source_tag_written", "no_gzip", "batch_5000"} {
		b.Run(variant, func(b *testing.B) {
			d := testenv.NewInfluxd(b, "bench")
			db := "bench_" + variant + "_" + strconv.Itoa(b.N)
			d.Query("CREATE DATABASE " + strconv.Quote(db))
			opts := Options{URL: d.URL(), Bucket: db + "/autogen", SpillDir: b.TempDir()}
			switch variant {
			case "no_gzip":
				opts.NoGzip = true
			case "batch_5000":
				opts.BatchSize = 5000
			}
			s := openT(b, opts)
			base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
			line := func(i int) []byte {
				sm := storage.Sample{Site: "bench", Source: fmt.Sprintf("tanks-%04d", i%10+1), Point: fmt.Sprintf("g%04d-p%04d", i%10+1, i/10%200+1),
					Time: base.Add(time.Duration(i/2000) * time.Millisecond), Value: 15.5 + float64(i%7), HasValue: true, Quality: protocol.Good}
				l := string(appendLine(nil, &sm))
				if variant == "earlier_schema" || variant == "source_tag_written" {
					l = strings.Replace(l, ",site=bench ", ",site=bench,source="+sm.Source+" ", 1)
				}
				if variant == "earlier_schema" {
					l = strings.Replace(l, " value=", ` quality="good",value=`, 1)
				}
				return []byte(l)
			}
			cpu0 := procCPU(b, d.PID())
			b.ResetTimer()
			var body []byte
			n := 0
			flush := func() {
				if _, err := s.postBody(context.Background(), body, n, "direct"); err != nil {
					b.Fatal(err)
				}
				body, n = body[:0], 0
			}
			for i := range b.N {
				body = append(body, line(i)...)
				if n++; n == s.opts.BatchSize {
					flush()
				}
			}
			if n > 0 {
				flush()
			}
			b.StopTimer()
			b.ReportMetric(float64(procCPU(b, d.PID())-cpu0)/float64(b.N), "influxd-cpu-ns/point")
		})
	}
}

// procCPU is a process's user+system CPU time from /proc, in nanoseconds.
func procCPU(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("read influxd's CPU time: %v", err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return (utime + stime) * int64(time.Second) / 100 // USER_HZ
}

// BenchmarkGzipBatch is the CPU a write request's gzip costs per line, on
// a full batch of the store's lines.
//
//	go test ./storage/influx/ -run '^$' -bench GzipBatch
func BenchmarkGzipBatch(b *testing.B) {
	var body []byte
	base := time.Now().Truncate(time.Millisecond)
	for i := range DefaultBatchSize {
		sm := storage.Sample{Site: "bench", Point: fmt.Sprintf("g%04d-p%04d", i%10+1, i/10%200+1),
			Time: base.Add(time.Duration(i/2000) * time.Millisecond), Value: 15.5 + float64(i%7)/3, HasValue: true}
		body = appendLine(body, &sm)
	}
	var zb bytes.Buffer
	for b.Loop() {
		zb.Reset()
		gzipBody(&zb, body)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/DefaultBatchSize, "ns/line")
	b.ReportMetric(float64(len(body))/float64(zb.Len()), "ratio")
}
