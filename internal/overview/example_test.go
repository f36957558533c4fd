package overview

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/site/regions"
)

// TestExampleCityOnItsMap: the example sites lie in Sanming, in at least
// two counties, and every site's and source's location lies inside its
// county's boundary on the bundled map.
func TestExampleCityOnItsMap(t *testing.T) {
	sites, err := site.LoadDir("../../configs/sites")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../console/assets/geo/3504.geojson")
	if err != nil {
		t.Fatal(err)
	}
	var fc struct {
		Source   string `json:"source"`
		Features []struct {
			Properties struct{ Code, Name string } `json:"properties"`
			Geometry   struct {
				Coordinates [][][][2]float64 `json:"coordinates"`
			} `json:"geometry"`
		} `json:"features"`
	}
	if err := json.Unmarshal(raw, &fc); err != nil {
		t.Fatal(err)
	}
	if len(fc.Features) != len(regions.Children("3504")) || fc.Source == "" {
		t.Fatalf("map has %d counties (source %q), GB/T 2260 has %d", len(fc.Features), fc.Source, len(regions.Children("3504")))
	}
	inside := func(code string, l *site.Location) bool {
		for _, f := range fc.Features {
			if f.Properties.Code != code {
				continue
			}
			for _, poly := range f.Geometry.Coordinates {
				if len(poly) > 0 && inRing(poly[0], l.Lon, l.Lat) {
					return true
				}
			}
		}
		return false
	}
	counties := map[string]bool{}
	for _, s := range sites {
		if r, ok := regions.Lookup(s.Region); !ok || r.Parent != "350400" {
			t.Errorf("%s: region %q is not a county of 三明市", s.ID, s.Region)
			continue
		}
		counties[s.Region] = true
		if s.Location == nil || !inside(s.Region, s.Location) {
			t.Errorf("%s: location %+v is not inside county %s", s.ID, s.Location, s.Region)
		}
		for i := range s.Sources {
			if l := s.SourceLocation(&s.Sources[i]); l == nil || !inside(s.Region, l) {
				t.Errorf("%s/%s: location %+v is not inside county %s", s.ID, s.Sources[i].ID, l, s.Region)
			}
		}
	}
	if len(sites) < 3 || len(counties) < 2 {
		t.Errorf("%d example sites in %d counties, want at least 3 in 2", len(sites), len(counties))
	}
}

// inRing is the even-odd rule: a ray from the point crosses the ring's
// edges an odd number of times when it lies inside.
func inRing(ring [][2]float64, x, y float64) bool {
	in := false
	for i, j := 0, len(ring)-1; i < len(ring); j, i = i, i+1 {
		xi, yi, xj, yj := ring[i][0], ring[i][1], ring[j][0], ring[j][1]
		if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return in
}
