package center

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/protocol"
)

func TestExampleAlertingFileLoads(t *testing.T) {
	f, err := LoadAlertingFile("../../configs/alerting.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Receivers) != 2 || !f.Receivers[1].Escalation || f.Receivers[0].MinGrade != protocol.Blue || f.Receivers[0].MaxBackoff.Minutes() != 1 {
		t.Errorf("receivers = %+v", f.Receivers)
	}
	if len(f.Tokens) != 2 || f.Tokens[1].Role != alerting.RoleOfficer || f.Tokens[1].Officer == "" {
		t.Errorf("tokens = %+v", f.Tokens)
	}
}

func TestAlertingFileEscalationAndFlood(t *testing.T) {
	f, err := LoadAlertingFile("../../configs/alerting.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if f.Escalation.MinGrade != protocol.Orange || f.Escalation.ResendInterval != 5*time.Minute || f.Escalation.EscalateAfter != 15*time.Minute {
		t.Errorf("escalation = %+v", f.Escalation)
	}
	if f.Flood.Threshold != 10 || f.Flood.Window != 10*time.Minute || f.Flood.SummaryInterval != time.Minute {
		t.Errorf("flood = %+v", f.Flood)
	}
	var c alerting.Config
	Escalation{Disabled: true, ResendInterval: time.Minute}.apply(&c)
	Flood{Disabled: true, Threshold: 5}.apply(&c)
	if c.ResendInterval >= 0 || c.FloodThreshold >= 0 {
		t.Errorf("disabled escalation and flood control give resend %s, threshold %d; want both negative", c.ResendInterval, c.FloodThreshold)
	}
}

func TestAlertingFileRejectsNegativeSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerting.yaml")
	text := "escalation:\n  resend_interval: -5m\nflood:\n  threshold: -1\n  window: 10m\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadAlertingFile(path)
	if err == nil {
		t.Fatal("negative resend interval and threshold accepted")
	}
	for _, want := range []string{path, "escalation.resend_interval -5m0s", "flood.threshold -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestComposeAlertingFileLoads(t *testing.T) {
	f, err := LoadAlertingFile("../../configs/compose/alerting.yaml")
	if err != nil {
		t.Fatal(err)
	}
	officer := false
	for _, tok := range f.Tokens {
		officer = officer || tok.Role == alerting.RoleOfficer
	}
	if !officer || len(f.Receivers) != 0 {
		t.Errorf("compose alerting config: tokens %+v, receivers %+v; want an officer token and no receiver", f.Tokens, f.Receivers)
	}
}
