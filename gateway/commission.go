package gateway

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// FormatValue writes an engineering value in full, as an instrument's
// display shows it (123.456, 54321), to ten significant digits so a
// scaled register's binary rounding (12.300000000000001) does not show.
func FormatValue(v float64) string { return strconv.FormatFloat(v, 'g', 10, 64) }

// formatPoint is FormatValue at the precision of the point's register: a
// float32 register holds about 7 digits, so 23.456 read from one shows as
// 23.456, not 23.45599937.
func formatPoint(p *site.Point, v float64) string {
	m := p.Modbus
	if m.Type == site.Float32 && m.CurrentLoop == nil {
		if (m.Scale == nil || *m.Scale == 1) && m.Offset == 0 {
			return strconv.FormatFloat(v, 'g', -1, 32)
		}
		return strconv.FormatFloat(v, 'g', 7, 64)
	}
	return FormatValue(v)
}

// Judge compares a reading with its point's measuring range and alarm
// limits: what the rules would make of it ("would raise HH"), or "".
func Judge(p *site.Point, v float64) string {
	var notes []string
	if v < p.Range.Min || v > p.Range.Max {
		notes = append(notes, fmt.Sprintf("outside the range [%s, %s]", FormatValue(p.Range.Min), FormatValue(p.Range.Max)))
	}
	l := p.Limits
	switch {
	case l.HH != nil && v >= *l.HH:
		notes = append(notes, fmt.Sprintf("would raise HH (≥ %s)", FormatValue(*l.HH)))
	case l.H != nil && v >= *l.H:
		notes = append(notes, fmt.Sprintf("would raise H (≥ %s)", FormatValue(*l.H)))
	}
	switch {
	case l.LL != nil && v <= *l.LL:
		notes = append(notes, fmt.Sprintf("would raise LL (≤ %s)", FormatValue(*l.LL)))
	case l.L != nil && v <= *l.L:
		notes = append(notes, fmt.Sprintf("would raise L (≤ %s)", FormatValue(*l.L)))
	}
	return strings.Join(notes, "; ")
}

// DeviceSummary counts one device's rows of a commissioning poll.
type DeviceSummary struct {
	Device                string
	Points, Good, Alarm   int // Alarm: good readings beyond a limit
	CommFail, Bad, Others int // Others: over/under range and the like
	Refused, Gaps         int // points the device refuses; unused ranges read around
}

// Unreadable reports whether any point of the device could not be read.
func (s DeviceSummary) Unreadable() bool { return s.CommFail > 0 }

// WriteReport prints the commissioning report of a dry run: the table of
// every point with its value in full and how it compares with the point's
// limits, what the devices refuse with the advice that fits, and a summary
// per device. It returns the summaries.
func (g *Gateway) WriteReport(w io.Writer, rows []Row) ([]DeviceSummary, error) {
	points := map[string]*site.Point{}
	for _, d := range g.devices {
		for _, p := range d.points {
			points[p.Point.ID] = p.Point
		}
	}
	sums := map[string]*DeviceSummary{}
	var order []string
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tPOINT\tREGISTERS\tRAW\tVALUE\tUNIT\tQUALITY\tLIMITS\tNOTE")
	for _, r := range rows {
		s := sums[r.Device]
		if s == nil {
			s = &DeviceSummary{Device: r.Device}
			sums[r.Device] = s
			order = append(order, r.Device)
		}
		s.Points++
		v, judged := "-", ""
		if r.Value != nil {
			v = FormatValue(*r.Value)
			if p := points[r.Point]; p != nil {
				v, judged = formatPoint(p, *r.Value), Judge(p, *r.Value)
			}
		}
		switch r.Quality {
		case protocol.Good:
			s.Good++
			if strings.Contains(judged, "would raise") {
				s.Alarm++
			}
		case protocol.CommFail:
			s.CommFail++
		case protocol.Bad:
			s.Bad++
		default:
			s.Others++
		}
		raw := r.Raw
		if raw == "" {
			raw = "-"
		}
		if judged == "" {
			judged = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Device, r.Point, r.Where, raw, v, r.Unit, r.Quality, judged, r.Note)
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	holes := g.Holes()
	if len(holes) > 0 {
		fmt.Fprintln(w, "\nAddresses the devices refuse:")
	}
	sort.SliceStable(holes, func(i, j int) bool { return holes[i].Device < holes[j].Device })
	for _, h := range holes {
		s := sums[h.Device]
		if s == nil {
			continue
		}
		switch {
		case h.Point != "":
			s.Refused++
			fmt.Fprintf(w, "  %s: point %s at %s %d+%d — %s: the device has no such register. Fix the point's address or table in the site file (check the device's register map, 0- or 1-based addresses, holding vs input).\n",
				h.Device, h.Point, h.Table, h.From, h.To-h.From, describe(h.Err))
		case h.From == h.To:
			s.Gaps++
			fmt.Fprintf(w, "  %s: %s reads across address %d refused (%s): the device takes shorter reads; read in two. Nothing to fix.\n", h.Device, h.Table, h.To, describe(h.Err))
		default:
			s.Gaps++
			fmt.Fprintf(w, "  %s: %s %d..%d unused and refused (%s): a hole in the register map, read around. Nothing to fix; set max_gap lower to avoid the probe.\n",
				h.Device, h.Table, h.From, int(h.To)-1, describe(h.Err))
		}
	}
	fmt.Fprintln(w, "\nSummary:")
	var out []DeviceSummary
	for _, id := range order {
		s := sums[id]
		line := fmt.Sprintf("  %s: %d points, %d good", s.Device, s.Points, s.Good)
		if s.Alarm > 0 {
			line += fmt.Sprintf(" (%d beyond a limit)", s.Alarm)
		}
		if s.CommFail > 0 {
			line += fmt.Sprintf(", %d NOT READ (comm_fail)", s.CommFail)
		}
		if s.Bad > 0 {
			line += fmt.Sprintf(", %d sensor fault (bad)", s.Bad)
		}
		if s.Others > 0 {
			line += fmt.Sprintf(", %d over/under range", s.Others)
		}
		if s.Refused+s.Gaps > 0 {
			line += fmt.Sprintf("; %d refused points, %d holes read around", s.Refused, s.Gaps)
		}
		fmt.Fprintln(w, line)
		out = append(out, *s)
	}
	return out, nil
}
