package rules

import (
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// Reading is one point's measurement as the engine sees it.
type Reading struct {
	Site  string
	Point string
	// Time is when the reading was taken, on the gateway's clock: used only
	// to order a point's readings and to measure the time between them.
	Time time.Time
	// Received is when the centre received the reading, on the centre's
	// clock (the clock of Tick). Liveness, delays and timers run on it, so
	// a gateway's clock offset cannot fool them. Zero means Time (a caller
	// whose readings carry the centre's time, such as a test).
	Received time.Time
	Value    float64 // meaningful when Quality is good or over_range
	Quality  protocol.Quality
}

// EventType is what happened to a condition or a source.
type EventType uint8

// Event types.
const (
	// Raised: a condition became active.
	Raised EventType = iota + 1
	// GradeChanged: an active condition's grade, or its explanation's
	// numbers, changed (e.g. first level held too long, vote satisfied).
	GradeChanged
	// Cleared: a condition returned to normal.
	Cleared
	// SourceGradeChanged: a hazard source's overall grade changed; Grade is
	// the new one (None when the source is back to normal).
	SourceGradeChanged
)

var eventTypeNames = [...]string{"", "raised", "grade_changed", "cleared", "source_grade_changed"}

func (t EventType) String() string {
	if int(t) < len(eventTypeNames) {
		return eventTypeNames[t]
	}
	return "unknown"
}

// Condition names a kind of abnormal state.
type Condition string

// Conditions.
const (
	HH         Condition = "HH"          // second level high (power-off for power_off points)
	H          Condition = "H"           // first level high
	L          Condition = "L"           // first level low
	LL         Condition = "LL"          // second level low
	RateRise   Condition = "roc_rise"    // rising faster than allowed
	RateFall   Condition = "roc_fall"    // falling faster than allowed
	Stale      Condition = "stale"       // no data: communication lost
	Fault      Condition = "fault"       // sensor fault: quality bad, out of range
	Stuck      Condition = "stuck"       // a gas detector's value frozen
	VoteFirst  Condition = "vote_first"  // k-of-n group at first level
	VoteSecond Condition = "vote_second" // k-of-n group at second level
	ManyFirst  Condition = "many_first"  // several points of a source at first level
	ManySecond Condition = "many_second" // several points of a source at second level
)

// Event is one change the engine reports, as facts: no words for people,
// which the edges render from the catalogs of internal/i18n. Point is empty
// for conditions of a whole source (votes, counts) and for
// SourceGradeChanged.
type Event struct {
	Type EventType
	// Time is when the engine decided (recorded_at): the centre's clock.
	Time time.Time
	// OccurredAt is when the change happened at the site: the reading's time
	// corrected by its gateway's clock offset, on the centre's clock. Equal
	// to Time or a little earlier for live data; long before it for Late.
	OccurredAt time.Time
	Site       string
	Source     string
	Point      string
	Condition  Condition
	// Key identifies the condition across events: site/source/point/condition
	// (or site/source/vote-id/condition); it is the alarm's identity.
	Key       string
	Grade     protocol.Grade // the grade now (None once cleared)
	PrevGrade protocol.Grade // the grade before this event
	Value     float64        // the value that triggered the event
	Limit     float64        // the limit it was compared with
	Since     time.Time      // when the condition became active
	Points    []string       // for votes and counts: the points in alarm
	// Chattering marks a Raised event that is the condition's third or
	// later raise within one minute (ISA-18.2). The alarm is raised all the
	// same; the flag lets the console and the alarm review single it out.
	Chattering bool
	// Late marks a retrospective warning (补报): an excursion found in
	// readings that reached the centre after newer ones, or after the point
	// would have gone stale (a gateway's backlog). It is raised and cleared
	// as it was found, with its own Key, and does not touch the live state
	// or the source's grade.
	Late bool
	// Facts say what happened, with the names from the site file: the
	// reason (a catalog key), unit, durations, contributing points.
	Facts protocol.AlarmFacts
}
