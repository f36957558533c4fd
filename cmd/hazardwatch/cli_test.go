package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelpAndVersionExitZero(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"--help"}, {"validate", "-h"}, {"grafana", "-h"}, {"healthcheck", "-h"}, {"-version"}, {"version"}} {
		var out, errOut bytes.Buffer
		if code := dispatch(args, &out, &errOut); code != 0 {
			t.Errorf("hazardwatch %v: exit %d, want 0; stderr %s", args, code, errOut.String())
		}
		all := out.String() + errOut.String()
		switch args[0] {
		case "-h", "help", "--help":
			for _, sub := range []string{"validate", "grafana", "healthcheck", "version"} {
				if !strings.Contains(all, "hazardwatch "+sub) {
					t.Errorf("hazardwatch %v does not list the subcommand %s:\n%s", args, sub, all)
				}
			}
		case "-version", "version":
			if !strings.HasPrefix(out.String(), "hazardwatch ") || !strings.Contains(out.String(), "go1.") {
				t.Errorf("hazardwatch %v printed %q, want the name, version and Go version", args, out.String())
			}
		}
	}
	// healthcheck does not fetch a flag as if it were a URL.
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"healthcheck", "-x"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "usage") {
		t.Errorf("healthcheck -x: exit %d, stderr %q; want 2 and the usage", code, errOut.String())
	}
}
