package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// AlarmEventType says what happened to an alarm or a hazard source.
type AlarmEventType string

// Alarm event types. The first four come from the rules engine; the others
// are officers' actions and the alerting service's own decisions.
const (
	AlarmRaised             AlarmEventType = "raised"
	AlarmGradeChanged       AlarmEventType = "grade_changed"
	AlarmCleared            AlarmEventType = "cleared"
	AlarmSourceGradeChanged AlarmEventType = "source_grade_changed"
	AlarmAcknowledged       AlarmEventType = "acknowledged"
	AlarmShelved            AlarmEventType = "shelved"
	AlarmUnshelved          AlarmEventType = "unshelved"
	AlarmShelveExpired      AlarmEventType = "shelve_expired"
	AlarmOutOfService       AlarmEventType = "out_of_service"
	AlarmReturnedToService  AlarmEventType = "returned_to_service"
	AlarmCommented          AlarmEventType = "commented" // an officer's remark; state and prev_state are the same
	AlarmEscalated          AlarmEventType = "escalated"
	AlarmFlood              AlarmEventType = "flood"
)

// AlarmState is an alarm's ISA-18.2 state.
type AlarmState string

// Alarm states (ISA-18.2 / IEC 62682).
const (
	StateNormal       AlarmState = "normal"         // condition inactive, nothing to acknowledge
	StateUnacked      AlarmState = "unacked"        // active, not yet acknowledged
	StateAcked        AlarmState = "acked"          // active, acknowledged by an officer
	StateRTNUnacked   AlarmState = "rtn_unacked"    // returned to normal, not yet acknowledged
	StateShelved      AlarmState = "shelved"        // silenced by an officer until an expiry
	StateOutOfService AlarmState = "out_of_service" // taken out of service (maintenance)
)

// Valid reports whether s is a known state.
func (s AlarmState) Valid() bool {
	switch s {
	case StateNormal, StateUnacked, StateAcked, StateRTNUnacked, StateShelved, StateOutOfService:
		return true
	}
	return false
}

// MaxAlarmEventSize bounds an alarm event message.
const MaxAlarmEventSize = 64 << 10

// AlarmEvent is one change of an alarm or a hazard source, published on
// AlarmsTopic(site) (QoS 1) and POSTed to the command platform as the data
// of a CloudEvents message. Receivers drop duplicates by ID.
type AlarmEvent struct {
	V int `json:"v"`
	// ID is the event's stable id: the same change always has the same id,
	// however often it is sent.
	ID string `json:"id"`
	// AlarmID is the alarm's identity (the rules engine's Key):
	// site/source/point/condition, or site/source for source grades.
	AlarmID   string         `json:"alarm_id"`
	Type      AlarmEventType `json:"type"`
	Site      string         `json:"site"`
	Source    string         `json:"source"`
	Point     string         `json:"point,omitempty"`
	Condition string         `json:"condition,omitempty"`
	Grade     Grade          `json:"grade"`
	PrevGrade Grade          `json:"prev_grade"`
	State     AlarmState     `json:"state,omitempty"`
	PrevState AlarmState     `json:"prev_state,omitempty"`
	Value     float64        `json:"value"`
	Limit     float64        `json:"limit"`
	Since     *Time          `json:"since,omitempty"`
	TS        Time           `json:"ts"`
	// Message is the event in words for people, rendered by the centre from
	// Facts in the receiver's language (Chinese unless a receiver is
	// configured otherwise); Messages holds it in every catalog language
	// ("zh", "en"). Machines read Facts, not these.
	Message  string            `json:"message"`
	Messages map[string]string `json:"messages,omitempty"`
	Points   []string          `json:"points,omitempty"`
	// OccurredAt is when the change happened at the site, on the centre's
	// clock (a gateway's reading time corrected by its clock offset);
	// RecordedAt is when the centre learned of it. They differ by the
	// transit time, or by much more for late data (Late). TS is RecordedAt.
	OccurredAt Time `json:"occurred_at,omitzero"`
	RecordedAt Time `json:"recorded_at,omitzero"`
	// Late marks a retrospective warning (补报): an excursion found in data
	// that reached the centre late (a gateway's backlog after an outage).
	// It is raised and cleared as found; OccurredAt says when it was.
	Late bool `json:"late,omitempty"`
	// Chattering marks a raise that is the condition's third or later within
	// one minute (ISA-18.2). The alarm is raised all the same.
	Chattering bool `json:"chattering,omitempty"`
	// Facts are what the event is about, for machines and for rendering.
	Facts *AlarmFacts `json:"facts,omitempty"`
	// Actor and Comment are set for officers' actions.
	Actor   string `json:"actor,omitempty"`
	Comment string `json:"comment,omitempty"`
	// Until is when a shelved alarm returns by itself.
	Until *Time `json:"until,omitempty"`
}

// Check reports what is wrong with an alarm event.
func (e AlarmEvent) Check() error {
	switch {
	case e.V != Version:
		return fmt.Errorf("alarm event %s: version %d, want %d", e.ID, e.V, Version)
	case e.ID == "" || e.AlarmID == "":
		return errors.New("alarm event: id and alarm_id are required")
	case e.Type == "":
		return fmt.Errorf("alarm event %s: type is required", e.ID)
	case e.Site == "":
		return fmt.Errorf("alarm event %s: site is required", e.ID)
	case !e.Grade.Valid() || !e.PrevGrade.Valid():
		return fmt.Errorf("alarm event %s: invalid grade", e.ID)
	case e.State != "" && !e.State.Valid():
		return fmt.Errorf("alarm event %s: unknown state %q", e.ID, e.State)
	case math.IsNaN(e.Value) || math.IsInf(e.Value, 0) || math.IsNaN(e.Limit) || math.IsInf(e.Limit, 0):
		return fmt.Errorf("alarm event %s: value and limit must be finite numbers", e.ID)
	case e.TS.IsZero():
		return fmt.Errorf("alarm event %s: ts is required", e.ID)
	}
	return nil
}

// Encode checks and marshals an alarm event.
func (e AlarmEvent) Encode() ([]byte, error) {
	if err := e.Check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode alarm event %s: %w", e.ID, err)
	}
	if len(b) > MaxAlarmEventSize {
		return nil, fmt.Errorf("alarm event %s is %d bytes, over the %d limit", e.ID, len(b), MaxAlarmEventSize)
	}
	return b, nil
}

// DecodeAlarmEvent parses and checks an alarm event.
func DecodeAlarmEvent(payload []byte) (AlarmEvent, error) {
	var e AlarmEvent
	if len(payload) > MaxAlarmEventSize {
		return e, fmt.Errorf("alarm event is %d bytes, over the %d limit", len(payload), MaxAlarmEventSize)
	}
	if err := json.Unmarshal(payload, &e); err != nil {
		return e, fmt.Errorf("alarm event: %w", err)
	}
	return e, e.Check()
}

// AlarmFacts are the facts behind an alarm event, with names as the site
// file gives them: what a receiver needs to say it in any language. Reason
// says what happened (a stable code, the message catalog's key); the other
// fields are those the reason needs, omitted when they do not apply.
type AlarmFacts struct {
	// Reason is what happened, e.g. "limit_exceeded", "back_inside",
	// "no_data", "saturated"; docs/alerting.md lists them.
	Reason     string `json:"reason"`
	SourceName string `json:"source_name,omitempty"`
	// Name is the point's name, or the vote group's for votes.
	Name string `json:"name,omitempty"`
	Unit string `json:"unit,omitempty"`
	// LimitName names the limit compared: HH, H, L, LL, power_off (断电值)
	// or restore (复电值).
	LimitName string `json:"limit_name,omitempty"`
	// ClearAt is the value the condition cleared past (limit ∓ deadband,
	// or the restore value); Deadband the hysteresis.
	ClearAt  *float64 `json:"clear_at,omitempty"`
	Deadband *float64 `json:"deadband,omitempty"`
	// HeldS: for how long, in seconds — held before the raise (on-delay),
	// lasted at the clear, data missing, value unchanged.
	HeldS float64 `json:"held_s,omitempty"`
	// SettingS: the setting the duration was compared with, in seconds
	// (stale_after, first_level_held.for).
	SettingS float64 `json:"setting_s,omitempty"`
	// From and Rate: a rate of change or a still rising second level, from
	// From to the event's value over HeldS; Rate in units per minute.
	From *float64 `json:"from,omitempty"`
	Rate *float64 `json:"rate,omitempty"`
	// Peak: the worst value of an excursion found in late data.
	Peak *float64 `json:"peak,omitempty"`
	// RangeMin and RangeMax: the measuring range, for range faults and
	// saturation.
	RangeMin *float64 `json:"range_min,omitempty"`
	RangeMax *float64 `json:"range_max,omitempty"`
	Quality  string   `json:"quality,omitempty"`
	// Points are the contributing points of a vote or a count (with their
	// names and values), or the points of a flood.
	Points []PointFact `json:"points,omitempty"`
	// Need is how many points a vote or a count needs.
	Need int `json:"need,omitempty"`
	// Raises: a chattering raise's number within the minute.
	Raises int `json:"raises,omitempty"`
	// Detail is a reason's sub-code, e.g. why a restored alarm could not be
	// placed ("point_gone", "limit_gone").
	Detail string `json:"detail,omitempty"`
	// Flood and escalation figures.
	Count     int     `json:"count,omitempty"`
	Threshold int     `json:"threshold,omitempty"`
	WindowS   float64 `json:"window_s,omitempty"`
	Alarms    int     `json:"alarms,omitempty"`
	Merged    int     `json:"merged,omitempty"`
	Batch     int     `json:"batch,omitempty"`
	Max       int     `json:"max,omitempty"`
	Resends   int     `json:"resends,omitempty"`
	Escalated bool    `json:"escalated,omitempty"`
	// Cause: for a source's grade or an escalation, the facts of the
	// condition behind it, which then carry that condition's own
	// Condition, Value, Limit and Grade (the event's are the source's).
	Cause     *AlarmFacts `json:"cause,omitempty"`
	Condition string      `json:"condition,omitempty"`
	Value     *float64    `json:"value,omitempty"`
	Limit     *float64    `json:"limit,omitempty"`
	Grade     Grade       `json:"grade,omitempty"`
}

// PointFact is one contributing point: its id, its name, its value and
// what it is at.
type PointFact struct {
	ID        string  `json:"id"`
	Name      string  `json:"name,omitempty"`
	Value     float64 `json:"value"`
	Unit      string  `json:"unit,omitempty"`
	Condition string  `json:"condition,omitempty"`
}

// SourceGrade is the retained payload of SourceGradeTopic: a hazard
// source's current grade.
type SourceGrade struct {
	V         int    `json:"v"`
	Site      string `json:"site"`
	Source    string `json:"source"`
	Grade     Grade  `json:"grade"`
	PrevGrade Grade  `json:"prev_grade"`
	// Since is when the source reached this grade.
	Since   Time   `json:"since"`
	Message string `json:"message,omitempty"`
}
