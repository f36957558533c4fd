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
	Message   string         `json:"message"`
	Points    []string       `json:"points,omitempty"`
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
