package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBrokerConfigWritesFilesAndNamesNoPassword(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := dispatch([]string{"broker-config", "-out", out, "-tls-hosts", "127.0.0.1", "../../configs/sites"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, f := range []string{"passwd", "acl", "secrets/hazardwatch-centre", "secrets/gateways/jh-chem/gw-tank", "tls/ca.pem", "tls/server.pem", "tls/server.key"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	pw, _ := os.ReadFile(filepath.Join(out, "secrets/hazardwatch-centre"))
	if strings.Contains(stdout.String()+stderr.String(), strings.TrimSpace(string(pw))) {
		t.Error("the output shows a password")
	}
	if !strings.Contains(stdout.String(), "-username jh-chem/gw-tank -password-file "+filepath.Join(out, "secrets/gateways/jh-chem/gw-tank")) {
		t.Errorf("output does not say how the gateway logs in:\n%s", stdout.String())
	}

	for name, args := range map[string][]string{
		"no -out":         {"broker-config", "../../configs/sites"},
		"no site files":   {"broker-config", "-out", t.TempDir()},
		"empty directory": {"broker-config", "-out", t.TempDir(), t.TempDir()},
	} {
		stdout.Reset()
		stderr.Reset()
		if code := dispatch(args, &stdout, &stderr); code == 0 || stderr.Len() == 0 {
			t.Errorf("%s: exit %d, stderr %q", name, code, stderr.String())
		}
	}
}
