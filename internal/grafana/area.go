//lint:file-ignore SA1019 the classic dashboard schema (dashboard.Dashboard) is what Grafana's file provisioning loads; the SDK's dashboardv2 needs Grafana's experimental dashboard API.

package grafana

import (
	"cmp"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"

	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/site/regions"
)

// File is one dashboard of the layout: Dir is its folder (Grafana's file
// provisioning makes a folder of each directory), empty for the top.
type File struct {
	Dir  string
	Name string
	UID  string
	JSON []byte
}

// Path is where the file goes below the dashboards directory.
func (f File) Path() string { return filepath.Join(f.Dir, f.Name) }

// Layout lays the dashboards of a set of sites out by region, for the
// city's three levels: a folder per county holding the county's overview
// and its enterprises' (sites') dashboards, and a folder per city holding
// the city's overview. Sites without a known region go to the top folder.
func Layout(sites []*site.Site, opts Options) ([]File, error) {
	var files []File
	byCounty := map[string][]*site.Site{}
	for _, s := range sites {
		b, err := JSON(s, opts)
		if err != nil {
			return nil, err
		}
		if r, ok := regions.Lookup(s.Region); ok && r.Level == regions.County {
			byCounty[r.Code] = append(byCounty[r.Code], s)
		}
		files = append(files, File{Dir: SiteDir(s), Name: FileName(s), UID: UID(s.ID, opts.Datasource), JSON: b})
	}
	byCity := map[string][]regions.Region{}
	for code := range byCounty {
		county, _ := regions.Lookup(code)
		b, uid, err := areaJSON(county, []regions.Region{county}, byCounty, opts)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Dir: folderName(county), Name: "county-" + code + ".json", UID: uid, JSON: b})
		byCity[county.Parent] = append(byCity[county.Parent], county)
	}
	for code, counties := range byCity {
		city, ok := regions.Lookup(code)
		if !ok {
			continue
		}
		b, uid, err := areaJSON(city, counties, byCounty, opts)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Dir: folderName(city), Name: "city-" + city.Prefix() + ".json", UID: uid, JSON: b})
	}
	slices.SortFunc(files, func(a, b File) int { return cmp.Compare(a.Path(), b.Path()) })
	return files, nil
}

// SiteDir is the folder of a site's dashboard: its county's, or the top
// one when its region is unknown.
func SiteDir(s *site.Site) string {
	if r, ok := regions.Lookup(s.Region); ok && r.Level == regions.County {
		return folderName(r)
	}
	return ""
}

// folderName is a division's folder: its name and code, e.g. "三元区 350404"
// or "三明市 3504".
func folderName(r regions.Region) string { return r.Name + " " + r.Prefix() }

// areaUID is the uid of a county's or city's overview.
func areaUID(r regions.Region, ds Datasource) string { return UID("area-"+r.Prefix(), ds) }

// areaJSON builds the overview of a county or a city: per county a row,
// per enterprise in it a status grid of its sources' grades and its alarm
// counts, each linking to the enterprise's own dashboard.
func areaJSON(area regions.Region, counties []regions.Region, byCounty map[string][]*site.Site, opts Options) ([]byte, string, error) {
	if opts.Datasource == "" {
		opts.Datasource = Prometheus
	}
	q, err := queriesFor(opts)
	if err != nil {
		return nil, "", err
	}
	uid := areaUID(area, opts.Datasource)
	kind := "县区"
	if area.Level == regions.City {
		kind = "全市"
	}
	b := &builder{q: q, ds: q.datasource(), d: dashboard.NewDashboardBuilder(fmt.Sprintf("HazardWatch · %s %s总览", area.Name, kind)).
		Uid(uid).
		Description(fmt.Sprintf("Overview of %s (%s) generated from the site files by `hazardwatch grafana -datasource %s`: every enterprise's hazard sources by grade and its alarms; regenerate it rather than edit it.",
			area.Name, area.Code, opts.Datasource)).
		Tags([]string{"hazardwatch", "area", area.Prefix()}).
		Refresh(refresh).
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser)}
	slices.SortFunc(counties, func(a, b regions.Region) int { return cmp.Compare(a.Code, b.Code) })
	for _, county := range counties {
		sites := slices.Clone(byCounty[county.Code])
		slices.SortFunc(sites, func(a, b *site.Site) int { return cmp.Compare(a.ID, b.ID) })
		b.row(county.Name + " · " + county.Code)
		for _, s := range sites {
			b.enterprise(s, opts.Datasource)
		}
	}
	d, err := b.d.Build()
	if err != nil {
		return nil, "", fmt.Errorf("grafana overview of %s: %w", area.Code, err)
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, "", fmt.Errorf("grafana overview of %s: %w", area.Code, err)
	}
	return append(out, '\n'), uid, nil
}

// enterprise: one site's sources by grade and its alarms by grade, both
// linking to the site's own dashboard.
func (b *builder) enterprise(s *site.Site, ds Datasource) {
	links := []cog.Builder[dashboard.DashboardLink]{dashboard.NewDashboardLinkBuilder(s.Name).
		Type(dashboard.DashboardLinkTypeLink).Url("/d/" + UID(s.ID, ds)).KeepTime(true)}
	grid := stat.NewPanelBuilder().Id(b.id()).Title(s.Name + " · 危险源预警等级").
		Description("The grade of each major hazard source of " + s.Name + " (site " + s.ID + ") now. 无数据 (no data): the centre recorded no grade in the last minute.").
		Datasource(b.ds).GridPos(b.place(16, 4)).
		Mappings(gradeMappings()).
		Thresholds(thresholds([]dashboard.Threshold{{Color: "text"}})).
		ColorMode(common.BigValueColorModeBackground).GraphMode(common.BigValueGraphModeNone).
		TextMode(common.BigValueTextModeValueAndName).JustifyMode(common.BigValueJustifyModeCenter).
		Orientation(common.VizOrientationAuto).ReduceOptions(lastValue()).
		NoValue("无数据").Links(links)
	for i := range s.Sources {
		src := &s.Sources[i]
		ref := refID(i)
		grid.WithTarget(b.q.target(b.q.grade(s.ID, src.ID, true), ref)).OverrideByQuery(ref, displayName(src.Name))
	}
	b.d.WithPanel(grid)
	b.d.WithPanel(b.alarmCounts(s.ID, "报警 · "+s.Name, 8, 4).Links(links))
}
