package alerting

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// escalation returns the escalated re-send of an alarm when one is due at
// now, updating the working copy a. Called with mu held.
func (s *Service) escalation(a *Alarm, now time.Time) (record, bool, error) {
	if !s.cfg.escalating() {
		return record{}, false, nil
	}
	due, ok := a.resendDue(s.cfg.EscalationMinGrade, s.cfg.ResendInterval, s.cfg.escalateAfter())
	if !ok || now.Before(due) {
		return record{}, false, nil
	}
	escalated := now.Sub(a.Annunciated) >= s.cfg.escalateAfter()
	ev := a.resend(now, escalated)
	ev.ID = escalationEventID(a)
	snap, err := json.Marshal(a)
	if err != nil {
		return record{}, false, fmt.Errorf("snapshot of %s: %w", a.ID, err)
	}
	return record{event: ev, snapshot: snap, escalate: escalated}, true, nil
}

// escalationEventID names the n-th re-send of one annunciation, so the same
// re-send can never be journaled twice.
func escalationEventID(a *Alarm) string {
	h := sha256.New()
	fmt.Fprintf(h, "escalated\x00%s\x00%d\x00%d", a.ID, a.Annunciated.UnixNano(), a.Resends)
	return hex.EncodeToString(h.Sum(nil)[:16])
}
