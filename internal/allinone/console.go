package allinone

import (
	"context"
	"fmt"
	"io"
	"sync"

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
	label := e.Grade.Chinese()
	switch e.Type {
	case rules.Cleared:
		label = "解除"
	case rules.SourceGradeChanged:
		label = "危险源 " + e.Grade.Chinese()
	}
	tag := "[" + label + "]"
	if s.color {
		tag = gradeColor[e.Grade] + " " + label + " \x1b[0m"
	}
	return fmt.Sprintf("%s %s %-8s %s — %s", e.Time.Local().Format("15:04:05"), tag, e.Type, e.Key, e.Message)
}
