package embedded

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/hazardwatch/hazardwatch/storage"
)

// selectAll returns every sample of the series with the given metric name,
// keyed by the series' labels.
func selectAll(t *testing.T, s *Store, name string) map[string][]float64 {
	t.Helper()
	q, err := s.Queryable().Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", name))
	got := map[string][]float64{}
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			_, v := it.At()
			got[set.At().Labels().String()] = append(got[set.At().Labels().String()], v)
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestAppendMetrics(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	mustAppend(t, s, good("jh-chem", "nh3-gas-1", t0, 3))
	grade := func(at time.Time, v float64) storage.Metric {
		return storage.Metric{Name: "hazardwatch_source_grade", Labels: map[string]string{"site": "jh-chem", "source": "nh3-tanks", "node": ""}, Time: at, Value: v}
	}
	err := s.AppendMetrics(context.Background(), []storage.Metric{
		grade(t0, 0),
		{Name: "hazardwatch_ingest_connected", Time: t0, Value: 1},
		{Name: "bad name", Time: t0, Value: 1},
		{Name: "hazardwatch_x", Labels: map[string]string{"__name__": "y"}, Time: t0, Value: 1},
		{Name: "hazardwatch_x", Value: 1},
		{Name: "hazardwatch_x", Time: t0, Value: math.NaN()},
		grade(t0.Add(5*time.Second), 3),
	})
	var rej *storage.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("AppendMetrics = %v, want a *storage.RejectedError", err)
	}
	reasons := map[int]string{}
	for _, r := range rej.Rejected {
		reasons[r.Index] = r.Reason
	}
	want := map[int]string{2: storage.RejectInvalid, 3: storage.RejectInvalid, 4: storage.RejectInvalid, 5: storage.RejectNotNumber}
	if len(reasons) != len(want) {
		t.Errorf("rejected %v, want %v", reasons, want)
	}
	for i, r := range want {
		if reasons[i] != r {
			t.Errorf("metric %d rejected as %q, want %q", i, reasons[i], r)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The accepted metrics survive a reopen (they went through the WAL),
	// with the empty label left out, and readings are untouched by them.
	s = openT(t, dir, Options{})
	defer s.Close()
	grades := selectAll(t, s, "hazardwatch_source_grade")
	key := `{__name__="hazardwatch_source_grade", site="jh-chem", source="nh3-tanks"}`
	if g := grades[key]; len(grades) != 1 || len(g) != 2 || g[0] != 0 || g[1] != 3 {
		t.Errorf("hazardwatch_source_grade series = %v, want %s with 0 then 3", grades, key)
	}
	if c := selectAll(t, s, "hazardwatch_ingest_connected"); len(c[`{__name__="hazardwatch_ingest_connected"}`]) != 1 {
		t.Errorf("hazardwatch_ingest_connected series = %v, want one sample", c)
	}
	latest, err := s.Latest(context.Background(), "jh-chem")
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 1 || latest[0].Point != "nh3-gas-1" {
		t.Errorf("Latest = %+v, want only the reading of nh3-gas-1", latest)
	}
}
