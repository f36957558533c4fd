package queryapi

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// SitesOf tells which sites a request may read: every site (all), or
// those listed (none when the list is empty). The centre answers it from
// the caller's scope; nil lets every request read every site.
type SitesOf func(r *http.Request) (sites []string, all bool)

// noSite is a site label value no series has: a matcher on it selects
// nothing, where site="" would select the series without a site label.
const noSite = "\x00no site in scope"

// siteMatcher is the matcher that keeps a request to its sites; nil when it
// may read everything.
func siteMatcher(scope SitesOf, r *http.Request) *labels.Matcher {
	if scope == nil {
		return nil
	}
	sites, all := scope(r)
	if all {
		return nil
	}
	if len(sites) == 0 {
		return labels.MustNewMatcher(labels.MatchEqual, "site", noSite)
	}
	quoted := make([]string, len(sites))
	for i, s := range sites {
		quoted[i] = regexp.QuoteMeta(s)
	}
	slices.Sort(quoted)
	return labels.MustNewMatcher(labels.MatchRegexp, "site", strings.Join(quoted, "|"))
}

// allowed tells whether a request may read a site.
func allowed(scope SitesOf, r *http.Request, site string) bool {
	if scope == nil {
		return true
	}
	sites, all := scope(r)
	return all || slices.Contains(sites, site)
}

// scopedQueryable adds a site matcher to every selection, so a query, a
// series or a label request sees only the series of the sites in scope.
type scopedQueryable struct {
	q promstorage.Queryable
	m *labels.Matcher
}

func (s scopedQueryable) Querier(mint, maxt int64) (promstorage.Querier, error) {
	q, err := s.q.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return scopedQuerier{Querier: q, m: s.m}, nil
}

type scopedQuerier struct {
	promstorage.Querier
	m *labels.Matcher
}

func (s scopedQuerier) Select(ctx context.Context, sortSeries bool, hints *promstorage.SelectHints, ms ...*labels.Matcher) promstorage.SeriesSet {
	return s.Querier.Select(ctx, sortSeries, hints, append(slices.Clip(ms), s.m)...)
}

func (s scopedQuerier) LabelValues(ctx context.Context, name string, hints *promstorage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return s.Querier.LabelValues(ctx, name, hints, append(slices.Clip(ms), s.m)...)
}

func (s scopedQuerier) LabelNames(ctx context.Context, hints *promstorage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return s.Querier.LabelNames(ctx, hints, append(slices.Clip(ms), s.m)...)
}
