package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateListsEveryProblemWithFileAndLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	text := `id: s1
name: x
gateways: [{id: gw, devices: [{id: d1, address: "127.0.0.1:502"}]}]
sources:
  - id: src
    name: S
    type: tank_farm
    grade: 9
    points:
      - {id: p1, name: P, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: d2}, limits: {h: 90, hh: 60}}
`
	if err := os.WriteFile(bad, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"validate", bad}, &out, &errOut); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	for _, want := range []string{
		bad + ":8:12: sources[0].grade:",
		bad + ":10:",
		`device "d2"`,
		"LL ≤ L ≤ H ≤ HH",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errOut.String(), "3 problem(s)") {
		t.Errorf("summary: %q", errOut.String())
	}
}

func TestValidateExamples(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"validate", "../../configs/sites"}, &out, &errOut); code != 0 {
		t.Fatalf("examples do not validate (exit %d):\n%s%s", code, out.String(), errOut.String())
	}
	if n := strings.Count(out.String(), ": ok"); n < 2 {
		t.Errorf("want both example sites ok, got:\n%s", out.String())
	}
}

func TestUnknownCommandAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errOut.String())
	}
	if code := dispatch([]string{"validate"}, &out, &errOut); code != 2 {
		t.Errorf("validate without files: exit %d, want 2", code)
	}
	if code := dispatch([]string{"run", "-data", t.TempDir(), "-sites", "../../configs/sites", "-scenario", "no-such"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "unknown scenario") {
		t.Errorf("unknown scenario: exit %d, %q", code, errOut.String())
	}
}

// TestComposeSitesMatchExamples keeps the docker-compose copy of the tank
// farm in step with the example: only the devices' host differs.
func TestComposeSitesMatchExamples(t *testing.T) {
	example, err := os.ReadFile("../../configs/sites/tank-farm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	compose, err := os.ReadFile("../../configs/compose/sites/tank-farm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(string(example), "127.0.0.1:", "simulator:")
	got := string(compose)
	if i := strings.Index(got, "\n# Example site"); i >= 0 {
		got = got[i+1:]
	}
	if got != want {
		t.Error("configs/compose/sites/tank-farm.yaml drifted from configs/sites/tank-farm.yaml; regenerate it: sed 's/127\\.0\\.0\\.1:/simulator:/g'")
	}
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"validate", "../../configs/compose/sites"}, &out, &errOut); code != 0 {
		t.Errorf("compose site does not validate:\n%s%s", out.String(), errOut.String())
	}
}
