package site

import (
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// Defaults applied where a site file is silent.
const (
	DefaultPollInterval = time.Second
	DefaultTimeout      = time.Second
	DefaultRetries      = 1
	DefaultMaxGap       = 8
	DefaultBaudRate     = 9600
	DefaultROCWindow    = time.Minute
	DefaultHeartbeat    = time.Minute
)

// idRE is what an id may look like: ids appear in MQTT topics and metric
// labels, so no slashes, wildcards or spaces.
var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func applyDefaults(s *Site) {
	for gi := range s.Gateways {
		g := &s.Gateways[gi]
		for di := range g.Devices {
			d := &g.Devices[di]
			d.Gateway = g.ID
			if d.Transport == "" {
				d.Transport = TransportTCP
			}
			if d.UnitID == 0 && (d.Transport == TransportRTU || d.Transport == TransportRTUOverTCP) {
				d.UnitID = 1
			}
			if d.PollInterval == 0 {
				d.PollInterval = Duration(DefaultPollInterval)
			}
			if d.Timeout == 0 {
				// Never longer than the poll interval (validateStrict).
				d.Timeout = min(Duration(DefaultTimeout), d.PollInterval)
			}
			if d.Retries == nil {
				r := DefaultRetries
				d.Retries = &r
			}
			if d.MaxGap == nil {
				g := DefaultMaxGap
				d.MaxGap = &g
			}
			if d.Serial != nil {
				if d.Serial.BaudRate == 0 {
					d.Serial.BaudRate = DefaultBaudRate
				}
				if d.Serial.DataBits == 0 {
					d.Serial.DataBits = 8
				}
				if d.Serial.Parity == "" {
					d.Serial.Parity = "N"
				}
				if d.Serial.StopBits == 0 {
					d.Serial.StopBits = 1
				}
			}
		}
	}
	for si := range s.Sources {
		for pi := range s.Sources[si].Points {
			m := &s.Sources[si].Points[pi].Modbus
			if m.Table == "" {
				m.Table = HoldingRegisters
			}
			if m.Type == "" {
				m.Type = Uint16
				if m.Table.IsBit() {
					m.Type = Bool
				}
			}
			if m.Order == "" {
				m.Order = ABCD
			}
			if m.Scale == nil {
				one := 1.0
				m.Scale = &one
			}
			pt := &s.Sources[si].Points[pi]
			if r := pt.RateOfChange; r != nil && r.Window == 0 {
				r.Window = Duration(DefaultROCWindow)
			}
			if r := pt.Report; r != nil {
				if r.Heartbeat == 0 {
					r.Heartbeat = Duration(DefaultHeartbeat)
				}
				// A point sent only by exception is quiet for up to a
				// heartbeat; it is stale only after three missed ones.
				if pt.StaleAfter == nil && r.Heartbeat > 0 {
					stale := 3 * r.Heartbeat
					pt.StaleAfter = &stale
				}
			}
		}
	}
}

func (p *parser) checkID(path, id, what string) {
	switch {
	case id == "":
		p.errorf(path, "%s id is missing", what)
	case !idRE.MatchString(id):
		p.errorf(path, "%s id %q may hold only letters, digits, '_', '-' and '.', start with a letter or digit, and be at most 64 long", what, id)
	}
}

func (p *parser) validate(s *Site) {
	p.checkID("id", s.ID, "site")
	if s.Name == "" {
		p.errorf("name", "site name is missing")
	}
	p.validateGeo(s)
	if len(s.Gateways) == 0 {
		p.errorf("gateways", "a site needs at least one gateway")
	}
	if len(s.Sources) == 0 {
		p.errorf("sources", "a site needs at least one hazard source")
	}

	gateways := map[string]bool{}
	devices := map[string]*Device{}
	for gi := range s.Gateways {
		g := &s.Gateways[gi]
		gp := fmt.Sprintf("gateways[%d]", gi)
		p.checkID(gp+".id", g.ID, "gateway")
		if gateways[g.ID] && g.ID != "" {
			p.errorf(gp+".id", "gateway id %q is used twice", g.ID)
		}
		gateways[g.ID] = true
		for di := range g.Devices {
			d := &g.Devices[di]
			dp := fmt.Sprintf("%s.devices[%d]", gp, di)
			p.checkID(dp+".id", d.ID, "device")
			if _, dup := devices[d.ID]; dup && d.ID != "" {
				p.errorf(dp+".id", "device id %q is used twice in the site", d.ID)
			}
			devices[d.ID] = d
			p.validateDevice(dp, d)
		}
	}

	points := map[string]bool{}
	sources := map[string]bool{}
	for si := range s.Sources {
		src := &s.Sources[si]
		sp := fmt.Sprintf("sources[%d]", si)
		p.checkID(sp+".id", src.ID, "source")
		if sources[src.ID] && src.ID != "" {
			p.errorf(sp+".id", "source id %q is used twice", src.ID)
		}
		sources[src.ID] = true
		if src.Name == "" {
			p.errorf(sp+".name", "source %q has no name", src.ID)
		}
		if !slices.Contains(sourceTypes, src.Type) {
			p.errorf(sp+".type", "source type %q is not one of %v", src.Type, sourceTypes)
		}
		if src.Grade < 1 || src.Grade > 4 {
			p.errorf(sp+".grade", "GB 18218 grade must be 1 to 4, not %d", src.Grade)
		}
		if len(src.Points) == 0 {
			p.errorf(sp+".points", "source %q has no monitoring points", src.ID)
		}
		own := map[string]*Point{}
		for pi := range src.Points {
			pt := &src.Points[pi]
			pp := fmt.Sprintf("%s.points[%d]", sp, pi)
			p.checkID(pp+".id", pt.ID, "point")
			if points[pt.ID] && pt.ID != "" {
				p.errorf(pp+".id", "point id %q is used twice in the site", pt.ID)
			}
			points[pt.ID] = true
			if own[pt.ID] == nil {
				own[pt.ID] = pt
			}
			p.validatePoint(pp, pt, devices)
		}
		p.validateVotes(sp, src, own)
		p.validatePolicy(sp+".policy", src.Policy)
		p.validateResponsible(sp, src)
	}
	p.validatePolicy("policy", s.Policy)
}

func (p *parser) validateDevice(dp string, d *Device) {
	switch d.Transport {
	case TransportTCP, TransportRTUOverTCP:
		if d.Address == "" {
			p.errorf(dp+".address", "device %q uses %s but has no address (host:port)", d.ID, d.Transport)
		} else if _, port, err := net.SplitHostPort(d.Address); err != nil {
			p.errorf(dp+".address", "address %q is not host:port", d.Address)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			p.errorf(dp+".address", "port %q in %q is not 1 to 65535", port, d.Address)
		}
		if d.Serial != nil && d.Transport == TransportTCP {
			p.errorf(dp+".serial", "device %q uses tcp; serial settings belong to rtu devices", d.ID)
		}
		if d.Transport == TransportRTUOverTCP && (d.UnitID < 1 || d.UnitID > 247) {
			p.errorf(dp+".unit_id", "an RTU unit id must be 1 to 247, not %d", d.UnitID)
		}
	case TransportRTU:
		if d.Serial == nil || d.Serial.Port == "" {
			p.errorf(dp+".serial", "device %q uses rtu but has no serial.port", d.ID)
		} else {
			sp := dp + ".serial"
			if !slices.Contains([]string{"N", "E", "O"}, d.Serial.Parity) {
				p.errorf(sp+".parity", "parity %q is not N, E or O", d.Serial.Parity)
			}
			if d.Serial.DataBits < 5 || d.Serial.DataBits > 8 {
				p.errorf(sp+".data_bits", "data bits must be 5 to 8, not %d", d.Serial.DataBits)
			}
			if d.Serial.StopBits != 1 && d.Serial.StopBits != 2 {
				p.errorf(sp+".stop_bits", "stop bits must be 1 or 2, not %d", d.Serial.StopBits)
			}
			if d.Serial.BaudRate <= 0 {
				p.errorf(sp+".baud_rate", "baud rate must be positive")
			}
		}
		if d.UnitID < 1 || d.UnitID > 247 {
			p.errorf(dp+".unit_id", "an RTU unit id must be 1 to 247, not %d", d.UnitID)
		}
	default:
		p.errorf(dp+".transport", "transport %q is not tcp, rtu or rtu_over_tcp", d.Transport)
	}
	if d.PollInterval < Duration(10*time.Millisecond) {
		p.errorf(dp+".poll_interval", "poll interval %s is below 10ms", d.PollInterval.D())
	}
	if d.Timeout <= 0 {
		p.errorf(dp+".timeout", "timeout must be positive")
	}
	if d.Retries != nil && (*d.Retries < 0 || *d.Retries > 10) {
		p.errorf(dp+".retries", "retries must be 0 to 10, not %d", *d.Retries)
	}
	if d.MaxGap != nil && (*d.MaxGap < 0 || *d.MaxGap > 124) {
		p.errorf(dp+".max_gap", "max_gap must be 0 to 124 registers, not %d", *d.MaxGap)
	}
	if d.PauseBetweenRequests < 0 || d.PauseBetweenRequests > Duration(10*time.Second) {
		p.errorf(dp+".pause_between_requests", "pause_between_requests must be 0 to 10s, not %s", d.PauseBetweenRequests.D())
	}
	if d.PauseAfterOpen < 0 || d.PauseAfterOpen > Duration(time.Minute) {
		p.errorf(dp+".pause_after_open", "pause_after_open must be 0 to 1m, not %s", d.PauseAfterOpen.D())
	}
}

func fmtLimit(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func (p *parser) validatePoint(pp string, pt *Point, devices map[string]*Device) {
	if pt.Name == "" {
		p.errorf(pp+".name", "point %q has no name", pt.ID)
	}
	if !slices.Contains(kinds, pt.Kind) {
		p.errorf(pp+".kind", "kind %q is not one of %v", pt.Kind, kinds)
	}
	if pt.Unit == "" {
		p.errorf(pp+".unit", "point %q has no unit", pt.ID)
	}
	r := pt.Range
	rangeOK := r.Min < r.Max && !math.IsInf(r.Min, 0) && !math.IsInf(r.Max, 0)
	if !rangeOK {
		p.errorf(pp+".range", "range [%s, %s] must have min below max", fmtLimit(r.Min), fmtLimit(r.Max))
	}
	p.validateMapping(pp+".modbus", pt, devices)

	// Limits: inside the range and ordered LL ≤ L ≤ H ≤ HH.
	lim := []struct {
		name string
		v    *float64
	}{{"ll", pt.Limits.LL}, {"l", pt.Limits.L}, {"h", pt.Limits.H}, {"hh", pt.Limits.HH}}
	var prevName string
	var prev *float64
	for _, l := range lim {
		if l.v == nil {
			continue
		}
		path := pp + ".limits." + l.name
		if rangeOK && (math.IsNaN(*l.v) || *l.v < r.Min || *l.v > r.Max) {
			p.errorf(path, "limit %s %s is outside the measuring range [%s, %s]", l.name, fmtLimit(*l.v), fmtLimit(r.Min), fmtLimit(r.Max))
		}
		if prev != nil && *l.v < *prev {
			p.errorf(path, "limit %s %s is below %s %s; limits must keep LL ≤ L ≤ H ≤ HH", l.name, fmtLimit(*l.v), prevName, fmtLimit(*prev))
		}
		prev, prevName = l.v, l.name
	}
	if pt.Limits.Restore != nil {
		switch {
		case !pt.PowerOff:
			p.errorf(pp+".limits.restore", "restore applies to power-off points only (set power_off: true)")
		case pt.Limits.HH == nil:
		case *pt.Limits.Restore > *pt.Limits.HH:
			p.errorf(pp+".limits.restore", "restore %s is above the power-off limit hh %s", fmtLimit(*pt.Limits.Restore), fmtLimit(*pt.Limits.HH))
		}
	}
	if pt.PowerOff && pt.Limits.HH == nil {
		p.errorf(pp+".limits.hh", "power-off point %q needs hh, its power-off limit", pt.ID)
	}
	if pt.Deadband != nil && rangeOK && (*pt.Deadband < 0 || *pt.Deadband >= r.Span()) {
		p.errorf(pp+".deadband", "deadband %s must be at least 0 and less than the range's span %s", fmtLimit(*pt.Deadband), fmtLimit(r.Span()))
	}
	for name, d := range map[string]*Duration{"on_delay": pt.OnDelay, "off_delay": pt.OffDelay} {
		if d != nil && *d < 0 {
			p.errorf(pp+"."+name, "%s must not be negative", name)
		}
	}
	for name, d := range map[string]*Duration{"stale_after": pt.StaleAfter, "stuck_after": pt.StuckAfter} {
		if d != nil && *d <= 0 {
			p.errorf(pp+"."+name, "%s must be positive", name)
		}
	}
	if r := pt.Report; r != nil {
		if r.Deadband < 0 || math.IsNaN(r.Deadband) || rangeOK && r.Deadband >= pt.Range.Span() {
			p.errorf(pp+".report.deadband", "report deadband %s must be at least 0 and less than the range's span", fmtLimit(r.Deadband))
		}
		if d := devices[pt.Modbus.Device]; r.Heartbeat <= 0 || d != nil && r.Heartbeat < d.PollInterval {
			p.errorf(pp+".report.heartbeat", "report heartbeat %s must be positive and at least the device's poll interval", r.Heartbeat.D())
		}
	}
	if roc := pt.RateOfChange; roc != nil {
		rp := pp + ".rate_of_change"
		if roc.Rise == nil && roc.Fall == nil {
			p.errorf(rp, "rate_of_change needs rise or fall (units per minute)")
		}
		if roc.Rise != nil && *roc.Rise <= 0 {
			p.errorf(rp+".rise", "rise must be positive units per minute")
		}
		if roc.Fall != nil && *roc.Fall <= 0 {
			p.errorf(rp+".fall", "fall must be positive units per minute (the size of the drop)")
		}
		if roc.Window <= 0 {
			p.errorf(rp+".window", "window must be positive")
		}
	}
}

func (p *parser) validateMapping(mp string, pt *Point, devices map[string]*Device) {
	m := &pt.Modbus
	if m.Device == "" {
		p.errorf(mp+".device", "point %q names no Modbus device", pt.ID)
	} else if devices[m.Device] == nil {
		p.errorf(mp+".device", "point %q is on device %q, which no gateway of the site has", pt.ID, m.Device)
	}
	if !slices.Contains(tables, m.Table) {
		p.errorf(mp+".table", "table %q is not one of %v", m.Table, tables)
		return
	}
	if !slices.Contains(dataTypes, m.Type) {
		p.errorf(mp+".type", "type %q is not one of %v", m.Type, dataTypes)
		return
	}
	if !slices.Contains(byteOrders, m.Order) {
		p.errorf(mp+".order", "byte order %q is not one of %v", m.Order, byteOrders)
	}
	if m.Table.IsBit() && m.Type != Bool {
		p.errorf(mp+".type", "table %s holds bits; type must be bool, not %s", m.Table, m.Type)
	}
	if !m.Table.IsBit() && m.Type == Bool && m.Bit == nil {
		p.errorf(mp+".bit", "a bool in a register table needs bit (0–15)")
	}
	if m.Bit != nil {
		switch {
		case m.Table.IsBit():
			p.errorf(mp+".bit", "bit selects a bit of a register; table %s already holds bits", m.Table)
		case *m.Bit < 0 || *m.Bit > 15:
			p.errorf(mp+".bit", "bit must be 0 to 15, not %d", *m.Bit)
		case m.Type != Bool && m.Type != Uint16 && m.Type != Int16:
			p.errorf(mp+".bit", "bit applies to a single register (type bool, uint16 or int16), not %s", m.Type)
		}
	}
	if end := int(m.Address) + m.Type.Registers(); end > 65536 {
		p.errorf(mp+".address", "address %d with a %s runs past register 65535", m.Address, m.Type)
	}
	if m.Scale != nil && (*m.Scale == 0 || math.IsNaN(*m.Scale) || math.IsInf(*m.Scale, 0)) {
		p.errorf(mp+".scale", "scale must be a non-zero number")
	}
	if cl := m.CurrentLoop; cl != nil && cl.RawAt4mA == cl.RawAt20mA {
		p.errorf(mp+".current_loop", "raw_at_4ma and raw_at_20ma must differ")
	}
}

func (p *parser) validateVotes(sp string, src *Source, own map[string]*Point) {
	ids := map[string]bool{}
	for vi, v := range src.Votes {
		vp := fmt.Sprintf("%s.votes[%d]", sp, vi)
		p.checkID(vp+".id", v.ID, "vote")
		if ids[v.ID] && v.ID != "" {
			p.errorf(vp+".id", "vote id %q is used twice in source %q", v.ID, src.ID)
		}
		ids[v.ID] = true
		if len(v.Points) < 2 {
			p.errorf(vp+".points", "a vote needs at least two points")
		}
		if v.K < 1 || v.K > len(v.Points) {
			p.errorf(vp+".k", "k must be 1 to the number of points (%d), not %d", len(v.Points), v.K)
		}
		seen := map[string]bool{}
		for i, id := range v.Points {
			pp := fmt.Sprintf("%s.points[%d]", vp, i)
			pt := own[id]
			switch {
			case seen[id]:
				p.errorf(pp, "point %q is listed twice", id)
			case pt == nil:
				p.errorf(pp, "point %q is not a point of source %q", id, src.ID)
			case pt.Limits.H == nil && pt.Limits.HH == nil:
				p.errorf(pp, "point %q has no h or hh limit to vote with", id)
			}
			seen[id] = true
		}
	}
}

func (p *parser) validatePolicy(pp string, pol *Policy) {
	if pol == nil {
		return
	}
	if h := pol.FirstLevelHeld; h != nil && h.For <= 0 {
		p.errorf(pp+".first_level_held.for", "for must be positive")
	}
	for name, c := range map[string]*CountRule{"first_level_points": pol.FirstLevelPoints, "second_level_points": pol.SecondLevelPoints} {
		if c != nil && c.Count < 2 {
			p.errorf(pp+"."+name+".count", "count must be at least 2, not %d", c.Count)
		}
	}
	for i, g := range pol.EscalateSourceGrades {
		if g < 1 || g > 4 {
			p.errorf(fmt.Sprintf("%s.escalate_source_grades[%d]", pp, i), "GB 18218 grade must be 1 to 4, not %d", g)
		}
	}
}
