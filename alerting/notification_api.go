package alerting

import (
	"fmt"
	"net/http"

	"github.com/hazardwatch/hazardwatch/alerting/incident"
)

// notificationHandlers serves an incident's notification journal:
// GET /api/incidents/{id}/notifications lists every message queued or
// skipped and every delivery attempt's outcome, oldest first.
func (s *Service) notificationHandlers(mux *http.ServeMux, view func(http.HandlerFunc) http.Handler) {
	mux.Handle("GET /api/incidents/{id}/notifications", view(func(w http.ResponseWriter, r *http.Request) {
		inc, ok, err := s.Incident(r.Context(), r.PathValue("id"))
		if err != nil {
			s.reply(w, nil, err)
			return
		}
		if !ok || !s.mayView(r, inc.Site) {
			httpError(w, http.StatusNotFound, fmt.Errorf("incident %q: %w", r.PathValue("id"), incident.ErrUnknown))
			return
		}
		recs, err := s.Notifications(r.Context(), NotificationQuery{Incident: inc.ID, Limit: 10000})
		s.reply(w, recs, err)
	}))
}
