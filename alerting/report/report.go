// Package report computes the alarm-quality report of ISA-18.2 / EEMUA 191
// from the alerting journal: per site, hazard source and officer over a
// period, the alarm load per 10 minutes, the share of 10-minute periods in
// flood, the bad actors, chattering and stale alarms, the time to
// acknowledge and to close incidents, and the incidents still open by age.
// It is pure: the caller reads the journal and passes the events in, and
// writes the result as JSON, CSV (WriteCSV) or HTML (WriteHTML).
package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// Limits of ISA-18.2 and EEMUA 191 the report measures against.
const (
	// Period is the span alarm rates are counted in.
	Period = 10 * time.Minute
	// FloodAbove: more alarms than this in a 10-minute period is a flood.
	FloodAbove = 10
	// Manageable is about one alarm per 10 minutes per officer; two is
	// the most still manageable.
	Manageable = 2
	// ChatterCount raises within ChatterWindow make an alarm chattering.
	ChatterCount  = 3
	ChatterWindow = time.Minute
	// StaleAfter: an alarm active longer than this is stale (standing).
	StaleAfter = 24 * time.Hour
	// TopN bad actors are listed.
	TopN = 10
)

// AgeBuckets split the incidents still open by age.
var AgeBuckets = []struct {
	Label string
	Below time.Duration
}{{"< 1 h", time.Hour}, {"1–8 h", 8 * time.Hour}, {"8–24 h", 24 * time.Hour}, {"> 24 h", math.MaxInt64}}

// Input is what the report is computed from.
type Input struct {
	From, To time.Time
	// Now is when the report is made, for the ages of open incidents
	// (the end of the period if zero).
	Now time.Time
	// Events are the alarm journal's events stamped in [From, To]
	// (raised, acknowledged, cleared; others are ignored), oldest first.
	Events []protocol.AlarmEvent
	// Incidents are those opened in [From, To]; Open those not closed
	// at Now, whenever opened.
	Incidents []incident.Incident
	Open      []incident.Incident
	// SiteNames and SourceNames name the rows ("site" and "site/source").
	SiteNames, SourceNames map[string]string
}

// Report is the alarm-quality report.
type Report struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Made    time.Time `json:"made"`
	Periods int       `json:"periods"` // 10-minute periods in the range
	// Total is the whole installation; Sites, Sources and Officers the
	// rows by scope.
	Total    Row   `json:"total"`
	Sites    []Row `json:"sites"`
	Sources  []Row `json:"sources"`
	Officers []Row `json:"officers"`
	// BadActors are the conditions raised most, with their share of all
	// alarms; TopShare is the share of the ten together.
	BadActors []BadActor `json:"bad_actors"`
	TopShare  float64    `json:"top10_share"`
	// Chattering and Stale list the alarms that chattered and stood.
	Chattering []BadActor `json:"chattering"`
	Stale      []Stale    `json:"stale"`
	// OpenByAge counts the incidents still open per AgeBuckets label.
	OpenByAge []AgeCount      `json:"open_by_age"`
	Incidents []IncidentTimes `json:"incidents"`
}

// Row is the figures of one scope: a site, a source, an officer or all.
type Row struct {
	Scope string `json:"scope"` // site, source, officer, total
	Key   string `json:"key"`
	Name  string `json:"name,omitempty"`
	// Alarms raised in the period (for an officer: acknowledged by them).
	Alarms int `json:"alarms"`
	// PerPeriod is Alarms per 10 minutes on average; Peak the most in one
	// 10-minute period.
	PerPeriod float64 `json:"per_10min"`
	Peak      int     `json:"peak_10min"`
	// FloodShare is the share of 10-minute periods with more than 10.
	FloodShare float64 `json:"flood_share"`
	Chattering int     `json:"chattering"`
	Stale      int     `json:"stale"`
	// Incidents opened in the period (for an officer: acknowledged by
	// them) and the time from opening to the first acknowledgement and
	// to closing: median and 90th percentile over those that got there.
	Incidents int       `json:"incidents"`
	Ack       Durations `json:"time_to_ack"`
	Close     Durations `json:"time_to_close"`
	Open      int       `json:"open_incidents"`
}

// Durations are a median and a 90th percentile; N counts the samples.
type Durations struct {
	N      int           `json:"n"`
	Median time.Duration `json:"median"`
	P90    time.Duration `json:"p90"`
}

// BadActor is a condition (alarm id) and how often it was raised.
type BadActor struct {
	AlarmID string  `json:"alarm_id"`
	Site    string  `json:"site"`
	Source  string  `json:"source"`
	Count   int     `json:"count"`
	Share   float64 `json:"share"`
}

// Stale is an alarm that stayed active longer than StaleAfter.
type Stale struct {
	AlarmID string        `json:"alarm_id"`
	Since   time.Time     `json:"since"`
	For     time.Duration `json:"for"`
}

// AgeCount is the number of open incidents in an age bucket.
type AgeCount struct {
	Age   string `json:"age"`
	Count int    `json:"count"`
}

// IncidentTimes is one incident's times, for the list under the figures.
type IncidentTimes struct {
	ID         string         `json:"id"`
	Site       string         `json:"site"`
	Source     string         `json:"source"`
	WorstGrade protocol.Grade `json:"worst_grade"`
	Opened     time.Time      `json:"opened"`
	ToAck      time.Duration  `json:"time_to_ack,omitempty"`
	ToClose    time.Duration  `json:"time_to_close,omitempty"`
	AckedBy    string         `json:"acked_by,omitempty"`
	ClosedBy   string         `json:"closed_by,omitempty"`
	State      incident.State `json:"state"`
}

// raise is one annunciation.
type raise struct {
	alarm, site, source string
	at                  time.Time
}

// Make computes the report.
func Make(in Input) (Report, error) {
	if !in.From.Before(in.To) {
		return Report{}, fmt.Errorf("report: from %s is not before to %s", in.From.Format(time.RFC3339), in.To.Format(time.RFC3339))
	}
	if in.Now.IsZero() {
		in.Now = in.To
	}
	periods := int((in.To.Sub(in.From) + Period - 1) / Period)
	r := Report{From: in.From, To: in.To, Made: in.Now, Periods: periods}

	var raises []raise
	acks := map[string][]raise{} // by officer
	activeSince := map[string]time.Time{}
	staleSeen := map[string]bool{}
	var stale []Stale
	for _, e := range in.Events {
		at := e.TS.Time
		if at.Before(in.From) || at.After(in.To) {
			continue
		}
		switch e.Type {
		case protocol.AlarmRaised:
			raises = append(raises, raise{e.AlarmID, e.Site, e.Source, at})
			if _, ok := activeSince[e.AlarmID]; !ok {
				activeSince[e.AlarmID] = at
			}
		case protocol.AlarmAcknowledged:
			if e.Actor != "" {
				acks[e.Actor] = append(acks[e.Actor], raise{e.AlarmID, e.Site, e.Source, at})
			}
		case protocol.AlarmCleared:
			if since, ok := activeSince[e.AlarmID]; ok {
				if d := at.Sub(since); d > StaleAfter && !staleSeen[e.AlarmID] {
					staleSeen[e.AlarmID] = true
					stale = append(stale, Stale{AlarmID: e.AlarmID, Since: since, For: d})
				}
				delete(activeSince, e.AlarmID)
			}
		}
	}
	for id, since := range activeSince {
		if d := in.Now.Sub(since); d > StaleAfter && !staleSeen[id] {
			stale = append(stale, Stale{AlarmID: id, Since: since, For: d})
		}
	}
	slices.SortFunc(stale, func(a, b Stale) int { return cmp.Or(cmp.Compare(b.For, a.For), cmp.Compare(a.AlarmID, b.AlarmID)) })
	r.Stale = stale
	staleOf := func(keep func(id string) bool) int {
		n := 0
		for _, s := range stale {
			if keep(s.AlarmID) {
				n++
			}
		}
		return n
	}

	counts := map[string]*BadActor{}
	for _, x := range raises {
		b := counts[x.alarm]
		if b == nil {
			b = &BadActor{AlarmID: x.alarm, Site: x.site, Source: x.source}
			counts[x.alarm] = b
		}
		b.Count++
	}
	all := make([]BadActor, 0, len(counts))
	for _, b := range counts {
		b.Share = share(b.Count, len(raises))
		all = append(all, *b)
	}
	slices.SortFunc(all, func(a, b BadActor) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.AlarmID, b.AlarmID))
	})
	top := all[:min(TopN, len(all))]
	r.BadActors = slices.Clone(top)
	for _, b := range top {
		r.TopShare += b.Share
	}
	chatter := chattering(raises)
	for _, b := range all {
		if chatter[b.AlarmID] {
			r.Chattering = append(r.Chattering, b)
		}
	}

	// Rows: total, per site, per source.
	bySite, bySource := map[string][]raise{}, map[string][]raise{}
	for _, x := range raises {
		bySite[x.site] = append(bySite[x.site], x)
		bySource[x.site+"/"+x.source] = append(bySource[x.site+"/"+x.source], x)
	}
	incBySite, incBySource, incByOfficer := map[string][]incident.Incident{}, map[string][]incident.Incident{}, map[string][]incident.Incident{}
	for _, inc := range in.Incidents {
		incBySite[inc.Site] = append(incBySite[inc.Site], inc)
		incBySource[inc.Site+"/"+inc.Source] = append(incBySource[inc.Site+"/"+inc.Source], inc)
		if inc.AckedBy != "" {
			incByOfficer[inc.AckedBy] = append(incByOfficer[inc.AckedBy], inc)
		}
		r.Incidents = append(r.Incidents, times(inc))
	}
	openBySite, openBySource := map[string]int{}, map[string]int{}
	r.OpenByAge = make([]AgeCount, len(AgeBuckets))
	for i, b := range AgeBuckets {
		r.OpenByAge[i].Age = b.Label
	}
	for _, inc := range in.Open {
		openBySite[inc.Site]++
		openBySource[inc.Site+"/"+inc.Source]++
		age := in.Now.Sub(inc.OpenedAt)
		for i, b := range AgeBuckets {
			if age < b.Below {
				r.OpenByAge[i].Count++
				break
			}
		}
	}

	r.Total = r.row("total", "", "", raises, in.Incidents, chatter, staleOf(func(string) bool { return true }))
	r.Total.Open = len(in.Open)
	for _, k := range keys(bySite, incBySite) {
		row := r.row("site", k, in.SiteNames[k], bySite[k], incBySite[k], chatter, staleOf(func(id string) bool { return siteOf(id) == k }))
		row.Open = openBySite[k]
		r.Sites = append(r.Sites, row)
	}
	for _, k := range keys(bySource, incBySource) {
		row := r.row("source", k, in.SourceNames[k], bySource[k], incBySource[k], chatter, staleOf(func(id string) bool { return sourceOf(id) == k }))
		row.Open = openBySource[k]
		r.Sources = append(r.Sources, row)
	}
	for _, k := range keys(acks, incByOfficer) {
		row := r.row("officer", k, "", acks[k], incByOfficer[k], nil, 0)
		r.Officers = append(r.Officers, row)
	}
	return r, nil
}

// row computes one scope's figures.
func (r *Report) row(scope, key, name string, raises []raise, incs []incident.Incident, chatter map[string]bool, stale int) Row {
	row := Row{Scope: scope, Key: key, Name: name, Alarms: len(raises), Stale: stale, Incidents: len(incs)}
	per := make([]int, r.Periods)
	chattering := map[string]bool{}
	for _, x := range raises {
		if i := int(x.at.Sub(r.From) / Period); i >= 0 && i < len(per) {
			per[i]++
		}
		if chatter[x.alarm] {
			chattering[x.alarm] = true
		}
	}
	floods := 0
	for _, n := range per {
		row.Peak = max(row.Peak, n)
		if n > FloodAbove {
			floods++
		}
	}
	row.PerPeriod = float64(len(raises)) / float64(max(r.Periods, 1))
	row.FloodShare = share(floods, r.Periods)
	row.Chattering = len(chattering)
	var ack, closed []time.Duration
	for _, inc := range incs {
		if !inc.FirstAckAt.IsZero() {
			ack = append(ack, inc.FirstAckAt.Sub(inc.OpenedAt))
		}
		if !inc.ClosedAt.IsZero() {
			closed = append(closed, inc.ClosedAt.Sub(inc.OpenedAt))
		}
	}
	row.Ack, row.Close = quantiles(ack), quantiles(closed)
	return row
}

func times(inc incident.Incident) IncidentTimes {
	t := IncidentTimes{ID: inc.ID, Site: inc.Site, Source: inc.Source, WorstGrade: inc.WorstGrade, Opened: inc.OpenedAt,
		AckedBy: inc.AckedBy, ClosedBy: inc.ClosedBy, State: inc.State}
	if !inc.FirstAckAt.IsZero() {
		t.ToAck = inc.FirstAckAt.Sub(inc.OpenedAt)
	}
	if !inc.ClosedAt.IsZero() {
		t.ToClose = inc.ClosedAt.Sub(inc.OpenedAt)
	}
	return t
}

// chattering finds the alarms raised ChatterCount times within
// ChatterWindow.
func chattering(raises []raise) map[string]bool {
	at := map[string][]time.Time{}
	for _, x := range raises {
		at[x.alarm] = append(at[x.alarm], x.at)
	}
	out := map[string]bool{}
	for id, ts := range at {
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		for i := ChatterCount - 1; i < len(ts); i++ {
			if ts[i].Sub(ts[i-ChatterCount+1]) <= ChatterWindow {
				out[id] = true
				break
			}
		}
	}
	return out
}

// quantiles returns the median and the 90th percentile (nearest rank).
func quantiles(ds []time.Duration) Durations {
	if len(ds) == 0 {
		return Durations{}
	}
	slices.Sort(ds)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	med := rank(0.5)
	if len(ds)%2 == 0 {
		med = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
	}
	return Durations{N: len(ds), Median: med, P90: rank(0.9)}
}

func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

func keys[A, B any](a map[string]A, b map[string]B) []string {
	set := map[string]bool{}
	for k := range a {
		set[k] = true
	}
	for k := range b {
		set[k] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// siteOf and sourceOf read an alarm id: site/source/point/condition.
func siteOf(id string) string {
	for i := range id {
		if id[i] == '/' {
			return id[:i]
		}
	}
	return id
}

func sourceOf(id string) string {
	n := 0
	for i := range id {
		if id[i] == '/' {
			n++
			if n == 2 {
				return id[:i]
			}
		}
	}
	return id
}
