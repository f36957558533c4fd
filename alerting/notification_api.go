package alerting

import "net/http"

// notificationHandlers serves an incident's notification journal:
// GET /api/incidents/{id}/notifications lists every message queued or
// skipped and every delivery attempt's outcome, oldest first.
func (s *Service) notificationHandlers(mux *http.ServeMux, view func(http.HandlerFunc) http.Handler) {
	mux.Handle("GET /api/incidents/{id}/notifications", view(func(w http.ResponseWriter, r *http.Request) {
		inc, ok := s.viewableIncident(w, r)
		if !ok {
			return
		}
		recs, err := s.Notifications(r.Context(), NotificationQuery{Incident: inc.ID, Limit: 10000})
		s.reply(w, recs, err)
	}))
}
