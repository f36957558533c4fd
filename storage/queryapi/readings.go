package queryapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
)

// Limits of the history endpoint.
const (
	// DefaultHistoryRange is the span returned when neither from nor to is
	// given.
	DefaultHistoryRange = time.Hour
	// MaxHistoryRange bounds to - from: the store keeps 30 days (AQ 3035),
	// a day more leaves room for clock skew at the edges.
	MaxHistoryRange = 31 * 24 * time.Hour
	// TargetHistoryPoints is about how many samples a history without an
	// explicit step returns at most.
	TargetHistoryPoints = 1000
	// MaxHistoryPoints bounds (to - from) / step, so one request cannot
	// ask for millions of rows.
	MaxHistoryPoints = 11000
	// queryTimeout bounds one request's work against the store.
	queryTimeout = 30 * time.Second
)

// niceSteps are the default steps a history picks from, so charts get
// round bucket widths.
var niceSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// Readings serves the readings API over any storage.Querier:
//
//	GET /api/points/latest?site=ID
//	GET /api/points/{site}/{point}/history?from=RFC3339&to=RFC3339&step=1m
//	GET /api/points/counts?site=ID&from=RFC3339&to=RFC3339
//
// counts (readings stored per point, to check a load run or a migration)
// needs a store that is a storage.Counter. Points are described from sites, which must be the site files the store
// was filled from.
func Readings(q storage.Querier, sites []*site.Site) http.Handler {
	return ReadingsOf(q, func() []*site.Site { return sites })
}

// ReadingsOf is Readings with the site files read at every request, so a
// centre that reloads its site files serves the new ones. scope, when
// given, keeps each request to its sites: others are left out of the
// latest readings and answer 403.
func ReadingsOf(q storage.Querier, sites func() []*site.Site, scope ...SitesOf) http.Handler {
	h := &readings{q: q, sites: sites, now: time.Now}
	if len(scope) > 0 {
		h.scope = scope[0]
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/points/latest", h.latest)
	mux.HandleFunc("GET /api/points/counts", h.counts)
	mux.HandleFunc("GET /api/points/{site}/{point}/history", h.history)
	mux.HandleFunc("/api/points/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no endpoint %s %s: use GET /api/points/latest or GET /api/points/{site}/{point}/history", r.Method, r.URL.Path))
	})
	return mux
}

type readings struct {
	q     storage.Querier
	sites func() []*site.Site
	scope SitesOf
	now   func() time.Time
}

// PointInfo describes a point as the site file defines it.
type PointInfo struct {
	Site       string     `json:"site"`
	SiteName   string     `json:"site_name,omitempty"`
	Source     string     `json:"source"`
	SourceName string     `json:"source_name,omitempty"`
	Point      string     `json:"point"`
	Name       string     `json:"name,omitempty"`
	Kind       site.Kind  `json:"kind"`
	Gas        string     `json:"gas,omitempty"`
	Unit       string     `json:"unit,omitempty"`
	Range      RangeJSON  `json:"range"`
	Limits     LimitsJSON `json:"limits"`
}

// RangeJSON is a point's measuring range.
type RangeJSON struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// LimitsJSON are a point's set points; absent ones are left out.
type LimitsJSON struct {
	HH      *float64 `json:"hh,omitempty"`
	H       *float64 `json:"h,omitempty"`
	L       *float64 `json:"l,omitempty"`
	LL      *float64 `json:"ll,omitempty"`
	Restore *float64 `json:"restore,omitempty"`
}

// LatestPoint is a point with its newest stored reading. Time, Value and
// Quality are absent when nothing was ever stored for the point; Value is
// absent when the reading carried none (bad, comm_fail).
type LatestPoint struct {
	PointInfo
	Time    *protocol.Time   `json:"time,omitempty"`
	Value   *float64         `json:"value,omitempty"`
	Quality protocol.Quality `json:"quality,omitempty"`
}

// LatestResponse is the body of GET /api/points/latest.
type LatestResponse struct {
	Time   protocol.Time `json:"time"` // when the answer was made
	Points []LatestPoint `json:"points"`
}

// HistorySample is one stored reading of a point.
type HistorySample struct {
	Time    protocol.Time    `json:"time"`
	Value   *float64         `json:"value,omitempty"`
	Quality protocol.Quality `json:"quality"`
}

// HistoryResponse is the body of GET /api/points/{site}/{point}/history.
type HistoryResponse struct {
	PointInfo
	From        protocol.Time   `json:"from"`
	To          protocol.Time   `json:"to"`
	Step        string          `json:"step"`
	StepSeconds float64         `json:"step_seconds"`
	Samples     []HistorySample `json:"samples"`
}

func (h *readings) latest(w http.ResponseWriter, r *http.Request) {
	siteID := r.URL.Query().Get("site")
	var sites []*site.Site
	if siteID != "" {
		s, ok := h.siteFor(w, r, siteID)
		if !ok {
			return
		}
		sites = []*site.Site{s}
	} else {
		for _, s := range h.sites() {
			if allowed(h.scope, r, s.ID) {
				sites = append(sites, s)
			}
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	samples, err := h.q.Latest(ctx, siteID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("latest readings of site %q: %w", siteID, err))
		return
	}
	newest := make(map[storage.Point]storage.Sample, len(samples))
	for _, sm := range samples {
		newest[storage.Point{Site: sm.Site, Point: sm.Point}] = sm
	}
	resp := LatestResponse{Time: protocol.Time{Time: h.now()}, Points: []LatestPoint{}}
	for _, s := range sites {
		for si := range s.Sources {
			src := &s.Sources[si]
			for pi := range src.Points {
				lp := LatestPoint{PointInfo: describe(s, src, &src.Points[pi])}
				if sm, ok := newest[storage.Point{Site: s.ID, Point: lp.Point}]; ok {
					lp.Time = &protocol.Time{Time: sm.Time}
					lp.Value = finite(sm)
					lp.Quality = sm.Quality
				}
				resp.Points = append(resp.Points, lp)
			}
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// CountsResponse is the body of GET /api/points/counts.
type CountsResponse struct {
	Site   string           `json:"site"`
	From   protocol.Time    `json:"from"`
	To     protocol.Time    `json:"to"`
	Total  int64            `json:"total"`
	Points map[string]int64 `json:"points"`
}

func (h *readings) counts(w http.ResponseWriter, r *http.Request) {
	c, ok := h.q.(storage.Counter)
	if !ok {
		writeError(w, http.StatusNotImplemented, errors.New("this store does not count readings"))
		return
	}
	siteID := r.URL.Query().Get("site")
	if _, ok := h.siteFor(w, r, siteID); !ok {
		return
	}
	var bounds [2]time.Time
	for i, name := range []string{"from", "to"} {
		v := r.URL.Query().Get(name)
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("parameter %s %q: want an RFC 3339 time: %w", name, v, err))
			return
		}
		bounds[i] = t
	}
	if bounds[1].Before(bounds[0]) || bounds[1].Sub(bounds[0]) > MaxHistoryRange {
		writeError(w, http.StatusBadRequest, fmt.Errorf("from %s to %s: want from ≤ to within %v", bounds[0].Format(time.RFC3339), bounds[1].Format(time.RFC3339), MaxHistoryRange))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	points, err := c.Count(ctx, siteID, bounds[0], bounds[1])
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("count readings of site %q: %w", siteID, err))
		return
	}
	resp := CountsResponse{Site: siteID, From: protocol.Time{Time: bounds[0]}, To: protocol.Time{Time: bounds[1]}, Points: points}
	for _, n := range points {
		resp.Total += n
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *readings) history(w http.ResponseWriter, r *http.Request) {
	siteID, pointID := r.PathValue("site"), r.PathValue("point")
	s, ok := h.siteFor(w, r, siteID)
	if !ok {
		return
	}
	ref := s.Point(pointID)
	if ref == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("unknown point %q of site %q", pointID, siteID))
		return
	}
	from, to, step, err := historyParams(r, h.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("history of %s/%s: %w", siteID, pointID, err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	samples, err := h.q.Range(ctx, storage.Point{Site: siteID, Point: pointID}, from, to, step)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("history of %s/%s: %w", siteID, pointID, err))
		return
	}
	resp := HistoryResponse{
		PointInfo: describe(s, ref.Source, ref.Point),
		From:      protocol.Time{Time: from}, To: protocol.Time{Time: to},
		Step: step.String(), StepSeconds: step.Seconds(),
		Samples: make([]HistorySample, 0, len(samples)),
	}
	for _, sm := range samples {
		resp.Samples = append(resp.Samples, HistorySample{Time: protocol.Time{Time: sm.Time}, Value: finite(sm), Quality: sm.Quality})
	}
	writeJSON(w, http.StatusOK, resp)
}

// historyParams reads from, to and step, applying the defaults and limits.
func historyParams(r *http.Request, now time.Time) (from, to time.Time, step time.Duration, err error) {
	q := r.URL.Query()
	fromS, toS, stepS := q.Get("from"), q.Get("to"), q.Get("step")
	to = now
	if toS != "" {
		if to, err = parseRFC3339("to", toS); err != nil {
			return
		}
	}
	from = to.Add(-DefaultHistoryRange)
	if fromS != "" {
		if from, err = parseRFC3339("from", fromS); err != nil {
			return
		}
	}
	span := to.Sub(from)
	switch {
	case span <= 0:
		err = fmt.Errorf("parameter from: %s is not before to %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
		return
	case span > MaxHistoryRange:
		err = fmt.Errorf("parameter from: range %s to %s is %v, more than the maximum %v", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), span, MaxHistoryRange)
		return
	}
	if stepS == "" {
		return from, to, defaultStep(span), nil
	}
	if step, err = parseStep(stepS); err != nil {
		return
	}
	if n := int64(span / step); n > MaxHistoryPoints {
		err = fmt.Errorf("parameter step: %v over %v gives %d points, more than the maximum %d; use a step of at least %v",
			step, span, n, MaxHistoryPoints, minStep(span))
		return
	}
	return from, to, step, nil
}

func parseRFC3339(name, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parameter %s: %q is not an RFC 3339 time such as 2026-03-01T08:00:00Z", name, s)
	}
	return t, nil
}

// parseStep reads a Go duration (30s, 1m, 1h30m) or a number of seconds.
func parseStep(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > MaxHistoryRange.Seconds() {
			return 0, fmt.Errorf("parameter step: %q is not a duration such as 10s, 1m or 1h", s)
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < time.Millisecond {
		return 0, fmt.Errorf("parameter step: %q must be at least 1ms", s)
	}
	return d, nil
}

// defaultStep is the smallest nice step that keeps span within
// TargetHistoryPoints.
func defaultStep(span time.Duration) time.Duration {
	for _, s := range niceSteps {
		if span/s <= TargetHistoryPoints {
			return s
		}
	}
	return minStep(span)
}

// minStep is the smallest whole-second step within MaxHistoryPoints.
func minStep(span time.Duration) time.Duration {
	s := (span + MaxHistoryPoints - 1) / MaxHistoryPoints
	return max(time.Second, (s + time.Second - 1).Truncate(time.Second))
}

// siteFor finds a site the request may read, answering 404 for an unknown
// one and 403 for one outside its scope.
func (h *readings) siteFor(w http.ResponseWriter, r *http.Request, id string) (*site.Site, bool) {
	s := h.site(id)
	switch {
	case s == nil:
		writeError(w, http.StatusNotFound, fmt.Errorf("unknown site %q (parameter site)", id))
		return nil, false
	case !allowed(h.scope, r, id):
		writeError(w, http.StatusForbidden, fmt.Errorf("site %q is outside your scope", id))
		return nil, false
	}
	return s, true
}

func (h *readings) site(id string) *site.Site {
	for _, s := range h.sites() {
		if s.ID == id {
			return s
		}
	}
	return nil
}

func describe(s *site.Site, src *site.Source, p *site.Point) PointInfo {
	return PointInfo{
		Site: s.ID, SiteName: s.Name, Source: src.ID, SourceName: src.Name,
		Point: p.ID, Name: p.Name, Kind: p.Kind, Gas: p.Gas, Unit: p.Unit,
		Range:  RangeJSON{Min: p.Range.Min, Max: p.Range.Max},
		Limits: LimitsJSON{HH: p.Limits.HH, H: p.Limits.H, L: p.Limits.L, LL: p.Limits.LL, Restore: p.Limits.Restore},
	}
}

// finite is the sample's value, or nil when it has none or it is not a
// number JSON can carry.
func finite(sm storage.Sample) *float64 {
	if !sm.HasValue || math.IsNaN(sm.Value) || math.IsInf(sm.Value, 0) {
		return nil
	}
	v := sm.Value
	return &v
}

// errorBody is the body of every error of the readings API.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, errorBody{Error: strings.TrimSpace(err.Error())})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}
