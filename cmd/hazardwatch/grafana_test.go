package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGrafanaWritesADashboardPerSite: the subcommand writes one dashboard
// per site file, the same as the committed ones; bad use exits 2.
func TestGrafanaWritesADashboardPerSite(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := dispatch([]string{"grafana", "-datasource", "influx", "-out", out, "../../configs/sites"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, id := range []string{"jh-chem", "xs-coal"} {
		got, err := os.ReadFile(filepath.Join(out, id+".json"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("../../configs/grafana/dashboards/influx", id+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("hazardwatch grafana wrote a %s dashboard unlike the committed one", id)
		}
		if !strings.Contains(stdout.String(), "hw-flux-"+id) {
			t.Errorf("output does not name dashboard hw-flux-%s:\n%s", id, stdout.String())
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
