// Package overview rolls HazardWatch's hazard sources up by administrative
// division, for the three levels of the city's platform (市、县、企业): the
// list of every source in a caller's scope with its grade, and the tree
// province → city → county → enterprise → source with, at each node, the
// number of sources by grade, the open, unacknowledged and overdue
// incidents, and the data online rate (在线率: the share of points with
// fresh data).
//
// It computes from what it is given — the site files, the sources' grades,
// the points' newest readings, the incidents' counts — and does no I/O;
// Handler serves it as GET /api/sources and GET /api/regions.
package overview

import (
	"cmp"
	"slices"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/site/regions"
	"github.com/hazardwatch/hazardwatch/storage"
)

// Incidents counts a hazard source's incidents.
type Incidents struct {
	Open    int `json:"open"`    // not closed
	Unacked int `json:"unacked"` // open and not acknowledged
	Overdue int `json:"overdue"` // open, conditions cleared, disposal record still missing past its time
}

func (a *Incidents) add(b Incidents) {
	a.Open += b.Open
	a.Unacked += b.Unacked
	a.Overdue += b.Overdue
}

// Inputs is the picture the roll-ups are computed from.
type Inputs struct {
	Sites []*site.Site
	// Grades are the sources' grades by "site/source"; a missing source is
	// normal.
	Grades map[string]protocol.Grade
	// Fresh tells, by "site/point", whether a point has a reading within
	// its stale time (see Freshness); nil: unknown, every point counts as
	// online.
	Fresh map[string]bool
	// Incidents are the sources' incident counts by "site/source".
	Incidents map[string]Incidents
}

// Freshness tells, by "site/point", which points have a reading newer than
// their stale time at now, as the rules engine counts it (the point's
// stale_after, else rules.StalePolls polls of its device, at least
// rules.MinStaleAfter). A comm_fail reading is no data.
func Freshness(sites []*site.Site, newest []storage.Sample, now time.Time) map[string]bool {
	last := make(map[string]time.Time, len(newest))
	for _, s := range newest {
		if s.Quality != protocol.CommFail {
			last[s.Site+"/"+s.Point] = s.Time
		}
	}
	out := map[string]bool{}
	for _, s := range sites {
		for _, src := range s.Sources {
			for i := range src.Points {
				pt := &src.Points[i]
				key := s.ID + "/" + pt.ID
				t, seen := last[key]
				out[key] = seen && now.Sub(t) <= rules.StaleAfter(s, pt)
			}
		}
	}
	return out
}

// Source is one hazard source as GET /api/sources lists it.
type Source struct {
	Site           string         `json:"site"`
	SiteName       string         `json:"site_name"`
	EnterpriseCode string         `json:"enterprise_code,omitempty"`
	Source         string         `json:"source"`
	Name           string         `json:"name"`
	Type           string         `json:"type"`
	GB18218        int            `json:"gb18218_grade"`
	Region         string         `json:"region,omitempty"`
	RegionName     string         `json:"region_name,omitempty"`
	Grade          protocol.Grade `json:"grade"`
	Location       *site.Location `json:"location,omitempty"`
	Points         int            `json:"points"`
	PointsOnline   int            `json:"points_online"`
	Incidents      Incidents      `json:"incidents"`
}

// Sources lists every hazard source within scope, normal ones too, by
// region, site and source.
func Sources(in Inputs, scope access.Scope) []Source {
	var out []Source
	for _, s := range in.Sites {
		if !scope.Covers(s.ID, s.Region, s.EnterpriseCode) {
			continue
		}
		regionName := ""
		if r, ok := regions.Lookup(s.Region); ok {
			regionName = r.Name
		}
		for i := range s.Sources {
			src := &s.Sources[i]
			key := s.ID + "/" + src.ID
			row := Source{Site: s.ID, SiteName: s.Name, EnterpriseCode: s.EnterpriseCode, Source: src.ID, Name: src.Name,
				Type: string(src.Type), GB18218: src.Grade, Region: s.Region, RegionName: regionName,
				Grade: in.Grades[key], Location: s.SourceLocation(src), Points: len(src.Points), Incidents: in.Incidents[key]}
			for _, pt := range src.Points {
				if in.Fresh == nil || in.Fresh[s.ID+"/"+pt.ID] {
					row.PointsOnline++
				}
			}
			out = append(out, row)
		}
	}
	slices.SortFunc(out, func(a, b Source) int {
		return cmp.Or(cmp.Compare(a.Region, b.Region), cmp.Compare(a.Site, b.Site), cmp.Compare(a.Source, b.Source))
	})
	return out
}

// Level of a roll-up node: a division's level, or below the county.
const (
	LevelInstallation = "installation"
	LevelEnterprise   = "enterprise"
	LevelSource       = "source"
	LevelPoint        = "point"
)

// Node is one node of the roll-up tree.
type Node struct {
	Level string `json:"level"` // installation, province, city, county, enterprise, source or point
	// Code is the division's GB/T 2260 code, the site id (enterprise), the
	// source id or the point id.
	Code string `json:"code"`
	Name string `json:"name"`
	// Site is set on enterprise, source and point nodes.
	Site string `json:"site,omitempty"`
	// Grade is the most severe grade below (a source's own grade).
	Grade   protocol.Grade `json:"grade"`
	Sources int            `json:"sources"`
	// ByGrade counts the sources by grade: none, blue, yellow, orange, red.
	ByGrade      map[protocol.Grade]int `json:"by_grade"`
	Incidents    Incidents              `json:"incidents"`
	Points       int                    `json:"points"`
	PointsOnline int                    `json:"points_online"`
	// OnlineRate is PointsOnline / Points (1 when there are no points).
	OnlineRate float64 `json:"online_rate"`
	// Online is set on point nodes: the point has fresh data.
	Online   *bool   `json:"online,omitempty"`
	Children []*Node `json:"children,omitempty"`
}

func (n *Node) child(level, code, name, siteID string) *Node {
	for _, c := range n.Children {
		if c.Level == level && c.Code == code && c.Site == siteID {
			return c
		}
	}
	c := &Node{Level: level, Code: code, Name: name, Site: siteID, ByGrade: map[protocol.Grade]int{}}
	n.Children = append(n.Children, c)
	return c
}

// Tree rolls the sources within scope up from points to the scope's top:
// the installation, or the division the scope's region names. Sites
// without a known region hang directly under the installation.
func Tree(in Inputs, scope access.Scope) *Node {
	root := &Node{Level: LevelInstallation, Name: "", ByGrade: map[protocol.Grade]int{}}
	var top []regions.Region
	if scope.Region != "" {
		top = regions.Path(scope.Region)
		if len(top) > 0 {
			last := top[len(top)-1]
			root = &Node{Level: string(last.Level), Code: last.Code, Name: last.Name, ByGrade: map[protocol.Grade]int{}}
		}
	}
	sources := Sources(in, scope)
	bySite := map[string]*site.Site{}
	for _, s := range in.Sites {
		bySite[s.ID] = s
	}
	for _, row := range sources {
		s := bySite[row.Site]
		parent := root
		// Divisions between the scope's top and the site's county.
		for _, r := range regions.Path(s.Region) {
			if len(top) > 0 && depth(r.Level) <= depth(regions.Level(root.Level)) {
				continue
			}
			parent = parent.child(string(r.Level), r.Code, r.Name, "")
		}
		ent := parent.child(LevelEnterprise, s.ID, s.Name, s.ID)
		src := ent.child(LevelSource, row.Source, row.Name, s.ID)
		src.Grade, src.Incidents = row.Grade, row.Incidents
		for _, pt := range s.Source(row.Source).Points {
			on := in.Fresh == nil || in.Fresh[s.ID+"/"+pt.ID]
			p := src.child(LevelPoint, pt.ID, pt.Name, s.ID)
			p.Online, p.Points = &on, 1
			if on {
				p.PointsOnline = 1
			}
		}
	}
	total(root)
	return root
}

func depth(l regions.Level) int {
	switch l {
	case regions.Province:
		return 1
	case regions.City:
		return 2
	case regions.County:
		return 3
	}
	return 0
}

// total sums a node's figures from its children, bottom up.
func total(n *Node) {
	if n.Level == LevelSource {
		n.Sources = 1
		n.ByGrade[n.Grade]++
		for _, c := range n.Children {
			n.Points += c.Points
			n.PointsOnline += c.PointsOnline
		}
		n.OnlineRate = rate(n.PointsOnline, n.Points)
		return
	}
	if n.Level == LevelPoint {
		n.OnlineRate = rate(n.PointsOnline, n.Points)
		return
	}
	for _, c := range n.Children {
		total(c)
		n.Sources += c.Sources
		n.Points += c.Points
		n.PointsOnline += c.PointsOnline
		n.Incidents.add(c.Incidents)
		for g, k := range c.ByGrade {
			n.ByGrade[g] += k
		}
		n.Grade = max(n.Grade, c.Grade)
	}
	n.OnlineRate = rate(n.PointsOnline, n.Points)
	slices.SortFunc(n.Children, func(a, b *Node) int { return cmp.Or(cmp.Compare(a.Code, b.Code), cmp.Compare(a.Site, b.Site)) })
}

func rate(on, all int) float64 {
	if all == 0 {
		return 1
	}
	return float64(on) / float64(all)
}
