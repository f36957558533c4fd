package queryapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
)

// benchSite is a site of n points, each stored every second for an hour.
func benchSite(b *testing.B, n int) (*embedded.Store, *site.Site, time.Time) {
	b.Helper()
	var y strings.Builder
	y.WriteString("id: b1\nname: bench\nenterprise_code: \"91320612MA1X7H2K3Q\"\nregion: \"320612\"\n")
	y.WriteString("gateways:\n  - id: gw1\n    devices:\n      - id: dev1\n        address: 127.0.0.1:15099\n")
	y.WriteString("sources:\n  - id: s1\n    name: tanks\n    type: tank_farm\n    grade: 2\n    points:\n")
	for i := range n {
		fmt.Fprintf(&y, "      - {id: p%d, name: gas %d, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: dev1, address: %d}, limits: {h: 40, hh: 80}}\n", i, i, i)
	}
	s, err := site.Parse("b1.yaml", []byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	store, err := embedded.Open(b.TempDir(), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	end := time.Now().Truncate(time.Second)
	start := end.Add(-time.Hour)
	batch := make([]storage.Sample, 0, n)
	for ts := start; !ts.After(end); ts = ts.Add(time.Second) {
		batch = batch[:0]
		for i := range n {
			batch = append(batch, storage.Sample{Site: "b1", Source: "s1", Point: fmt.Sprintf("p%d", i), Time: ts,
				Value: float64(ts.Unix()%100 + int64(i)), HasValue: true, Quality: protocol.Good})
		}
		if err := store.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	return store, s, end
}

func serve(b *testing.B, h http.Handler, path string) {
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
}

// BenchmarkLatest: newest reading of 100 points with an hour at 1 s each.
func BenchmarkLatest(b *testing.B) {
	store, s, _ := benchSite(b, 100)
	serve(b, Readings(store, []*site.Site{s}), "/api/points/latest?site=b1")
}

// BenchmarkHistoryHour: one point's last hour (3600 samples) at the
// default step.
func BenchmarkHistoryHour(b *testing.B) {
	store, s, end := benchSite(b, 100)
	serve(b, Readings(store, []*site.Site{s}), "/api/points/b1/p7/history?to="+url.QueryEscape(end.Format(time.RFC3339)))
}

// BenchmarkPromRangeQuery: max_over_time of 100 points over an hour at a
// 15 s step, as a Grafana panel asks.
func BenchmarkPromRangeQuery(b *testing.B) {
	store, _, end := benchSite(b, 100)
	q := url.Values{"query": {`max_over_time(hazardwatch_value{site="b1"}[1m])`},
		"start": {end.Add(-time.Hour).Format(time.RFC3339)}, "end": {end.Format(time.RFC3339)}, "step": {"15s"}}
	serve(b, Prometheus(store.Queryable()), "/api/v1/query_range?"+q.Encode())
}
