package alerting

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/i18n"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
)

// Alarm is one alarm's lifecycle (ISA-18.2): a pure state machine that does
// no I/O and reads no clock. Every method that changes it returns the
// transition as an AlarmEvent without an ID; the service names, journals and
// sends it. The zero value with an ID is an alarm in the normal state.
type Alarm struct {
	ID        string              `json:"id"`
	Site      string              `json:"site"`
	Source    string              `json:"source"`
	Point     string              `json:"point,omitempty"`
	Condition string              `json:"condition"`
	State     protocol.AlarmState `json:"state"`
	// Active says the process condition is present. It is tracked while
	// shelved or out of service, so the alarm comes back right afterwards.
	Active bool           `json:"active"`
	Grade  protocol.Grade `json:"grade"` // the condition's grade (the last one once cleared)
	Value  float64        `json:"value"`
	Limit  float64        `json:"limit"`
	Since  time.Time      `json:"since,omitzero"` // when the condition began
	// Facts are the rules engine's latest facts about the condition;
	// Message and Messages say them in words (rendered by internal/i18n:
	// Chinese, and every catalog language by its code).
	Facts    *protocol.AlarmFacts `json:"facts,omitempty"`
	Message  string               `json:"message"`
	Messages map[string]string    `json:"messages,omitempty"`
	Points   []string             `json:"points,omitempty"`
	// Late marks a retrospective warning (补报) found in late data;
	// OccurredAt is when its latest change happened at the site.
	Late       bool      `json:"late,omitempty"`
	OccurredAt time.Time `json:"occurred_at,omitzero"`
	// Changed is the time of the last transition.
	Changed time.Time `json:"changed"`
	// Annunciated is when the alarm last went unacknowledged, for the time
	// to acknowledge.
	Annunciated time.Time `json:"annunciated,omitzero"`
	// By, Reason and Until describe the shelving or the removal from
	// service while in those states.
	By     string    `json:"by,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Until  time.Time `json:"until,omitzero"`
	// Resends counts the escalated re-sends since the alarm last went
	// unacknowledged, and ResentAt is when the last one was sent. They are
	// journaled with every snapshot, so the schedule survives a restart.
	Resends  int       `json:"resends,omitempty"`
	ResentAt time.Time `json:"resent_at,omitzero"`
}

// Errors of officers' actions that the state does not allow.
var (
	ErrNotAckable      = errors.New("alarm has nothing to acknowledge")
	ErrNotShelved      = errors.New("alarm is not shelved")
	ErrNotOutOfService = errors.New("alarm is not out of service")
	ErrOutOfService    = errors.New("alarm is out of service")
	ErrNoOfficer       = errors.New("officer is required")
	ErrNoReason        = errors.New("reason is required")
	ErrNoComment       = errors.New("comment is required")
	ErrBadExpiry       = errors.New("shelve expiry must be in the future")
	ErrShelveTooLong   = errors.New("shelving is limited to the configured maximum")
)

func (a *Alarm) state() protocol.AlarmState {
	if a.State == "" {
		return protocol.StateNormal
	}
	return a.State
}

// Present reports whether the alarm needs to be shown: any state but normal.
func (a *Alarm) Present() bool { return a.state() != protocol.StateNormal }

// silenced reports whether annunciation is suppressed by an officer.
func (a *Alarm) silenced() bool {
	s := a.state()
	return s == protocol.StateShelved || s == protocol.StateOutOfService
}

// Apply takes a rules engine event of this alarm (raised, grade_changed or
// cleared) and returns the transition.
func (a *Alarm) Apply(ev rules.Event) (protocol.AlarmEvent, error) {
	if ev.Key == "" {
		return protocol.AlarmEvent{}, errors.New("rules event without key")
	}
	if a.ID != "" && a.ID != ev.Key {
		return protocol.AlarmEvent{}, fmt.Errorf("rules event of %s applied to alarm %s", ev.Key, a.ID)
	}
	if !ev.Grade.Valid() || !ev.PrevGrade.Valid() {
		return protocol.AlarmEvent{}, fmt.Errorf("rules event of %s: invalid grade %d/%d", ev.Key, ev.Grade, ev.PrevGrade)
	}
	a.ID, a.Site, a.Source, a.Point, a.Condition = ev.Key, ev.Site, ev.Source, ev.Point, string(ev.Condition)
	from := a.state()
	to := from
	var typ protocol.AlarmEventType
	prevGrade := a.Grade
	switch ev.Type {
	case rules.Raised, rules.GradeChanged:
		typ = protocol.AlarmRaised
		if ev.Type == rules.GradeChanged {
			typ = protocol.AlarmGradeChanged
		}
		switch {
		case a.silenced():
		case from == protocol.StateNormal || from == protocol.StateRTNUnacked:
			to = protocol.StateUnacked
		case from == protocol.StateAcked && ev.Grade > a.Grade:
			// A worse grade must be seen again: the officer acknowledged
			// a milder warning.
			to = protocol.StateUnacked
		}
		a.Active, a.Grade = true, ev.Grade
	case rules.Cleared:
		typ = protocol.AlarmCleared
		switch from {
		case protocol.StateUnacked:
			to = protocol.StateRTNUnacked
		case protocol.StateAcked:
			to = protocol.StateNormal
		}
		a.Active = false
		if ev.PrevGrade != protocol.None {
			a.Grade = ev.PrevGrade
		}
	default:
		return protocol.AlarmEvent{}, fmt.Errorf("rules event of %s: type %s is not an alarm's", ev.Key, ev.Type)
	}
	a.Value, a.Limit, a.Points = finiteOrZero(ev.Value), finiteOrZero(ev.Limit), slices.Clone(ev.Points)
	facts := ev.Facts
	a.Facts, a.Late, a.OccurredAt = &facts, ev.Late, ev.OccurredAt
	if !ev.Since.IsZero() {
		a.Since = ev.Since
	}
	out := a.transition(typ, ev.Time, from, to, "", "")
	out.Grade, out.PrevGrade = ev.Grade, ev.PrevGrade
	if ev.PrevGrade == protocol.None && ev.Type != rules.Raised {
		out.PrevGrade = prevGrade
	}
	out.Chattering = ev.Chattering
	render(&out)
	// The alarm keeps the condition's words, without this raise's
	// chattering note, for the events of officers' actions.
	plain := out
	plain.Chattering = false
	a.Message, a.Messages = i18n.Render(i18n.ZH, plain), i18n.RenderAll(plain)
	return out, nil
}

// Ack acknowledges the alarm: unacked → acked, returned-to-normal unacked →
// normal.
func (a *Alarm) Ack(officer, comment string, now time.Time) (protocol.AlarmEvent, error) {
	if blank(officer) {
		return protocol.AlarmEvent{}, ErrNoOfficer
	}
	from := a.state()
	var to protocol.AlarmState
	switch from {
	case protocol.StateUnacked:
		to = protocol.StateAcked
	case protocol.StateRTNUnacked:
		to = protocol.StateNormal
	default:
		return protocol.AlarmEvent{}, fmt.Errorf("acknowledge %s in state %s: %w", a.ID, from, ErrNotAckable)
	}
	return a.transition(protocol.AlarmAcknowledged, now, from, to, officer, comment), nil
}

// Shelve silences the alarm until the expiry; Tick brings it back then. A
// shelved alarm may be shelved again to change the expiry.
func (a *Alarm) Shelve(officer, reason string, until, now time.Time) (protocol.AlarmEvent, error) {
	switch {
	case blank(officer):
		return protocol.AlarmEvent{}, ErrNoOfficer
	case blank(reason):
		return protocol.AlarmEvent{}, ErrNoReason
	case !until.After(now):
		return protocol.AlarmEvent{}, fmt.Errorf("shelve %s until %s: %w", a.ID, until.Format(time.RFC3339), ErrBadExpiry)
	case a.state() == protocol.StateOutOfService:
		return protocol.AlarmEvent{}, fmt.Errorf("shelve %s: %w", a.ID, ErrOutOfService)
	}
	from := a.state()
	a.By, a.Reason, a.Until = officer, reason, until
	out := a.transition(protocol.AlarmShelved, now, from, protocol.StateShelved, officer, reason)
	out.Until = &protocol.Time{Time: until}
	return out, nil
}

// Unshelve ends the shelving early.
func (a *Alarm) Unshelve(officer, comment string, now time.Time) (protocol.AlarmEvent, error) {
	if blank(officer) {
		return protocol.AlarmEvent{}, ErrNoOfficer
	}
	if a.state() != protocol.StateShelved {
		return protocol.AlarmEvent{}, fmt.Errorf("unshelve %s in state %s: %w", a.ID, a.state(), ErrNotShelved)
	}
	return a.restore(protocol.AlarmUnshelved, now, officer, comment), nil
}

// OutOfService takes the alarm out of service (maintenance, a faulty
// detector being replaced) until an officer returns it.
func (a *Alarm) OutOfService(officer, reason string, now time.Time) (protocol.AlarmEvent, error) {
	switch {
	case blank(officer):
		return protocol.AlarmEvent{}, ErrNoOfficer
	case blank(reason):
		return protocol.AlarmEvent{}, ErrNoReason
	case a.state() == protocol.StateOutOfService:
		return protocol.AlarmEvent{}, fmt.Errorf("take %s out of service: %w", a.ID, ErrOutOfService)
	}
	from := a.state()
	a.By, a.Reason, a.Until = officer, reason, time.Time{}
	return a.transition(protocol.AlarmOutOfService, now, from, protocol.StateOutOfService, officer, reason), nil
}

// ReturnToService puts an out-of-service alarm back in service.
func (a *Alarm) ReturnToService(officer, comment string, now time.Time) (protocol.AlarmEvent, error) {
	if blank(officer) {
		return protocol.AlarmEvent{}, ErrNoOfficer
	}
	if a.state() != protocol.StateOutOfService {
		return protocol.AlarmEvent{}, fmt.Errorf("return %s to service in state %s: %w", a.ID, a.state(), ErrNotOutOfService)
	}
	return a.restore(protocol.AlarmReturnedToService, now, officer, comment), nil
}

// Comment records an officer's remark on the alarm, in any state but
// normal. It changes nothing: not the state, the time of the last
// transition, the shelving or the escalation schedule; a comment is not an
// acknowledgement.
func (a *Alarm) Comment(officer, comment string, now time.Time) (protocol.AlarmEvent, error) {
	switch {
	case blank(officer):
		return protocol.AlarmEvent{}, ErrNoOfficer
	case blank(comment):
		return protocol.AlarmEvent{}, ErrNoComment
	case !a.Present():
		return protocol.AlarmEvent{}, fmt.Errorf("comment on %s in state %s: %w", a.ID, a.state(), ErrUnknownAlarm)
	}
	return a.event(protocol.AlarmCommented, now, a.state(), a.state(), officer, comment), nil
}

// Tick returns a shelved alarm whose expiry has come; ok is false when
// nothing changed.
func (a *Alarm) Tick(now time.Time) (ev protocol.AlarmEvent, ok bool) {
	if a.state() != protocol.StateShelved || now.Before(a.Until) {
		return protocol.AlarmEvent{}, false
	}
	return a.restore(protocol.AlarmShelveExpired, now, "", ""), true
}

// restore leaves shelved or out of service: an alarm whose condition is
// still present is annunciated again.
func (a *Alarm) restore(typ protocol.AlarmEventType, now time.Time, officer, comment string) protocol.AlarmEvent {
	from := a.state()
	to := protocol.StateNormal
	if a.Active {
		to = protocol.StateUnacked
	}
	a.By, a.Reason, a.Until = "", "", time.Time{}
	return a.transition(typ, now, from, to, officer, comment)
}

func (a *Alarm) transition(typ protocol.AlarmEventType, now time.Time, from, to protocol.AlarmState, actor, comment string) protocol.AlarmEvent {
	a.State, a.Changed = to, now
	if to == protocol.StateUnacked && from != protocol.StateUnacked {
		a.Annunciated = now
		// A new annunciation starts a new escalation schedule.
		a.Resends, a.ResentAt = 0, time.Time{}
	}
	return a.event(typ, now, from, to, actor, comment)
}

// event describes the alarm as it is now in an event; it changes nothing.
func (a *Alarm) event(typ protocol.AlarmEventType, now time.Time, from, to protocol.AlarmState, actor, comment string) protocol.AlarmEvent {
	ev := protocol.AlarmEvent{
		V: protocol.Version, AlarmID: a.ID, Type: typ,
		Site: a.Site, Source: a.Source, Point: a.Point, Condition: a.Condition,
		Grade: a.Grade, PrevGrade: a.Grade, State: to, PrevState: from,
		Value: a.Value, Limit: a.Limit, TS: protocol.Time{Time: now},
		Message: a.Message, Messages: maps.Clone(a.Messages), Points: slices.Clone(a.Points), Actor: actor, Comment: comment,
		RecordedAt: protocol.Time{Time: now}, OccurredAt: protocol.Time{Time: now}, Late: a.Late, Facts: cloneFacts(a.Facts),
	}
	if !a.Since.IsZero() {
		ev.Since = &protocol.Time{Time: a.Since}
	}
	if (typ == protocol.AlarmRaised || typ == protocol.AlarmGradeChanged || typ == protocol.AlarmCleared) && !a.OccurredAt.IsZero() {
		ev.OccurredAt = protocol.Time{Time: a.OccurredAt}
	}
	return ev
}

// render says an event in words from its facts: Message in Chinese, the
// wire contract's default, and Messages in every catalog language.
// Receivers configured with another language re-render Message.
func render(ev *protocol.AlarmEvent) {
	if ev.Facts == nil {
		return
	}
	ev.Message, ev.Messages = i18n.Render(i18n.ZH, *ev), i18n.RenderAll(*ev)
}

func cloneFacts(f *protocol.AlarmFacts) *protocol.AlarmFacts {
	if f == nil {
		return nil
	}
	c := *f
	return &c
}

// finiteOrZero keeps NaN and ±Inf, which JSON cannot carry, out of events;
// the message still explains the reading.
func finiteOrZero(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// resendDue returns when the alarm's next escalated re-send falls due; ok
// is false when it is not escalating: not unacknowledged (acknowledged,
// shelved, out of service, returned to normal) or below minGrade. The next
// re-send is one interval after the last (or after the annunciation), but
// never later than the moment the alarm has been unacknowledged for
// escalateAfter, so the escalation receivers hear of it on time.
func (a *Alarm) resendDue(minGrade protocol.Grade, interval, escalateAfter time.Duration) (due time.Time, ok bool) {
	if a.state() != protocol.StateUnacked || !a.Active || a.Grade < minGrade || a.Annunciated.IsZero() {
		return time.Time{}, false
	}
	base := a.Annunciated
	if a.ResentAt.After(base) {
		base = a.ResentAt
	}
	due = base.Add(interval)
	if limit := a.Annunciated.Add(escalateAfter); a.ResentAt.Before(limit) && limit.Before(due) {
		due = limit
	}
	return due, true
}

// resend records an escalated re-send at now and returns its event; the
// alarm's state does not change. escalated says the alarm has been
// unacknowledged for the escalation limit, so the escalation receivers get
// it too.
func (a *Alarm) resend(now time.Time, escalated bool) protocol.AlarmEvent {
	a.Resends++
	a.ResentAt = now
	facts := &protocol.AlarmFacts{Reason: "escalated", HeldS: now.Sub(a.Annunciated).Seconds(), Resends: a.Resends, Escalated: escalated}
	if a.Facts != nil {
		cause := *a.Facts
		cause.Condition, cause.Value, cause.Limit, cause.Grade = a.Condition, &a.Value, &a.Limit, a.Grade
		facts.Cause = &cause
	}
	ev := protocol.AlarmEvent{
		V: protocol.Version, AlarmID: a.ID, Type: protocol.AlarmEscalated,
		Site: a.Site, Source: a.Source, Point: a.Point, Condition: a.Condition,
		Grade: a.Grade, PrevGrade: a.Grade, State: a.state(), PrevState: a.state(),
		Value: a.Value, Limit: a.Limit, TS: protocol.Time{Time: now},
		RecordedAt: protocol.Time{Time: now}, OccurredAt: protocol.Time{Time: now},
		Message: a.Message, Points: slices.Clone(a.Points), Late: a.Late, Facts: facts,
	}
	if !a.Since.IsZero() {
		ev.Since = &protocol.Time{Time: a.Since}
	}
	render(&ev)
	return ev
}

// blank tells whether a name, reason or comment says nothing.
func blank(s string) bool { return strings.TrimSpace(s) == "" }
