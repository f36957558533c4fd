package alerting

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// maxRequestBody bounds an action's JSON body.
const maxRequestBody = 16 << 10

// Handler serves the alarm API under /api/. Alarm ids contain slashes:
// clients escape them as %2F in paths. It takes the caller from the
// request's context (access.Middleware in front of it): reading needs
// access.View, each action its own access.Action, and the alarm's site
// within the caller's scope.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	view := func(h http.HandlerFunc) http.Handler { return access.Require(access.View, h) }
	act := func(need access.Action, h func(w http.ResponseWriter, r *http.Request, p access.Principal)) http.Handler {
		return access.Require(need, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := access.FromContext(r.Context())
			h(w, r, p)
		}))
	}
	mux.Handle("GET /api/alarms", view(s.listAlarms))
	mux.Handle("GET /api/alarms/{id}", view(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.Alarm(r.PathValue("id"))
		if !ok || !s.mayView(r, a.Site) { // outside the scope: as if unknown
			httpError(w, http.StatusNotFound, fmt.Errorf("alarm %q: %w", r.PathValue("id"), ErrUnknownAlarm))
			return
		}
		writeJSON(w, http.StatusOK, a)
	}))
	mux.Handle("GET /api/alarms/{id}/timeline", view(func(w http.ResponseWriter, r *http.Request) {
		evs, err := s.Timeline(r.Context(), r.PathValue("id"))
		s.reply(w, inScope(s.viewFilter(r), evs), err)
	}))
	mux.Handle("GET /api/history", view(s.history))
	mux.Handle("GET /api/officers/{officer}/actions", view(func(w http.ResponseWriter, r *http.Request) {
		from, to, err := timeRange(r)
		if err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		evs, err := s.OfficerActions(r.Context(), r.PathValue("officer"), from, to)
		s.reply(w, inScope(s.viewFilter(r), evs), err)
	}))
	// The delivery queues and their dead letters are the installation's:
	// only installation-wide accounts see them.
	mux.Handle("GET /api/outbox", view(wholeScope(func(w http.ResponseWriter, r *http.Request) {
		st, err := s.OutboxStats(r.Context())
		s.reply(w, st, err)
	})))
	mux.Handle("GET /api/floods", view(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, access.Keep(s.Floods(), func(f Flood) string { return f.Site }, s.viewFilter(r)))
	}))
	mux.Handle("GET /api/deadletters/alerting", view(wholeScope(s.deadLetters)))
	mux.Handle("POST /api/alarms/{id}/ack", act(access.Acknowledge, func(w http.ResponseWriter, r *http.Request, p access.Principal) {
		s.action(w, r, p, func(req actionRequest, officer string) (protocol.AlarmEvent, error) {
			return s.Ack(r.Context(), r.PathValue("id"), officer, req.Comment)
		})
	}))
	mux.Handle("POST /api/alarms/{id}/shelve", act(access.Shelve, func(w http.ResponseWriter, r *http.Request, p access.Principal) {
		s.action(w, r, p, func(req actionRequest, officer string) (protocol.AlarmEvent, error) {
			until := req.Until.Time
			if until.IsZero() && req.Minutes > 0 {
				if req.Minutes > s.cfg.MaxShelve.Minutes() {
					return protocol.AlarmEvent{}, fmt.Errorf("shelve for %g minutes: %w (%s)", req.Minutes, ErrShelveTooLong, s.cfg.MaxShelve)
				}
				until = s.cfg.Now().Add(time.Duration(req.Minutes * float64(time.Minute)))
			}
			return s.Shelve(r.Context(), r.PathValue("id"), officer, req.reason(), until)
		})
	}))
	mux.Handle("POST /api/alarms/{id}/unshelve", act(access.Shelve, func(w http.ResponseWriter, r *http.Request, p access.Principal) {
		s.action(w, r, p, func(req actionRequest, officer string) (protocol.AlarmEvent, error) {
			return s.Unshelve(r.Context(), r.PathValue("id"), officer, req.Comment)
		})
	}))
	mux.Handle("POST /api/alarms/{id}/out-of-service", act(access.Shelve, func(w http.ResponseWriter, r *http.Request, p access.Principal) {
		s.action(w, r, p, func(req actionRequest, officer string) (protocol.AlarmEvent, error) {
			return s.OutOfService(r.Context(), r.PathValue("id"), officer, req.reason())
		})
	}))
	mux.Handle("POST /api/alarms/{id}/return-to-service", act(access.Shelve, func(w http.ResponseWriter, r *http.Request, p access.Principal) {
		s.action(w, r, p, func(req actionRequest, officer string) (protocol.AlarmEvent, error) {
			return s.ReturnToService(r.Context(), r.PathValue("id"), officer, req.Comment)
		})
	}))
	mux.Handle("POST /api/alarms/{id}/comment", act(access.Comment, func(w http.ResponseWriter, r *http.Request, p access.Principal) {
		s.action(w, r, p, func(req actionRequest, officer string) (protocol.AlarmEvent, error) {
			return s.Comment(r.Context(), r.PathValue("id"), officer, req.Comment)
		})
	}))
	s.incidentHandlers(mux, view, act)
	s.notificationHandlers(mux, view)
	s.reportHandlers(mux, view)
	return mux
}

// actionRequest is the JSON body of an officer's action. Officer, when
// given, must be the logged-in account's name: actions are recorded under
// the account, never under a name typed in.
type actionRequest struct {
	Officer string        `json:"officer"`
	Comment string        `json:"comment"`
	Reason  string        `json:"reason"`
	Until   protocol.Time `json:"until"`
	Minutes float64       `json:"minutes"`
}

func (a *actionRequest) UnmarshalJSON(b []byte) error {
	type plain actionRequest
	var p struct {
		plain
		Until *protocol.Time `json:"until"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*a = actionRequest(p.plain)
	if p.Until != nil {
		a.Until = *p.Until
	}
	return nil
}

// reason is the reason, falling back to the comment.
func (a actionRequest) reason() string {
	if strings.TrimSpace(a.Reason) != "" {
		return a.Reason
	}
	return a.Comment
}

// readRequest decodes an action's JSON body, at most maxRequestBody
// bytes, into v; an empty body leaves v as it is. On a body too large or
// not JSON it answers (413, 400) and returns false.
func readRequest(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body: %w", err))
		return false
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, v); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("request body is not the expected JSON: %w", err))
			return false
		}
	}
	return true
}

func (s *Service) action(w http.ResponseWriter, r *http.Request, p access.Principal, do func(req actionRequest, officer string) (protocol.AlarmEvent, error)) {
	var req actionRequest
	if !readRequest(w, r, &req) {
		return
	}
	if req.Officer != "" && req.Officer != p.Name {
		httpError(w, http.StatusForbidden, fmt.Errorf("logged in as %s: actions are recorded under the account, not %q", p.Name, req.Officer))
		return
	}
	if a, ok := s.Alarm(r.PathValue("id")); ok && !s.mayView(r, a.Site) {
		httpError(w, http.StatusForbidden, fmt.Errorf("site %s is outside the area of %s", a.Site, p.Name))
		return
	}
	req.Comment = strings.TrimSpace(req.Comment)
	req.Reason = strings.TrimSpace(req.Reason)
	ev, err := do(req, p.Name)
	if err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrUnknownAlarm):
			status = http.StatusNotFound
		case errors.Is(err, ErrNoOfficer), errors.Is(err, ErrNoReason), errors.Is(err, ErrNoComment), errors.Is(err, ErrBadExpiry),
			errors.Is(err, ErrShelveTooLong):
			status = http.StatusBadRequest
		case errors.Is(err, ErrNotAckable), errors.Is(err, ErrNotShelved), errors.Is(err, ErrNotOutOfService), errors.Is(err, ErrOutOfService):
			status = http.StatusConflict
		}
		if status == http.StatusInternalServerError {
			s.log.Error("alarm action failed", zap.String("path", r.URL.Path), zap.Error(err))
		}
		httpError(w, status, err)
		return
	}
	writeJSON(w, http.StatusOK, ev)
}

func (s *Service) listAlarms(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := AlarmFilter{Site: q.Get("site"), Source: q.Get("source"), State: protocol.AlarmState(q.Get("state"))}
	if f.State != "" && !f.State.Valid() {
		httpError(w, http.StatusBadRequest, fmt.Errorf("unknown state %q", f.State))
		return
	}
	if g := q.Get("grade"); g != "" {
		var err error
		if f.Grade, err = protocol.ParseGrade(g); err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, access.Keep(s.Alarms(f), func(a Alarm) string { return a.Site }, s.viewFilter(r)))
}

func (s *Service) history(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := timeRange(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	hq := HistoryQuery{Site: q.Get("site"), Source: q.Get("source"), Point: q.Get("point"), From: from, To: to}
	if l := q.Get("limit"); l != "" {
		if hq.Limit, err = strconv.Atoi(l); err != nil || hq.Limit < 1 || hq.Limit > 10000 {
			httpError(w, http.StatusBadRequest, fmt.Errorf("limit %q: want 1 to 10000", l))
			return
		}
	}
	evs, err := s.History(r.Context(), hq)
	s.reply(w, inScope(s.viewFilter(r), evs), err)
}

// inScope keeps the events of the sites a request sees.
func inScope(sees func(site string) bool, evs []protocol.AlarmEvent) []protocol.AlarmEvent {
	return access.Keep(evs, func(e protocol.AlarmEvent) string { return e.Site }, sees)
}

// wholeScope lets through principals whose scope is the whole
// installation, 403 for the others.
func wholeScope(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p, ok := access.FromContext(r.Context()); ok && !p.Scope.Whole() {
			httpError(w, http.StatusForbidden, fmt.Errorf("%s sees part of the installation; this is the whole installation's", p.Name))
			return
		}
		h(w, r)
	}
}

func (s *Service) deadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	receiver := q.Get("receiver")
	if receiver != "" && !s.hasReceiver(receiver) {
		httpError(w, http.StatusNotFound, fmt.Errorf("receiver %q is not configured", receiver))
		return
	}
	limit := 1000
	if l := q.Get("limit"); l != "" {
		var err error
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > 10000 {
			httpError(w, http.StatusBadRequest, fmt.Errorf("limit %q: want 1 to 10000", l))
			return
		}
	}
	dl, err := s.DeadLetters(r.Context(), receiver, limit)
	s.reply(w, dl, err)
}

func timeRange(r *http.Request) (from, to time.Time, err error) {
	q := r.URL.Query()
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := q.Get(p.name); v != "" {
			if *p.t, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return from, to, fmt.Errorf("%s %q is not an RFC 3339 time", p.name, v)
			}
		}
	}
	return from, to, nil
}

func (s *Service) reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		s.log.Error("alarm API query failed", zap.Error(err))
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

func httpError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
