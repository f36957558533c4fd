package testenv

import (
	"fmt"
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
