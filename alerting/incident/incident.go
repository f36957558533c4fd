// Package incident keeps the incidents (警情) of the hazard sources: one
// incident per source while it is out of normal, into which every condition
// of the source joins, graded by the source's grade over time, acknowledged
// once, and closed only when its conditions have cleared and a disposal
// record (处置记录) is filed — or, for a yellow or blue incident, after it
// has stayed normal for a configured time.
//
// It is a pure state machine in the manner of etcd's raft: no I/O, no clock
// (time is passed in), no goroutines. One owner (the alerting service)
// feeds it the alarm events of the point-level lifecycle, the sources'
// grades, officers' actions and ticks inside a Txn, journals the Events the
// Txn returns and only then commits the Txn; a Txn that is not committed
// changes nothing.
package incident

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// State is where an incident is in its life.
type State string

// Incident states.
const (
	// Active: at least one contributing condition is present.
	Active State = "active"
	// Normal: every condition has cleared; the incident waits for its
	// disposal record (or, yellow and blue, for the auto-close time).
	Normal State = "normal"
	// Closed: handled; a new condition of the source opens a new incident.
	Closed State = "closed"
)

// Valid reports whether s is a known state.
func (s State) Valid() bool { return s == Active || s == Normal || s == Closed }

// EventType says what happened to an incident.
type EventType string

// Incident event types. The lifecycle ones (Lifecycle reports them) go to
// the command platform by default; the condition ones are the details.
const (
	TypeOpened           EventType = "opened"            // the source left normal
	TypeGradeChanged     EventType = "grade_changed"     // the source's grade rose or fell (not to none: that is TypeNormal)
	TypeAcknowledged     EventType = "acknowledged"      // an officer acknowledged it (and its alarms)
	TypeDisposalRecorded EventType = "disposal_recorded" // an officer filed the disposal record
	TypeClosed           EventType = "closed"            // handled (disposal), or a yellow/blue one normal long enough
	TypeConditionJoined  EventType = "condition_joined"  // a condition of the source became active and joined
	TypeConditionChanged EventType = "condition_changed" // a condition's grade changed
	TypeConditionCleared EventType = "condition_cleared" // a condition returned to normal
	TypeNormal           EventType = "normal"            // every condition has cleared; the grade is none
	// TypeUrged: a county or city supervisor urged the enterprise to handle
	// it (督办); the enterprise's responsible persons are told.
	TypeUrged EventType = "urged"
)

// Lifecycle reports whether t is one of the five events the command
// platform receives by default: opened, grade_changed, acknowledged,
// disposal_recorded, closed.
func (t EventType) Lifecycle() bool {
	switch t {
	case TypeOpened, TypeGradeChanged, TypeAcknowledged, TypeDisposalRecorded, TypeClosed:
		return true
	}
	return false
}

// Cause is the disposal record's cause category.
type Cause string

// Cause categories of a disposal record.
const (
	CauseLeak           Cause = "leak"            // a real leak or release
	CauseEquipmentFault Cause = "equipment_fault" // process equipment fault
	CauseSensorFault    Cause = "sensor_fault"    // a detector or transmitter fault
	CauseFalseAlarm     Cause = "false_alarm"     // nothing wrong was found
	CauseMaintenance    Cause = "maintenance"     // maintenance or a test
	CauseOther          Cause = "other"
)

// Causes lists the cause categories in the order a form shows them.
var Causes = []Cause{CauseLeak, CauseEquipmentFault, CauseSensorFault, CauseFalseAlarm, CauseMaintenance, CauseOther}

// Valid reports whether c is a known cause category.
func (c Cause) Valid() bool { return slices.Contains(Causes, c) }

// MaxText bounds each free-text field of an action, in characters.
const MaxText = 4000

// Disposal is the disposal record (处置记录) of an incident.
type Disposal struct {
	// By is the officer (the logged-in principal's name), Display the
	// name shown for them.
	By      string    `json:"by"`
	Display string    `json:"by_display,omitempty"`
	At      time.Time `json:"at"`
	Cause   Cause     `json:"cause"`
	// Found is what was found on site; Measures what was done.
	Found    string `json:"found"`
	Measures string `json:"measures"`
	// EmergencyResponse says whether the emergency plan's response was
	// started.
	EmergencyResponse bool `json:"emergency_response"`
}

// Condition is one contributing condition: a point-level alarm of the
// source, with its own ISA-18.2 state.
type Condition struct {
	AlarmID   string `json:"alarm_id"`
	Point     string `json:"point,omitempty"`
	Condition string `json:"condition"`
	// Grade is the condition's grade now (its last one once cleared);
	// WorstGrade the worst it reached in this incident.
	Grade      protocol.Grade      `json:"grade"`
	WorstGrade protocol.Grade      `json:"worst_grade"`
	State      protocol.AlarmState `json:"state"`
	Active     bool                `json:"active"`
	// Value and Limit are the numbers of the condition's last change;
	// the live values are Live.
	Value   float64   `json:"value"`
	Limit   float64   `json:"limit"`
	Since   time.Time `json:"since,omitzero"`
	Cleared time.Time `json:"cleared,omitzero"`
	Points  []string  `json:"points,omitempty"`
	// Message (Chinese) and Messages (every catalog language) are the
	// alarm's explanation as the alarm lifecycle rendered it from Facts;
	// machines read Facts.
	Message  string               `json:"message,omitempty"`
	Messages map[string]string    `json:"messages,omitempty"`
	Facts    *protocol.AlarmFacts `json:"facts,omitempty"`

	// Name and Unit (the point's, from the site file) and Live (the
	// newest readings of the point, or of the points of a vote) are
	// filled in by the owner when it shows or sends the incident; the
	// state machine neither keeps nor needs them.
	Name string `json:"name,omitempty"`
	Unit string `json:"unit,omitempty"`
	Live []Live `json:"live,omitempty"`
}

// Live is a point's newest reading.
type Live struct {
	Point    string           `json:"point"`
	Name     string           `json:"name,omitempty"`
	Value    float64          `json:"value"`
	HasValue bool             `json:"has_value"`
	Unit     string           `json:"unit,omitempty"`
	Quality  protocol.Quality `json:"quality"`
	Time     time.Time        `json:"time"`
}

// Incident is one hazard source's warning from the moment it left normal
// until it is closed.
type Incident struct {
	// ID is site/source/opening time (UTC, 20060102T150405.000Z):
	// stable across replays and nodes.
	ID     string `json:"id"`
	Site   string `json:"site"`
	Source string `json:"source"`
	// Grade is the source's grade now (none once normal); WorstGrade the
	// worst it reached.
	Grade      protocol.Grade `json:"grade"`
	WorstGrade protocol.Grade `json:"worst_grade"`
	State      State          `json:"state"`
	OpenedAt   time.Time      `json:"opened_at"`
	// NormalAt is when the last condition cleared (zero while active).
	NormalAt time.Time `json:"normal_at,omitzero"`
	ClosedAt time.Time `json:"closed_at,omitzero"`
	// Changed is the time of the last event.
	Changed time.Time `json:"changed"`

	// Acknowledged: an officer acknowledged the incident at AckedGrade
	// or worse; a grade worse than that makes it unacknowledged again.
	Acknowledged bool           `json:"acknowledged"`
	AckedBy      string         `json:"acked_by,omitempty"`
	AckedAt      time.Time      `json:"acked_at,omitzero"`
	AckedGrade   protocol.Grade `json:"acked_grade,omitempty"`
	// FirstAckAt is the first acknowledgement, for the time to
	// acknowledge.
	FirstAckAt time.Time `json:"first_ack_at,omitzero"`

	Conditions []Condition `json:"conditions"`
	Disposal   *Disposal   `json:"disposal,omitempty"`
	// ClosedBy is who closed it by filing the disposal; empty when it
	// closed by itself (auto-close).
	ClosedBy string `json:"closed_by,omitempty"`
	// Seq counts the incident's events; the next one is Seq+1.
	Seq int `json:"seq"`
	// SourceGrade is the grade the rules engine last reported for the
	// source while the incident was open.
	SourceGrade protocol.Grade `json:"source_grade"`
}

// Event is one change of an incident: what the owner journals, publishes
// and hands to the notifiers and the command platform. It carries the
// incident's state after the change, so a receiver needs no other.
type Event struct {
	V          int            `json:"v"`
	ID         string         `json:"id"`
	IncidentID string         `json:"incident_id"`
	Type       EventType      `json:"type"`
	Seq        int            `json:"seq"` // the event's number in its incident, from 1
	Site       string         `json:"site"`
	Source     string         `json:"source"`
	SourceName string         `json:"source_name,omitempty"` // filled in by the owner
	Grade      protocol.Grade `json:"grade"`
	PrevGrade  protocol.Grade `json:"prev_grade"`
	WorstGrade protocol.Grade `json:"worst_grade"`
	State      State          `json:"state"`
	PrevState  State          `json:"prev_state,omitempty"`
	// Acknowledged is the incident's acknowledgement after the event.
	Acknowledged bool      `json:"acknowledged"`
	OpenedAt     time.Time `json:"opened_at"`
	TS           time.Time `json:"ts"`
	// AlarmID names the condition of a condition_* event.
	AlarmID    string      `json:"alarm_id,omitempty"`
	Conditions []Condition `json:"conditions"`
	// Actor and Comment: who acted and what they said (acknowledged,
	// disposal_recorded, closed by a disposal).
	Actor    string    `json:"actor,omitempty"`
	Comment  string    `json:"comment,omitempty"`
	Disposal *Disposal `json:"disposal,omitempty"`
}

// Errors of officers' actions.
var (
	ErrUnknown      = errors.New("unknown incident")
	ErrClosed       = errors.New("incident is closed")
	ErrAcked        = errors.New("incident is already acknowledged")
	ErrNotAcked     = errors.New("acknowledge the incident before filing its disposal")
	ErrDisposed     = errors.New("incident already has a disposal record")
	ErrNoActor      = errors.New("officer is required")
	ErrNoComment    = errors.New("say what is asked: a comment is required")
	ErrBadCause     = errors.New("cause must be one of leak, equipment_fault, sensor_fault, false_alarm, maintenance, other")
	ErrNoFound      = errors.New("what was found is required")
	ErrNoMeasures   = errors.New("the measures taken are required")
	ErrTextTooLong  = fmt.Errorf("text over %d characters", MaxText)
	ErrInvalidInput = errors.New("invalid input")
)

// IDFormat is the layout of the time in an incident's ID.
const IDFormat = "20060102T150405.000Z"

// NewID names the incident of a source opened at t.
func NewID(site, source string, t time.Time) string {
	return site + "/" + source + "/" + t.UTC().Format(IDFormat)
}

// Config tunes the state machine.
type Config struct {
	// AutoCloseAfter: an incident whose worst grade is at most
	// AutoCloseMaxGrade closes by itself once it has been normal this
	// long. Zero or negative: never (every incident needs a disposal).
	AutoCloseAfter time.Duration
	// AutoCloseMaxGrade is the worst grade that may close by itself
	// (orange and red never do: their disposal is mandatory).
	AutoCloseMaxGrade protocol.Grade
}

// Defaults of Config, as the alerting service uses them.
const (
	DefaultAutoCloseAfter    = 30 * time.Minute
	DefaultAutoCloseMaxGrade = protocol.Yellow
)

// Check reports a configuration the machine cannot honour.
func (c Config) Check() error {
	if !c.AutoCloseMaxGrade.Valid() {
		return fmt.Errorf("incident auto-close grade %d is not a grade", c.AutoCloseMaxGrade)
	}
	if c.AutoCloseMaxGrade > protocol.Yellow {
		return fmt.Errorf("incident auto-close grade %s: orange and red incidents need a disposal record; at most yellow", c.AutoCloseMaxGrade)
	}
	return nil
}

func (inc *Incident) clone() *Incident {
	c := *inc
	c.Conditions = make([]Condition, len(inc.Conditions))
	for i, cd := range inc.Conditions {
		cd.Points = slices.Clone(cd.Points)
		cd.Messages = maps.Clone(cd.Messages)
		cd.Live = nil
		c.Conditions[i] = cd
	}
	if inc.Disposal != nil {
		d := *inc.Disposal
		c.Disposal = &d
	}
	return &c
}

// Clone returns a deep copy, safe to hand out.
func (inc *Incident) Clone() Incident { return *inc.clone() }

func (inc *Incident) condition(alarmID string) *Condition {
	for i := range inc.Conditions {
		if inc.Conditions[i].AlarmID == alarmID {
			return &inc.Conditions[i]
		}
	}
	return nil
}

// anyActive reports whether a condition is present.
func (inc *Incident) anyActive() bool {
	return slices.ContainsFunc(inc.Conditions, func(c Condition) bool { return c.Active })
}

// grade is the incident's grade: none once every condition has cleared,
// else the source's grade, but never below its worst active condition
// (the source grade of the same batch may follow later).
func (inc *Incident) grade() protocol.Grade {
	if !inc.anyActive() {
		return protocol.None
	}
	g := inc.SourceGrade
	for _, c := range inc.Conditions {
		if c.Active {
			g = max(g, c.Grade)
		}
	}
	return g
}

// event describes the incident as it is now; it numbers the event.
func (inc *Incident) event(typ EventType, now time.Time, prevGrade protocol.Grade, prevState State) Event {
	inc.Seq++
	inc.Changed = now
	ev := Event{V: protocol.Version, IncidentID: inc.ID, Type: typ, Seq: inc.Seq, Site: inc.Site, Source: inc.Source,
		Grade: inc.Grade, PrevGrade: prevGrade, WorstGrade: inc.WorstGrade, State: inc.State, PrevState: prevState,
		Acknowledged: inc.Acknowledged, OpenedAt: inc.OpenedAt, TS: now}
	ev.ID = EventID(inc.ID, inc.Seq)
	ev.Conditions = make([]Condition, len(inc.Conditions))
	for i, c := range inc.Conditions {
		c.Points = slices.Clone(c.Points)
		c.Messages = maps.Clone(c.Messages)
		ev.Conditions[i] = c
	}
	if inc.Disposal != nil {
		d := *inc.Disposal
		ev.Disposal = &d
	}
	return ev
}

// EventID names the n-th event of an incident: the same event always has
// the same id, on every node and after every replay.
func EventID(incidentID string, seq int) string {
	return fmt.Sprintf("%s#%d", incidentID, seq)
}

// regrade brings the grade, state and acknowledgement up to date after a
// change of the conditions or of the source grade, and returns the
// events it makes.
func (inc *Incident) regrade(now time.Time) []Event {
	var out []Event
	prevGrade, prevState := inc.Grade, inc.State
	g := inc.grade()
	if g == inc.Grade {
		return nil
	}
	inc.Grade = g
	inc.WorstGrade = max(inc.WorstGrade, g)
	if g == protocol.None {
		inc.State, inc.NormalAt = Normal, now
		out = append(out, inc.event(TypeNormal, now, prevGrade, prevState))
		return out
	}
	if inc.State == Normal {
		inc.State, inc.NormalAt = Active, time.Time{}
	}
	if inc.Acknowledged && g > inc.AckedGrade {
		// A worse grade must be seen again, as for an alarm (ISA-18.2).
		inc.Acknowledged = false
	}
	out = append(out, inc.event(TypeGradeChanged, now, prevGrade, prevState))
	return out
}

// closeIfDone closes a normal incident with a disposal record.
func (inc *Incident) closeIfDone(now time.Time) []Event {
	if inc.State != Normal || inc.Disposal == nil {
		return nil
	}
	prev := inc.State
	inc.State, inc.ClosedAt, inc.ClosedBy = Closed, now, inc.Disposal.By
	ev := inc.event(TypeClosed, now, protocol.None, prev)
	ev.Actor = inc.Disposal.By
	return []Event{ev}
}

// applyAlarm takes one point-level alarm event of the incident's source.
func (inc *Incident) applyAlarm(e protocol.AlarmEvent) []Event {
	now := e.TS.Time
	c := inc.condition(e.AlarmID)
	var out []Event
	switch e.Type {
	case protocol.AlarmRaised, protocol.AlarmGradeChanged:
		typ := TypeConditionChanged
		if c == nil {
			inc.Conditions = append(inc.Conditions, Condition{AlarmID: e.AlarmID, Point: e.Point, Condition: e.Condition})
			c = &inc.Conditions[len(inc.Conditions)-1]
			typ = TypeConditionJoined
		} else if !c.Active {
			typ = TypeConditionJoined // back again
		}
		c.Active, c.Cleared = true, time.Time{}
		c.Grade, c.WorstGrade = e.Grade, max(c.WorstGrade, e.Grade)
		c.State, c.Value, c.Limit, c.Points = e.State, e.Value, e.Limit, slices.Clone(e.Points)
		c.Message, c.Messages, c.Facts = e.Message, maps.Clone(e.Messages), e.Facts
		if e.Since != nil {
			c.Since = e.Since.Time
		}
		ev := inc.event(typ, now, inc.Grade, inc.State)
		ev.AlarmID = e.AlarmID
		out = append(out, ev)
	case protocol.AlarmCleared:
		if c == nil || !c.Active {
			// Not this incident's, or already cleared: the state only.
			if c != nil {
				c.State = e.State
			}
			return nil
		}
		c.Active, c.Cleared, c.State = false, now, e.State
		if e.PrevGrade != protocol.None {
			c.Grade = e.PrevGrade
		}
		ev := inc.event(TypeConditionCleared, now, inc.Grade, inc.State)
		ev.AlarmID = e.AlarmID
		out = append(out, ev)
	default:
		// Officers' actions and returns from shelving: the condition's
		// ISA state follows the alarm's, without an incident event.
		if c == nil {
			return nil
		}
		c.State = e.State
		return nil
	}
	out = append(out, inc.regrade(now)...)
	return append(out, inc.closeIfDone(now)...)
}

// Book is every incident not yet closed, one per hazard source at most,
// and the sources' grades. The zero value is not usable: see NewBook.
type Book struct {
	cfg    Config
	open   map[string]*Incident      // by site/source
	grades map[string]protocol.Grade // the rules engine's source grades
}

func sourceKey(site, source string) string { return site + "/" + source }

// NewBook returns a book holding the incidents restored from the journal
// (closed ones are skipped) and the sources' grades now.
func NewBook(cfg Config, restored []Incident, grades []protocol.SourceGrade) (*Book, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	b := &Book{cfg: cfg, open: map[string]*Incident{}, grades: map[string]protocol.Grade{}}
	for _, g := range grades {
		if g.Grade != protocol.None {
			b.grades[sourceKey(g.Site, g.Source)] = g.Grade
		}
	}
	for i := range restored {
		inc := restored[i].clone()
		if inc.State == Closed || !inc.State.Valid() || inc.ID == "" {
			continue
		}
		k := sourceKey(inc.Site, inc.Source)
		if old, ok := b.open[k]; ok && !inc.OpenedAt.After(old.OpenedAt) {
			continue // two open for one source: the newer counts
		}
		b.open[k] = inc
	}
	return b, nil
}

// Open returns copies of the incidents not yet closed, worst grade first,
// then the unacknowledged, then the newest.
func (b *Book) Open() []Incident {
	out := make([]Incident, 0, len(b.open))
	for _, inc := range b.open {
		out = append(out, inc.Clone())
	}
	Sort(out)
	return out
}

// Sort orders incidents as the officers' list shows them: the present
// grade (then the worst one) first, unacknowledged before acknowledged,
// newest first.
func Sort(incs []Incident) {
	slices.SortFunc(incs, func(a, b Incident) int {
		if a.Grade != b.Grade {
			return int(b.Grade) - int(a.Grade)
		}
		if a.WorstGrade != b.WorstGrade {
			return int(b.WorstGrade) - int(a.WorstGrade)
		}
		if a.Acknowledged != b.Acknowledged {
			if !a.Acknowledged {
				return -1
			}
			return 1
		}
		if c := b.OpenedAt.Compare(a.OpenedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// Get returns a copy of an incident not yet closed.
func (b *Book) Get(id string) (Incident, bool) {
	for _, inc := range b.open {
		if inc.ID == id {
			return inc.Clone(), true
		}
	}
	return Incident{}, false
}

// OfSource returns a copy of the source's incident not yet closed.
func (b *Book) OfSource(site, source string) (Incident, bool) {
	inc, ok := b.open[sourceKey(site, source)]
	if !ok {
		return Incident{}, false
	}
	return inc.Clone(), true
}

// Len is the number of incidents not yet closed.
func (b *Book) Len() int { return len(b.open) }

// Txn is one batch of changes to a Book. Its changes are seen by its own
// later calls at once and by the Book only after Commit.
type Txn struct {
	b       *Book
	changed map[string]*Incident // by site/source; closed ones stay until Commit
	grades  map[string]protocol.Grade
	events  []Event
}

// Begin starts a batch.
func (b *Book) Begin() *Txn {
	return &Txn{b: b, changed: map[string]*Incident{}, grades: map[string]protocol.Grade{}}
}

// Events returns the events of the batch so far, in order.
func (t *Txn) Events() []Event { return t.events }

// Changed returns the incidents the batch changed, as they are now
// (closed ones included), in a deterministic order.
func (t *Txn) Changed() []Incident {
	out := make([]Incident, 0, len(t.changed))
	for _, inc := range t.changed {
		out = append(out, inc.Clone())
	}
	slices.SortFunc(out, func(a, b Incident) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Commit makes a batch's changes the book's. Call it once the batch's
// events are journaled.
func (b *Book) Commit(t *Txn) {
	for k, inc := range t.changed {
		if inc.State == Closed {
			if cur, ok := b.open[k]; ok && cur.ID == inc.ID {
				delete(b.open, k)
			}
			continue
		}
		b.open[k] = inc
	}
	for k, g := range t.grades {
		if g == protocol.None {
			delete(b.grades, k)
		} else {
			b.grades[k] = g
		}
	}
}

// current returns the batch's working copy of the source's incident, open
// or closed in this batch, or nil.
func (t *Txn) current(k string) *Incident {
	if inc, ok := t.changed[k]; ok {
		return inc
	}
	if inc, ok := t.b.open[k]; ok {
		c := inc.clone()
		t.changed[k] = c
		return c
	}
	return nil
}

func (t *Txn) sourceGrade(k string) protocol.Grade {
	if g, ok := t.grades[k]; ok {
		return g
	}
	return t.b.grades[k]
}

// byID returns the batch's working copy of an incident not closed.
func (t *Txn) byID(id string) (*Incident, error) {
	for k, inc := range t.changed {
		if inc.ID == id {
			return t.current(k), nil
		}
	}
	for k, inc := range t.b.open {
		if inc.ID == id {
			return t.current(k), nil
		}
	}
	return nil, fmt.Errorf("incident %q: %w", id, ErrUnknown)
}

func (t *Txn) emit(evs []Event) []Event {
	t.events = append(t.events, evs...)
	return evs
}

// opens reports whether an alarm event, with no incident open for its
// source, opens one: a condition that is present and annunciated (not
// shelved or out of service).
func opens(e protocol.AlarmEvent) bool {
	switch e.Type {
	case protocol.AlarmRaised, protocol.AlarmGradeChanged:
		return e.State == protocol.StateUnacked && e.Grade != protocol.None
	case protocol.AlarmUnshelved, protocol.AlarmShelveExpired, protocol.AlarmReturnedToService:
		// Back from silence with the condition present.
		return e.State == protocol.StateUnacked && e.Grade != protocol.None
	}
	return false
}

// Alarm takes one point-level alarm event (after the alarm's lifecycle)
// and returns the incident events it makes. Events of sources' grades,
// floods and escalations are not alarms' and are ignored here (source
// grades go to SourceGrade).
func (t *Txn) Alarm(e protocol.AlarmEvent) ([]Event, error) {
	switch e.Type {
	case protocol.AlarmSourceGradeChanged, protocol.AlarmFlood, protocol.AlarmEscalated, protocol.AlarmCommented:
		return nil, nil
	}
	if e.Site == "" || e.Source == "" || e.AlarmID == "" || e.TS.IsZero() || !e.Grade.Valid() || !e.PrevGrade.Valid() {
		return nil, fmt.Errorf("alarm event %q of %s/%s: %w", e.AlarmID, e.Site, e.Source, ErrInvalidInput)
	}
	k := sourceKey(e.Site, e.Source)
	inc := t.current(k)
	if inc != nil && inc.State == Closed {
		inc = nil // closed in this batch: a new condition opens a new one
	}
	if inc == nil {
		if !opens(e) {
			return nil, nil
		}
		now := e.TS.Time
		inc = &Incident{ID: NewID(e.Site, e.Source, now), Site: e.Site, Source: e.Source, State: Active,
			OpenedAt: now, SourceGrade: t.sourceGrade(k)}
		if prev, ok := t.changed[k]; ok && prev.ID == inc.ID {
			inc.ID += "-2" // closed and reopened within one millisecond
		}
		inc.Conditions = []Condition{{AlarmID: e.AlarmID, Point: e.Point, Condition: e.Condition, Active: true,
			Grade: e.Grade, WorstGrade: e.Grade, State: e.State, Value: e.Value, Limit: e.Limit,
			Message: e.Message, Messages: maps.Clone(e.Messages), Facts: e.Facts, Points: slices.Clone(e.Points)}}
		if e.Since != nil {
			inc.Conditions[0].Since = e.Since.Time
		}
		inc.Grade = inc.grade()
		inc.WorstGrade = inc.Grade
		t.changed[k] = inc
		ev := inc.event(TypeOpened, now, protocol.None, "")
		ev.AlarmID = e.AlarmID
		return t.emit([]Event{ev}), nil
	}
	return t.emit(inc.applyAlarm(e)), nil
}

// SourceGrade takes the rules engine's grade of a source at a time; the
// source's open incident follows it.
func (t *Txn) SourceGrade(site, source string, g protocol.Grade, at time.Time) ([]Event, error) {
	if site == "" || source == "" || !g.Valid() || at.IsZero() {
		return nil, fmt.Errorf("source grade %s/%s: %w", site, source, ErrInvalidInput)
	}
	k := sourceKey(site, source)
	t.grades[k] = g
	inc := t.current(k)
	if inc == nil || inc.State == Closed {
		return nil, nil
	}
	inc.SourceGrade = g
	evs := inc.regrade(at)
	evs = append(evs, inc.closeIfDone(at)...)
	return t.emit(evs), nil
}

// Ack acknowledges an incident; the owner acknowledges its alarms in the
// same batch. Acknowledging an acknowledged incident is ErrAcked.
func (t *Txn) Ack(id, actor, comment string, now time.Time) (Event, error) {
	switch {
	case strings.TrimSpace(actor) == "":
		return Event{}, ErrNoActor
	case utf8.RuneCountInString(comment) > MaxText:
		return Event{}, fmt.Errorf("comment: %w", ErrTextTooLong)
	}
	inc, err := t.byID(id)
	if err != nil {
		return Event{}, err
	}
	switch {
	case inc.State == Closed:
		return Event{}, fmt.Errorf("acknowledge %s: %w", id, ErrClosed)
	case inc.Acknowledged:
		return Event{}, fmt.Errorf("acknowledge %s (by %s at %s): %w", id, inc.AckedBy, inc.AckedAt.UTC().Format(time.RFC3339), ErrAcked)
	}
	inc.Acknowledged, inc.AckedBy, inc.AckedAt = true, actor, now
	inc.AckedGrade = inc.Grade
	if inc.FirstAckAt.IsZero() {
		inc.FirstAckAt = now
	}
	ev := inc.event(TypeAcknowledged, now, inc.Grade, inc.State)
	ev.Actor, ev.Comment = actor, comment
	t.emit([]Event{ev})
	return ev, nil
}

// Urge records a supervisor's urging (督办) of an open incident, with what
// the supervisor asks; it changes no state and no acknowledgement.
func (t *Txn) Urge(id, actor, comment string, now time.Time) (Event, error) {
	switch {
	case strings.TrimSpace(actor) == "":
		return Event{}, ErrNoActor
	case strings.TrimSpace(comment) == "":
		return Event{}, ErrNoComment
	case utf8.RuneCountInString(comment) > MaxText:
		return Event{}, fmt.Errorf("comment: %w", ErrTextTooLong)
	}
	inc, err := t.byID(id)
	if err != nil {
		return Event{}, err
	}
	if inc.State == Closed {
		return Event{}, fmt.Errorf("urge %s: %w", id, ErrClosed)
	}
	ev := inc.event(TypeUrged, now, inc.Grade, inc.State)
	ev.Actor, ev.Comment = actor, comment
	t.emit([]Event{ev})
	return ev, nil
}

// Dispose files the disposal record of an acknowledged incident. A normal
// incident closes with it; an active one closes when its conditions have
// cleared. It returns the disposal_recorded event, then closed when it
// closes.
func (t *Txn) Dispose(id string, d Disposal, now time.Time) ([]Event, error) {
	d.At = now
	if err := d.check(); err != nil {
		return nil, err
	}
	inc, err := t.byID(id)
	if err != nil {
		return nil, err
	}
	switch {
	case inc.State == Closed:
		return nil, fmt.Errorf("dispose of %s: %w", id, ErrClosed)
	case inc.Disposal != nil:
		return nil, fmt.Errorf("dispose of %s (filed by %s): %w", id, inc.Disposal.By, ErrDisposed)
	case !inc.Acknowledged:
		return nil, fmt.Errorf("dispose of %s: %w", id, ErrNotAcked)
	}
	inc.Disposal = &d
	ev := inc.event(TypeDisposalRecorded, now, inc.Grade, inc.State)
	ev.Actor = d.By
	evs := append([]Event{ev}, inc.closeIfDone(now)...)
	return t.emit(evs), nil
}

func (d *Disposal) check() error {
	d.Found, d.Measures = strings.TrimSpace(d.Found), strings.TrimSpace(d.Measures)
	switch {
	case strings.TrimSpace(d.By) == "":
		return ErrNoActor
	case !d.Cause.Valid():
		return fmt.Errorf("cause %q: %w", d.Cause, ErrBadCause)
	case d.Found == "":
		return ErrNoFound
	case d.Measures == "":
		return ErrNoMeasures
	case utf8.RuneCountInString(d.Found) > MaxText:
		return fmt.Errorf("found: %w", ErrTextTooLong)
	case utf8.RuneCountInString(d.Measures) > MaxText:
		return fmt.Errorf("measures: %w", ErrTextTooLong)
	}
	return nil
}

// Tick closes the yellow and blue incidents that have stayed normal for
// the auto-close time, in a deterministic order.
func (t *Txn) Tick(now time.Time) []Event {
	cfg := t.b.cfg
	if cfg.AutoCloseAfter <= 0 {
		return nil
	}
	var due []string
	consider := func(k string, inc *Incident) {
		if inc.State == Normal && inc.Disposal == nil && inc.WorstGrade <= cfg.AutoCloseMaxGrade &&
			!now.Before(inc.NormalAt.Add(cfg.AutoCloseAfter)) {
			due = append(due, k)
		}
	}
	for k, inc := range t.b.open {
		if _, ok := t.changed[k]; !ok {
			consider(k, inc)
		}
	}
	for k, inc := range t.changed {
		consider(k, inc)
	}
	slices.Sort(due)
	var out []Event
	for _, k := range due {
		inc := t.current(k)
		inc.State, inc.ClosedAt = Closed, now
		out = append(out, inc.event(TypeClosed, now, protocol.None, Normal))
	}
	return t.emit(out)
}
