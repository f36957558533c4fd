package alerting

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
)

// TestReceiverLanguage: a receiver configured language: en gets the
// message in English, a default one in Chinese; both get the facts and the
// messages in every language, and names, not ids.
func TestReceiverLanguage(t *testing.T) {
	zh, en := newReceiver(t), newReceiver(t)
	rz, re := testReceiver(zh.URL()), testReceiver(en.URL())
	re.Name, re.Language = "command-en", "en"
	bad := testReceiver(en.URL())
	bad.Name, bad.Language = "command-fr", "fr"
	if _, err := New(Config{Receivers: []Receiver{bad}}); err == nil || !strings.Contains(err.Error(), "command-fr") {
		t.Fatalf("a receiver with an unknown language: %v", err)
	}
	svc, err := New(Config{Receivers: []Receiver{rz, re}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	now := time.Now().UTC()
	vote := rules.Event{Type: rules.Raised, Time: now, OccurredAt: now, Site: "jh-chem", Source: "nh3-tanks", Condition: rules.VoteFirst,
		Key: "jh-chem/nh3-tanks/nh3-leak/vote_first", Grade: protocol.Red, Value: 2, Limit: 2, Since: now, Points: []string{"nh3-gas-1", "nh3-gas-2"},
		Facts: protocol.AlarmFacts{Reason: rules.ReasonVoteMet, SourceName: "液氨储罐区", Name: "NH3 leak 2oo3", Detail: "first", Need: 2,
			Points: []protocol.PointFact{{ID: "nh3-gas-1", Name: "Tank 1 NH3 detector", Value: 86, Unit: "ppm"}, {ID: "nh3-gas-2", Name: "Tank 2 NH3 detector", Value: 45, Unit: "ppm"}}}}
	if err := svc.HandleEvents(context.Background(), []rules.Event{vote}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the event at both receivers", 20*time.Second, func() bool { return len(zh.events()) == 1 && len(en.events()) == 1 })
	ze, ee := zh.events()[0].Data, en.events()[0].Data
	if want := "NH3 leak 2oo3: Tank 1 NH3 detector 86 ppm, Tank 2 NH3 detector 45 ppm at first level alarm"; ee.Message != want {
		t.Errorf("English receiver's message %q, want %q", ee.Message, want)
	}
	if want := "NH3 leak 2oo3：Tank 1 NH3 detector 86 ppm、Tank 2 NH3 detector 45 ppm 达一级报警"; ze.Message != want {
		t.Errorf("Chinese receiver's message %q, want %q", ze.Message, want)
	}
	for _, e := range []protocol.AlarmEvent{ze, ee} {
		if strings.Contains(e.Message, "nh3-gas-") || e.Facts == nil || e.Facts.Reason != rules.ReasonVoteMet ||
			e.Messages["en"] != ee.Message || e.Messages["zh"] != ze.Message || e.RecordedAt.IsZero() || e.OccurredAt.IsZero() {
			t.Errorf("event %+v", e)
		}
	}
}
