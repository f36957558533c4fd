package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInfluxTokenFromFileFlagOrEnvironment(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("INFLUX_TOKEN", "from-env")
	for _, c := range []struct{ flag, file, want string }{
		{"", file, "from-file"},
		{"from-flag", "", "from-flag"},
		{"", "", "from-env"},
	} {
		got, err := influxToken(c.flag, c.file)
		if err != nil || got != c.want {
			t.Errorf("influxToken(%q, %q) = %q, %v; want %q", c.flag, c.file, got, err, c.want)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty")
	_ = os.WriteFile(empty, nil, 0o600)
	for _, c := range [][2]string{{"x", file}, {"", empty}, {"", filepath.Join(t.TempDir(), "missing")}} {
		if _, err := influxToken(c[0], c[1]); err == nil {
			t.Errorf("influxToken(%q, %q) accepted", c[0], c[1])
		}
	}
}
