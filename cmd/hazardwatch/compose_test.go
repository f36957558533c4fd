package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestComposeRefersToRepository: what docker-compose.yml names exists —
// bind-mounted files, the HazardWatch binaries its commands run (the
// Dockerfile builds every ./cmd/...), and Grafana's home dashboard among
// the mounted ones. docker-compose config (scripts/test.sh) checks the
// file's syntax; this checks it against the repository.
func TestComposeRefersToRepository(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command     []string          `yaml:"command"`
			Volumes     []string          `yaml:"volumes"`
			Environment map[string]string `yaml:"environment"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	mounts := map[string]string{} // container path → repository path
	for name, svc := range compose.Services {
		for _, v := range svc.Volumes {
			parts := strings.Split(v, ":")
			if !strings.HasPrefix(parts[0], "./") {
				continue // a named volume
			}
			if _, err := os.Stat(filepath.Join("../..", parts[0])); err != nil {
				t.Errorf("service %s mounts %s: %v", name, parts[0], err)
			}
			mounts[parts[1]] = parts[0]
		}
		for _, cmd := range [][]string{svc.Command, svc.Healthcheck.Test} {
			if len(cmd) > 0 && cmd[0] == "CMD" {
				cmd = cmd[1:]
			}
			if len(cmd) == 0 || !strings.HasPrefix(cmd[0], "hazardwatch") {
				continue
			}
			if _, err := os.Stat(filepath.Join("..", cmd[0], "main.go")); err != nil {
				t.Errorf("service %s runs %s, which is not a command under cmd/", name, cmd[0])
			}
			// The Dockerfile copies configs/ to /etc/hazardwatch/.
			for _, arg := range cmd[1:] {
				if rel, ok := strings.CutPrefix(arg, "/etc/hazardwatch/"); ok {
					if _, err := os.Stat(filepath.Join("../../configs", rel)); err != nil {
						t.Errorf("service %s names %s, which the image has not: %v", name, arg, err)
					}
				}
			}
			if cmd[0] == "hazardwatch" && len(cmd) > 1 {
				var out, errOut bytes.Buffer
				dispatch([]string{cmd[1]}, &out, &errOut)
				if strings.Contains(errOut.String(), "unknown command") {
					t.Errorf("service %s runs hazardwatch %s: %s", name, cmd[1], errOut.String())
				}
			}
		}
	}
	home := compose.Services["grafana"].Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
	// The home dashboard lies in a mounted folder, perhaps below it.
	found := false
	for mounted, dir := range mounts {
		if rel, ok := strings.CutPrefix(home, mounted+"/"); ok {
			found = true
			if _, err := os.Stat(filepath.Join("../..", dir, rel)); err != nil {
				t.Errorf("Grafana's home dashboard: %v", err)
			}
		}
	}
	if !found {
		t.Fatalf("Grafana's home dashboard %s is in no mounted folder", home)
	}
}
