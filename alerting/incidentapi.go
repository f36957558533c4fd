package alerting

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/site"
)

// Actor is who does an officer's action: the name recorded in the journal
// and the name shown.
type Actor struct {
	Name    string
	Display string
}

// actorOf is the one place the incident endpoints learn who acts: the
// logged-in principal (internal/access), whose role must allow the action.
// A name in the request, when given, must be the principal's: actions are
// recorded under the account, never under a name typed in.
func actorOf(r *http.Request, act access.Action, named string) (Actor, int, error) {
	p, ok := access.FromContext(r.Context())
	if !ok {
		return Actor{}, http.StatusUnauthorized, access.ErrNoCredentials
	}
	if !p.May(act) {
		return Actor{}, http.StatusForbidden, fmt.Errorf("%s (role %s) may not %s", p.Name, p.Role, act)
	}
	if named != "" && named != p.Name {
		return Actor{}, http.StatusForbidden, fmt.Errorf("logged in as %s: actions are recorded under the account, not %q", p.Name, named)
	}
	return Actor{Name: p.Name, Display: p.Display}, 0, nil
}

// inScope reports whether a site of the site files in force lies in an
// area (a receiver's, a channel's); the zero scope holds every site.
func (s *Service) inScope(scope access.Scope, siteID string) bool {
	if scope.Whole() {
		return true
	}
	return scope.Sees(s.sites())(siteID)
}

// sites are the site files in force, if the service knows them.
func (s *Service) sites() []*site.Site {
	if s.cfg.Sites == nil {
		return nil
	}
	return s.cfg.Sites()
}

// mayView reports whether the request's principal (if any) sees a site.
func (s *Service) mayView(r *http.Request, siteID string) bool { return s.viewFilter(r)(siteID) }

// viewFilter tells which sites the request's principal (if any) sees.
func (s *Service) viewFilter(r *http.Request) func(siteID string) bool {
	p, ok := access.FromContext(r.Context())
	if !ok {
		return func(string) bool { return true } // behind no middleware: a test of the API alone
	}
	return p.Scope.Sees(s.sites())
}

// incidentRequest is the body of the incident actions.
type incidentRequest struct {
	// Officer, when given, must be the caller's account name.
	Officer string `json:"officer"`
	Comment string `json:"comment"`
	// The disposal record.
	Cause             incident.Cause `json:"cause"`
	Found             string         `json:"found"`
	Measures          string         `json:"measures"`
	EmergencyResponse bool           `json:"emergency_response"`
}

func (s *Service) incidentHandlers(mux *http.ServeMux, view func(http.HandlerFunc) http.Handler, act func(access.Action, func(http.ResponseWriter, *http.Request, access.Principal)) http.Handler) {
	mux.Handle("GET /api/incidents", view(s.listIncidents))
	mux.Handle("GET /api/incidents/{id}", view(func(w http.ResponseWriter, r *http.Request) {
		inc, ok := s.viewableIncident(w, r)
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, inc)
	}))
	mux.Handle("GET /api/incidents/{id}/timeline", view(func(w http.ResponseWriter, r *http.Request) {
		inc, ok := s.viewableIncident(w, r)
		if !ok {
			return
		}
		evs, err := s.IncidentTimeline(r.Context(), inc.ID)
		s.reply(w, evs, err)
	}))
	mux.Handle("POST /api/incidents/{id}/ack", act(access.Acknowledge, func(w http.ResponseWriter, r *http.Request, _ access.Principal) {
		s.incidentAction(w, r, access.Acknowledge, func(req incidentRequest, a Actor) (any, error) {
			return s.AckIncident(r.Context(), r.PathValue("id"), a.Name, req.Comment)
		})
	}))
	// A county or city supervisor urges the enterprise (督办).
	mux.Handle("POST /api/incidents/{id}/urge", act(access.Urge, func(w http.ResponseWriter, r *http.Request, _ access.Principal) {
		s.incidentAction(w, r, access.Urge, func(req incidentRequest, a Actor) (any, error) {
			return s.UrgeIncident(r.Context(), r.PathValue("id"), a.Name, req.Comment)
		})
	}))
	mux.Handle("POST /api/incidents/{id}/disposal", act(access.Dispose, func(w http.ResponseWriter, r *http.Request, _ access.Principal) {
		s.incidentAction(w, r, access.Dispose, func(req incidentRequest, a Actor) (any, error) {
			return s.DisposeIncident(r.Context(), r.PathValue("id"), incident.Disposal{By: a.Name, Display: a.Display,
				Cause: req.Cause, Found: req.Found, Measures: req.Measures, EmergencyResponse: req.EmergencyResponse})
		})
	}))
}

func (s *Service) listIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	iq := IncidentQuery{Site: q.Get("site"), Source: q.Get("source"), State: incident.State(q.Get("state"))}
	var err error
	if iq.From, iq.To, err = timeRange(r); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	if l := q.Get("limit"); l != "" {
		if iq.Limit, err = strconv.Atoi(l); err != nil || iq.Limit < 1 || iq.Limit > 10000 {
			httpError(w, http.StatusBadRequest, fmt.Errorf("limit %q: want 1 to 10000", l))
			return
		}
	}
	var list []incident.Incident
	switch {
	case iq.State == "" || iq.State == "open":
		// Not closed: this node's, from memory, with live values.
		for _, inc := range s.Incidents(r.Context()) {
			if (iq.Site == "" || inc.Site == iq.Site) && (iq.Source == "" || inc.Source == iq.Source) &&
				(iq.From.IsZero() || !inc.OpenedAt.Before(iq.From)) && (iq.To.IsZero() || !inc.OpenedAt.After(iq.To)) {
				list = append(list, inc)
			}
		}
	case iq.State.Valid() || iq.State == "all":
		if iq.State == "all" {
			iq.State = ""
		}
		if list, err = s.QueryIncidents(r.Context(), iq); err != nil {
			s.reply(w, nil, err)
			return
		}
	default:
		httpError(w, http.StatusBadRequest, fmt.Errorf("state %q: want open, active, normal, closed or all", iq.State))
		return
	}
	out := make([]incident.Incident, 0, len(list))
	for _, inc := range list {
		if s.mayView(r, inc.Site) {
			out = append(out, inc)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// viewableIncident returns the incident of the request's {id} path
// value when the caller may see its site; otherwise it answers (404 for
// an incident unknown or out of the caller's sites, so that neither is
// told from the other) and returns false.
func (s *Service) viewableIncident(w http.ResponseWriter, r *http.Request) (incident.Incident, bool) {
	inc, ok, err := s.Incident(r.Context(), r.PathValue("id"))
	if err != nil {
		s.reply(w, nil, err)
		return incident.Incident{}, false
	}
	if !ok || !s.mayView(r, inc.Site) {
		httpError(w, http.StatusNotFound, fmt.Errorf("incident %q: %w", r.PathValue("id"), incident.ErrUnknown))
		return incident.Incident{}, false
	}
	return inc, true
}

func (s *Service) incidentAction(w http.ResponseWriter, r *http.Request, act access.Action, do func(req incidentRequest, a Actor) (any, error)) {
	var req incidentRequest
	if !readRequest(w, r, &req) {
		return
	}
	a, status, err := actorOf(r, act, req.Officer)
	if err != nil {
		httpError(w, status, err)
		return
	}
	if inc, ok, _ := s.Incident(r.Context(), r.PathValue("id")); ok && !s.mayView(r, inc.Site) {
		// As for an alarm: the action is refused, and said to be.
		httpError(w, http.StatusForbidden, fmt.Errorf("site %s is outside the area of %s", inc.Site, a.Name))
		return
	}
	out, err := do(req, a)
	if err != nil {
		status, known := incidentErrStatus(err)
		if !known {
			status = http.StatusInternalServerError
			s.log.Error("incident action failed", zap.String("path", r.URL.Path), zap.Error(err))
		}
		if errors.Is(err, incident.ErrUnknown) {
			err = fmt.Errorf("%w (an incident of another node's sites is handled on that node)", err)
		}
		httpError(w, status, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
