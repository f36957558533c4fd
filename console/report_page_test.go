package console

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestReportPage: /report and its assets are served from the binary under
// the console's policy, and every label the page and its script use is in
// both languages of its dictionary.
func TestReportPage(t *testing.T) {
	f := newFixture(t, tankFarm(t), nil)
	resp, page := f.getAsset(t, "/report")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	var script string
	for _, r := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(r[1], "/console/") && r[1] != "/" {
			t.Errorf("report page references %s, outside the console", r[1])
			continue
		}
		if strings.HasPrefix(r[1], "/console/") {
			_, body := f.getAsset(t, r[1])
			if strings.HasSuffix(r[1], ".js") {
				script = body
			}
		}
	}
	_, raw := f.getAsset(t, "/console/report-i18n.json")
	var dict map[string]map[string]string
	if err := json.Unmarshal([]byte(raw), &dict); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`data-r="(\w+)"`).FindAllStringSubmatch(page, -1) {
		used[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\bt\('(\w+)'[,)]`).FindAllStringSubmatch(script, -1) {
		used[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\[\s*'(\w+)'(?:\s*,\s*'(\w+)')*`).FindAllString(script, -1) {
		for _, k := range regexp.MustCompile(`'(\w+)'`).FindAllStringSubmatch(m, -1) {
			used[k[1]] = true
		}
	}
	for _, g := range []string{"none", "blue", "yellow", "orange", "red"} {
		used["grade_"+g] = true
	}
	for _, s := range []string{"active", "normal", "closed"} {
		used["state_"+s] = true
	}
	for _, s := range []string{"site", "source", "officer"} {
		used["scope_"+s] = true
	}
	for k := range used {
		for _, l := range []string{"zh", "en"} {
			if _, ok := dict[l][k]; !ok && !strings.HasPrefix(k, "hazardwatch") {
				t.Errorf("report-i18n.json %s lacks %q", l, k)
			}
		}
	}
	if len(dict["zh"]) != len(dict["en"]) {
		t.Errorf("zh has %d labels, en %d", len(dict["zh"]), len(dict["en"]))
	}
}
