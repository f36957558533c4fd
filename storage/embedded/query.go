package embedded

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/storage"
)

// latestWindows are the look-back spans Latest tries in turn, so that the
// common case (every point reported recently) decodes only recent chunks.
var latestWindows = []time.Duration{time.Hour, 7 * 24 * time.Hour, 0}

// Latest returns the newest sample of every point of a site, or of every
// site when site is empty, sorted by site, source and point.
func (s *Store) Latest(ctx context.Context, site string) ([]storage.Sample, error) {
	siteMatcher := labels.MustNewMatcher(labels.MatchRegexp, LabelSite, ".+")
	if site != "" {
		siteMatcher = labels.MustNewMatcher(labels.MatchEqual, LabelSite, site)
	}
	want, err := s.seriesKeys(ctx, siteMatcher)
	if err != nil {
		return nil, fmt.Errorf("latest of site %q: %w", site, err)
	}
	found := map[seriesKey]storage.Sample{}
	newest := s.newestTime()
	for _, w := range latestWindows {
		if len(found) == len(want) {
			break
		}
		mint := int64(math.MinInt64)
		if w > 0 && newest > math.MinInt64+w.Milliseconds() {
			mint = newest - w.Milliseconds()
		}
		got, err := s.lastSamples(ctx, mint, siteMatcher)
		if err != nil {
			return nil, fmt.Errorf("latest of site %q: %w", site, err)
		}
		for k, sm := range got {
			if _, ok := found[k]; !ok {
				found[k] = sm
			}
		}
	}
	out := make([]storage.Sample, 0, len(found))
	for _, sm := range found {
		out = append(out, sm)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Site != b.Site {
			return a.Site < b.Site
		}
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		return a.Point < b.Point
	})
	return out, nil
}

// newestTime is the time of the newest sample held, in milliseconds.
func (s *Store) newestTime() int64 {
	newest := s.db.Head().MaxTime()
	for _, b := range s.db.Blocks() {
		if mt := b.Meta().MaxTime; mt > newest {
			newest = mt
		}
	}
	return newest
}

// seriesKeys lists the points that have a quality series, without reading
// samples.
func (s *Store) seriesKeys(ctx context.Context, site *labels.Matcher) (map[seriesKey]bool, error) {
	q, err := s.db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		return nil, fmt.Errorf("open querier on %s: %w", s.dir, err)
	}
	defer q.Close()
	hints := &promstorage.SelectHints{Start: math.MinInt64, End: math.MaxInt64, Func: "series"}
	set := q.Select(ctx, false, hints, labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, QualityMetric), site)
	keys := map[seriesKey]bool{}
	for set.Next() {
		keys[keyOf(set.At().Labels())] = true
	}
	if err := set.Err(); err != nil {
		return nil, fmt.Errorf("list series in %s: %w", s.dir, err)
	}
	return keys, nil
}

// lastSamples reads, for each point, its last quality sample at or after
// mint and the value stored at the same time.
func (s *Store) lastSamples(ctx context.Context, mint int64, site *labels.Matcher) (map[seriesKey]storage.Sample, error) {
	q, err := s.db.Querier(mint, math.MaxInt64)
	if err != nil {
		return nil, fmt.Errorf("open querier on %s: %w", s.dir, err)
	}
	defer q.Close()
	type last struct {
		qt, vt int64
		q, v   float64
		hasQ   bool
		hasV   bool
	}
	lasts := map[seriesKey]*last{}
	set := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ValueMetric+"|"+QualityMetric), site)
	var it chunkenc.Iterator
	for set.Next() {
		series := set.At()
		lset := series.Labels()
		k := keyOf(lset)
		l := lasts[k]
		if l == nil {
			l = &last{}
			lasts[k] = l
		}
		isQuality := lset.Get(model.MetricNameLabel) == QualityMetric
		it = series.Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			t, v := it.At()
			if isQuality {
				l.qt, l.q, l.hasQ = t, v, true
			} else {
				l.vt, l.v, l.hasV = t, v, true
			}
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("read series %s in %s: %w", lset, s.dir, err)
		}
	}
	if err := set.Err(); err != nil {
		return nil, fmt.Errorf("select series in %s: %w", s.dir, err)
	}
	out := make(map[seriesKey]storage.Sample, len(lasts))
	for k, l := range lasts {
		if !l.hasQ {
			continue // the quality sample is older than mint: a wider window finds it
		}
		sm := storage.Sample{Site: k.site, Source: k.source, Point: k.point, Time: time.UnixMilli(l.qt).UTC(), Quality: QualityOf(l.q)}
		if l.hasV && l.vt == l.qt {
			sm.Value, sm.HasValue = l.v, true
		}
		out[k] = sm
	}
	return out, nil
}

func keyOf(l labels.Labels) seriesKey {
	return seriesKey{site: l.Get(LabelSite), source: l.Get(LabelSource), point: l.Get(LabelPoint)}
}

// Range returns a point's samples with times in [from, to], oldest first.
// With step > 0 it keeps the last sample of each step, steps counted from
// from.
func (s *Store) Range(ctx context.Context, p storage.Point, from, to time.Time, step time.Duration) ([]storage.Sample, error) {
	if p.Site == "" || p.Point == "" {
		return nil, fmt.Errorf("range of point %q of site %q: site and point are required", p.Point, p.Site)
	}
	if to.Before(from) {
		return nil, fmt.Errorf("range of %s/%s: end %s is before start %s", p.Site, p.Point, to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if step < 0 {
		return nil, fmt.Errorf("range of %s/%s: step %v is negative", p.Site, p.Point, step)
	}
	mint, maxt := from.UnixMilli(), to.UnixMilli()
	q, err := s.db.Querier(mint, maxt)
	if err != nil {
		return nil, fmt.Errorf("range of %s/%s: open querier on %s: %w", p.Site, p.Point, s.dir, err)
	}
	defer q.Close()
	set := q.Select(ctx, false, nil,
		labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ValueMetric+"|"+QualityMetric),
		labels.MustNewMatcher(labels.MatchEqual, LabelSite, p.Site),
		labels.MustNewMatcher(labels.MatchEqual, LabelPoint, p.Point))
	byTime := map[int64]*storage.Sample{}
	var it chunkenc.Iterator
	for set.Next() {
		series := set.At()
		lset := series.Labels()
		isQuality := lset.Get(model.MetricNameLabel) == QualityMetric
		source := lset.Get(LabelSource)
		it = series.Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			t, v := it.At()
			sm := byTime[t]
			if sm == nil {
				sm = &storage.Sample{Site: p.Site, Source: source, Point: p.Point, Time: time.UnixMilli(t).UTC(), Quality: protocol.Good}
				byTime[t] = sm
			}
			if isQuality {
				sm.Quality = QualityOf(v)
			} else {
				sm.Value, sm.HasValue = v, true
			}
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("range of %s/%s: read series %s: %w", p.Site, p.Point, lset, err)
		}
	}
	if err := set.Err(); err != nil {
		return nil, fmt.Errorf("range of %s/%s: select in %s: %w", p.Site, p.Point, s.dir, err)
	}
	times := make([]int64, 0, len(byTime))
	for t := range byTime {
		times = append(times, t)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	out := make([]storage.Sample, 0, len(times))
	stepMs := step.Milliseconds()
	for i, t := range times {
		// With a step, a sample is kept only when the next one falls in a
		// later step: the last of each step survives.
		if stepMs > 0 && i+1 < len(times) && (times[i+1]-mint)/stepMs == (t-mint)/stepMs {
			continue
		}
		out = append(out, *byTime[t])
	}
	return out, nil
}

var _ storage.Counter = (*Store)(nil)

// Count implements storage.Counter over the quality series (every reading
// has one quality sample).
func (s *Store) Count(ctx context.Context, site string, from, to time.Time) (map[string]int64, error) {
	if site == "" || to.Before(from) {
		return nil, fmt.Errorf("count: site %q and from ≤ to are required", site)
	}
	q, err := s.db.Querier(from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("count of site %s: %w", site, err)
	}
	defer q.Close()
	set := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, QualityMetric),
		labels.MustNewMatcher(labels.MatchEqual, LabelSite, site))
	out := map[string]int64{}
	var it chunkenc.Iterator
	for set.Next() {
		series := set.At()
		point := series.Labels().Get(LabelPoint)
		it = series.Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			out[point]++
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("count of site %s: %w", site, err)
		}
	}
	if err := set.Err(); err != nil {
		return nil, fmt.Errorf("count of site %s: %w", site, err)
	}
	return out, nil
}
