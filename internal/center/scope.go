package center

import (
	"context"
	"net/http"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/ingest"
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

// sees tells which sites the request's principal sees; none without one.
func (c *Center) sees(r *http.Request) func(site string) bool {
	p, ok := access.FromContext(r.Context())
	if !ok {
		return func(string) bool { return false }
	}
	return p.Scope.Sees(c.sites())
}

// cut keeps of the status what lies in the sites a request sees.
func (st Status) cut(sees func(site string) bool) Status {
	return Status{Time: st.Time,
		Sources:  access.Keep(st.Sources, func(s SourceStatus) string { return s.Site }, sees),
		Alarms:   access.Keep(st.Alarms, func(a alerting.Alarm) string { return a.Site }, sees),
		Gateways: access.Keep(st.Gateways, func(g ingest.GatewayStatus) string { return g.Site }, sees),
		Rejected: access.Keep(st.Rejected, func(d ingest.DeadLetter) string { return d.Site }, sees),
	}
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
