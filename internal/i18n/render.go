package i18n

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// Render says an alarm event in language l from its facts: the rules
// engine's conditions, escalations and floods, with the names from the
// site file. Officers' actions are said by the alarm's facts (the actor
// and comment travel beside). An event without facts (journaled before
// facts existed) keeps its message.
func Render(l Lang, ev protocol.AlarmEvent) string {
	f := ev.Facts
	if f == nil {
		return ev.Message
	}
	var msg string
	switch {
	case ev.Type == protocol.AlarmEscalated:
		key := "alarm.escalated"
		if f.Escalated {
			key = "alarm.escalated_up"
		}
		msg = T(l, key, Args{"grade": gradeName(l, ev.Grade), "minutes": strconv.Itoa(int(f.HeldS / 60)), "resends": strconv.Itoa(f.Resends)})
		if f.Cause != nil {
			msg = T(l, "cause", Args{"message": msg, "cause": facts(l, ev.Type, *f.Cause, causeView(*f.Cause))})
		}
		return msg
	case ev.Type == protocol.AlarmFlood:
		return flood(l, ev, f)
	}
	v := view{cond: ev.Condition, value: ev.Value, limit: ev.Limit, grade: ev.Grade, prev: ev.PrevGrade, late: ev.Late}
	msg = facts(l, ev.Type, *f, v)
	if ev.Chattering && f.Raises >= 3 {
		msg = T(l, "chattering", Args{"message": msg, "raises": strconv.Itoa(f.Raises)})
	}
	if ev.Late {
		occ := ev.OccurredAt.Time
		if occ.IsZero() && ev.Since != nil {
			occ = ev.Since.Time
		}
		msg = T(l, "late", Args{"message": msg, "occurred": clock(occ), "recorded": clock(ev.TS.Time)})
	}
	return msg
}

// RenderAll renders ev in every catalog language, for AlarmEvent.Messages.
func RenderAll(ev protocol.AlarmEvent) map[string]string {
	if ev.Facts == nil {
		return nil
	}
	out := make(map[string]string, len(Langs))
	for _, l := range Langs {
		out[string(l)] = Render(l, ev)
	}
	return out
}

// view is what a facts node is said with: the event's numbers, or a
// cause's own.
type view struct {
	cond        string
	value       float64
	limit       float64
	grade, prev protocol.Grade
	late        bool
}

func causeView(c protocol.AlarmFacts) view {
	v := view{cond: c.Condition, grade: c.Grade, prev: c.Grade}
	if c.Value != nil {
		v.value = *c.Value
	}
	if c.Limit != nil {
		v.limit = *c.Limit
	}
	return v
}

func facts(l Lang, typ protocol.AlarmEventType, f protocol.AlarmFacts, v view) string {
	unit := f.Unit
	q := func(x float64) string { return qty(x, unit) }
	qp := func(x *float64) string {
		if x == nil {
			return "?"
		}
		return q(*x)
	}
	np := func(x *float64) string {
		if x == nil {
			return "?"
		}
		return num(*x)
	}
	name := f.Name
	if name == "" {
		name = f.SourceName
	}
	a := Args{
		"name": name, "source": f.SourceName, "condition": v.cond,
		"value": q(v.value), "limit": q(v.limit),
		"limit_name": limitName(l, f.LimitName),
		"held":       Duration(l, secsDur(f.HeldS)), "setting": Duration(l, secsDur(f.SettingS)),
		"clear_at": qp(f.ClearAt), "deadband": np(f.Deadband), "from": np(f.From), "peak": qp(f.Peak),
		"rate": qp(f.Rate), "range_min": np(f.RangeMin), "range_max": qp(f.RangeMax),
		"quality": f.Quality, "need": strconv.Itoa(f.Need), "count": strconv.Itoa(len(f.Points)),
		"grade": gradeName(l, v.grade), "prev_grade": gradeName(l, v.prev),
		"points": points(l, f.Points), "raises": strconv.Itoa(f.Raises),
	}
	if f.Detail == "first" || f.Detail == "second" {
		a["level"] = T(l, "level."+f.Detail, nil)
	}
	if f.Detail != "" && Has(ZH, "detail."+f.Detail) {
		a["detail"] = T(l, "detail."+f.Detail, nil)
	}
	high := v.cond != "L" && v.cond != "LL"
	key := "rules." + f.Reason
	switch f.Reason {
	case "limit_exceeded":
		switch {
		case f.Detail == "saturated":
			key += ".saturated"
		case high:
			key += ".high"
		default:
			key += ".low"
		}
	case "back_inside":
		switch {
		case v.late:
			key += ".late"
		case high:
			key += ".high"
		default:
			key += ".low"
		}
	case "held_too_long":
		if high {
			key += ".high"
		} else {
			key += ".low"
		}
	case "still_rising", "rate_exceeded", "rate_normal":
		if f.Detail == "fall" {
			key += ".fall"
		} else {
			key += ".rise"
		}
	case "restore_regrade":
		if f.Detail == "held" {
			key += ".held"
		} else {
			key += ".policy"
		}
	}
	if !Has(ZH, key) {
		// A reason this build does not know: say what there is.
		return strings.TrimSpace(name + " " + v.cond + " " + f.Reason)
	}
	msg := T(l, key, a)
	if f.Cause != nil {
		msg = T(l, "cause", Args{"message": msg, "cause": facts(l, typ, *f.Cause, causeView(*f.Cause))})
	}
	return msg
}

func flood(l Lang, ev protocol.AlarmEvent, f *protocol.AlarmFacts) string {
	key := "flood." + strings.TrimPrefix(f.Reason, "flood_")
	grade := ev.Grade
	if f.Reason == "flood_ended" {
		grade = ev.PrevGrade
	}
	a := Args{
		"source": f.SourceName, "window": Duration(l, secsDur(f.WindowS)),
		"count": strconv.Itoa(f.Count), "threshold": strconv.Itoa(f.Threshold), "alarms": strconv.Itoa(f.Alarms),
		"grade": gradeName(l, grade), "merged": strconv.Itoa(f.Merged), "batch": strconv.Itoa(f.Batch),
		"max": strconv.Itoa(f.Max), "minutes": strconv.Itoa(int(f.HeldS / 60)),
	}
	msg := T(l, key, a)
	if len(ev.Points) < f.Alarms {
		msg = T(l, "flood.listed", Args{"message": msg, "listed": strconv.Itoa(len(ev.Points)), "alarms": strconv.Itoa(f.Alarms)})
	}
	return msg
}

func limitName(l Lang, n string) string {
	switch n {
	case "power_off", "restore":
		return T(l, "limit."+n, nil)
	}
	return n
}

func gradeName(l Lang, g protocol.Grade) string {
	if !g.Valid() {
		return "?"
	}
	return T(l, "grade."+g.String(), nil)
}

// points lists contributing points by name with their values.
func points(l Lang, ps []protocol.PointFact) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		n := p.Name
		if n == "" {
			n = p.ID
		}
		parts[i] = T(l, "point.value", Args{"name": n, "value": qty(p.Value, p.Unit)})
	}
	return strings.Join(parts, T(l, "list.sep", nil))
}

// Duration says a duration in language l: 12 秒 / 12 s, 3 分 5 秒 /
// 3 min 5 s, 1 小时 2 分 / 1 h 2 min.
func Duration(l Lang, d time.Duration) string {
	if d < time.Second {
		return T(l, "dur.lt1s", nil)
	}
	s := int64(d / time.Second)
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	switch {
	case s < 60:
		return T(l, "dur.s", Args{"s": i(s)})
	case s < 3600:
		if s%60 == 0 {
			return T(l, "dur.min", Args{"m": i(s / 60)})
		}
		return T(l, "dur.min_s", Args{"m": i(s / 60), "s": i(s % 60)})
	default:
		if s/60%60 == 0 {
			return T(l, "dur.h", Args{"h": i(s / 3600)})
		}
		return T(l, "dur.h_min", Args{"h": i(s / 3600), "m": i(s / 60 % 60)})
	}
}

func secsDur(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

// clock is a time of day with the date, in the centre's local time zone.
func clock(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// num writes a value the way an officer reads it: at most four decimals,
// no trailing zeros.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strconv.FormatFloat(math.Round(v*1e4)/1e4, 'f', -1, 64)
}

// qty is a value with its unit, e.g. "86 ppm".
func qty(v float64, unit string) string {
	if unit == "" {
		return num(v)
	}
	return num(v) + " " + unit
}
