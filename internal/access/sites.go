package access

import "github.com/hazardwatch/hazardwatch/site"

// Sees tells which sites the scope holds, given the site files in force
// (their region and enterprise codes): a test of a site id. A site the
// files do not know is held only by a scope that narrows by nothing but
// site ids, or by none.
func (s Scope) Sees(sites []*site.Site) func(siteID string) bool {
	if s.Whole() {
		return func(string) bool { return true }
	}
	in := make(map[string]bool, len(sites))
	for _, st := range sites {
		in[st.ID] = s.Covers(st.ID, st.Region, st.EnterpriseCode)
	}
	return func(siteID string) bool {
		held, known := in[siteID]
		return held || !known && s.Covers(siteID, "", "")
	}
}

// Keep keeps the items whose site sees holds, in order; site names an
// item's site.
func Keep[T any](items []T, site func(T) string, sees func(siteID string) bool) []T {
	out := make([]T, 0, len(items))
	for _, it := range items {
		if sees(site(it)) {
			out = append(out, it)
		}
	}
	return out
}
