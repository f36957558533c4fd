package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGrafanaWritesADashboardPerSite: the subcommand writes the committed
// layout — each site's dashboard in its county's folder, the county and
// city overviews; bad use exits 2.
func TestGrafanaWritesADashboardPerSite(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := dispatch([]string{"grafana", "-datasource", "influx", "-out", out, "../../configs/sites"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, rel := range []string{"三元区 350404/jh-chem.json", "永安市 350481/xs-coal.json", "三元区 350404/county-350404.json", "三明市 3504/city-3504.json"} {
		got, err := os.ReadFile(filepath.Join(out, rel))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("../../configs/grafana/dashboards/influx", rel))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("hazardwatch grafana wrote %s unlike the committed one", rel)
		}
	}
	for _, uid := range []string{"hw-flux-jh-chem", "hw-flux-xs-coal", "hw-flux-area-350404", "hw-flux-area-3504"} {
		if !strings.Contains(stdout.String(), uid) {
			t.Errorf("output does not name dashboard %s:\n%s", uid, stdout.String())
		}
	}
	for _, args := range [][]string{
		{"grafana", "../../configs/sites"},
		{"grafana", "-out", out},
		{"grafana", "-datasource", "graphite", "-out", out, "../../configs/sites"},
	} {
		stderr.Reset()
		if code := dispatch(args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("id: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := dispatch([]string{"grafana", "-out", t.TempDir(), bad}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "no dashboards written") {
		t.Errorf("invalid site file: exit %d, stderr %q; want 1 and no dashboards written", code, stderr.String())
	}
}
