package ingest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
)

// malformed is the corpus of broken telemetry: what gateways with bugs,
// hand-written test clients and hostile publishers send. {{env}} is the
// envelope (v, site, gateway, seq, ts) and {{good}} a good reading of gas1,
// which must be stored whenever the message is not refused whole; when it
// is, the gateway's next good message must be.
var malformed = []struct {
	name    string
	payload string
	// refusals are the dead letters' reasons, in order; says is in the
	// first one's error.
	refusals []string
	says     string
}{
	// Not JSON: the whole message.
	{"plain text", `hello`, r(protocol.ReasonNotJSON), "a value"},
	{"empty payload", ``, r(protocol.ReasonNotJSON), "empty"},
	{"truncated", `{{{env}},"readings":[{{good}}`, r(protocol.ReasonNotJSON), "ends"},
	{"object after the object", `{{{env}},"readings":[{{good}}]}{}`, r(protocol.ReasonNotJSON), "data after the message"},
	{"garbage after the object", `{{{env}},"readings":[{{good}}]} x`, r(protocol.ReasonNotJSON), "data after the message"},
	{"two messages in one", `{{{env}},"readings":[{{good}}]}{{{env}},"readings":[{{good}}]}`, r(protocol.ReasonNotJSON), "data after the message"},
	{"trailing comma in object", `{{{env}},"readings":[{{good}}],}`, r(protocol.ReasonNotJSON), "a key"},
	{"trailing comma in array", `{{{env}},"readings":[{{good}},]}`, r(protocol.ReasonNotJSON), "a value"},
	{"single quotes", `{'v':1}`, r(protocol.ReasonNotJSON), "a key"},
	{"invalid UTF-8", `{{{env}},"readings":[{{good}},{"point":"gas` + "\xc3\x28" + `","value":1}]}`, r(protocol.ReasonNotJSON), "UTF-8"},
	{"control character in a string", `{{{env}},"readings":[{{good}},{"point":"gas` + "\n" + `2","value":1}]}`, r(protocol.ReasonNotJSON), "control character"},
	{"lone surrogate escape", `{{{env}},"readings":[{{good}},{"point":"gas\udc00","value":1}]}`, r(protocol.ReasonNotJSON), "surrogate"},
	{"bad escape", `{{{env}},"readings":[{{good}},{"point":"gas\q","value":1}]}`, r(protocol.ReasonNotJSON), "unknown escape"},
	{"bare NaN", `{{{env}},"readings":[{{good}},{"point":"gas2","value":NaN}]}`, r(protocol.ReasonNotJSON), "a value"},
	{"bare Infinity", `{{{env}},"readings":[{{good}},{"point":"gas2","value":-Infinity}]}`, r(protocol.ReasonNotJSON), "a digit"},
	{"leading zero", `{{{env}},"readings":[{{good}},{"point":"gas2","value":07}]}`, r(protocol.ReasonNotJSON), "','"},
	{"hex number", `{{{env}},"readings":[{{good}},{"point":"gas2","value":0x1F}]}`, r(protocol.ReasonNotJSON), "','"},
	{"plus sign", `{{{env}},"readings":[{{good}},{"point":"gas2","value":+1}]}`, r(protocol.ReasonNotJSON), "a value"},
	{"bare fraction", `{{{env}},"readings":[{{good}},{"point":"gas2","value":.5}]}`, r(protocol.ReasonNotJSON), "a value"},
	{"dangling exponent", `{{{env}},"readings":[{{good}},{"point":"gas2","value":1e}]}`, r(protocol.ReasonNotJSON), "exponent"},
	{"comment", `{{{env}}, // the readings` + "\n" + `"readings":[{{good}}]}`, r(protocol.ReasonNotJSON), "a key"},
	{"deep nesting", `{{{env}},"readings":[{{good}},{"point":"gas2","x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}]}`, r(protocol.ReasonNotJSON), "nested deeper"},
	{"unterminated string", `{{{env}},"readings":[{{good}},{"point":"gas2`, r(protocol.ReasonNotJSON), "not terminated"},

	// JSON, but not a telemetry envelope: the whole message.
	{"site twice", `{{{env}},"site":"elsewhere","readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), `key "site" given twice`},
	{"seq twice (a forged second seq)", `{{{env}},"seq":99,"readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), `key "seq" given twice`},
	{"readings twice", `{{{env}},"readings":[],"readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), `key "readings" given twice`},
	{"key twice through an escape", `{{{env}},"g\u0061teway":"gw1","readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), `key "gateway" given twice`},
	{"SITE in capitals", `{{{env}},"SITE":"x","readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), `case-sensitive: "site"`},
	{"Readings capitalised", `{{{env}},"Readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), `case-sensitive: "readings"`},
	{"Seq capitalised", `{"Seq":1,{{env}},"readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), `case-sensitive: "seq"`},
	{"unknown envelope key", `{{{env}},"colour":"red","readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), `unknown key "colour"`},
	{"v a string", `{"v":"1",{{env-v}},"readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), "v must be an integer"},
	{"v with a fraction", `{"v":1.0,{{env-v}},"readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), "whole number"},
	{"v 2", `{"v":2,{{env-v}},"readings":[{{good}}]}`, r(protocol.ReasonBadVersion), "version 2"},
	{"v missing", `{{{env-v}},"readings":[{{good}}]}`, r(protocol.ReasonBadVersion), "version 0"},
	{"v negative", `{"v":-1,{{env-v}},"readings":[{{good}}]}`, r(protocol.ReasonBadVersion), "version -1"},
	{"seq 0", `{{{env-seq}},"seq":0,"readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), "seq must start at 1"},
	{"seq negative", `{{{env-seq}},"seq":-5,"readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), "whole number"},
	{"seq with an exponent", `{{{env-seq}},"seq":1e3,"readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), "whole number"},
	{"seq past uint64", `{{{env-seq}},"seq":18446744073709551616,"readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), "too large"},
	{"seq a string", `{{{env-seq}},"seq":"7","readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), "seq must be an integer"},
	{"site a number", `{"v":1,"site":7,"gateway":"gw1","seq":1,"ts":"2026-01-01T00:00:00Z","readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), "site must be a string"},
	{"site missing", `{"v":1,"gateway":"gw1","seq":1,"ts":"2026-01-01T00:00:00Z","readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), "site and gateway are required"},
	{"ts not RFC 3339", `{{{env-ts}},"ts":"yesterday","readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), "not RFC 3339"},
	{"ts as Unix seconds", `{{{env-ts}},"ts":1764547200,"readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), "RFC 3339 string"},
	{"ts null", `{{{env-ts}},"ts":null,"readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), "ts is null"},
	{"ts missing", `{{{env-ts}},"readings":[{{good}}]}`, r(protocol.ReasonBadEnvelope), "ts is required"},
	{"no readings", `{{{env}},"readings":[]}`, r(protocol.ReasonBadEnvelope), "no readings"},
	{"readings null", `{{{env}},"readings":null}`, r(protocol.ReasonBadEnvelope), "no readings"},
	{"readings an object", `{{{env}},"readings":{{good}}}`, r(protocol.ReasonBadEnvelope), "readings must be an array"},
	{"a reading that is a number", `{{{env}},"readings":[{{good}},7]}`, r(protocol.ReasonBadEnvelope), "readings[1] is a number"},
	{"a reading that is a string", `{{{env}},"readings":["gas1=3"]}`, r(protocol.ReasonBadEnvelope), "readings[0] is a string"},
	{"message an array", `[{{{env}},"readings":[{{good}}]}]`, r(protocol.ReasonBadEnvelope), "not an object"},
	{"message a string", `"telemetry"`, r(protocol.ReasonBadEnvelope), "not an object"},
	{"message null", `null`, r(protocol.ReasonBadEnvelope), "not an object"},
	{"too many readings", `{{{env}},"readings":[` + strings.Repeat(`{"point":"gas2","value":1},`, protocol.MaxReadings) + `{{good}}]}`, r(protocol.ReasonTooLarge), "more than 4096 readings"},
	{"over 256 KiB", `{{{env}},"readings":[{{good}}]` + strings.Repeat(" ", protocol.MaxMessageSize) + `}`, r(protocol.ReasonTooLarge), "over the 262144 limit"},
	{"another gateway's message", `{{{env-gw}},"gateway":"gw2","readings":[{{good}}]}`, r(ReasonTopicMismatch), "topic says site"},
	{"another site's message", `{"v":1,"site":"elsewhere","gateway":"gw1","seq":1,"ts":"2026-01-01T00:00:00Z","readings":[{{good}}]}`, r(ReasonTopicMismatch), "payload says site elsewhere"},
	{"a replayed seq", `{{{env-seq}},"seq":2,"readings":[{"point":"gas1","value":99}]}`, r(ReasonDuplicate), "seq 2 of gateway gw1 was already handled"},

	// One reading's problem: that reading only.
	{"value twice in a reading", `{{{env}},"readings":[{{good}},{"point":"gas2","value":1,"value":90}]}`, r(protocol.ReasonBadReading), `key "value" given twice`},
	{"point twice in a reading", `{{{env}},"readings":[{"point":"gas2","point":"gas1","value":1},{{good}}]}`, r(protocol.ReasonBadReading), `key "point" given twice`},
	{"Point capitalised", `{{{env}},"readings":[{{good}},{"Point":"gas2","value":1}]}`, r(protocol.ReasonBadReading), `case-sensitive: "point"`},
	{"Value capitalised", `{{{env}},"readings":[{{good}},{"point":"gas2","Value":1}]}`, r(protocol.ReasonBadReading), `case-sensitive: "value"`},
	{"QUALITY in capitals", `{{{env}},"readings":[{{good}},{"point":"gas2","value":1,"QUALITY":"bad"}]}`, r(protocol.ReasonBadReading), `case-sensitive: "quality"`},
	{"unknown reading key", `{{{env}},"readings":[{{good}},{"point":"gas2","value":1,"unit":"ppm"}]}`, r(protocol.ReasonBadReading), `unknown key "unit"`},
	{"value NaN as a string", `{{{env}},"readings":[{{good}},{"point":"gas2","value":"NaN"}]}`, r(protocol.ReasonNotANumber), "not a finite number"},
	{"value a number in a string", `{{{env}},"readings":[{{good}},{"point":"gas2","value":"12.5"}]}`, r(protocol.ReasonNotANumber), "not a finite number"},
	{"value past float64", `{{{env}},"readings":[{{good}},{"point":"gas2","value":1e400}]}`, r(protocol.ReasonNotANumber), "not a finite number"},
	{"value past float64, negative", `{{{env}},"readings":[{{good}},{"point":"gas2","value":-1e400}]}`, r(protocol.ReasonNotANumber), "not a finite number"},
	{"value true", `{{{env}},"readings":[{{good}},{"point":"gas2","value":true}]}`, r(protocol.ReasonBadReading), "not a boolean"},
	{"value an object", `{{{env}},"readings":[{{good}},{"point":"gas2","value":{"ppm":3}}]}`, r(protocol.ReasonBadReading), "not an object"},
	{"value an array", `{{{env}},"readings":[{{good}},{"point":"gas2","value":[3]}]}`, r(protocol.ReasonBadReading), "not an array"},
	{"good without value", `{{{env}},"readings":[{{good}},{"point":"gas2","quality":"good"}]}`, r(protocol.ReasonBadReading), "good reading without value"},
	{"over_range without value", `{{{env}},"readings":[{{good}},{"point":"gas2","quality":"over_range"}]}`, r(protocol.ReasonBadReading), "over_range reading without value"},
	{"unknown quality", `{{{env}},"readings":[{{good}},{"point":"gas2","value":1,"quality":"uncertain"}]}`, r(protocol.ReasonBadReading), `unknown quality "uncertain"`},
	{"quality capitalised value", `{{{env}},"readings":[{{good}},{"point":"gas2","value":1,"quality":"Good"}]}`, r(protocol.ReasonBadReading), `unknown quality "Good"`},
	{"quality a number", `{{{env}},"readings":[{{good}},{"point":"gas2","value":1,"quality":192}]}`, r(protocol.ReasonBadReading), "quality must be a string"},
	{"no point", `{{{env}},"readings":[{{good}},{"value":1}]}`, r(protocol.ReasonBadReading), "reading without point"},
	{"empty reading", `{{{env}},"readings":[{{good}},{}]}`, r(protocol.ReasonBadReading), "reading without point"},
	{"point a number", `{{{env}},"readings":[{{good}},{"point":2,"value":1}]}`, r(protocol.ReasonBadReading), "point must be a string"},
	{"point null", `{{{env}},"readings":[{{good}},{"point":null,"value":1}]}`, r(protocol.ReasonBadReading), "point must be a string"},
	{"reading ts not RFC 3339", `{{{env}},"readings":[{{good}},{"point":"gas2","value":1,"ts":"2026-13-01 00:00"}]}`, r(protocol.ReasonBadReading), "not RFC 3339"},
	{"reading ts a number", `{{{env}},"readings":[{{good}},{"point":"gas2","value":1,"ts":0}]}`, r(protocol.ReasonBadReading), "ts must be an RFC 3339 string"},
	{"reading an hour ahead", `{{{env}},"readings":[{{good}},{"point":"gas2","value":1,"ts":"{{future}}"}]}`, r(protocol.ReasonFuture), "ahead of the centre's clock"},
	{"unknown point", `{{{env}},"readings":[{{good}},{"point":"gas9","value":1}]}`, r(protocol.ReasonUnknownPoint), "point gas9 is not in site"},
	{"another gateway's point", `{{{env}},"readings":[{{good}},{"point":"level","value":1}]}`, r(protocol.ReasonUnknownPoint), "not read by gateway gw1"},
	{"several bad readings", `{{{env}},"readings":[{"point":"gas9","value":1},{{good}},{"point":"gas2","value":"x"},{"point":"gas2","value":1,"value":1}]}`,
		r(protocol.ReasonUnknownPoint, protocol.ReasonNotANumber, protocol.ReasonBadReading), "gas9"},

	// Stored, but not as sent.
	{"bad with a value", `{{{env}},"readings":[{{good}},{"point":"gas2","value":55,"quality":"bad"}]}`, r(protocol.ReasonValueStripped), "a bad reading came with a value"},
	{"comm_fail with a value", `{{{env}},"readings":[{{good}},{"point":"gas2","value":0,"quality":"comm_fail"}]}`, r(protocol.ReasonValueStripped), "a comm_fail reading came with a value"},
	{"comm_fail with NaN", `{{{env}},"readings":[{{good}},{"point":"gas2","value":"NaN","quality":"comm_fail"}]}`, r(protocol.ReasonValueStripped), "value dropped"},
	{"good above the range", `{{{env}},"readings":[{{good}},{"point":"gas2","value":150}]}`, nil, ""},
	{"good below the range", `{{{env}},"readings":[{{good}},{"point":"gas2","value":-3}]}`, nil, ""},
	{"good at the top of the range", `{{{env}},"readings":[{{good}},{"point":"gas2","value":100}]}`, nil, ""},
	{"bad with null value", `{{{env}},"readings":[{{good}},{"point":"gas2","value":null,"quality":"bad"}]}`, nil, ""},
}

func r(reasons ...string) []string { return reasons }

// storedAs is what gas2's reading of a corpus message is stored as.
var storedAs = map[string]protocol.Quality{
	"bad with a value":             protocol.Bad,
	"comm_fail with a value":       protocol.CommFail,
	"comm_fail with NaN":           protocol.CommFail,
	"good above the range":         protocol.OverRange,
	"good below the range":         protocol.OverRange,
	"good at the top of the range": protocol.Good,
	"bad with null value":          protocol.Bad,
}

// TestMalformedTelemetryCorpus feeds every broken message to the service
// and checks each refusal's reason, dead letter and metric, and that the
// good reading beside it (or, when the message is refused whole, the
// gateway's next message) is stored.
func TestMalformedTelemetryCorpus(t *testing.T) {
	st := newSite(t)
	store := tempStore(t)
	reg := prometheus.NewRegistry()
	svc, err := New(Config{Sites: []*site.Site{st}, Broker: broker, Store: store, Registry: reg, DeadLetters: 10000})
	if err != nil {
		t.Fatal(err)
	}
	topic := protocol.TelemetryTopic(st.ID, "gw1")
	base := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
	wantRejected := map[string]float64{}
	refusing := 0
	for i, c := range malformed {
		seq, at := uint64(2*i+1), base.Add(time.Duration(2*i)*time.Second)
		value := float64(i) / 10
		fields := map[string]string{
			"v":       `"v":1`,
			"site":    fmt.Sprintf(`"site":%q`, st.ID),
			"gateway": `"gateway":"gw1"`,
			"seq":     fmt.Sprintf(`"seq":%d`, seq),
			"ts":      fmt.Sprintf(`"ts":%q`, at.UTC().Format(protocol.TimeFormat)),
		}
		env := func(without string) string {
			var parts []string
			for _, k := range []string{"v", "site", "gateway", "seq", "ts"} {
				if k != without {
					parts = append(parts, fields[k])
				}
			}
			return strings.Join(parts, ",")
		}
		payload := strings.NewReplacer(
			"{{env}}", env(""), "{{env-v}}", env("v"), "{{env-seq}}", env("seq"), "{{env-ts}}", env("ts"), "{{env-gw}}", env("gateway"),
			"{{good}}", fmt.Sprintf(`{"point":"gas1","value":%g}`, value),
			"{{future}}", time.Now().Add(time.Hour).UTC().Format(protocol.TimeFormat),
		).Replace(c.payload)
		before := len(svc.DeadLetters())
		if err := svc.Handle(topic, []byte(payload)); err != nil {
			t.Fatalf("%s: Handle: %v", c.name, err)
		}
		dl := svc.DeadLetters()[before:]
		var reasons []string
		for _, d := range dl {
			reasons = append(reasons, d.Reason)
			wantRejected[d.Reason]++
		}
		if !slices.Equal(reasons, c.refusals) {
			t.Errorf("%s: refused as %v, want %v (%+v)", c.name, reasons, c.refusals, dl)
			continue
		}
		if len(c.refusals) > 0 {
			refusing++
			if !strings.Contains(dl[0].Error, c.says) {
				t.Errorf("%s: dead letter says %q, want it to say %q", c.name, dl[0].Error, c.says)
			}
			if dl[0].Topic != topic || dl[0].Size != len(payload) {
				t.Errorf("%s: dead letter %+v lacks topic or size", c.name, dl[0])
			}
		}
		goodAt := at
		if whole := len(c.refusals) == 1 && (len(dl) > 0 && dl[0].Point == ""); whole {
			// Refused whole: the gateway's next message still gets in.
			goodAt = at.Add(time.Second)
			next := fmt.Sprintf(`{"v":1,"site":%q,"gateway":"gw1","seq":%d,"ts":%q,"readings":[{"point":"gas1","value":%g}]}`,
				st.ID, seq+1, goodAt.UTC().Format(protocol.TimeFormat), value)
			if err := svc.Handle(topic, []byte(next)); err != nil {
				t.Fatalf("%s: next message: %v", c.name, err)
			}
		}
		if got := storedAt(t, store, st.ID, "gas1", goodAt); got == nil || got.Value != value || got.Quality != protocol.Good {
			t.Errorf("%s: the good reading beside it was not stored: %+v", c.name, got)
		}
		if q := storedAs[c.name]; q != "" {
			got := storedAt(t, store, st.ID, "gas2", at)
			switch {
			case got == nil:
				t.Errorf("%s: gas2 not stored", c.name)
			case got.Quality != q:
				t.Errorf("%s: gas2 stored as %s, want %s", c.name, got.Quality, q)
			case (q == protocol.Bad || q == protocol.CommFail) && got.HasValue:
				t.Errorf("%s: a %s reading stored with value %v", c.name, got.Quality, got.Value)
			case q == protocol.OverRange && (!got.HasValue || math.Abs(got.Value) < 1):
				t.Errorf("%s: over_range stored without its value: %+v", c.name, got)
			}
		}
	}
	if refusing < 60 {
		t.Errorf("the corpus has %d refused cases, want at least 60", refusing)
	}
	if got := rejected(reg); fmt.Sprint(got) != fmt.Sprint(wantRejected) {
		t.Errorf("rejected_total by reason = %v\nwant (one per dead letter) %v", got, wantRejected)
	}
	if n := counter(reg, "hazardwatch_ingest_over_range_readings_total"); n != 2 {
		t.Errorf("over_range readings counted %v, want 2", n)
	}
	if n := counter(reg, "hazardwatch_ingest_duplicates_total"); n != 1 {
		t.Errorf("duplicates counted %v, want 1", n)
	}
}

func storedAt(t *testing.T, store *embedded.Store, siteID, point string, at time.Time) *storage.Sample {
	t.Helper()
	got, err := store.Range(context.Background(), storage.Point{Site: siteID, Point: point}, at.Add(-time.Millisecond), at.Add(time.Millisecond), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		if s.Time.Equal(at) {
			return &s
		}
	}
	return nil
}

// TestForgedSeqJumpIsOneReset: one message with seq 99999999 neither
// leaves 10⁸ messages missing nor costs the gateway's real messages.
func TestForgedSeqJumpIsOneReset(t *testing.T) {
	st := newSite(t)
	store := tempStore(t)
	reg := prometheus.NewRegistry()
	svc, err := New(Config{Sites: []*site.Site{st}, Broker: broker, Store: store, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	topic := protocol.TelemetryTopic(st.ID, "gw1")
	base := time.Now().Add(-time.Minute).Truncate(time.Second)
	send := func(seq uint64, i int) {
		t.Helper()
		b := fmt.Appendf(nil, `{"v":1,"site":%q,"gateway":"gw1","seq":%d,"ts":%q,"readings":[{"point":"gas1","value":%d}]}`,
			st.ID, seq, base.Add(time.Duration(i)*time.Second).UTC().Format(protocol.TimeFormat), i)
		if err := svc.Handle(topic, b); err != nil {
			t.Fatal(err)
		}
	}
	send(1, 0)
	send(2, 1)
	send(99999999, 2) // forged
	for i := range 5 {
		send(uint64(3+i), 3+i) // the real gateway goes on
	}
	send(99999999, 8) // the forgery again: a duplicate now
	if got := gauge(reg, "hazardwatch_ingest_missing_messages"); got != 0 {
		t.Errorf("missing messages = %v after a forged jump, want 0", got)
	}
	if n := counter(reg, "hazardwatch_ingest_seq_resets_total"); n != 1 {
		t.Errorf("seq resets = %v, want 1", n)
	}
	if n := counter(reg, "hazardwatch_ingest_gap_messages_total"); n != 0 {
		t.Errorf("gap messages = %v, want 0 (a reset is not a gap)", n)
	}
	if n := len(storedAll(t, store, st.ID, "gas1", base)); n != 8 {
		t.Errorf("%d readings stored, want 8: the real gateway's messages after the jump were lost", n)
	}
	if got := rejected(reg); got[ReasonDuplicate] != 1 {
		t.Errorf("rejections %v, want one duplicate", got)
	}
}

func storedAll(t *testing.T, store *embedded.Store, siteID, point string, from time.Time) []storage.Sample {
	t.Helper()
	got, err := store.Range(context.Background(), storage.Point{Site: siteID, Point: point}, from.Add(-time.Second), time.Now().Add(time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
