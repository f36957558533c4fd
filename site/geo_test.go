package site

import (
	"strings"
	"testing"
)

// TestRegionAndLocation: a site's region must be a current county-level
// GB/T 2260 code and its locations WGS-84 degrees; each problem names its
// field.
func TestRegionAndLocation(t *testing.T) {
	ok := mustParse(t, "region: \"350404\"\nlocation: {lat: 26.2634, lon: 117.6386}\n"+minimal)
	if ok.Region != "350404" || ok.SourceLocation(&ok.Sources[0]).Lat != 26.2634 {
		t.Errorf("region and location not loaded: %q %+v", ok.Region, ok.Location)
	}
	for _, c := range []struct{ head, field, says string }{
		{`region: "350402"`, "region", "not a current GB/T 2260 code"},
		{`region: "350400"`, "region", "county-level division"},
		{`region: "3504"`, "region", "6-digit"},
		{`location: {lat: 126.2, lon: 117.6}`, "location", "WGS-84"},
		{`location: {lat: 0, lon: 0}`, "location", "both 0"},
	} {
		ps := problemsOf(t, c.head+"\n"+minimal)
		found := false
		for _, p := range ps {
			if p.Field == c.field && strings.Contains(p.Msg, c.says) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: problems %v, want one on %s saying %q", c.head, ps, c.field, c.says)
		}
	}
	ps := problemsOf(t, strings.Replace(minimal, "    grade: 2\n", "    grade: 2\n    location: {lat: 91, lon: 117}\n", 1))
	if len(ps) != 1 || ps[0].Field != "sources[0].location" {
		t.Errorf("a source's bad location: %v, want one problem on sources[0].location", ps)
	}
}
