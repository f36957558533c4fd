package site

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// checkText refuses what is not a YAML text in UTF-8 before the YAML
// parser sees it, naming the line and column: the parser's own messages
// for these ("invalid leading UTF-8 octet") say neither.
func checkText(file string, data []byte) Problems {
	at := func(line, col int, format string, args ...any) Problems {
		return Problems{{File: file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}}
	}
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return at(1, 1, "file is empty: a site file describes one site (see docs/site-file.md)")
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		return at(1, 1, "file is UTF-16 text: save it as UTF-8")
	}
	line, col := 1, 1
	indent := true // still in the line's leading white space
	for i := 0; i < len(data); {
		c := data[i]
		r, size := rune(c), 1
		if c >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return at(line, col, "byte %#x is not UTF-8: save the file as UTF-8 (it may be in GBK or GB 18030)", c)
			}
		}
		switch {
		case c == 0:
			return at(line, col, "file is binary (a NUL byte), not YAML text")
		case c == '\n':
			line, col, indent, i = line+1, 1, true, i+1
			continue
		case c == '\t' && indent:
			if rest := bytes.TrimLeft(data[i:], " \t"); len(rest) > 0 && rest[0] != '\n' && rest[0] != '\r' && rest[0] != '#' {
				return at(line, col, "a tab indents this line: YAML indents with spaces")
			}
		case c < 0x20 && c != '\t' && c != '\r' || c == 0x7F:
			return at(line, col, "control character %#x: the file is binary or damaged, not YAML text", c)
		case r == '\uFEFF' && i > 0:
			return at(line, col, "byte order mark inside the file (two files joined?)")
		}
		if c != ' ' && c != '\t' {
			indent = false
		}
		i += size
		col++
	}
	return nil
}

// secondDocument reports a YAML document after the first: a site file is
// one site, and the parser would silently read only the first.
func (p *parser) secondDocument(dec *yaml.Decoder) {
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		p.problems = append(p.problems, Problem{File: p.file, Line: extra.Line, Column: extra.Column,
			Msg: "a second YAML document starts here: a site file holds one site (put each site in its own file)"})
	case err.Error() != "EOF":
		pr := p.yamlProblem(err)
		pr.Msg = "a second YAML document follows the site, and it is broken: " + pr.Msg
		p.problems = append(p.problems, pr)
	}
}

// validateStrict checks what the field-by-field checks cannot see: values
// that contradict each other, explicit zeros that a default would hide,
// and the Modbus register map of each device.
func (p *parser) validateStrict(s *Site) {
	devPath := map[string]string{}
	devOf := map[string]*Device{}
	for gi := range s.Gateways {
		for di := range s.Gateways[gi].Devices {
			d := &s.Gateways[gi].Devices[di]
			dp := fmt.Sprintf("gateways[%d].devices[%d]", gi, di)
			if _, dup := devPath[d.ID]; !dup {
				devPath[d.ID], devOf[d.ID] = dp, d
			}
			p.explicitZero(dp+".poll_interval", "poll_interval", DefaultPollInterval)
			p.explicitZero(dp+".timeout", "timeout", DefaultTimeout)
			if d.Timeout > d.PollInterval && d.PollInterval >= Duration(10*time.Millisecond) {
				p.errorf(dp+".timeout", "timeout %s is longer than the poll interval %s: a device that is slow to answer would be polled again before its answer is due (make timeout at most poll_interval)",
					d.Timeout.D(), d.PollInterval.D())
			}
		}
	}
	p.checkSlaves(s)
	for si := range s.Sources {
		for pi := range s.Sources[si].Points {
			pt := &s.Sources[si].Points[pi]
			pp := fmt.Sprintf("sources[%d].points[%d]", si, pi)
			p.checkGasAndUnit(pp, pt)
			d := devOf[pt.Modbus.Device]
			if pt.StaleAfter != nil && d != nil && *pt.StaleAfter > 0 && *pt.StaleAfter < d.PollInterval {
				p.errorf(pp+".stale_after", "stale_after %s is shorter than the poll interval %s of device %q: the point would be stale between polls",
					pt.StaleAfter.D(), d.PollInterval.D(), d.ID)
			}
			if pt.Report != nil {
				p.explicitZero(pp+".report.heartbeat", "heartbeat", DefaultHeartbeat)
			}
			if pt.RateOfChange != nil {
				p.explicitZero(pp+".rate_of_change.window", "window", DefaultROCWindow)
			}
		}
	}
	p.checkRegisters(s, devOf)
}

// explicitZero refuses a duration written as 0, which the defaults would
// otherwise silently replace.
func (p *parser) explicitZero(path, name string, def time.Duration) {
	n, ok := p.nodes[path]
	if !ok || n.Kind != yaml.ScalarNode {
		return
	}
	if v, err := time.ParseDuration(n.Value); err == nil && v == 0 {
		p.errorf(path, "%s %s: it must be positive (leave it out for the default %s)", name, n.Value, def)
	}
}

// checkSlaves refuses one Modbus slave configured as two devices (their
// register maps would not be checked against each other, and the gateway
// would talk to it on two schedules) and serial devices on one port that
// disagree on the line settings (a bus has one).
func (p *parser) checkSlaves(s *Site) {
	type slave struct {
		where string // address or serial port
		unit  uint8
	}
	slaves := map[slave]string{}
	lines := map[string]*Device{}
	for gi := range s.Gateways {
		g := &s.Gateways[gi]
		for di := range g.Devices {
			d := &g.Devices[di]
			dp := fmt.Sprintf("gateways[%d].devices[%d]", gi, di)
			k := slave{where: d.Address, unit: d.UnitID}
			if d.Transport == TransportRTU {
				if d.Serial == nil || d.Serial.Port == "" {
					continue
				}
				k.where = g.ID + " " + d.Serial.Port
				if first, ok := lines[k.where]; ok {
					a, b := first.Serial, d.Serial
					if a.BaudRate != b.BaudRate || a.DataBits != b.DataBits || a.Parity != b.Parity || a.StopBits != b.StopBits {
						p.errorf(dp+".serial", "serial port %s is set to %d %d%s%d here but %d %d%s%d for device %q: devices on one bus share its line settings",
							b.Port, b.BaudRate, b.DataBits, b.Parity, b.StopBits, a.BaudRate, a.DataBits, a.Parity, a.StopBits, first.ID)
					}
				} else {
					lines[k.where] = d
				}
			} else if d.Address == "" {
				continue
			}
			if first, dup := slaves[k]; dup {
				p.errorf(dp+".unit_id", "device %q is the same Modbus slave as device %q (%s, unit id %d): describe a slave once, with all its points", d.ID, first, strings.TrimPrefix(k.where, g.ID+" "), d.UnitID)
				continue
			}
			slaves[k] = d.ID
		}
	}
}

// gasUnits are the units each gas kind may be measured in, lower case
// without spaces; "" means any.
var gasUnits = map[Kind][]string{
	ToxicGas:       {"ppm", "ppb", "mg/m3", "mg/m³", "µmol/mol", "umol/mol"},
	CombustibleGas: {"%lel", "%vol", "%v/v"},
	Oxygen:         {"%", "%vol", "%v/v"},
	Methane:        {"%", "%ch4", "%vol", "%v/v"},
}

func (p *parser) checkGasAndUnit(pp string, pt *Point) {
	if !pt.Kind.IsGas() {
		if pt.Gas != "" {
			p.errorf(pp+".gas", "gas %q is set on a %s point: gas belongs to gas detectors (combustible_gas, toxic_gas, oxygen, methane)", pt.Gas, pt.Kind)
		}
		return
	}
	if pt.Gas == "" && (pt.Kind == ToxicGas || pt.Kind == CombustibleGas) {
		p.errorf(pp+".gas", "a %s point needs gas (NH3, H2S, CO, Cl2, LPG, H2 …): its limits and the officers' warnings depend on which gas it is", pt.Kind)
	}
	if pt.Unit == "" {
		return // reported as missing
	}
	unit := strings.ToLower(strings.ReplaceAll(pt.Unit, " ", ""))
	allowed := gasUnits[pt.Kind]
	for _, u := range allowed {
		if unit == u {
			return
		}
	}
	switch {
	case strings.Contains(unit, "lel") && pt.Kind == ToxicGas:
		p.errorf(pp+".unit", "unit %s on a toxic gas: %%LEL measures flammability; a toxic gas is measured in ppm or mg/m³ against its exposure limit (GBZ 2.1), or it is a combustible_gas point", pt.Unit)
	case strings.Contains(unit, "lel") && pt.Kind == Methane:
		p.errorf(pp+".unit", "unit %s on a methane point: coal-mine methane is measured in %% CH4 (AQ 6201; 1 %% CH4 is 20 %% LEL); for %%LEL use kind combustible_gas", pt.Unit)
	default:
		p.errorf(pp+".unit", "unit %q does not fit a %s point (use one of %s)", pt.Unit, pt.Kind, strings.Join(allowed, ", "))
	}
}

// checkRegisters refuses two points that read the same or overlapping
// registers of one device: one of them is mapped wrong, and the gateway
// would read one value as two. Points that each pick a different bit of
// one register are fine: that is how status words are read.
func (p *parser) checkRegisters(s *Site, devOf map[string]*Device) {
	type span struct {
		start, end int // registers [start, end)
		bit        *int
		path, id   string
		order      int // in the file
	}
	type key struct {
		device string
		table  Table
	}
	maps := map[key][]span{}
	order := 0
	for si := range s.Sources {
		for pi := range s.Sources[si].Points {
			pt := &s.Sources[si].Points[pi]
			m := pt.Modbus
			order++
			if devOf[m.Device] == nil || !validTable(m.Table) || !validType(m.Type) {
				continue // reported by validateMapping
			}
			n := m.Type.Registers()
			if m.Table.IsBit() {
				n = 1
			}
			k := key{m.Device, m.Table}
			maps[k] = append(maps[k], span{start: int(m.Address), end: int(m.Address) + n, bit: m.Bit,
				path: fmt.Sprintf("sources[%d].points[%d].modbus", si, pi), id: pt.ID, order: order})
		}
	}
	keys := make([]key, 0, len(maps))
	for k := range maps {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].device < keys[j].device || keys[i].device == keys[j].device && keys[i].table < keys[j].table
	})
	for _, k := range keys {
		spans := maps[k]
		sort.SliceStable(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
		what := string(k.table) + " register"
		if k.table.IsBit() {
			what = strings.ReplaceAll(string(k.table), "_", " ")
		}
		for i := range spans {
			for j := i + 1; j < len(spans) && spans[j].start < spans[i].end; j++ {
				a, b := spans[i], spans[j]
				if a.order > b.order {
					a, b = b, a // report at the later point in the file
				}
				switch {
				case a.bit != nil && b.bit != nil && *a.bit != *b.bit:
					// Two bits of one status word.
				case a.bit != nil && b.bit != nil:
					p.errorf(b.path+".bit", "point %q reads bit %d of %s %d of device %q, as point %q does", b.id, *b.bit, what, b.start, k.device, a.id)
				case a.start == b.start && a.end == b.end:
					p.errorf(b.path+".address", "two points on one register: point %q reads %s %d of device %q, as point %q does", b.id, what, b.start, k.device, a.id)
				default:
					p.errorf(b.path+".address", "point %q reads %s %s of device %q, which overlaps %s of point %q",
						b.id, what, regSpan(b.start, b.end), k.device, regSpan(a.start, a.end), a.id)
				}
			}
		}
	}
}

func regSpan(start, end int) string {
	if end-start == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d–%d", start, end-1)
}

func validTable(t Table) bool {
	for _, x := range tables {
		if x == t {
			return true
		}
	}
	return false
}

func validType(d DataType) bool {
	for _, x := range dataTypes {
		if x == d {
			return true
		}
	}
	return false
}
