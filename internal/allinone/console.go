package allinone

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/hazardwatch/hazardwatch/internal/i18n"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
)

// EventSink takes the rules engine's events; the alerting service is one.
type EventSink interface {
	HandleEvents(ctx context.Context, events []rules.Event) error
}

// terminalSink prints every warning as one coloured line an officer can read
// at a glance, then passes the events on.
type terminalSink struct {
	next  EventSink
	mu    sync.Mutex
	w     io.Writer
	color bool
	lang  i18n.Lang
}

var gradeColor = map[protocol.Grade]string{
	protocol.Red:    "\x1b[1;37;41m",
	protocol.Orange: "\x1b[1;30;43m",
	protocol.Yellow: "\x1b[1;30;103m",
	protocol.Blue:   "\x1b[1;37;44m",
	protocol.None:   "\x1b[1;30;42m",
}

func (s *terminalSink) HandleEvents(ctx context.Context, events []rules.Event) error {
	s.mu.Lock()
	for _, e := range events {
		fmt.Fprintln(s.w, s.line(e))
	}
	s.mu.Unlock()
	return s.next.HandleEvents(ctx, events)
}

func (s *terminalSink) line(e rules.Event) string {
	grade := i18n.T(s.lang, "grade."+e.Grade.String(), nil)
	label := grade
	switch e.Type {
	case rules.Cleared:
		label = i18n.T(s.lang, "term.cleared", nil)
	case rules.SourceGradeChanged:
		label = i18n.T(s.lang, "term.source", i18n.Args{"grade": grade})
	}
	tag := "[" + label + "]"
	if s.color {
		tag = gradeColor[e.Grade] + " " + label + " \x1b[0m"
	}
	return fmt.Sprintf("%s %s %-8s %s — %s", e.Time.Local().Format("15:04:05"), tag, e.Type, e.Key, i18n.Render(s.lang, alarmOf(e)))
}

// alarmOf is an engine event in the wire form the renderer reads.
func alarmOf(e rules.Event) protocol.AlarmEvent {
	f := e.Facts
	a := protocol.AlarmEvent{Type: protocol.AlarmEventType(e.Type.String()), Condition: string(e.Condition),
		Grade: e.Grade, PrevGrade: e.PrevGrade, Value: e.Value, Limit: e.Limit, TS: protocol.Time{Time: e.Time},
		OccurredAt: protocol.Time{Time: e.OccurredAt}, Late: e.Late, Chattering: e.Chattering, Facts: &f}
	if !e.Since.IsZero() {
		a.Since = &protocol.Time{Time: e.Since}
	}
	return a
}
