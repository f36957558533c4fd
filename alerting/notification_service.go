package alerting

import (
	"context"
	"fmt"
)

// initNotifications adds the notification journal to the store, builds the
// notifier and its channels, and rebuilds the chain's state.
func (s *Service) initNotifications(ctx context.Context) error {
	if err := s.store.createNotifySchema(ctx); err != nil {
		return err
	}
	n, err := newNotifier(s.cfg.Notification, s.cfg.Sites, s.store, s.log, s.metrics, s.cfg.Registerer, s.cfg.CloudEventSource)
	if err != nil {
		return fmt.Errorf("alerting config: %w", err)
	}
	if err := n.restore(ctx); err != nil {
		return err
	}
	s.notifier = n
	return nil
}

// NotifyIncidents runs incident changes through the notification policy:
// what falls due is journaled and queued for the channels before it
// returns. The incident lifecycle calls it with each committed batch, in
// journal order.
func (s *Service) NotifyIncidents(ctx context.Context, changes []IncidentChange) error {
	return s.notifier.feed(ctx, changes)
}

// Notifications returns the notification journal's lines that match q,
// oldest first: each message queued, skipped, delivered, retried or
// refused, for the incident's timeline.
func (s *Service) Notifications(ctx context.Context, q NotificationQuery) ([]NotificationRecord, error) {
	return s.store.notifications(ctx, q)
}
