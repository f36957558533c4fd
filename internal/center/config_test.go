package center

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/internal/access"
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
	if len(f.Access.Accounts) != 3 || f.Access.Accounts[0].Role != access.Officer || f.Access.Accounts[1].Scope.Region != "350481" ||
		len(f.Access.Tokens) != 2 || f.Access.Session.TTL != 12*time.Hour || f.MaxShelve != 8*time.Hour {
		t.Errorf("accounts = %+v, tokens = %+v, session %+v, max shelve %s", f.Access.Accounts, f.Access.Tokens, f.Access.Session, f.MaxShelve)
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
	auth, err := access.New(f.Access, access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The demo credentials the file's comments and docker-compose.yml give.
	_, _, p, _, err := auth.Login(context.Background(), "officer", "hazardwatch-demo-officer")
	if err != nil || p.Role != access.Officer {
		t.Errorf("compose demo officer login: %+v, %v", p, err)
	}
	if _, _, p, _, err = auth.Login(context.Background(), "viewer", "hazardwatch-demo-viewer"); err != nil || p.Role != access.Viewer {
		t.Errorf("compose demo viewer login: %+v, %v", p, err)
	}
	if p, ok := auth.Token("hazardwatch-demo-grafana-token"); !ok || p.Role != access.Viewer {
		t.Errorf("compose Grafana token: %+v, %v", p, ok)
	}
	if len(f.Receivers) != 0 {
		t.Errorf("compose alerting config: receivers %+v; want none", f.Receivers)
	}
}

func TestAlertingFileRefusesPlainTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerting.yaml")
	text := "tokens:\n  - token: officer-token-change-me\n    role: officer\n    officer: 值班员\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadAlertingFile(path)
	if err == nil || !strings.Contains(err.Error(), "officer") {
		t.Fatalf("an old-style plain token: %v", err)
	}
	text = "max_shelve: -1h\ntokens:\n  - name: old\n    token: officer-token-change-me\n    role: officer\n    hash: sha256:00\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadAlertingFile(path)
	for _, want := range []string{path, "plain-text tokens are not accepted", "hazardwatch passwd", "max_shelve -1h0m0s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %q", err, want)
		}
	}
}
