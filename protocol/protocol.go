// Package protocol is the wire contract between HazardWatch's edge gateways
// and its centre: MQTT topics and the JSON messages on them, version 1. Both
// ends use this one package, so they cannot drift apart; docs/protocol.md
// describes the same contract for other implementers.
package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Version is the contract version carried in every message as "v".
const Version = 1

// Prefix starts every topic of this contract version.
const Prefix = "hazardwatch/v1/"

// MaxMessageSize bounds a telemetry message; larger ones are refused whole
// by the centre (gateways split their batches below it).
const MaxMessageSize = 256 << 10

// MaxReadings bounds the readings in one telemetry message.
const MaxReadings = 4096

// TimeFormat is RFC 3339 with milliseconds, in UTC.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// TelemetryTopic is where gateway gw of site publishes readings (QoS 1).
func TelemetryTopic(site, gw string) string { return Prefix + site + "/" + gw + "/telemetry" }

// StateTopic is where a gateway keeps its retained online/offline state.
func StateTopic(site, gw string) string { return Prefix + site + "/" + gw + "/state" }

// AlarmsTopic is where the centre publishes alarm events of a site (QoS 1).
func AlarmsTopic(site string) string { return Prefix + site + "/alarms" }

// SourceGradeTopic is where the centre keeps a hazard source's current
// grade, retained.
func SourceGradeTopic(site, source string) string {
	return Prefix + site + "/sources/" + source + "/grade"
}

// TelemetryFilter subscribes to the telemetry of every gateway of a site;
// site "+" means every site.
func TelemetryFilter(site string) string { return Prefix + site + "/+/telemetry" }

// StateFilter subscribes to the state of every gateway of a site.
func StateFilter(site string) string { return Prefix + site + "/+/state" }

// Topic is a parsed gateway topic.
type Topic struct {
	Site, Gateway string
	Kind          string // "telemetry" or "state"
}

// ParseTopic splits hazardwatch/v1/{site}/{gateway}/{telemetry|state}.
func ParseTopic(topic string) (Topic, error) {
	rest, ok := strings.CutPrefix(topic, Prefix)
	if !ok {
		return Topic{}, fmt.Errorf("topic %q does not start with %s", topic, Prefix)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return Topic{}, fmt.Errorf("topic %q is not %s{site}/{gateway}/{telemetry|state}", topic, Prefix)
	}
	if parts[2] != "telemetry" && parts[2] != "state" {
		return Topic{}, fmt.Errorf("topic %q ends in %q, not telemetry or state", topic, parts[2])
	}
	return Topic{Site: parts[0], Gateway: parts[1], Kind: parts[2]}, nil
}

// Quality says whether a reading's value can be trusted.
type Quality string

// Qualities. Only good readings carry a value the rules may compare with
// limits; the others are shown and recorded as what they are, never as a
// value (AQ 6201).
const (
	Good      Quality = "good"       // a valid measurement
	Bad       Quality = "bad"        // sensor fault: NAMUR NE 43 out of band, detector fault flag
	CommFail  Quality = "comm_fail"  // the gateway could not read the device
	OverRange Quality = "over_range" // the value is outside the measuring range
)

// Valid reports whether q is a known quality.
func (q Quality) Valid() bool {
	return q == Good || q == Bad || q == CommFail || q == OverRange
}

// CarriesValue reports whether a reading of quality q has a value: good
// and over_range readings do, bad and comm_fail ones do not.
func (q Quality) CarriesValue() bool { return q == Good || q == OverRange }

// Reading is one point's measurement.
type Reading struct {
	Point string `json:"point"`
	// Value is the measurement in engineering units; absent when the
	// quality is bad or comm_fail.
	Value *float64 `json:"value,omitempty"`
	// Quality defaults to good when absent.
	Quality Quality `json:"quality,omitempty"`
	// TS is when the reading was taken, when it differs from the message's
	// ts (report by exception, batched replays).
	TS *Time `json:"ts,omitempty"`

	// invalid holds what was wrong with the reading as received, so that
	// one malformed reading does not cost the good ones of its message.
	invalid *MessageError
	// stripped: it arrived bad or comm_fail with a value, which the
	// decoder dropped.
	stripped bool
}

// ValueStripped reports whether the reading arrived with a value its
// quality (bad, comm_fail) says cannot be trusted, and the decoder dropped
// the value; the reading itself is kept.
func (r Reading) ValueStripped() bool { return r.stripped }

// Telemetry is one message of a gateway on its telemetry topic.
type Telemetry struct {
	V       int    `json:"v"`
	Site    string `json:"site"`
	Gateway string `json:"gateway"`
	// Seq rises by one per message of the gateway, across restarts, so the
	// centre can drop duplicates and count gaps.
	Seq      uint64    `json:"seq"`
	TS       Time      `json:"ts"`
	Readings []Reading `json:"readings"`
}

// Time is a time.Time written in TimeFormat.
type Time struct{ time.Time }

// MarshalJSON writes RFC 3339 with milliseconds in UTC.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeFormat)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeFormat)
	return append(b, '"'), nil
}

// UnmarshalJSON reads any RFC 3339 time.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return errors.New("time is null")
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("time must be an RFC 3339 string: %w", err)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("time %q is not RFC 3339", s)
	}
	t.Time = v
	return nil
}

// At returns when the reading was taken: its own ts, else the message's.
func (r Reading) At(msg Time) time.Time {
	if r.TS != nil {
		return r.TS.Time
	}
	return msg.Time
}

// QualityOrGood returns the quality, good when absent.
func (r Reading) QualityOrGood() Quality {
	if r.Quality == "" {
		return Good
	}
	return r.Quality
}

// Encode marshals a telemetry message, checking it first.
func (t Telemetry) Encode() ([]byte, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	for i, r := range t.Readings {
		if err := r.Check(); err != nil {
			return nil, fmt.Errorf("reading %d: %w", i, err)
		}
	}
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode telemetry: %w", err)
	}
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("telemetry message is %d bytes, over the %d limit: split the batch", len(b), MaxMessageSize)
	}
	return b, nil
}

// MessageError is a whole message refused; Reason is a short stable word for
// metrics and the dead-letter store.
type MessageError struct {
	Reason string
	Err    error
}

func (e *MessageError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *MessageError) Unwrap() error { return e.Err }

// Reasons a message or reading is refused.
const (
	ReasonTooLarge     = "too_large"
	ReasonNotJSON      = "not_json"
	ReasonBadVersion   = "bad_version"
	ReasonBadEnvelope  = "bad_envelope"
	ReasonBadReading   = "bad_reading"
	ReasonUnknownPoint = "unknown_point"
	ReasonNotANumber   = "not_a_number"
	ReasonFuture       = "future_timestamp"
	// ReasonValueStripped: a bad or comm_fail reading came with a value;
	// the value was dropped and the reading kept.
	ReasonValueStripped = "value_stripped"
)

// DecodeTelemetry parses and checks a telemetry message's envelope, strictly
// (see decode.go: no key twice, keys match exactly, nothing after the
// object). Reading problems are not errors here: call Reading.Check on
// each, so that one bad reading does not cost the good ones beside it.
func DecodeTelemetry(payload []byte) (Telemetry, error) {
	var t Telemetry
	if len(payload) > MaxMessageSize {
		return t, &MessageError{ReasonTooLarge, fmt.Errorf("message is %d bytes, over the %d limit", len(payload), MaxMessageSize)}
	}
	if err := decodeTelemetry(payload, &t); err != nil {
		var me *MessageError
		var se *syntaxErr
		switch {
		case errors.As(err, &me):
			return Telemetry{}, me
		case errors.As(err, &se) || !validJSON(payload):
			// Only on this error path is the payload scanned a second
			// time: a shape error early in a payload that is not JSON
			// further on is not_json.
			return Telemetry{}, &MessageError{ReasonNotJSON, err}
		}
		return Telemetry{}, &MessageError{ReasonBadEnvelope, err}
	}
	if err := t.check(); err != nil {
		return t, err
	}
	return t, nil
}

func (t Telemetry) check() error {
	switch {
	case t.V != Version:
		return &MessageError{ReasonBadVersion, fmt.Errorf("version %d, this centre speaks %d", t.V, Version)}
	case t.Site == "" || t.Gateway == "":
		return &MessageError{ReasonBadEnvelope, errors.New("site and gateway are required")}
	case t.Seq == 0:
		return &MessageError{ReasonBadEnvelope, errors.New("seq must start at 1")}
	case t.TS.IsZero():
		return &MessageError{ReasonBadEnvelope, errors.New("ts is required")}
	case len(t.Readings) == 0:
		return &MessageError{ReasonBadEnvelope, errors.New("no readings")}
	case len(t.Readings) > MaxReadings:
		return &MessageError{ReasonTooLarge, fmt.Errorf("%d readings, over the %d limit", len(t.Readings), MaxReadings)}
	}
	return nil
}

// Check reports what is wrong with one reading, as a *MessageError.
func (r Reading) Check() error {
	if r.invalid != nil {
		return r.invalid
	}
	q := r.QualityOrGood()
	switch {
	case r.Point == "":
		return &MessageError{ReasonBadReading, errors.New("reading without point")}
	case !q.Valid():
		return &MessageError{ReasonBadReading, fmt.Errorf("point %s: unknown quality %q", r.Point, r.Quality)}
	case q.CarriesValue() && r.Value == nil:
		return &MessageError{ReasonBadReading, fmt.Errorf("point %s: %s reading without value", r.Point, q)}
	case !q.CarriesValue() && r.Value != nil:
		return &MessageError{ReasonBadReading, fmt.Errorf("point %s: a %s reading carries no value", r.Point, q)}
	case r.Value != nil && (math.IsNaN(*r.Value) || math.IsInf(*r.Value, 0)):
		return &MessageError{ReasonNotANumber, fmt.Errorf("point %s: value is not a finite number", r.Point)}
	}
	return nil
}

// GatewayState is the retained payload of a gateway's state topic.
type GatewayState struct {
	V     int    `json:"v"`
	State string `json:"state"` // "online" or "offline"
	// Since is when the gateway came online; absent in the will.
	Since *Time `json:"since,omitempty"`
}

// Gateway states.
const (
	Online  = "online"
	Offline = "offline"
)

// EncodeState marshals a gateway state.
func EncodeState(state string, since time.Time) []byte {
	s := GatewayState{V: Version, State: state}
	if !since.IsZero() {
		s.Since = &Time{since}
	}
	b, _ := json.Marshal(s) // cannot fail: plain strings and a time
	return b
}

// DecodeState parses a gateway state payload.
func DecodeState(payload []byte) (GatewayState, error) {
	var s GatewayState
	if err := json.Unmarshal(payload, &s); err != nil {
		return s, fmt.Errorf("gateway state: %w", err)
	}
	if s.State != Online && s.State != Offline {
		return s, fmt.Errorf("gateway state %q is not online or offline", s.State)
	}
	return s, nil
}

// F returns a pointer to v, for Reading.Value.
func F(v float64) *float64 { return &v }
