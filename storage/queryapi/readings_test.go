package queryapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

func readingsServer(t *testing.T, f *fixture) *httptest.Server {
	srv := httptest.NewServer(Readings(f.store, []*site.Site{f.site}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLatestReturnsNewestReadingWithSiteFileData(t *testing.T) {
	f := newFixture(t)
	srv := readingsServer(t, f)
	for _, path := range []string{"/api/points/latest", "/api/points/latest?site=t1"} {
		var resp LatestResponse
		if code := get(t, srv, path, &resp); code != http.StatusOK {
			t.Fatalf("%s: status %d", path, code)
		}
		byPoint := map[string]LatestPoint{}
		for _, p := range resp.Points {
			byPoint[p.Point] = p
		}
		if len(resp.Points) != 3 || len(byPoint) != 3 {
			t.Fatalf("%s: %d points, want p1, p2, p3: %+v", path, len(resp.Points), resp.Points)
		}

		last := f.p1[len(f.p1)-1]
		p1 := byPoint["p1"]
		if p1.Value == nil || *p1.Value != last.Value || p1.Quality != protocol.Good || p1.Time == nil || !p1.Time.Equal(last.Time) {
			t.Errorf("%s: p1 = %+v, want value %v good at %v", path, p1, last.Value, last.Time)
		}
		if p1.Site != "t1" || p1.Source != "s1" || p1.Name != "NH3 detector 1" || p1.Kind != site.ToxicGas || p1.Unit != "ppm" ||
			p1.Range != (RangeJSON{0, 100}) || p1.Limits.H == nil || *p1.Limits.H != 40 || p1.Limits.HH == nil || *p1.Limits.HH != 80 || p1.Limits.L != nil {
			t.Errorf("%s: p1 description %+v does not match the site file", path, p1.PointInfo)
		}

		lastP2 := f.p2[len(f.p2)-1]
		p2 := byPoint["p2"]
		if p2.Value != nil || p2.Quality != protocol.CommFail || p2.Time == nil || !p2.Time.Equal(lastP2.Time) {
			t.Errorf("%s: p2 = %+v, want comm_fail without value at %v", path, p2, lastP2.Time)
		}

		p3 := byPoint["p3"]
		if p3.Time != nil || p3.Value != nil || p3.Quality != "" || p3.Unit != "MPa" {
			t.Errorf("%s: p3 never stored, got %+v", path, p3)
		}
	}
}

func TestLatestUnknownSiteIs404(t *testing.T) {
	srv := readingsServer(t, newFixture(t))
	var body errorBody
	if code := get(t, srv, "/api/points/latest?site=nowhere", &body); code != http.StatusNotFound || !strings.Contains(body.Error, `"nowhere"`) {
		t.Errorf("status %d, error %q; want 404 naming the site", code, body.Error)
	}
}

func TestHistoryKeepsLastSampleOfEachStep(t *testing.T) {
	f := newFixture(t)
	srv := readingsServer(t, f)
	from, to, step := f.base, f.base.Add(10*time.Minute), time.Minute

	// Expected from the appended samples: the last one of each step
	// counted from from.
	var want []float64
	lastOfStep := map[int64]float64{}
	for _, sm := range f.p1 {
		lastOfStep[int64(sm.Time.Sub(from)/step)] = sm.Value
	}
	for k := int64(0); k < int64(to.Sub(from)/step); k++ {
		if v, ok := lastOfStep[k]; ok {
			want = append(want, v)
		}
	}

	var resp HistoryResponse
	path := fmt.Sprintf("/api/points/t1/p1/history?from=%s&to=%s&step=1m", rfc(from), rfc(to))
	if code := get(t, srv, path, &resp); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if resp.StepSeconds != 60 || resp.Unit != "ppm" || resp.Point != "p1" || !resp.From.Equal(from) || !resp.To.Equal(to) {
		t.Errorf("header %+v", resp)
	}
	if len(resp.Samples) != len(want) {
		t.Fatalf("%d samples, want %d: %+v", len(resp.Samples), len(want), resp.Samples)
	}
	for i, s := range resp.Samples {
		if s.Value == nil || *s.Value != want[i] || s.Quality != protocol.Good {
			t.Errorf("sample %d = %+v, want value %v", i, s, want[i])
		}
		if i > 0 && !s.Time.After(resp.Samples[i-1].Time.Time) {
			t.Errorf("samples not in time order at %d", i)
		}
	}
}

func TestHistoryWithoutStepReturnsEverySampleOfTheLastHour(t *testing.T) {
	f := newFixture(t)
	srv := readingsServer(t, f)
	var resp HistoryResponse
	if code := get(t, srv, "/api/points/t1/p2/history", &resp); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if got := resp.To.Sub(resp.From.Time); got != DefaultHistoryRange {
		t.Errorf("default range %v, want %v", got, DefaultHistoryRange)
	}
	if n := DefaultHistoryRange.Seconds() / resp.StepSeconds; resp.StepSeconds <= 0 || n > TargetHistoryPoints {
		t.Errorf("default step %v s gives %v points, want at most %d", resp.StepSeconds, n, TargetHistoryPoints)
	}
	if len(resp.Samples) != len(f.p2) {
		t.Fatalf("%d samples, want %d", len(resp.Samples), len(f.p2))
	}
	if resp.Samples[0].Value == nil || *resp.Samples[0].Value != f.p2[0].Value || resp.Samples[1].Value != nil || resp.Samples[1].Quality != protocol.CommFail {
		t.Errorf("samples %+v, want %v good then comm_fail", resp.Samples, f.p2[0].Value)
	}
}

func TestHistoryErrorsNameWhatIsWrong(t *testing.T) {
	f := newFixture(t)
	srv := readingsServer(t, f)
	from, to := rfc(f.base), rfc(f.base.Add(time.Hour))
	for _, tc := range []struct {
		path   string
		status int
		naming string
	}{
		{"/api/points/nowhere/p1/history", http.StatusNotFound, `"nowhere"`},
		{"/api/points/t1/p9/history", http.StatusNotFound, `"p9"`},
		{"/api/points/t1/p1/history?from=yesterday", http.StatusBadRequest, "parameter from"},
		{"/api/points/t1/p1/history?to=1700000000", http.StatusBadRequest, "parameter to"},
		{"/api/points/t1/p1/history?from=" + to + "&to=" + from, http.StatusBadRequest, "parameter from"},
		{"/api/points/t1/p1/history?from=" + rfc(f.base.Add(-40*24*time.Hour)) + "&to=" + from, http.StatusBadRequest, "maximum"},
		{"/api/points/t1/p1/history?from=" + from + "&to=" + to + "&step=0s", http.StatusBadRequest, "parameter step"},
		{"/api/points/t1/p1/history?from=" + from + "&to=" + to + "&step=fast", http.StatusBadRequest, "parameter step"},
		{"/api/points/t1/p1/history?from=" + from + "&to=" + to + "&step=NaN", http.StatusBadRequest, "parameter step"},
		{"/api/points/t1/p1/history?from=" + from + "&to=" + to + "&step=100ms", http.StatusBadRequest, "maximum 11000"},
		{"/api/points/t1/p1/samples", http.StatusNotFound, "/api/points/latest"},
	} {
		var body errorBody
		code := get(t, srv, tc.path, &body)
		if code != tc.status || !strings.Contains(body.Error, tc.naming) {
			t.Errorf("%s: status %d, error %q; want %d naming %q", tc.path, code, body.Error, tc.status, tc.naming)
		}
	}
}

func TestDefaultStepIsNiceAndBounded(t *testing.T) {
	for _, span := range []time.Duration{time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, MaxHistoryRange} {
		step := defaultStep(span)
		if span/step > TargetHistoryPoints {
			t.Errorf("span %v: step %v gives %d points", span, step, span/step)
		}
		// One nice step smaller would give too many points.
		for i, s := range niceSteps {
			if s == step && i > 0 && span/niceSteps[i-1] <= TargetHistoryPoints {
				t.Errorf("span %v: step %v, but %v would do", span, step, niceSteps[i-1])
			}
		}
	}
	for _, span := range []time.Duration{time.Hour, MaxHistoryRange} {
		if s := minStep(span); span/s > MaxHistoryPoints || s%time.Second != 0 {
			t.Errorf("minStep(%v) = %v", span, s)
		}
	}
}

// TestCountsCountEachReadingOnce: counts per point over a span, a reading
// appended again (a redelivery) counted once; bad arguments refused.
func TestCountsCountEachReadingOnce(t *testing.T) {
	f := newFixture(t)
	if err := f.store.Append(context.Background(), f.p1[:10]); err != nil { // written again
		t.Fatal(err)
	}
	srv := readingsServer(t, f)
	var resp CountsResponse
	path := "/api/points/counts?site=t1&from=" + rfc(f.base) + "&to=" + rfc(f.base.Add(time.Hour))
	if code := get(t, srv, path, &resp); code != http.StatusOK {
		t.Fatalf("%s: status %d", path, code)
	}
	if resp.Points["p1"] != p1Samples || resp.Points["p2"] != 2 || resp.Total != p1Samples+2 {
		t.Errorf("counts = %+v, want p1 %d, p2 2", resp, p1Samples)
	}
	// The first minute: p1 at 0, 10 … 60 s, p2 at 0 and 60 s.
	path = "/api/points/counts?site=t1&from=" + rfc(f.base) + "&to=" + rfc(f.base.Add(time.Minute))
	if code := get(t, srv, path, &resp); code != http.StatusOK || resp.Points["p1"] != 7 || resp.Points["p2"] != 2 {
		t.Errorf("%s: status %d, counts %+v; want p1 7, p2 2", path, code, resp.Points)
	}
	for _, bad := range []string{
		"/api/points/counts?site=nope&from=" + rfc(f.base) + "&to=" + rfc(f.base),
		"/api/points/counts?site=t1&from=yesterday&to=" + rfc(f.base),
		"/api/points/counts?site=t1&from=" + rfc(f.base) + "&to=" + rfc(f.base.Add(-time.Second)),
	} {
		var e struct{ Error string }
		if code := get(t, srv, bad, &e); code/100 != 4 || e.Error == "" {
			t.Errorf("%s: status %d, error %q; want a 4xx with a reason", bad, code, e.Error)
		}
	}
}
