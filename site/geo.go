package site

import (
	"fmt"

	"github.com/hazardwatch/hazardwatch/site/regions"
)

// Location is a point on the earth in WGS-84 degrees.
type Location struct {
	Lat float64 `yaml:"lat" json:"lat"` // latitude, north positive
	Lon float64 `yaml:"lon" json:"lon"` // longitude, east positive
}

// SourceLocation is where a source lies: its own location, else its site's;
// nil when neither is set.
func (s *Site) SourceLocation(src *Source) *Location {
	if src.Location != nil {
		return src.Location
	}
	return s.Location
}

// validateGeo checks the site's region code against GB/T 2260 and its
// locations' ranges. A region is optional (a site without one is seen only
// by installation-wide accounts), but a given one must be a current
// county-level division.
func (p *parser) validateGeo(s *Site) {
	if s.Region != "" {
		if err := regions.CheckCounty(s.Region); err != nil {
			p.errorf("region", "%v", err)
		}
	}
	p.validateLocation("location", s.Location)
	for i := range s.Sources {
		p.validateLocation(fmt.Sprintf("sources[%d].location", i), s.Sources[i].Location)
	}
}

func (p *parser) validateLocation(path string, l *Location) {
	if l == nil {
		return
	}
	if !(l.Lat >= -90 && l.Lat <= 90) || !(l.Lon >= -180 && l.Lon <= 180) {
		p.errorf(path, "latitude %v and longitude %v are not WGS-84 degrees (latitude -90 to 90, longitude -180 to 180)", l.Lat, l.Lon)
		return
	}
	if l.Lat == 0 && l.Lon == 0 {
		p.errorf(path, "latitude and longitude are both 0: set the real location or leave location out")
	}
}
