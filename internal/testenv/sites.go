package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hazardwatch/hazardwatch/site"
)

// ManySites generates sites × perSite hazard sources (load-NN/src-NNN), one
// combustible gas point each (gas-NNN, H 25, HH 50 %LEL), on a device that
// no gateway polls: a city-size model for console and load tests.
func ManySites(t testing.TB, sites, perSite int) []*site.Site {
	t.Helper()
	var out []*site.Site
	for i := range sites {
		var b strings.Builder
		fmt.Fprintf(&b, "id: load-%02d\nname: 负载测试企业 %02d\ngateways:\n  - id: gw\n    devices:\n      - {id: gds, address: \"127.0.0.1:1\"}\nsources:\n", i, i)
		for j := range perSite {
			fmt.Fprintf(&b, "  - id: src-%03d\n    name: 储罐区 %02d-%03d\n    type: tank_farm\n    grade: %d\n    points:\n", j, i, j, 1+j%4)
			fmt.Fprintf(&b, "      - {id: gas-%03d, name: 可燃气体 %03d, kind: combustible_gas, gas: LPG, unit: \"%%LEL\", range: [0, 100], modbus: {device: gds, table: input, address: %d, type: uint16, scale: 0.1}, limits: {h: 25, hh: 50}}\n", j, j, j)
		}
		s, err := site.Parse(fmt.Sprintf("load-%02d.yaml", i), []byte(b.String()))
		if err != nil {
			t.Fatalf("generated site load-%02d: %v", i, err)
		}
		out = append(out, s)
	}
	return out
}

// ExampleSite copies the example site file configs/sites/name into a new
// directory with each of the device addresses given moved to a free port
// on 127.0.0.1, so tests can serve it beside each other. It returns the
// copy's path and the new addresses, in the order given; an address the
// file no longer holds fails the test.
func ExampleSite(t testing.TB, name string, addrs ...string) (path string, moved []string) {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "configs", "sites", name))
	if err != nil {
		t.Fatalf("example site: %v", err)
	}
	text := string(raw)
	for _, addr := range addrs {
		if !strings.Contains(text, addr) {
			t.Fatalf("example site %s no longer uses %s; update the test", name, addr)
		}
		free := FreeAddr(t)
		text = strings.ReplaceAll(text, addr, free)
		moved = append(moved, free)
	}
	path = filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, moved
}
