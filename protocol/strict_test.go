package protocol

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

const env = `"v":1,"site":"s","gateway":"g","seq":1,"ts":"2026-01-01T00:00:00Z"`

// TestStrictEnvelope: what encoding/json let through is refused whole,
// with the reason and a message naming the key or the byte.
func TestStrictEnvelope(t *testing.T) {
	good := `{` + env + `,"readings":[{"point":"p","value":1}]}`
	if _, err := DecodeTelemetry([]byte(good)); err != nil {
		t.Fatalf("good message refused: %v", err)
	}
	cases := []struct{ payload, reason, says string }{
		{`{` + env + `,"site":"other","readings":[{"point":"p","value":1}]}`, ReasonBadEnvelope, `key "site" given twice`},
		{`{` + env + `,"seq":2,"readings":[{"point":"p","value":1}]}`, ReasonBadEnvelope, `key "seq" given twice`},
		{`{` + env + `,"readings":[{"point":"p","value":1}],"readings":[]}`, ReasonBadEnvelope, `key "readings" given twice`},
		{`{` + env + `,"s\u0069te":"x","readings":[{"point":"p","value":1}]}`, ReasonBadEnvelope, `key "site" given twice`},
		{`{` + env + `,"SITE":"s","readings":[{"point":"p","value":1}]}`, ReasonBadEnvelope, `keys are case-sensitive: "site"`},
		{`{` + env + `,"Readings":[{"point":"p","value":1}]}`, ReasonBadEnvelope, `keys are case-sensitive: "readings"`},
		{`{"V":1,"site":"s","gateway":"g","seq":1,"ts":"2026-01-01T00:00:00Z","readings":[{"point":"p","value":1}]}`, ReasonBadEnvelope, `unknown key "V"`},
		{good + `{}`, ReasonNotJSON, "data after the message"},
		{good + ` x`, ReasonNotJSON, "data after the message"},
		{good + good, ReasonNotJSON, "data after the message"},
		{good + "\n\t ", "", ""},
		{`{` + env + `,"readings":[{"point":"p","value":1}],}`, ReasonNotJSON, "a key"},
		{`{` + env + `,"readings":[{"point":"p","value":1},]}`, ReasonNotJSON, "']' where a value should be"},
		{`{` + env + `,"readings":[{"point":"p` + "\xff" + `","value":1}]}`, ReasonNotJSON, "UTF-8"},
		{`{` + env + `,"readings":[{"point":"p\ud800","value":1}]}`, ReasonNotJSON, "surrogate"},
		{`{` + env + `,"readings":[{"point":"p` + "\x01" + `","value":1}]}`, ReasonNotJSON, "control character"},
		{`{"v":1.0,"site":"s","gateway":"g","seq":1,"ts":"2026-01-01T00:00:00Z","readings":[{"point":"p","value":1}]}`, ReasonBadEnvelope, "whole number"},
		{`{"v":1,"site":"s","gateway":"g","seq":-1,"ts":"2026-01-01T00:00:00Z","readings":[{"point":"p","value":1}]}`, ReasonBadEnvelope, "whole number"},
		{`{"v":1,"site":"s","gateway":"g","seq":18446744073709551616,"ts":"2026-01-01T00:00:00Z","readings":[{"point":"p","value":1}]}`, ReasonBadEnvelope, "too large"},
		{`{"v":1,"site":"s","gateway":"g","seq":1e3,"ts":"2026-01-01T00:00:00Z","readings":[{"point":"p","value":1}]}`, ReasonBadEnvelope, "whole number"},
		{`{"v":1,"site":7,"gateway":"g","seq":1,"ts":"2026-01-01T00:00:00Z","readings":[{"point":"p","value":1}]}`, ReasonBadEnvelope, "site must be a string"},
		{`{"v":1,"site":"s","gateway":"g","seq":1,"ts":null,"readings":[{"point":"p","value":1}]}`, ReasonBadEnvelope, "ts is null"},
		{`{` + env + `,"readings":{"point":"p"}}`, ReasonBadEnvelope, "readings must be an array"},
		{`[` + good + `]`, ReasonBadEnvelope, "not an object"},
		{``, ReasonNotJSON, "empty"},
		{`{` + env + `,"extra":1,"readings":[{"point":"p","value":1}`, ReasonNotJSON, ""},
		{`{` + env + `,"readings":[` + strings.Repeat("[", 10) + strings.Repeat("]", 10) + `]}`, ReasonBadEnvelope, "not an object"},
		{`{` + env + `,"readings":[{"point":"p","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}]}`, ReasonNotJSON, "nested deeper"},
	}
	for _, c := range cases {
		_, err := DecodeTelemetry([]byte(c.payload))
		if c.reason == "" {
			if err != nil {
				t.Errorf("%.80s: refused: %v", c.payload, err)
			}
			continue
		}
		var me *MessageError
		if !errors.As(err, &me) || me.Reason != c.reason || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%.100s:\n got %v\nwant %s containing %q", c.payload, err, c.reason, c.says)
		}
	}
}

// TestStrictReadings: a reading's own problems cost that reading only.
func TestStrictReadings(t *testing.T) {
	payload := `{` + env + `,"readings":[
		{"point":"ok","value":1.5},
		{"point":"twice","value":1,"value":2},
		{"point":"p2","point":"p3","value":1},
		{"Point":"upper","value":1},
		{"point":"qual","value":1,"Quality":"bad"},
		{"point":"num","value":{"v":1}},
		{"point":"arr","value":[1]},
		{"point":["x"],"value":1},
		{"point":"q7","value":1,"quality":7},
		{"point":"tsnum","value":1,"ts":17},
		{"point":"bad-with-value","value":12.5,"quality":"bad"},
		{"point":"cf-with-nan","value":"NaN","quality":"comm_fail"},
		{"point":"bad-null","value":null,"quality":"bad"},
		{"point":"esc\u00e9","value":2},
		{"point":"ok2","value":-0.5e-3}]}`
	m, err := DecodeTelemetry([]byte(payload))
	if err != nil {
		t.Fatalf("message refused whole: %v", err)
	}
	want := []struct{ point, reason, says string }{
		{"ok", "", ""},
		{"twice", ReasonBadReading, `key "value" given twice`},
		{"p2", ReasonBadReading, `key "point" given twice`},
		{"", ReasonBadReading, `keys are case-sensitive: "point"`},
		{"qual", ReasonBadReading, `keys are case-sensitive: "quality"`},
		{"num", ReasonBadReading, "value must be a number, not an object"},
		{"arr", ReasonBadReading, "value must be a number, not an array"},
		{"", ReasonBadReading, "point must be a string"},
		{"q7", ReasonBadReading, "quality must be a string"},
		{"tsnum", ReasonBadReading, "ts must be an RFC 3339 string"},
		{"bad-with-value", "", ""},
		{"cf-with-nan", "", ""},
		{"bad-null", "", ""},
		{"esc\u00e9", "", ""},
		{"ok2", "", ""},
	}
	if len(m.Readings) != len(want) {
		t.Fatalf("%d readings, want %d", len(m.Readings), len(want))
	}
	for i, w := range want {
		r := m.Readings[i]
		err := r.Check()
		var me *MessageError
		switch {
		case r.Point != w.point:
			t.Errorf("reading %d: point %q, want %q", i, r.Point, w.point)
		case w.reason == "" && err != nil:
			t.Errorf("reading %d (%s): refused: %v", i, w.point, err)
		case w.reason != "" && (!errors.As(err, &me) || me.Reason != w.reason || !strings.Contains(err.Error(), w.says)):
			t.Errorf("reading %d (%s): got %v, want %s containing %q", i, w.point, err, w.reason, w.says)
		}
	}
	for _, i := range []int{10, 11} {
		if r := m.Readings[i]; r.Value != nil || !r.ValueStripped() {
			t.Errorf("%s: value %v kept (stripped %v); a %s reading carries none", r.Point, r.Value, r.ValueStripped(), r.QualityOrGood())
		}
	}
	if r := m.Readings[12]; r.ValueStripped() {
		t.Error("a bad reading with value null reported as stripped")
	}
	if v := *m.Readings[14].Value; v != -0.5e-3 {
		t.Errorf("ok2 = %v", v)
	}
}

func TestEncodeRefusesValueOnBad(t *testing.T) {
	m := sample()
	m.Readings[1].Value = F(3)
	if _, err := m.Encode(); err == nil || !strings.Contains(err.Error(), "carries no value") {
		t.Errorf("comm_fail with a value encoded: %v", err)
	}
}

func TestTooManyReadings(t *testing.T) {
	payload := `{` + env + `,"readings":[` + strings.Repeat(`{"point":"p","value":1},`, MaxReadings) + `{"point":"p","value":1}]}`
	var me *MessageError
	if _, err := DecodeTelemetry([]byte(payload)); !errors.As(err, &me) || me.Reason != ReasonTooLarge {
		t.Errorf("%d readings: %v", MaxReadings+1, err)
	}
}

// TestReadingUnmarshalJSON: encoding/json users get the same reading rules.
func TestReadingUnmarshalJSON(t *testing.T) {
	var m struct{ Readings []Reading }
	if err := json.Unmarshal([]byte(`{"Readings":[{"point":"a","value":2},{"point":"b","value":1,"value":2},{"point":"c","value":3,"quality":"bad"}]}`), &m); err != nil {
		t.Fatal(err)
	}
	if m.Readings[0].Check() != nil || *m.Readings[0].Value != 2 || m.Readings[1].Check() == nil || m.Readings[2].Value != nil {
		t.Errorf("readings = %+v", m.Readings)
	}
	var r Reading
	if err := json.Unmarshal([]byte(`7`), &r); err == nil {
		t.Error("a number decoded as a reading")
	}
}

// FuzzStrictAgreesWithEncodingJSON: whatever the strict decoder accepts,
// encoding/json accepts too and reads the same; whatever encoding/json
// finds is not JSON, the strict decoder refuses.
func FuzzStrictAgreesWithEncodingJSON(f *testing.F) {
	b, _ := sample().Encode()
	f.Add(b)
	f.Add([]byte(`{` + env + `,"readings":[{"point":"p","value":1e400},{"point":"q","value":"x","quality":"bad"},{"point":"\u00e9\n","ts":"2026-01-01T00:00:00.5+08:00","value":-0}]}`))
	f.Add([]byte(`{` + env + `,"readings":[{"point":"p","value":1}],"site":"x"}`))
	f.Add([]byte(`{"v":1} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeTelemetry(data)
		old, oldErr := decodeLegacy(data)
		var me *MessageError
		if errors.As(oldErr, &me) && me.Reason == ReasonNotJSON && err == nil {
			t.Fatalf("strict decoder accepted what encoding/json finds is not JSON: %q", data)
		}
		if err != nil {
			return
		}
		if oldErr != nil {
			t.Fatalf("strict accepted, encoding/json refused (%v): %q", oldErr, data)
		}
		if got.V != old.V || got.Site != old.Site || got.Gateway != old.Gateway || got.Seq != old.Seq || !got.TS.Equal(old.TS.Time) || len(got.Readings) != len(old.Readings) {
			t.Fatalf("envelopes differ: strict %+v, encoding/json %+v", got, old)
		}
		for i, r := range got.Readings {
			if r.Check() != nil || r.ValueStripped() {
				continue
			}
			o := old.Readings[i]
			if o.Check() != nil || r.Point != o.Point || r.QualityOrGood() != o.QualityOrGood() || !reflect.DeepEqual(r.Value, o.Value) ||
				(r.TS == nil) != (o.TS == nil) || r.TS != nil && !r.TS.Equal(o.TS.Time) {
				t.Fatalf("reading %d: strict %+v (%v), encoding/json %+v (%v)", i, r, r.Check(), o, o.Check())
			}
			if r.Value != nil && (math.IsNaN(*r.Value) || math.IsInf(*r.Value, 0)) {
				t.Fatalf("reading %d: non-finite value accepted", i)
			}
		}
	})
}
