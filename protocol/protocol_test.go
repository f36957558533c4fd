package protocol

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func sample() Telemetry {
	return Telemetry{
		V: Version, Site: "s1", Gateway: "gw1", Seq: 7,
		TS: Time{time.Date(2026, 11, 28, 3, 4, 5, 678_000_000, time.UTC)},
		Readings: []Reading{
			{Point: "p1", Value: F(12.5)},
			{Point: "p2", Quality: CommFail},
		},
	}
}

func TestTelemetryRoundTrip(t *testing.T) {
	b, err := sample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"ts":"2026-11-28T03:04:05.678Z"`) {
		t.Errorf("ts not RFC 3339 with milliseconds in UTC: %s", b)
	}
	got, err := DecodeTelemetry(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 7 || got.Gateway != "gw1" || len(got.Readings) != 2 || *got.Readings[0].Value != 12.5 || got.Readings[1].Value != nil {
		t.Errorf("round trip changed the message: %+v", got)
	}
	if got.Readings[0].QualityOrGood() != Good || got.Readings[1].QualityOrGood() != CommFail {
		t.Error("qualities wrong after round trip")
	}
	if !got.Readings[0].At(got.TS).Equal(sample().TS.Time) {
		t.Error("reading time should default to the message's")
	}
}

func TestDecodeRefusesWithReason(t *testing.T) {
	cases := map[string]string{
		`not json`: ReasonNotJSON,
		`{"v":2,"site":"s","gateway":"g","seq":1,"ts":"2026-01-01T00:00:00Z","readings":[{"point":"p","value":1}]}`:           ReasonBadVersion,
		`{"v":1,"site":"s","gateway":"g","seq":0,"ts":"2026-01-01T00:00:00Z","readings":[{"point":"p","value":1}]}`:           ReasonBadEnvelope,
		`{"v":1,"site":"s","gateway":"g","seq":"x","ts":"2026-01-01T00:00:00Z","readings":[]}`:                                ReasonBadEnvelope,
		`{"v":1,"site":"s","gateway":"g","seq":1,"ts":"yesterday","readings":[{"point":"p","value":1}]}`:                      ReasonBadEnvelope,
		`{"v":1,"site":"s","gateway":"g","seq":1,"ts":"2026-01-01T00:00:00Z","readings":[]}`:                                  ReasonBadEnvelope,
		`{"v":1,"site":"s","gateway":"g","seq":1,"ts":"2026-01-01T00:00:00Z","readings":[{"point":"p","value":1}],"extra":1}`: ReasonBadEnvelope,
		`{"v":1,"site":"s","gateway":"g","seq":1,"ts":"2026-01-01T00:00:00Z","readings":[7]}`:                                 ReasonBadEnvelope,
	}
	for payload, reason := range cases {
		_, err := DecodeTelemetry([]byte(payload))
		var me *MessageError
		if !errors.As(err, &me) || me.Reason != reason {
			t.Errorf("%s: got %v, want reason %s", payload, err, reason)
		}
	}
	huge := []byte(`{"v":1,"readings":[` + strings.Repeat(`{"point":"p","value":1},`, MaxMessageSize/20) + `]}`)
	var me *MessageError
	if _, err := DecodeTelemetry(huge); !errors.As(err, &me) || me.Reason != ReasonTooLarge {
		t.Errorf("huge message: %v", err)
	}
}

func TestReadingCheck(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		r      Reading
		reason string
	}{
		{Reading{Point: "p", Value: F(1)}, ""},
		{Reading{Point: "p", Quality: Bad}, ""},
		{Reading{Point: "", Value: F(1)}, ReasonBadReading},
		{Reading{Point: "p"}, ReasonBadReading},
		{Reading{Point: "p", Value: F(1), Quality: "weird"}, ReasonBadReading},
		{Reading{Point: "p", Value: &nan}, ReasonNotANumber},
		{Reading{Point: "p", Value: F(math.Inf(1))}, ReasonNotANumber},
	}
	for _, c := range cases {
		err := c.r.Check()
		var me *MessageError
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%+v: unexpected %v", c.r, err)
		case c.reason != "" && (!errors.As(err, &me) || me.Reason != c.reason):
			t.Errorf("%+v: got %v, want %s", c.r, err, c.reason)
		}
	}
}

func TestOneBadReadingKeepsTheOthers(t *testing.T) {
	payload := `{"v":1,"site":"s","gateway":"g","seq":1,"ts":"2026-01-01T00:00:00Z","readings":[
		{"point":"ok","value":1.5},
		{"point":"nan","value":"NaN"},
		{"point":"inf","value":1e400},
		{"point":"word","value":true},
		{"point":"extra","value":1,"colour":"red"},
		{"point":"when","value":1,"ts":"soon"},
		{"point":"ok2","value":2,"ts":"2026-01-01T00:00:01.5Z"}]}`
	m, err := DecodeTelemetry([]byte(payload))
	if err != nil {
		t.Fatalf("a message with some bad readings was refused whole: %v", err)
	}
	want := map[string]string{"ok": "", "nan": ReasonNotANumber, "inf": ReasonNotANumber, "word": ReasonBadReading, "extra": ReasonBadReading, "when": ReasonBadReading, "ok2": ""}
	for _, r := range m.Readings {
		err := r.Check()
		var me *MessageError
		switch w := want[r.Point]; {
		case w == "" && err != nil:
			t.Errorf("%s: good reading refused: %v", r.Point, err)
		case w != "" && (!errors.As(err, &me) || me.Reason != w):
			t.Errorf("%s: got %v, want %s", r.Point, err, w)
		}
	}
	if got := m.Readings[6].At(m.TS); !got.Equal(time.Date(2026, 1, 1, 0, 0, 1, 500_000_000, time.UTC)) {
		t.Errorf("reading ts = %v", got)
	}
}

func TestEncodeRefusesNaN(t *testing.T) {
	m := sample()
	m.Readings[0].Value = F(math.NaN())
	if _, err := m.Encode(); err == nil {
		t.Error("NaN encoded")
	}
}

func TestTopics(t *testing.T) {
	tp, err := ParseTopic(TelemetryTopic("s1", "gw1"))
	if err != nil || tp != (Topic{"s1", "gw1", "telemetry"}) {
		t.Errorf("ParseTopic = %+v, %v", tp, err)
	}
	for _, bad := range []string{"other/v1/s/g/telemetry", Prefix + "s/telemetry", Prefix + "s/g/alarms", Prefix + "/g/state"} {
		if _, err := ParseTopic(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestState(t *testing.T) {
	s, err := DecodeState(EncodeState(Online, time.Unix(100, 0)))
	if err != nil || s.State != Online || s.Since == nil {
		t.Errorf("state round trip: %+v %v", s, err)
	}
	if _, err := DecodeState([]byte(`{"state":"sleepy"}`)); err == nil {
		t.Error("unknown state accepted")
	}
}

func TestGrades(t *testing.T) {
	if !(Red > Orange && Orange > Yellow && Yellow > Blue && Blue > None) {
		t.Error("grades do not order by severity")
	}
	if Blue.Raise(1) != Yellow || Orange.Raise(3) != Red || None.Raise(1) != None {
		t.Error("Raise wrong")
	}
	for g := None; g <= Red; g++ {
		b, _ := g.MarshalText()
		var back Grade
		if err := back.UnmarshalText(b); err != nil || back != g {
			t.Errorf("grade %v round trip: %v %v", g, back, err)
		}
	}
	if _, err := ParseGrade("purple"); err == nil {
		t.Error("purple accepted")
	}
	if Red.Chinese() != "红色预警" {
		t.Error("Chinese name")
	}
}

func FuzzDecodeTelemetry(f *testing.F) {
	b, _ := sample().Encode()
	f.Add(b)
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeTelemetry(data)
		if err != nil {
			return
		}
		if m.V != Version || m.Seq == 0 || len(m.Readings) == 0 {
			t.Fatalf("accepted an invalid envelope: %+v", m)
		}
		for _, r := range m.Readings {
			_ = r.Check()
		}
	})
}

// benchPayload is a message of n readings as a gateway sends them.
func benchPayload(b *testing.B, n int) []byte {
	m := sample()
	m.Readings = nil
	for i := range n {
		m.Readings = append(m.Readings, Reading{Point: "point-" + string(rune('a'+i%26)), Value: F(float64(i) * 1.25)})
	}
	payload, err := m.Encode()
	if err != nil {
		b.Fatal(err)
	}
	return payload
}

func benchDecode(b *testing.B, decode func([]byte) (Telemetry, error), n int) {
	payload := benchPayload(b, n)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := decode(payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "readings/s")
}

// BenchmarkDecodeTelemetry decodes a message of 100 readings; readings/s is
// the figure that bounds ingest throughput.
func BenchmarkDecodeTelemetry(b *testing.B) { benchDecode(b, DecodeTelemetry, 100) }

// BenchmarkDecodeTelemetryEncodingJSON is the encoding/json decoder the
// strict one replaced, on the same message.
func BenchmarkDecodeTelemetryEncodingJSON(b *testing.B) { benchDecode(b, decodeLegacy, 100) }

// BenchmarkDecodeTelemetry200 is the load tool's message: 200 readings.
func BenchmarkDecodeTelemetry200(b *testing.B) { benchDecode(b, DecodeTelemetry, 200) }

func BenchmarkDecodeTelemetry200EncodingJSON(b *testing.B) { benchDecode(b, decodeLegacy, 200) }

// TestCommentedAlarmEvent: an officer's comment travels as type
// "commented" with its officer and text, and reads back the same.
func TestCommentedAlarmEvent(t *testing.T) {
	at := time.Date(2026, 11, 28, 3, 10, 0, 0, time.UTC)
	e := AlarmEvent{V: Version, ID: "c1", AlarmID: "jh-chem/nh3-tanks/nh3-gas-1/HH", Type: AlarmCommented, Site: "jh-chem",
		Source: "nh3-tanks", Point: "nh3-gas-1", Condition: "HH", Grade: Orange, PrevGrade: Orange,
		State: StateAcked, PrevState: StateAcked, Value: 86, Limit: 80, TS: Time{Time: at},
		Message: "NH3 high", Actor: "王工", Comment: "已通知储罐区巡检"}
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"type":"commented"`) || !strings.Contains(string(b), `"comment":"已通知储罐区巡检"`) {
		t.Fatalf("commented event on the wire: %s", b)
	}
	got, err := DecodeAlarmEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != AlarmCommented || got.Actor != e.Actor || got.Comment != e.Comment || got.State != got.PrevState || !got.TS.Equal(at) {
		t.Fatalf("decoded %+v, want %+v", got, e)
	}
}
