package center

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting/notify"
)

func TestExampleAlertingFileNotification(t *testing.T) {
	f, err := LoadAlertingFile("../../configs/alerting.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := f.Notification
	if len(n.Channels) != 2 || n.Channels[0].Kind() != "email" || n.Channels[1].Kind() != "sms" || n.Channels[0].Email.TLS != "starttls" {
		t.Errorf("channels %+v", n.Channels)
	}
	if len(n.DutyOfficers) != 1 || n.DutyOfficers[0].Region != "350404" || n.DutyOfficers[0].Name == "" || n.DutyOfficers[0].Lang != "zh" {
		t.Errorf("duty officers %+v", n.DutyOfficers)
	}
	p := n.Policy.WithDefaults()
	if len(p.Orange) != 3 || p.Orange[1].After != 10*time.Minute || p.Orange[2].Notify[0] != notify.Principal || len(p.Blue) != 0 {
		t.Errorf("policy %+v", p)
	}
	// The example spells out the defaults: the file and DefaultPolicy agree.
	d := notify.DefaultPolicy()
	for i, s := range d.Orange {
		if p.Orange[i].After != s.After || p.Orange[i].Notify[0] != s.Notify[0] {
			t.Errorf("orange step %d: file %+v, default %+v", i, p.Orange[i], s)
		}
	}
}

func TestAlertingFileNotificationErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerting.yaml")
	text := "notification:\n  channels:\n    - name: mail\n      email: {smarthost: x:25, from: a@b.c}\n      sms: {url: http://x}\n  policy:\n    red:\n      - {after: 0s, notify: [mayor], via: [fax]}\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadAlertingFile(path)
	for _, want := range []string{path, "notification.channels[0] (mail): set exactly one of", `notification.policy.red[0].notify: unknown role "mayor"`, `unknown channel "fax"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}
