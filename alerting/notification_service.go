package alerting

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/alerting/notify"
)

// initNotifications builds the notifier and its channels and rebuilds the
// chain: from its journaled state, reconciled with the open incidents (an
// incident opened just before a crash, before its notifications were
// queued, is followed from its snapshot; one closed meanwhile is dropped).
func (s *Service) initNotifications(ctx context.Context) error {
	n, err := newNotifier(s.cfg.Notification, s.cfg.Sites, s.store, s.log, s.metrics, s.cfg.Registerer, s.cfg.CloudEventSource)
	if err != nil {
		return fmt.Errorf("alerting config: %w", err)
	}
	states, err := s.store.notifyStates(ctx)
	if err != nil {
		return err
	}
	open := map[string]incident.Incident{}
	for _, inc := range s.book.Open() {
		open[inc.ID] = inc
	}
	known := map[string]bool{}
	for _, st := range states {
		if !s.store.owns(st.Site) {
			continue // another node's, in a shared journal
		}
		inc, ok := open[st.Incident]
		if !ok {
			if err := s.store.queueNotifications(ctx, nil, st.Incident, st, false); err != nil {
				return err
			}
			continue
		}
		known[st.Incident] = true
		// The incident may have moved on after the state was journaled
		// (a crash in between): a worse grade starts its chain from the
		// incident's last change; its acknowledgement stands.
		if inc.WorstGrade > st.Worst {
			st.Worst, st.WorstAt = inc.WorstGrade, inc.Changed
		}
		st.Acked = inc.Acknowledged
		n.chain.Restore(st)
		n.conditions[inc.ID] = notifyConditions(inc.Conditions)
	}
	for id, inc := range open {
		if known[id] {
			continue
		}
		n.chain.Restore(notify.IncidentState{Incident: id, Site: inc.Site, Source: inc.Source, Opened: inc.OpenedAt,
			Worst: inc.WorstGrade, WorstAt: inc.Changed, Acked: inc.Acknowledged})
		n.conditions[id] = notifyConditions(inc.Conditions)
	}
	s.notifier = n
	return nil
}

// notifyCommitted hands committed incident events to the notification
// policy; called by emit, in commit order.
func (s *Service) notifyCommitted(incs []incidentRecord) {
	if len(incs) == 0 {
		return
	}
	now := s.cfg.Now()
	var changes []IncidentChange
	for _, r := range incs {
		e := r.event
		var typ notify.EventType
		switch e.Type {
		case incident.TypeOpened:
			typ = notify.Opened
		case incident.TypeGradeChanged:
			typ = notify.GradeChanged
		case incident.TypeAcknowledged:
			typ = notify.Acked
		case incident.TypeDisposalRecorded:
			typ = notify.DisposalRecorded
		case incident.TypeClosed:
			typ = notify.IncidentClosed
		case incident.TypeUrged:
			if err := s.notifier.urged(context.Background(), e, now); err != nil {
				s.log.Error("notify an urging", zap.String("incident", e.IncidentID), zap.Error(err))
			}
			continue
		default:
			// Condition changes only refresh what messages show.
			s.notifier.mu.Lock()
			if _, ok := s.notifier.conditions[e.IncidentID]; ok || e.State != incident.Closed {
				s.notifier.conditions[e.IncidentID] = notifyConditions(e.Conditions)
			}
			s.notifier.mu.Unlock()
			continue
		}
		// The chain runs on the centre's clock: escalation counts from
		// when the centre knew, whatever the gateway's clock said.
		changes = append(changes, IncidentChange{
			IncidentEvent: notify.IncidentEvent{Type: typ, Incident: e.IncidentID, Site: e.Site, Source: e.Source,
				Grade: e.Grade, At: now, Actor: e.Actor},
			Conditions: notifyConditions(e.Conditions)})
	}
	if err := s.notifier.feed(context.Background(), changes); err != nil {
		s.log.Error("notify incidents", zap.Error(err))
	}
}

// notifyConditions are the active conditions as messages show them, with
// the live value where there is one.
func notifyConditions(conds []incident.Condition) []notify.Condition {
	out := []notify.Condition{}
	for _, c := range conds {
		if !c.Active {
			continue
		}
		nc := notify.Condition{Point: c.Point, Name: c.Name, What: c.Condition, Value: c.Value, Unit: c.Unit}
		if nc.Point == "" {
			nc.Point = c.AlarmID
		}
		for _, l := range c.Live {
			if l.HasValue {
				nc.Value = l.Value
				if nc.Unit == "" {
					nc.Unit = l.Unit
				}
				break
			}
		}
		out = append(out, nc)
	}
	return out
}

// NotifyIncidents runs incident changes through the notification policy:
// what falls due is journaled and queued for the channels before it
// returns. The service feeds it its own incident events; tests and tools
// may feed it directly.
func (s *Service) NotifyIncidents(ctx context.Context, changes []IncidentChange) error {
	return s.notifier.feed(ctx, changes)
}

// Notifications returns the notification journal's lines that match q,
// oldest first: each message queued, skipped, delivered, retried or
// refused, for the incident's timeline.
func (s *Service) Notifications(ctx context.Context, q NotificationQuery) ([]NotificationRecord, error) {
	return s.store.notifications(ctx, q)
}
