package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// num writes a value the way an officer reads it: at most four decimals,
// no trailing zeros.
func num(v float64) string {
	if !finite(v) {
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

// dur writes a duration in Chinese: 12 秒, 3 分 5 秒, 1 小时 2 分.
func dur(d time.Duration) string {
	if d < time.Second {
		return "不足 1 秒"
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%d 秒", s)
	case s < 3600:
		if s%60 == 0 {
			return fmt.Sprintf("%d 分钟", s/60)
		}
		return fmt.Sprintf("%d 分 %d 秒", s/60, s%60)
	default:
		if s/60%60 == 0 {
			return fmt.Sprintf("%d 小时", s/3600)
		}
		return fmt.Sprintf("%d 小时 %d 分", s/3600, s/60%60)
	}
}

// limitLabel names a limit as the site file and the standards do.
func (p *pointState) limitLabel(sl slot) string {
	if sl == slotHH && p.cfg.PowerOff {
		return "断电值"
	}
	return string(slotCondition[sl])
}

func (p *pointState) q(v float64) string { return qty(v, p.cfg.Unit) }

func levelWord(second bool) string {
	if second {
		return "二级"
	}
	return "一级"
}

func (p *pointState) raiseLimitMsg(sl slot, v float64, held time.Duration) string {
	op := "≥"
	if sl >= slotL {
		op = "≤"
	}
	return fmt.Sprintf("%s %s %s %s %s，持续 %s", p.name, p.q(v), op, p.limitLabel(sl), p.q(p.limit[sl]), dur(held))
}

func (p *pointState) clearLimitMsg(sl slot, v float64, lasted time.Duration) string {
	switch {
	case sl == slotHH && p.cfg.PowerOff && p.cfg.Limits.Restore != nil:
		return fmt.Sprintf("%s %s < 复电值 %s，断电报警解除，历时 %s", p.name, p.q(v), p.q(p.clearAt[sl]), dur(lasted))
	case sl <= slotH:
		return fmt.Sprintf("%s %s < %s（%s %s 减回差 %s），报警解除，历时 %s",
			p.name, p.q(v), p.q(p.clearAt[sl]), p.limitLabel(sl), p.q(p.limit[sl]), num(p.deadband), dur(lasted))
	default:
		return fmt.Sprintf("%s %s > %s（%s %s 加回差 %s），报警解除，历时 %s",
			p.name, p.q(v), p.q(p.clearAt[sl]), p.limitLabel(sl), p.q(p.limit[sl]), num(p.deadband), dur(lasted))
	}
}

func joinIDs(ids []string) string { return strings.Join(ids, "、") }
