package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/simulators"
	"github.com/hazardwatch/hazardwatch/site"
)

// The example coal-mine site, moved to free ports, read with -dry-run.
func TestDryRunPrintsTable(t *testing.T) {
	path, _ := testenv.ExampleSite(t, "coal-mine.yaml", "127.0.0.1:15031", "127.0.0.1:15032")
	s, err := site.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulators.New(s, simulators.WithoutNoise())
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if err := sim.SetFault("co-2201", simulators.BrokenLoop); err != nil {
		t.Fatal(err)
	}

	var out, errs bytes.Buffer
	if err := run(context.Background(), []string{"-site", path, "-dry-run", "-data", t.TempDir()}, &out, &errs); err != nil {
		t.Fatalf("dry run: %v\n%s", err, errs.String())
	}
	table := out.String()
	for _, want := range []string{"ch4-3101-t1", "0.3", "o2-2201-intake", "20.8", "holding 10 float32 ABCD"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	var coLine string
	for _, l := range strings.Split(table, "\n") {
		if strings.Contains(l, "co-2201") {
			coLine = l
		}
	}
	if !strings.Contains(coLine, " bad ") || !strings.Contains(coLine, "NAMUR") {
		t.Errorf("broken loop row %q, want quality bad naming NAMUR NE 43", coLine)
	}

	if err := run(context.Background(), []string{"-site", path, "-gateway", "nope", "-dry-run"}, &out, &errs); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown gateway: %v", err)
	}
}
