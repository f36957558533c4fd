package alerting

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// Role is what a token may do.
type Role string

// Roles: viewers read; officers also act on alarms.
const (
	RoleViewer  Role = "viewer"
	RoleOfficer Role = "officer"
)

// Token is one API bearer token.
type Token struct {
	Token string `yaml:"token" json:"-"`
	Role  Role   `yaml:"role" json:"role"`
	// Officer binds the token to one officer: actions through it are
	// recorded under this name. Empty (a shared console) records the
	// officer named in each request.
	Officer string `yaml:"officer" json:"officer,omitempty"`
}

func checkTokens(tokens []Token) error {
	for i, t := range tokens {
		if len(t.Token) < 16 {
			return fmt.Errorf("API token %d: at least 16 characters", i+1)
		}
		if t.Role != RoleViewer && t.Role != RoleOfficer {
			return fmt.Errorf("API token %d: role %q is not viewer or officer", i+1, t.Role)
		}
	}
	return nil
}

func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second}}
}

// maxRequestBody bounds an action's JSON body.
const maxRequestBody = 16 << 10

// Handler serves the alarm API under /api/. Alarm ids contain slashes:
// clients escape them as %2F in paths.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	view := func(h http.HandlerFunc) http.Handler { return s.auth(RoleViewer, h) }
	act := func(h func(w http.ResponseWriter, r *http.Request, tok Token)) http.Handler {
		return s.auth(RoleOfficer, func(w http.ResponseWriter, r *http.Request) { h(w, r, tokenOf(r)) })
	}
	mux.Handle("GET /api/alarms", view(s.listAlarms))
	mux.Handle("GET /api/alarms/{id}", view(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.Alarm(r.PathValue("id"))
		if !ok {
			httpError(w, http.StatusNotFound, fmt.Errorf("alarm %q: %w", r.PathValue("id"), ErrUnknownAlarm))
			return
		}
		writeJSON(w, http.StatusOK, a)
	}))
	mux.Handle("GET /api/alarms/{id}/timeline", view(func(w http.ResponseWriter, r *http.Request) {
		evs, err := s.Timeline(r.Context(), r.PathValue("id"))
		s.reply(w, evs, err)
	}))
	mux.Handle("GET /api/history", view(s.history))
	mux.Handle("GET /api/officers/{officer}/actions", view(func(w http.ResponseWriter, r *http.Request) {
		from, to, err := timeRange(r)
		if err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		evs, err := s.OfficerActions(r.Context(), r.PathValue("officer"), from, to)
		s.reply(w, evs, err)
	}))
	mux.Handle("GET /api/sources", view(func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.SourceGrades()) }))
	mux.Handle("GET /api/outbox", view(func(w http.ResponseWriter, r *http.Request) {
		st, err := s.OutboxStats(r.Context())
		s.reply(w, st, err)
	}))
	mux.Handle("GET /api/floods", view(func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Floods()) }))
	mux.Handle("GET /api/deadletters/alerting", view(s.deadLetters))
	mux.Handle("POST /api/alarms/{id}/ack", act(func(w http.ResponseWriter, r *http.Request, tok Token) {
		s.action(w, r, tok, func(req actionRequest, officer string) (protocol.AlarmEvent, error) {
			return s.Ack(r.Context(), r.PathValue("id"), officer, req.Comment)
		})
	}))
	mux.Handle("POST /api/alarms/{id}/shelve", act(func(w http.ResponseWriter, r *http.Request, tok Token) {
		s.action(w, r, tok, func(req actionRequest, officer string) (protocol.AlarmEvent, error) {
			until := req.Until.Time
			if until.IsZero() && req.Minutes > 0 {
				until = s.cfg.Now().Add(time.Duration(req.Minutes * float64(time.Minute)))
			}
			return s.Shelve(r.Context(), r.PathValue("id"), officer, req.reason(), until)
		})
	}))
	mux.Handle("POST /api/alarms/{id}/unshelve", act(func(w http.ResponseWriter, r *http.Request, tok Token) {
		s.action(w, r, tok, func(req actionRequest, officer string) (protocol.AlarmEvent, error) {
			return s.Unshelve(r.Context(), r.PathValue("id"), officer, req.Comment)
		})
	}))
	mux.Handle("POST /api/alarms/{id}/out-of-service", act(func(w http.ResponseWriter, r *http.Request, tok Token) {
		s.action(w, r, tok, func(req actionRequest, officer string) (protocol.AlarmEvent, error) {
			return s.OutOfService(r.Context(), r.PathValue("id"), officer, req.reason())
		})
	}))
	mux.Handle("POST /api/alarms/{id}/return-to-service", act(func(w http.ResponseWriter, r *http.Request, tok Token) {
		s.action(w, r, tok, func(req actionRequest, officer string) (protocol.AlarmEvent, error) {
			return s.ReturnToService(r.Context(), r.PathValue("id"), officer, req.Comment)
		})
	}))
	mux.Handle("POST /api/alarms/{id}/comment", act(func(w http.ResponseWriter, r *http.Request, tok Token) {
		s.action(w, r, tok, func(req actionRequest, officer string) (protocol.AlarmEvent, error) {
			return s.Comment(r.Context(), r.PathValue("id"), officer, req.Comment)
		})
	}))
	s.incidentHandlers(mux, view, act)
	return mux
}

type tokenKey struct{}

func tokenOf(r *http.Request) Token { t, _ := r.Context().Value(tokenKey{}).(Token); return t }

// auth checks the bearer token and its role.
func (s *Service) auth(need Role, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || given == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hazardwatch"`)
			httpError(w, http.StatusUnauthorized, errors.New("missing bearer token"))
			return
		}
		for _, t := range s.cfg.Tokens {
			if subtle.ConstantTimeCompare([]byte(t.Token), []byte(given)) != 1 {
				continue
			}
			if need == RoleOfficer && t.Role != RoleOfficer {
				httpError(w, http.StatusForbidden, errors.New("this token may only view alarms"))
				return
			}
			h(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, t)))
			return
		}
		httpError(w, http.StatusUnauthorized, errors.New("unknown token"))
	})
}

// actionRequest is the JSON body of an officer's action.
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
	if a.Reason != "" {
		return a.Reason
	}
	return a.Comment
}

func (s *Service) action(w http.ResponseWriter, r *http.Request, tok Token, do func(req actionRequest, officer string) (protocol.AlarmEvent, error)) {
	var req actionRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body: %w", err))
		return
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("request body is not the expected JSON: %w", err))
			return
		}
	}
	officer := req.Officer
	if tok.Officer != "" {
		if officer != "" && officer != tok.Officer {
			httpError(w, http.StatusForbidden, fmt.Errorf("this token belongs to officer %s, not %s", tok.Officer, officer))
			return
		}
		officer = tok.Officer
	}
	ev, err := do(req, officer)
	if err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrUnknownAlarm):
			status = http.StatusNotFound
		case errors.Is(err, ErrNoOfficer), errors.Is(err, ErrNoReason), errors.Is(err, ErrNoComment), errors.Is(err, ErrBadExpiry):
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
	writeJSON(w, http.StatusOK, s.Alarms(f))
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
	s.reply(w, evs, err)
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
