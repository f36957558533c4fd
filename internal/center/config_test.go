package center

import (
	"testing"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/protocol"
)

func TestExampleAlertingFileLoads(t *testing.T) {
	f, err := LoadAlertingFile("../../configs/alerting.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Receivers) != 1 || f.Receivers[0].MinGrade != protocol.Blue || f.Receivers[0].MaxBackoff.Minutes() != 1 {
		t.Errorf("receivers = %+v", f.Receivers)
	}
	if len(f.Tokens) != 2 || f.Tokens[1].Role != alerting.RoleOfficer || f.Tokens[1].Officer == "" {
		t.Errorf("tokens = %+v", f.Tokens)
	}
}
