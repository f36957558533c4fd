package queryapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// Limits of the Prometheus query API.
const (
	// PromQueryTimeout bounds one PromQL evaluation.
	PromQueryTimeout = 30 * time.Second
	// PromLookbackDelta is how far back an instant selector looks for a
	// point's last sample: a point silent longer drops out of queries.
	PromLookbackDelta = 5 * time.Minute
	// PromMaxSamples bounds the samples one query holds in memory at once
	// (about 16 bytes each), so one wide query cannot exhaust the centre.
	PromMaxSamples = 50_000_000
	// PromMaxPoints bounds a range query's steps per series, as Prometheus
	// itself does.
	PromMaxPoints = 11000
	// PromMaxConcurrent queries run at once; more wait for a slot.
	PromMaxConcurrent = 8
	// maxFormBytes bounds a POST body of form parameters.
	maxFormBytes = 1 << 20
)

// Prometheus error types, as its HTTP API names them.
const (
	errBadData   = "bad_data"
	errExecution = "execution"
	errTimeout   = "timeout"
	errCanceled  = "canceled"
	errInternal  = "internal"
	errNotFound  = "not_found"
)

// Prometheus serves the Prometheus HTTP query API over q (the embedded
// store's Queryable()), enough for Grafana's Prometheus data source:
//
//	GET|POST /api/v1/query              query, time, timeout
//	GET|POST /api/v1/query_range        query, start, end, step, timeout
//	GET|POST /api/v1/series             match[], start, end, limit
//	GET|POST /api/v1/labels             match[], start, end, limit
//	GET      /api/v1/label/{name}/values match[], start, end, limit
//	GET      /api/v1/status/buildinfo
//	GET      /api/v1/metadata, /api/v1/query_exemplars (answered, little to say)
//
// scope, when given, keeps each request to the series of its sites (their
// site label), in queries, series and label answers alike.
func Prometheus(q promstorage.Queryable, scope ...SitesOf) http.Handler {
	p := &promAPI{
		q: q,
		engine: promql.NewEngine(promql.EngineOpts{
			MaxSamples:           PromMaxSamples,
			Timeout:              PromQueryTimeout,
			LookbackDelta:        PromLookbackDelta,
			EnableAtModifier:     true,
			EnableNegativeOffset: true,
		}),
		parser: parser.NewParser(parser.Options{}),
		slots:  make(chan struct{}, PromMaxConcurrent),
		now:    time.Now,
	}
	if len(scope) > 0 {
		p.scope = scope[0]
	}
	mux := http.NewServeMux()
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		mux.HandleFunc(m+" /api/v1/query", p.query)
		mux.HandleFunc(m+" /api/v1/query_range", p.queryRange)
		mux.HandleFunc(m+" /api/v1/series", p.series)
		mux.HandleFunc(m+" /api/v1/labels", p.labels)
		mux.HandleFunc(m+" /api/v1/label/{name}/values", p.labelValues)
		mux.HandleFunc(m+" /api/v1/query_exemplars", p.exemplars)
	}
	mux.HandleFunc("GET /api/v1/status/buildinfo", p.buildInfo)
	mux.HandleFunc("GET /api/v1/metadata", p.metadata)
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		promError(w, http.StatusNotFound, errNotFound, fmt.Errorf("no endpoint %s %s in HazardWatch's Prometheus API", r.Method, r.URL.Path))
	})
	return mux
}

type promAPI struct {
	q      promstorage.Queryable
	scope  SitesOf
	engine *promql.Engine
	parser parser.Parser
	slots  chan struct{}
	now    func() time.Time
}

// queryable is the store as the request may see it: the sites of its
// scope only.
func (p *promAPI) queryable(r *http.Request) promstorage.Queryable {
	if m := siteMatcher(p.scope, r); m != nil {
		return scopedQueryable{q: p.q, m: m}
	}
	return p.q
}

// promResponse is Prometheus' response envelope.
type promResponse struct {
	Status    string   `json:"status"`
	Data      any      `json:"data,omitempty"`
	ErrorType string   `json:"errorType,omitempty"`
	Error     string   `json:"error,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Infos     []string `json:"infos,omitempty"`
}

type queryData struct {
	ResultType parser.ValueType `json:"resultType"`
	Result     any              `json:"result"`
}

func (p *promAPI) query(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	qs, ok := requiredParam(w, r, "query")
	if !ok {
		return
	}
	ts := p.now()
	if s := r.Form.Get("time"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			promError(w, http.StatusBadRequest, errBadData, fmt.Errorf("parameter time: %w", err))
			return
		}
		ts = t
	}
	ctx, cancel, ok := p.queryContext(w, r)
	if !ok {
		return
	}
	defer cancel()
	qry, err := p.engine.NewInstantQuery(ctx, p.queryable(r), nil, qs, ts)
	p.run(ctx, w, qry, err)
}

func (p *promAPI) queryRange(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	qs, ok := requiredParam(w, r, "query")
	if !ok {
		return
	}
	var start, end time.Time
	var step time.Duration
	for _, pt := range []struct {
		name string
		t    *time.Time
	}{{"start", &start}, {"end", &end}} {
		s, ok := requiredParam(w, r, pt.name)
		if !ok {
			return
		}
		t, err := parseTime(s)
		if err != nil {
			promError(w, http.StatusBadRequest, errBadData, fmt.Errorf("parameter %s: %w", pt.name, err))
			return
		}
		*pt.t = t
	}
	s, ok := requiredParam(w, r, "step")
	if !ok {
		return
	}
	step, err := parsePromDuration(s)
	if err != nil || step <= 0 {
		promError(w, http.StatusBadRequest, errBadData, fmt.Errorf("parameter step: %q is not a positive duration such as 15s or a number of seconds", s))
		return
	}
	if end.Before(start) {
		promError(w, http.StatusBadRequest, errBadData, errors.New("parameter end: end timestamp must not be before start time"))
		return
	}
	if n := end.Sub(start) / step; n > PromMaxPoints {
		promError(w, http.StatusBadRequest, errBadData, fmt.Errorf("parameter step: exceeded maximum resolution of %d points per timeseries (%d asked); try a larger step", PromMaxPoints, n))
		return
	}
	ctx, cancel, ok := p.queryContext(w, r)
	if !ok {
		return
	}
	defer cancel()
	qry, err := p.engine.NewRangeQuery(ctx, p.queryable(r), nil, qs, start, end, step)
	p.run(ctx, w, qry, err)
}

// queryContext applies the optional timeout parameter and takes a
// concurrency slot, released by the returned cancel.
func (p *promAPI) queryContext(w http.ResponseWriter, r *http.Request) (context.Context, context.CancelFunc, bool) {
	timeout := PromQueryTimeout
	if s := r.Form.Get("timeout"); s != "" {
		d, err := parsePromDuration(s)
		if err != nil || d <= 0 {
			promError(w, http.StatusBadRequest, errBadData, fmt.Errorf("parameter timeout: %q is not a positive duration such as 30s", s))
			return nil, nil, false
		}
		timeout = min(timeout, d)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		cancel()
		promError(w, http.StatusServiceUnavailable, errTimeout, fmt.Errorf("query waited %v for one of %d query slots", timeout, PromMaxConcurrent))
		return nil, nil, false
	}
	return ctx, func() { <-p.slots; cancel() }, true
}

// run executes a query built by the engine and writes its result.
func (p *promAPI) run(ctx context.Context, w http.ResponseWriter, qry promql.Query, err error) {
	if err != nil {
		promError(w, http.StatusBadRequest, errBadData, fmt.Errorf("parameter query: %w", err))
		return
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		status, kind := execErrorKind(res.Err)
		promError(w, status, kind, res.Err)
		return
	}
	warnings, infos := res.Warnings.AsStrings(qry.String(), 10, 10)
	result, err := resultJSON(res.Value)
	if err != nil {
		promError(w, http.StatusInternalServerError, errInternal, err)
		return
	}
	writeJSON(w, http.StatusOK, promResponse{Status: "success", Data: queryData{ResultType: res.Value.Type(), Result: result},
		Warnings: warnings, Infos: infos})
}

// execErrorKind maps an evaluation error to Prometheus' status and type.
func execErrorKind(err error) (int, string) {
	var (
		timeout  promql.ErrQueryTimeout
		canceled promql.ErrQueryCanceled
		storage  promql.ErrStorage
	)
	switch {
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, errTimeout
	case errors.As(err, &canceled), errors.Is(err, context.Canceled):
		return 499, errCanceled // the client went away, as Prometheus answers
	case errors.As(err, &storage):
		return http.StatusInternalServerError, errInternal
	}
	return http.StatusUnprocessableEntity, errExecution
}

// metaRequest is a parsed series or labels request with its querier open;
// close releases both.
type metaRequest struct {
	ctx        context.Context
	q          promstorage.Querier
	matchers   [][]*labels.Matcher
	start, end int64
	limit      int
	close      func()
}

// openMeta parses a series or labels request (match[] required when
// needMatch) and opens a querier over its time range; on a bad request it
// has answered already and returns false.
func (p *promAPI) openMeta(w http.ResponseWriter, r *http.Request, needMatch bool) (metaRequest, bool) {
	if !parseForm(w, r) {
		return metaRequest{}, false
	}
	matchers, ok := p.matcherSets(w, r, needMatch)
	if !ok {
		return metaRequest{}, false
	}
	start, end, limit, ok := metaParams(w, r)
	if !ok {
		return metaRequest{}, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), PromQueryTimeout)
	q, err := p.queryable(r).Querier(start, end)
	if err != nil {
		cancel()
		promError(w, http.StatusInternalServerError, errInternal, fmt.Errorf("open querier: %w", err))
		return metaRequest{}, false
	}
	return metaRequest{ctx: ctx, q: q, matchers: matchers, start: start, end: end, limit: limit,
		close: func() { _ = q.Close(); cancel() }}, true
}

func (p *promAPI) series(w http.ResponseWriter, r *http.Request) {
	m, ok := p.openMeta(w, r, true)
	if !ok {
		return
	}
	defer m.close()
	ctx, q, matchers, start, end, limit := m.ctx, m.q, m.matchers, m.start, m.end, m.limit
	hints := &promstorage.SelectHints{Start: start, End: end, Func: "series", Limit: limit}
	sets := make([]promstorage.SeriesSet, 0, len(matchers))
	for _, ms := range matchers {
		sets = append(sets, q.Select(ctx, true, hints, ms...))
	}
	set := promstorage.NewMergeSeriesSet(sets, 0, promstorage.ChainedSeriesMerge)
	out := []labels.Labels{}
	for set.Next() {
		if limit > 0 && len(out) >= limit {
			break
		}
		out = append(out, set.At().Labels())
	}
	if err := set.Err(); err != nil {
		promError(w, http.StatusInternalServerError, errInternal, fmt.Errorf("select series: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, promResponse{Status: "success", Data: out, Warnings: warningStrings(set.Warnings())})
}

func (p *promAPI) labels(w http.ResponseWriter, r *http.Request) {
	p.labelQuery(w, r, func(ctx context.Context, q promstorage.Querier, hints *promstorage.LabelHints, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelNames(ctx, hints, ms...)
	})
}

func (p *promAPI) labelValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "" || !utf8.ValidString(name) {
		promError(w, http.StatusBadRequest, errBadData, fmt.Errorf("label name %q is not valid", name))
		return
	}
	p.labelQuery(w, r, func(ctx context.Context, q promstorage.Querier, hints *promstorage.LabelHints, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelValues(ctx, name, hints, ms...)
	})
}

type labelFunc func(context.Context, promstorage.Querier, *promstorage.LabelHints, []*labels.Matcher) ([]string, annotations.Annotations, error)

// labelQuery answers a label names or values request: the union over the
// match[] sets, or over every series without them.
func (p *promAPI) labelQuery(w http.ResponseWriter, r *http.Request, list labelFunc) {
	m, ok := p.openMeta(w, r, false)
	if !ok {
		return
	}
	defer m.close()
	ctx, q, matchers, limit := m.ctx, m.q, m.matchers, m.limit
	if len(matchers) == 0 {
		matchers = [][]*labels.Matcher{nil}
	}
	var warnings annotations.Annotations
	seen := map[string]bool{}
	for _, ms := range matchers {
		names, ws, err := list(ctx, q, &promstorage.LabelHints{Limit: limit}, ms)
		if err != nil {
			promError(w, http.StatusInternalServerError, errInternal, fmt.Errorf("list labels: %w", err))
			return
		}
		warnings.Merge(ws)
		for _, n := range names {
			seen[n] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	writeJSON(w, http.StatusOK, promResponse{Status: "success", Data: out, Warnings: warningStrings(warnings)})
}

// metaParams reads the optional start, end and limit of the metadata
// endpoints, as milliseconds; absent times mean all of the store.
func metaParams(w http.ResponseWriter, r *http.Request) (start, end int64, limit int, ok bool) {
	start, end = math.MinInt64, math.MaxInt64
	for _, pt := range []struct {
		name string
		ms   *int64
	}{{"start", &start}, {"end", &end}} {
		s := r.Form.Get(pt.name)
		if s == "" {
			continue
		}
		t, err := parseTime(s)
		if err != nil {
			promError(w, http.StatusBadRequest, errBadData, fmt.Errorf("parameter %s: %w", pt.name, err))
			return 0, 0, 0, false
		}
		*pt.ms = t.UnixMilli()
	}
	if end < start {
		promError(w, http.StatusBadRequest, errBadData, errors.New("parameter end: end timestamp must not be before start time"))
		return 0, 0, 0, false
	}
	if s := r.Form.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			promError(w, http.StatusBadRequest, errBadData, fmt.Errorf("parameter limit: %q is not a number of results, 0 or more", s))
			return 0, 0, 0, false
		}
		limit = n
	}
	return start, end, limit, true
}

// matcherSets parses every match[] selector.
func (p *promAPI) matcherSets(w http.ResponseWriter, r *http.Request, required bool) ([][]*labels.Matcher, bool) {
	selectors := r.Form["match[]"]
	if required && len(selectors) == 0 {
		promError(w, http.StatusBadRequest, errBadData, errors.New("parameter match[]: at least one series selector is required, e.g. match[]=hazardwatch_value{site=\"jh-chem\"}"))
		return nil, false
	}
	sets := make([][]*labels.Matcher, 0, len(selectors))
	for _, s := range selectors {
		ms, err := p.parser.ParseMetricSelector(s)
		if err != nil {
			promError(w, http.StatusBadRequest, errBadData, fmt.Errorf("parameter match[]: %q: %w", s, err))
			return nil, false
		}
		if !matchesSomething(ms) {
			promError(w, http.StatusBadRequest, errBadData, fmt.Errorf("parameter match[]: %q matches every series; give at least one matcher that does not match the empty string", s))
			return nil, false
		}
		sets = append(sets, ms)
	}
	return sets, true
}

// matchesSomething refuses selectors like {a=~".*"} that would select the
// whole store, as Prometheus does.
func matchesSomething(ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches("") {
			return true
		}
	}
	return false
}

func (p *promAPI) buildInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, promResponse{Status: "success", Data: map[string]string{
		"version":   promVersion(),
		"revision":  "",
		"branch":    "hazardwatch",
		"buildUser": "hazardwatch",
		"buildDate": "",
		"goVersion": runtime.Version(),
	}})
}

// promVersion is the Prometheus release whose engine evaluates queries;
// Grafana reads it to know which PromQL features it may use.
func promVersion() string {
	// go.mod's version, for binaries built without module information.
	const fallback = "3.16.0"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return fallback
	}
	for _, dep := range info.Deps {
		if dep.Path == "github.com/prometheus/prometheus" {
			if v, ok := releaseOf(dep.Version); ok {
				return v
			}
		}
	}
	return fallback
}

// releaseOf turns the library's module version into the Prometheus release
// it was cut from: v0.316.0 is Prometheus 3.16.0, v0.300.1 is 3.0.1.
func releaseOf(module string) (string, bool) {
	parts := strings.SplitN(strings.TrimPrefix(module, "v"), ".", 3)
	if len(parts) != 3 || parts[0] != "0" || len(parts[1]) < 3 {
		return "", false
	}
	major, err1 := strconv.Atoi(parts[1][:len(parts[1])-2])
	minor, err2 := strconv.Atoi(parts[1][len(parts[1])-2:])
	patch, err3 := strconv.Atoi(strings.SplitN(parts[2], "-", 2)[0])
	if err1 != nil || err2 != nil || err3 != nil {
		return "", false
	}
	return fmt.Sprintf("%d.%d.%d", major, minor, patch), true
}

// metadata describes HazardWatch's two metrics, for Grafana's metric
// browser.
func (p *promAPI) metadata(w http.ResponseWriter, _ *http.Request) {
	type meta struct {
		Type string `json:"type"`
		Help string `json:"help"`
		Unit string `json:"unit"`
	}
	writeJSON(w, http.StatusOK, promResponse{Status: "success", Data: map[string][]meta{
		"hazardwatch_value":   {{Type: "gauge", Help: "A point's reading in its engineering unit (the site file's unit), when the reading carried a value."}},
		"hazardwatch_quality": {{Type: "gauge", Help: "A point's reading quality: 0 good, 1 bad (sensor fault), 2 comm_fail, 3 over_range."}},
	}})
}

// exemplars: HazardWatch stores none.
func (p *promAPI) exemplars(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, promResponse{Status: "success", Data: []struct{}{}})
}

// parseForm reads query and POST form parameters, bounding the body.
func parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		promError(w, http.StatusBadRequest, errBadData, fmt.Errorf("read form parameters (at most %d bytes): %w", maxFormBytes, err))
		return false
	}
	return true
}

func requiredParam(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	s := r.Form.Get(name)
	if s == "" {
		promError(w, http.StatusBadRequest, errBadData, fmt.Errorf("parameter %s is required", name))
		return "", false
	}
	return s, true
}

// parseTime reads a Unix time in seconds (decimals allowed) or an RFC 3339
// time, as Prometheus accepts.
func parseTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e13 {
			return time.Time{}, fmt.Errorf("%q is not a usable Unix time", s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a Unix time in seconds nor an RFC 3339 time", s)
	}
	return t, nil
}

// parsePromDuration reads a number of seconds or a Prometheus duration
// (30s, 5m, 1h, 1d).
func parsePromDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f*float64(time.Second)) >= math.MaxInt64 {
			return 0, fmt.Errorf("%q is not a usable number of seconds", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: %w", s, err)
	}
	return time.Duration(d), nil
}

func warningStrings(a annotations.Annotations) []string {
	if len(a) == 0 {
		return nil
	}
	warnings, infos := a.AsStrings("", 10, 10)
	return append(warnings, infos...)
}

func promError(w http.ResponseWriter, status int, kind string, err error) {
	writeJSON(w, status, promResponse{Status: "error", ErrorType: kind, Error: err.Error()})
}

// Result encoding, in Prometheus' JSON format: times as Unix seconds
// (numbers), values as strings so NaN and ±Inf survive JSON.

type sampleValue struct {
	T int64
	V string
}

func (s sampleValue) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	b = appendUnixSeconds(b, s.T)
	b = append(b, ',')
	b = strconv.AppendQuote(b, s.V)
	return append(b, ']'), nil
}

type histogramValue struct {
	T int64
	H *histogram.FloatHistogram
}

func (h histogramValue) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	b = appendUnixSeconds(b, h.T)
	b = append(b, `,{"count":`...)
	b = strconv.AppendQuote(b, formatValue(h.H.Count))
	b = append(b, `,"sum":`...)
	b = strconv.AppendQuote(b, formatValue(h.H.Sum))
	b = append(b, `,"buckets":[`...)
	first := true
	for it := h.H.AllBucketIterator(); it.Next(); {
		bk := it.At()
		if bk.Count == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(boundaryRule(bk)), 10)
		for _, v := range []float64{bk.Lower, bk.Upper, bk.Count} {
			b = append(b, ',')
			b = strconv.AppendQuote(b, formatValue(v))
		}
		b = append(b, ']')
	}
	return append(b, "]}]"...), nil
}

// boundaryRule numbers which ends of a bucket are inclusive: 0 upper only,
// 1 lower only, 2 neither, 3 both.
func boundaryRule(b histogram.Bucket[float64]) int {
	switch {
	case b.LowerInclusive && b.UpperInclusive:
		return 3
	case b.LowerInclusive:
		return 1
	case b.UpperInclusive:
		return 0
	}
	return 2
}

type vectorSample struct {
	Metric    labels.Labels   `json:"metric"`
	Value     *sampleValue    `json:"value,omitempty"`
	Histogram *histogramValue `json:"histogram,omitempty"`
}

type matrixSeries struct {
	Metric     labels.Labels    `json:"metric"`
	Values     []sampleValue    `json:"values,omitempty"`
	Histograms []histogramValue `json:"histograms,omitempty"`
}

func resultJSON(v parser.Value) (any, error) {
	switch v := v.(type) {
	case promql.Scalar:
		return sampleValue{T: v.T, V: formatValue(v.V)}, nil
	case promql.String:
		return sampleValue{T: v.T, V: v.V}, nil
	case promql.Vector:
		out := make([]vectorSample, 0, len(v))
		for _, s := range v {
			vs := vectorSample{Metric: s.Metric}
			if s.H != nil {
				vs.Histogram = &histogramValue{T: s.T, H: s.H}
			} else {
				vs.Value = &sampleValue{T: s.T, V: formatValue(s.F)}
			}
			out = append(out, vs)
		}
		return out, nil
	case promql.Matrix:
		out := make([]matrixSeries, 0, len(v))
		for _, s := range v {
			ms := matrixSeries{Metric: s.Metric}
			for _, f := range s.Floats {
				ms.Values = append(ms.Values, sampleValue{T: f.T, V: formatValue(f.F)})
			}
			for _, h := range s.Histograms {
				ms.Histograms = append(ms.Histograms, histogramValue{T: h.T, H: h.H})
			}
			out = append(out, ms)
		}
		return out, nil
	}
	return nil, fmt.Errorf("query result of unexpected type %T", v)
}

func formatValue(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// appendUnixSeconds writes milliseconds as seconds with up to three
// decimals, e.g. 1700000000.123.
func appendUnixSeconds(b []byte, ms int64) []byte {
	return strconv.AppendFloat(b, float64(ms)/1000, 'f', -1, 64)
}
