package influx

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/query"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/storage"
)

// Columns added before aggregateWindow: timeColumn keeps a row's own time,
// which aggregateWindow replaces with the window's end, and hasValueColumn
// says whether it had a value, which Flux 1.8's windowed last() turns
// from null into 0.
const (
	timeColumn     = "at"
	hasValueColumn = "has_value"
)

// Latest returns the newest sample of each point of site (all sites when
// site is empty), sorted by site and point. Source is set only for
// readings written by earlier versions, which tagged it.
func (s *Store) Latest(ctx context.Context, site string) ([]storage.Sample, error) {
	filter := fmt.Sprintf(`r._measurement == %s`, fluxString(Measurement))
	if site != "" {
		filter += fmt.Sprintf(` and r.%s == %s`, TagSite, fluxString(site))
	}
	// last() per field series: the newest value may be older than the
	// newest quality when the newest reading had none.
	q := fmt.Sprintf(`from(bucket: %s)
  |> range(start: 0)
  |> filter(fn: (r) => %s)
  |> last()`, fluxString(s.opts.Bucket), filter)
	rows, err := s.run(ctx, q, "latest of site "+site)
	if err != nil {
		return nil, err
	}
	// A point's newest reading is at the later of its two last rows: a
	// quality row as new means it was not good, a value row as new carries
	// its value. Good readings have no quality row (older data may have one
	// saying good).
	type key struct{ site, point string }
	newest := make(map[key]*storage.Sample)
	for _, r := range rows {
		k := key{tag(r, TagSite), tag(r, TagPoint)}
		cur, ok := newest[k]
		switch {
		case !ok || r.Time().After(cur.Time):
			cur = &storage.Sample{Site: k.site, Point: k.point, Source: tag(r, TagSource), Time: r.Time(), Quality: protocol.Good}
			newest[k] = cur
		case r.Time().Before(cur.Time):
			continue // an older row, e.g. the same point under another source tag
		}
		switch r.Field() {
		case FieldQuality:
			if q, _ := r.Value().(string); q != "" {
				cur.Quality = protocol.Quality(q)
			}
		case FieldValue:
			if f, ok := r.Value().(float64); ok {
				cur.Value, cur.HasValue = f, true
			}
		}
	}
	out := make([]storage.Sample, 0, len(newest))
	for _, sm := range newest {
		out = append(out, *sm)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Site != out[j].Site {
			return out[i].Site < out[j].Site
		}
		return out[i].Point < out[j].Point
	})
	return out, nil
}

// Range returns a point's samples in [from, to] in time order, at most one
// per step (the last of each step, at its own time) when step > 0.
func (s *Store) Range(ctx context.Context, p storage.Point, from, to time.Time, step time.Duration) ([]storage.Sample, error) {
	switch {
	case p.Site == "" || p.Point == "":
		return nil, fmt.Errorf("influx: range: site %q and point %q are both required", p.Site, p.Point)
	case to.Before(from):
		return nil, fmt.Errorf("influx: range %s/%s: to %s is before from %s", p.Site, p.Point, to.Format(time.RFC3339), from.Format(time.RFC3339))
	case step < 0:
		return nil, fmt.Errorf("influx: range %s/%s: negative step %s", p.Site, p.Point, step)
	case step > 0 && step < time.Millisecond:
		return nil, fmt.Errorf("influx: range %s/%s: step %s is finer than the stored millisecond precision", p.Site, p.Point, step)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %s and r.%s == %s and r.%s == %s)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group(columns: [%q, %q])`,
		fluxString(s.opts.Bucket), from.UTC().Format(time.RFC3339Nano), to.Add(time.Nanosecond).UTC().Format(time.RFC3339Nano),
		fluxString(Measurement), TagSite, fluxString(p.Site), TagPoint, fluxString(p.Point), TagSite, TagPoint)
	if step > 0 {
		fmt.Fprintf(&b, `
  |> map(fn: (r) => ({r with %s: r._time, %s: exists r.%s}))
  |> aggregateWindow(every: %dms, fn: last, column: %q, createEmpty: false)`, timeColumn, hasValueColumn, FieldValue, step.Milliseconds(), timeColumn)
	}
	b.WriteString(`
  |> sort(columns: ["_time"])`)
	rows, err := s.run(ctx, b.String(), "range of "+p.Site+"/"+p.Point)
	if err != nil {
		return nil, err
	}
	out := make([]storage.Sample, 0, len(rows))
	for _, r := range rows {
		at := r.Time()
		if t, ok := r.ValueByKey(timeColumn).(time.Time); ok {
			at = t
		}
		sm := storage.Sample{Site: p.Site, Point: p.Point, Source: tag(r, TagSource), Time: at, Quality: protocol.Good}
		if q, _ := r.ValueByKey(FieldQuality).(string); q != "" {
			sm.Quality = protocol.Quality(q) // good readings have none
		}
		if v, ok := r.ValueByKey(FieldValue).(float64); ok {
			sm.Value, sm.HasValue = v, true
		}
		if has, ok := r.ValueByKey(hasValueColumn).(bool); ok && !has {
			sm.Value, sm.HasValue = 0, false
		}
		out = append(out, sm)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// run executes a Flux query and collects its rows.
func (s *Store) run(ctx context.Context, flux, what string) ([]*query.FluxRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	res, err := s.querier.Query(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("influx: query %s at %s: %w", what, s.opts.URL, err)
	}
	defer res.Close()
	var rows []*query.FluxRecord
	for res.Next() {
		rows = append(rows, res.Record())
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("influx: query %s at %s: read result: %w", what, s.opts.URL, err)
	}
	return rows, nil
}

func tag(r *query.FluxRecord, name string) string {
	v, _ := r.ValueByKey(name).(string)
	return v
}

// fluxString quotes s as a Flux string literal, escaping what would end
// it or start an interpolation.
func fluxString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

var _ storage.Counter = (*Store)(nil)

// Count implements storage.Counter through Flux: a point's readings are
// its values plus its bad and comm_fail qualities (the readings without
// a value), counted per series before the sum, whose types differ.
func (s *Store) Count(ctx context.Context, site string, from, to time.Time) (map[string]int64, error) {
	if site == "" || to.Before(from) {
		return nil, fmt.Errorf("influx: count: site %q and from ≤ to are required", site)
	}
	series := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %s and r.%s == %s`, fluxString(s.opts.Bucket), from.UTC().Format(time.RFC3339Nano),
		to.Add(time.Millisecond).UTC().Format(time.RFC3339Nano), fluxString(Measurement), TagSite, fluxString(site))
	// Two streams: a predicate comparing _value with a string would not
	// type-check on the float tables.
	q := fmt.Sprintf(`values = %s and r._field == %s)
  |> count()
unvalued = %s and r._field == %s)
  |> filter(fn: (r) => r._value == %s or r._value == %s)
  |> count()
union(tables: [values, unvalued])
  |> group(columns: [%q])
  |> sum()`, series, fluxString(FieldValue), series, fluxString(FieldQuality),
		fluxString(string(protocol.Bad)), fluxString(string(protocol.CommFail)), TagPoint)
	rows, err := s.run(ctx, q, "count of site "+site)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		if n, ok := r.Value().(int64); ok {
			out[tag(r, TagPoint)] += n
		}
	}
	return out, nil
}
