package site

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParseLargeSite parses one site of 50 gateways × 200 gas points
// (10,000 points, the load tool's site), what a city's centre loads at
// start.
//
//	go test ./site/ -run '^$' -bench ParseLargeSite -benchmem
func BenchmarkParseLargeSite(b *testing.B) {
	var y strings.Builder
	y.WriteString("id: big\nname: big site\nenterprise_code: \"000000000000000000\"\nregion: \"350404\"\ngateways:\n")
	for g := range 50 {
		fmt.Fprintf(&y, "  - id: gw-%d\n    name: gateway %d\n    devices:\n      - {id: dev-%d, name: device %d, transport: tcp, address: \"127.0.0.1:%d\", unit_id: 1, poll_interval: 1s, timeout: 500ms}\n", g, g, g, g, 20000+g)
	}
	y.WriteString("sources:\n")
	for g := range 50 {
		fmt.Fprintf(&y, "  - id: src-%d\n    name: tank farm %d\n    type: tank_farm\n    grade: 2\n    points:\n", g, g)
		for p := range 200 {
			fmt.Fprintf(&y, "      - {id: g%d-p%d, name: NH3 detector %d, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], "+
				"modbus: {device: dev-%d, table: input, address: %d, type: uint16, scale: 0.1}, limits: {h: 40, hh: 80}}\n", g, p, p, g, p)
		}
	}
	doc := []byte(y.String())
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := Parse("big.yaml", doc); err != nil {
			b.Fatal(err)
		}
	}
}
