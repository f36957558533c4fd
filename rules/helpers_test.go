package rules

import (
	"strings"

	"github.com/hazardwatch/hazardwatch/internal/i18n"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// testSite is a small chemical site with a 2oo3-voted ammonia tank farm and
// a coal face with a power-off methane point. Gas detectors get the kind
// defaults: deadband 2 % of span, on- and off-delay 2 s, stale after 3 s.
const testSite = `
id: t
name: 测试化工
gateways:
  - id: gw
    devices:
      - {id: gds, address: "127.0.0.1:1502", poll_interval: 1s}
sources:
  - id: nh3
    name: 液氨储罐区
    type: tank_farm
    grade: 3
    points:
      - {id: g1, name: 1#液氨储罐 NH3 检测器, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: gds, address: 0}, limits: {h: 40, hh: 80}}
      - {id: g2, name: 2#液氨储罐 NH3 检测器, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: gds, address: 1}, limits: {h: 40, hh: 80}}
      - {id: g3, name: 装卸区 NH3 检测器, kind: toxic_gas, gas: NH3, unit: ppm, range: [0, 100], modbus: {device: gds, address: 2}, limits: {h: 40, hh: 80}}
      - {id: lvl, name: 1#储罐液位, kind: level, unit: "%", range: [0, 100], modbus: {device: gds, address: 3}, limits: {ll: 5, l: 10, h: 85, hh: 90}}
    votes:
      - {id: leak, name: 液氨泄漏 2oo3 表决, k: 2, points: [g1, g2, g3]}
  - id: face
    name: 3101 综采工作面
    type: coal_face
    grade: 3
    points:
      - {id: ch4, name: 3101 工作面甲烷 T1, kind: methane, gas: CH4, unit: "%", range: [0, 4], modbus: {device: gds, address: 10}, limits: {h: 1.0, hh: 1.5, restore: 1.0}, power_off: true}
      - {id: co, name: 3101 工作面一氧化碳, kind: toxic_gas, gas: CO, unit: ppm, range: [0, 500], modbus: {device: gds, address: 11}, limits: {h: 24}, stuck_after: 30s, rate_of_change: {rise: 60, window: 1m}}
`

var t0 = time.Date(2025, 3, 1, 3, 0, 0, 0, time.UTC)

// sec is t0 plus s seconds: the fake clock.
func sec(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func parseSite(t testing.TB, text string) *site.Site {
	t.Helper()
	s, err := site.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("test site does not parse:\n%v", err)
	}
	return s
}

// harness drives an engine with a fake clock and keeps every event.
type harness struct {
	t   testing.TB
	e   *Engine
	all []Event
}

func newHarness(t testing.TB, text string) *harness {
	t.Helper()
	e, err := New([]*site.Site{parseSite(t, text)})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, e: e}
}

func (h *harness) read(s float64, point string, v float64) []Event {
	return h.reading(Reading{Site: "t", Point: point, Time: sec(s), Value: v, Quality: protocol.Good})
}

func (h *harness) quality(s float64, point string, q protocol.Quality, v float64) []Event {
	return h.reading(Reading{Site: "t", Point: point, Time: sec(s), Value: v, Quality: q})
}

func (h *harness) reading(r Reading) []Event {
	evs := h.e.Observe(r, nil)
	h.all = append(h.all, evs...)
	return evs
}

func (h *harness) tick(s float64) []Event {
	evs := h.e.Tick(sec(s), nil)
	h.all = append(h.all, evs...)
	return evs
}

// count is how many events of a type concern key among evs.
func count(evs []Event, typ EventType, key string) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ && ev.Key == key {
			n++
		}
	}
	return n
}

// find returns the last event of a type for key, failing when there is none.
func find(t testing.TB, evs []Event, typ EventType, key string) Event {
	t.Helper()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == typ && evs[i].Key == key {
			return evs[i]
		}
	}
	t.Fatalf("no %s event for %s among:\n%s", typ, key, dump(evs))
	return Event{}
}

func dump(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(ev.Time.Format("15:04:05.000 "))
		b.WriteString(ev.Type.String() + " " + ev.Key + " " + ev.Grade.String() + " " + msg(ev) + "\n")
	}
	return b.String()
}

// activeKeys lists the keys of the engine's active conditions.
func activeKeys(e *Engine) map[string]protocol.Grade {
	m := map[string]protocol.Grade{}
	for _, ev := range e.Active() {
		m[ev.Key] = ev.Grade
	}
	return m
}

// msg renders an event in Chinese as the edges do.
func msg(ev Event) string { return i18n.Render(i18n.ZH, alarmEvent(ev)) }

// alarmEvent is the wire form of an engine event, as far as rendering needs.
func alarmEvent(ev Event) protocol.AlarmEvent {
	f := ev.Facts
	a := protocol.AlarmEvent{Type: protocol.AlarmEventType(ev.Type.String()), Condition: string(ev.Condition),
		Grade: ev.Grade, PrevGrade: ev.PrevGrade, Value: ev.Value, Limit: ev.Limit, TS: protocol.Time{Time: ev.Time},
		OccurredAt: protocol.Time{Time: ev.OccurredAt}, Late: ev.Late, Chattering: ev.Chattering, Facts: &f}
	return a
}
