package center

import (
	"context"
	"net/http"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/internal/overview"
)

// DisposalDue is how long after an incident opened its disposal record may
// be missing before the roll-up counts it overdue (处置超期).
const DisposalDue = 24 * time.Hour

// sitesOf tells which sites the request's principal sees: all of them, or
// those of the site files in force that its scope covers.
func (c *Center) sitesOf(r *http.Request) (ids []string, all bool) {
	p, ok := access.FromContext(r.Context())
	if !ok {
		return nil, false
	}
	if p.Scope.Whole() {
		return nil, true
	}
	for _, s := range c.sites() {
		if p.Scope.Covers(s.ID, s.Region, s.EnterpriseCode) {
			ids = append(ids, s.ID)
		}
	}
	return ids, false
}

// sees is sitesOf as a test of one site.
func (c *Center) sees(r *http.Request) func(site string) bool {
	ids, all := c.sitesOf(r)
	if all {
		return func(string) bool { return true }
	}
	in := make(map[string]bool, len(ids))
	for _, id := range ids {
		in[id] = true
	}
	return func(site string) bool { return in[site] }
}

// cut keeps of the status what lies in the sites a request sees.
func (st Status) cut(sees func(site string) bool) Status {
	out := Status{Time: st.Time, Sources: []SourceStatus{}, Alarms: st.Alarms[:0:0], Gateways: st.Gateways[:0:0], Rejected: st.Rejected[:0:0]}
	for _, s := range st.Sources {
		if sees(s.Site) {
			out.Sources = append(out.Sources, s)
		}
	}
	for _, a := range st.Alarms {
		if sees(a.Site) {
			out.Alarms = append(out.Alarms, a)
		}
	}
	for _, g := range st.Gateways {
		if sees(g.Site) {
			out.Gateways = append(out.Gateways, g)
		}
	}
	for _, d := range st.Rejected {
		if sees(d.Site) {
			out.Rejected = append(out.Rejected, d)
		}
	}
	return out
}

// overviewHandler serves GET /api/sources and GET /api/regions.
func (c *Center) overviewHandler() http.Handler {
	return overview.Handler(overview.Config{
		Sites:    c.sites,
		Grades:   c.alerts.SourceGrades,
		Readings: c.ingest,
		Incidents: func() map[string]overview.Incidents {
			return incidentCounts(c.alerts.Incidents(context.Background()), time.Now())
		},
		Logger: c.log,
	})
}

// incidentCounts counts the open incidents of each source.
func incidentCounts(open []incident.Incident, now time.Time) map[string]overview.Incidents {
	out := map[string]overview.Incidents{}
	for _, inc := range open {
		if inc.State == incident.Closed {
			continue
		}
		k := inc.Site + "/" + inc.Source
		n := out[k]
		n.Open++
		if !inc.Acknowledged {
			n.Unacked++
		}
		if inc.Disposal == nil && now.Sub(inc.OpenedAt) > DisposalDue {
			n.Overdue++
		}
		out[k] = n
	}
	return out
}
