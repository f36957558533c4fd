package site

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// edit changes minimal: each pair replaces the first occurrence of old
// with new; a pair whose old is missing fails the test.
type edit []string

// broken is the site-file corpus: mistakes a site engineer makes, each
// refused with file:line:column, the field and a reason. text, when set,
// is the whole file; otherwise edits apply to minimal.
var broken = []struct {
	name  string
	edits edit
	text  string
	line  int
	col   int
	field string
	says  string
}{
	// The register map.
	{"overlapping registers", edit{"{device: d1, address: 0}", "{device: d1, address: 0, type: float32}"}, "", 28, 39, "sources[0].points[1].modbus.address", `holding register 1 of device "d1", which overlaps 0–1 of point "p1"`},
	{"overlap of a 64-bit value", edit{"{device: d1, address: 1}", "{device: d1, address: 1, type: float64}", "{device: d1, address: 0}", "{device: d1, address: 4}"}, "", 28, 39, "sources[0].points[1].modbus.address", "overlaps 4 of point"},
	{"two points on one register", edit{"{device: d1, address: 1}", "{device: d1, address: 0}"}, "", 28, 39, "sources[0].points[1].modbus.address", `two points on one register: point "p2" reads holding register 0 of device "d1", as point "p1" does`},
	{"two points on one coil", edit{"{device: d1, address: 0}", "{device: d1, table: coil, address: 5}", "{device: d1, address: 1}", "{device: d1, table: coil, address: 5}", "range: [0, 100]", "range: [0, 1]", "limits: {h: 40, hh: 80}", "limits: {hh: 1}", "range: [0, 100]", "range: [0, 1]", "limits: {h: 40, hh: 80}", "limits: {hh: 1}"}, "", 28, 52, "sources[0].points[1].modbus.address", `reads coil 5 of device "d1"`},
	{"one bit read twice", edit{"{device: d1, address: 0}", "{device: d1, address: 7, bit: 3}", "{device: d1, address: 1}", "{device: d1, address: 7, bit: 3}"}, "", 28, 47, "sources[0].points[1].modbus.bit", `reads bit 3 of holding register 7`},
	{"a whole register and a bit of it", edit{"{device: d1, address: 0}", "{device: d1, address: 7}", "{device: d1, address: 1}", "{device: d1, address: 7, bit: 0}"}, "", 28, 39, "sources[0].points[1].modbus.address", "two points on one register"},
	{"address past the last register", edit{"{device: d1, address: 0}", "{device: d1, address: 65535, type: float32}"}, "", 20, 39, "sources[0].points[0].modbus.address", "runs past register 65535"},
	{"unknown device", edit{"{device: d1, address: 0}", "{device: d9, address: 0}"}, "", 20, 26, "sources[0].points[0].modbus.device", `device "d9", which no gateway`},
	{"a bool in a register without bit", edit{"{device: d1, address: 0}", "{device: d1, address: 0, type: bool}"}, "", 20, 9, "sources[0].points[0].modbus.bit", "needs bit"},
	{"bit 16", edit{"{device: d1, address: 0}", "{device: d1, address: 0, bit: 16}"}, "", 20, 47, "sources[0].points[0].modbus.bit", "bit must be 0 to 15"},

	// Devices and their timing.
	{"poll_interval 0s", edit{"        address: 127.0.0.1:1502\n", "        address: 127.0.0.1:1502\n        poll_interval: 0s\n"}, "", 8, 24, "gateways[0].devices[0].poll_interval", "poll_interval 0s: it must be positive (leave it out for the default 1s)"},
	{"poll_interval 0", edit{"        address: 127.0.0.1:1502\n", "        address: 127.0.0.1:1502\n        poll_interval: \"0\"\n"}, "", 8, 24, "gateways[0].devices[0].poll_interval", "must be positive"},
	{"timeout 0s", edit{"        address: 127.0.0.1:1502\n", "        address: 127.0.0.1:1502\n        timeout: 0s\n"}, "", 8, 18, "gateways[0].devices[0].timeout", "timeout 0s: it must be positive"},
	{"timeout longer than the poll interval", edit{"        address: 127.0.0.1:1502\n", "        address: 127.0.0.1:1502\n        poll_interval: 500ms\n        timeout: 2s\n"}, "", 9, 18, "gateways[0].devices[0].timeout", "timeout 2s is longer than the poll interval 500ms"},
	{"timeout longer than the default poll interval", edit{"        address: 127.0.0.1:1502\n", "        address: 127.0.0.1:1502\n        timeout: 3s\n"}, "", 8, 18, "gateways[0].devices[0].timeout", "longer than the poll interval 1s"},
	{"poll interval below 10ms", edit{"        address: 127.0.0.1:1502\n", "        address: 127.0.0.1:1502\n        poll_interval: 1ms\n"}, "", 8, 24, "gateways[0].devices[0].poll_interval", "below 10ms"},
	{"poll interval not a duration", edit{"        address: 127.0.0.1:1502\n", "        address: 127.0.0.1:1502\n        poll_interval: soon\n"}, "", 8, 24, "gateways[0].devices[0].poll_interval", "not a duration"},
	{"poll interval without a unit", edit{"        address: 127.0.0.1:1502\n", "        address: 127.0.0.1:1502\n        poll_interval: 5\n"}, "", 8, 24, "gateways[0].devices[0].poll_interval", "not a duration"},
	{"one slave as two devices", edit{"        address: 127.0.0.1:1502\n", "        address: 127.0.0.1:1502\n      - id: d2\n        address: 127.0.0.1:1502\n"}, "", 8, 9, "gateways[0].devices[1].unit_id", `device "d2" is the same Modbus slave as device "d1" (127.0.0.1:1502, unit id 0)`},
	{"one RS-485 bus at two baud rates", edit{"      - id: d1\n        address: 127.0.0.1:1502\n", "      - id: d1\n        transport: rtu\n        serial: {port: /dev/ttyS1, baud_rate: 9600}\n      - id: d2\n        transport: rtu\n        unit_id: 2\n        serial: {port: /dev/ttyS1, baud_rate: 19200}\n"}, "", 12, 9, "gateways[0].devices[1].serial", "serial port /dev/ttyS1 is set to 19200 8N1 here but 9600 8N1 for device \"d1\""},
	{"address without a port", edit{"address: 127.0.0.1:1502", "address: 127.0.0.1"}, "", 7, 18, "gateways[0].devices[0].address", "not host:port"},

	// Points: what they measure.
	{"toxic gas without gas", edit{"        kind: toxic_gas\n        gas: NH3\n", "        kind: toxic_gas\n"}, "", 14, 9, "sources[0].points[0].gas", "a toxic_gas point needs gas"},
	{"combustible gas without gas", edit{"        kind: toxic_gas\n        gas: NH3\n        unit: ppm\n", "        kind: combustible_gas\n        unit: \"%LEL\"\n"}, "", 14, 9, "sources[0].points[0].gas", "a combustible_gas point needs gas"},
	{"%LEL on a toxic gas", edit{"        unit: ppm\n", "        unit: \"%LEL\"\n"}, "", 18, 15, "sources[0].points[0].unit", "unit %LEL on a toxic gas"},
	{"% LEL with a space on a toxic gas", edit{"        unit: ppm\n", "        unit: \"% lel\"\n"}, "", 18, 15, "sources[0].points[0].unit", "on a toxic gas"},
	{"ppm on a combustible gas", edit{"        kind: toxic_gas\n        gas: NH3\n", "        kind: combustible_gas\n        gas: LPG\n"}, "", 18, 15, "sources[0].points[0].unit", `unit "ppm" does not fit a combustible_gas point`},
	{"%LEL on coal-mine methane", edit{"        kind: toxic_gas\n        gas: NH3\n        unit: ppm\n", "        kind: methane\n        gas: CH4\n        unit: \"%LEL\"\n"}, "", 18, 15, "sources[0].points[0].unit", "AQ 6201"},
	{"gas on a level point", edit{"        kind: toxic_gas\n", "        kind: level\n", "        unit: ppm\n", "        unit: \"%\"\n"}, "", 17, 14, "sources[0].points[0].gas", "gas belongs to gas detectors"},
	{"unknown kind", edit{"kind: toxic_gas", "kind: toxic"}, "", 16, 15, "sources[0].points[0].kind", `kind "toxic" is not one of`},
	{"no unit", edit{"        unit: ppm\n", ""}, "", 14, 9, "sources[0].points[0].unit", "has no unit"},
	{"range backwards", edit{"range: [0, 100]", "range: [100, 0]"}, "", 19, 9, "sources[0].points[0].range", "min below max"},
	{"range of one number", edit{"range: [0, 100]", "range: [100]"}, "", 19, 16, "sources[0].points[0].range", "range must be [min, max]"},
	{"limit outside the range", edit{"limits: {h: 40, hh: 80}", "limits: {h: 40, hh: 120}"}, "", 21, 29, "sources[0].points[0].limits.hh", "outside the measuring range"},
	{"limits out of order", edit{"limits: {h: 40, hh: 80}", "limits: {h: 90, hh: 80}"}, "", 21, 29, "sources[0].points[0].limits.hh", "LL ≤ L ≤ H ≤ HH"},
	{"stale_after shorter than the poll", edit{"        limits: {h: 40, hh: 80}\n", "        limits: {h: 40, hh: 80}\n        stale_after: 500ms\n"}, "", 22, 22, "sources[0].points[0].stale_after", "stale_after 500ms is shorter than the poll interval 1s"},
	{"report heartbeat 0s", edit{"        limits: {h: 40, hh: 80}\n", "        limits: {h: 40, hh: 80}\n        report: {deadband: 1, heartbeat: 0s}\n"}, "", 22, 42, "sources[0].points[0].report.heartbeat", "heartbeat 0s: it must be positive"},
	{"rate window 0s", edit{"        limits: {h: 40, hh: 80}\n", "        limits: {h: 40, hh: 80}\n        rate_of_change: {rise: 10, window: 0s}\n"}, "", 22, 44, "sources[0].points[0].rate_of_change.window", "window 0s: it must be positive"},
	{"point id twice", edit{"      - id: p2\n", "      - id: p1\n"}, "", 22, 13, "sources[0].points[1].id", `point id "p1" is used twice`},
	{"unknown key", edit{"    grade: 2\n", "    grade: 2\n    colour: red\n"}, "", 13, 5, "sources[0].colour", `unknown key "colour"`},
	{"misspelt key", edit{"        unit: ppm\n", "        units: ppm\n"}, "", 18, 9, "sources[0].points[0].units", `unknown key "units"`},
	{"grade 5", edit{"    grade: 2\n", "    grade: 5\n"}, "", 12, 12, "sources[0].grade", "1 to 4"},
	{"a key twice", edit{"    grade: 2\n", "    grade: 2\n    grade: 1\n"}, "", 13, 12, "", `mapping key "grade" already defined at line 12`},

	// The file itself.
	{"a second YAML document", nil, minimal + "---\nid: s2\nname: other\n", 30, 1, "", "a second YAML document starts here"},
	{"a second document that is broken", nil, minimal + "---\n[\n", 31, 0, "", "a second YAML document follows the site, and it is broken"},
	{"empty file", nil, "", 1, 1, "", "file is empty"},
	{"blank lines only", nil, "\n  \n\r\n", 1, 1, "", "file is empty"},
	{"comments only", nil, "# the tank farm, to do\n", 1, 1, "", "file holds only comments"},
	{"saved in GBK", nil, "id: s1\nname: \xb4\xa2\xb9\xde\xc7\xf8\n", 2, 7, "", "byte 0xb4 is not UTF-8: save the file as UTF-8"},
	{"cut in the middle of a character", nil, strings.Replace(minimal, "储罐区", "储\xe7\xbd", 1), 10, 12, "", "is not UTF-8"},
	{"saved as UTF-16", nil, "\xff\xfei\x00d\x00:\x00", 1, 1, "", "file is UTF-16 text: save it as UTF-8"},
	{"a NUL byte", nil, strings.Replace(minimal, "    type: tank_farm\n", "    type: tank\x00farm\n", 1), 11, 15, "", "file is binary (a NUL byte)"},
	{"an image", nil, "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 1, 1, "", "byte 0x89 is not UTF-8"},
	{"a gzip file", nil, "\x1f\x8b\x08\x00\x00\x00\x00\x00", 1, 1, "", "control character 0x1f"},
	{"a tab indents", nil, strings.Replace(minimal, "    grade: 2\n", "\tgrade: 2\n", 1), 12, 1, "", "a tab indents this line: YAML indents with spaces"},
	{"two files joined", nil, minimal + "\ufeffid: s2\n", 30, 1, "", "byte order mark inside the file"},
	{"a list, not a site", nil, "- id: s1\n  name: x\n", 1, 1, "", "a site file is a mapping of keys (id: …, name: …), not a list"},
	{"a word, not a site", nil, "hello\n", 1, 1, "", `not the value "hello"`},
	{"site id missing", edit{"id: s1\n", ""}, "", 1, 1, "id", "site id is missing"},
}

func applyEdits(t *testing.T, e edit) string {
	t.Helper()
	text := minimal
	for i := 0; i+1 < len(e); i += 2 {
		if !strings.Contains(text, e[i]) {
			t.Fatalf("edit %q: not in the file", e[i])
		}
		text = strings.Replace(text, e[i], e[i+1], 1)
	}
	return text
}

// TestSiteFileCorpus loads every broken file beside a good one and checks
// that it is refused with file:line:column, field and reason, and that the
// good file beside it is not blamed.
func TestSiteFileCorpus(t *testing.T) {
	if len(broken) < 40 {
		t.Errorf("the site-file corpus has %d cases, want at least 40", len(broken))
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "a-good.yaml")
	if err := os.WriteFile(good, []byte(strings.Replace(minimal, "id: s1\n", "id: s-good\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range broken {
		t.Run(c.name, func(t *testing.T) {
			text := c.text
			if c.edits != nil {
				text = applyEdits(t, c.edits)
			}
			bad := filepath.Join(dir, "b-bad.yaml")
			if err := os.WriteFile(bad, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			sites, err := LoadFiles(good, bad)
			var ps Problems
			if !errors.As(err, &ps) || sites != nil {
				t.Fatalf("accepted, or not with Problems: %v", err)
			}
			found := false
			for _, p := range ps {
				if p.File != bad {
					t.Errorf("the good file is blamed: %s", p)
				}
				if p.Line == 0 {
					t.Errorf("problem without a line: %s", p)
				}
				if strings.Contains(p.Msg, c.says) && (c.field == "" || p.Field == c.field) {
					found = true
					if p.Line != c.line || p.Column != c.col {
						t.Errorf("%s: at %d:%d, want %d:%d", p, p.Line, p.Column, c.line, c.col)
					}
				}
			}
			if !found {
				t.Errorf("no problem %s saying %q; got:\n%v", c.field, c.says, ps)
			}
		})
	}
}

// TestStrictChecksAcceptWhatIsRight: the strict checks do not refuse what
// a correct site file says.
func TestStrictChecksAcceptWhatIsRight(t *testing.T) {
	for name, e := range map[string]edit{
		"bits of one status word":              {"{device: d1, address: 0}", "{device: d1, address: 7, bit: 0}", "{device: d1, address: 1}", "{device: d1, address: 7, bit: 1}"},
		"same address in two tables":           {"{device: d1, address: 1}", "{device: d1, table: input, address: 0}"},
		"adjacent float32 values":              {"{device: d1, address: 0}", "{device: d1, address: 0, type: float32}", "{device: d1, address: 1}", "{device: d1, address: 2, type: float32}"},
		"toxic gas in mg/m³":                   {"        unit: ppm\n", "        unit: mg/m³\n"},
		"a fast poll with the default timeout": {"        address: 127.0.0.1:1502\n", "        address: 127.0.0.1:1502\n        poll_interval: 200ms\n"},
		"timeout equal to the poll interval":   {"        address: 127.0.0.1:1502\n", "        address: 127.0.0.1:1502\n        poll_interval: 2s\n        timeout: 2s\n"},
		"two slaves behind one TCP gateway":    {"        address: 127.0.0.1:1502\n", "        address: 127.0.0.1:1502\n        unit_id: 1\n      - id: d2\n        address: 127.0.0.1:1502\n        unit_id: 2\n"},
		"a document start marker":              {"id: s1\n", "---\nid: s1\n"},
	} {
		text := applyEdits(t, e)
		s, err := Parse("ok.yaml", []byte(text))
		if err != nil {
			t.Errorf("%s: refused:\n%v", name, err)
			continue
		}
		if name == "a fast poll with the default timeout" && s.Device("d1").Timeout.D() != s.Device("d1").PollInterval.D() {
			t.Errorf("default timeout %v with a 200ms poll, want 200ms", s.Device("d1").Timeout.D())
		}
	}
}
