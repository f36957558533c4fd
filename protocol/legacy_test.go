package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// The encoding/json decoder telemetry used before the strict one, kept in
// the tests as the reference: BenchmarkDecodeTelemetryEncodingJSON measures
// it beside the strict decoder, and FuzzStrictAgreesWithEncodingJSON checks
// that whatever the strict decoder accepts, encoding/json reads the same.

type legacyReading struct {
	Reading
}

type legacyReadingFields struct {
	Point   string          `json:"point"`
	Value   json.RawMessage `json:"value"`
	Quality Quality         `json:"quality"`
	TS      json.RawMessage `json:"ts"`
}

func (r *legacyReading) UnmarshalJSON(b []byte) error {
	var f legacyReadingFields
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		r.Reading = Reading{Point: f.Point}
		if len(b) > 0 && b[0] != '{' {
			return fmt.Errorf("reading is not an object: %w", err)
		}
		r.invalid = &MessageError{ReasonBadReading, fmt.Errorf("point %q: %v", f.Point, err)}
		return nil
	}
	r.Reading = Reading{Point: f.Point, Quality: f.Quality}
	if len(f.Value) > 0 && string(f.Value) != "null" {
		v, err := strconv.ParseFloat(string(f.Value), 64)
		switch {
		case err == nil:
			r.Value = &v
		case f.Value[0] == '"' || errors.Is(err, strconv.ErrRange):
			r.invalid = &MessageError{ReasonNotANumber, fmt.Errorf("point %s: value %.40s is not a finite number", f.Point, f.Value)}
		default:
			r.invalid = &MessageError{ReasonBadReading, fmt.Errorf("point %s: value %.40s is not a number", f.Point, f.Value)}
		}
	}
	if len(f.TS) > 0 && string(f.TS) != "null" {
		var t Time
		if err := t.UnmarshalJSON(f.TS); err != nil {
			r.invalid = &MessageError{ReasonBadReading, fmt.Errorf("point %s: ts: %v", f.Point, err)}
		} else {
			r.TS = &t
		}
	}
	return nil
}

type legacyTelemetry struct {
	V        int             `json:"v"`
	Site     string          `json:"site"`
	Gateway  string          `json:"gateway"`
	Seq      uint64          `json:"seq"`
	TS       Time            `json:"ts"`
	Readings []legacyReading `json:"readings"`
}

func decodeLegacy(payload []byte) (Telemetry, error) {
	var lt legacyTelemetry
	if len(payload) > MaxMessageSize {
		return Telemetry{}, &MessageError{ReasonTooLarge, fmt.Errorf("message is %d bytes, over the %d limit", len(payload), MaxMessageSize)}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lt); err != nil {
		if json.Valid(payload) {
			return Telemetry{}, &MessageError{ReasonBadEnvelope, err}
		}
		return Telemetry{}, &MessageError{ReasonNotJSON, err}
	}
	t := Telemetry{V: lt.V, Site: lt.Site, Gateway: lt.Gateway, Seq: lt.Seq, TS: lt.TS}
	for _, r := range lt.Readings {
		t.Readings = append(t.Readings, r.Reading)
	}
	if err := t.check(); err != nil {
		return t, err
	}
	return t, nil
}
