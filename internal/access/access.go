// Package access decides who may use HazardWatch's centre and what they may
// do: accounts of people (password hashes, a role, a scope), sessions of
// the officers' console, and API tokens of machines (Grafana, Prometheus,
// the command platform), stored hashed.
//
// The contract the rest of the centre uses is small:
//
//	p, ok := access.FromContext(r.Context()) // who is asking (set by Authenticator.Middleware)
//	p.May(access.Acknowledge)                // what the role allows
//	p.Scope.Covers(site, region, enterprise) // where it allows it
//
// A Principal's Name is the account's login (or the token's name): it is
// what alarm actions are recorded under. Display is the person's name for
// screens. Roles grant actions (see May); a Scope narrows where. The zero
// Scope is the whole installation.
//
// Credentials: a person logs in with POST /api/session (user name and
// password) and gets a random session id in an HttpOnly, SameSite=Strict
// cookie with an expiry; DELETE /api/session revokes it. A machine sends
// "Authorization: Bearer <token>" (the scheme in any case). Unsafe
// requests made with the cookie must also carry the session's CSRF token
// in the X-HazardWatch-CSRF header. See docs/security-accounts.md.
package access

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Role is what an account or token may do.
type Role string

// Roles, from least to most.
const (
	// Viewer reads: alarms, the status page, readings, /metrics. Wall
	// displays, Grafana, Prometheus.
	Viewer Role = "viewer"
	// Officer is an enterprise's operator on duty: acknowledges, shelves,
	// puts out of service, comments, files disposals.
	Officer Role = "officer"
	// Supervisor is a county or city officer: sees its area, comments,
	// urges (督办) and may escalate; it does not operate the enterprise's
	// alarms.
	Supervisor Role = "supervisor"
	// Admin may do everything.
	Admin Role = "admin"
)

// Action is one thing a role may be allowed.
type Action string

// Actions.
const (
	View        Action = "view"
	Acknowledge Action = "acknowledge"
	// Shelve covers shelving, unshelving, out of service and return to
	// service: every way of silencing an alarm.
	Shelve   Action = "shelve"
	Comment  Action = "comment"
	Dispose  Action = "dispose"
	Urge     Action = "urge"
	Escalate Action = "escalate"
	AdminAct Action = "admin"
)

var grants = map[Role][]Action{
	Viewer:     {View},
	Officer:    {View, Acknowledge, Shelve, Comment, Dispose},
	Supervisor: {View, Comment, Urge, Escalate},
}

// Valid tells whether r is one of the roles.
func (r Role) Valid() bool {
	_, ok := grants[r]
	return ok || r == Admin
}

// May tells whether the role allows the action.
func (r Role) May(a Action) bool {
	return r == Admin || slices.Contains(grants[r], a)
}

// Scope narrows where a principal may act. Each non-empty field narrows
// further (all must hold); the zero value is the whole installation.
type Scope struct {
	// Region is a GB/T 2260 administrative division code or its prefix:
	// "35" a province, "3504" a city, "350481" a county. It covers every
	// site whose region code starts with it.
	Region string `yaml:"region" json:"region,omitempty"`
	// Enterprises are unified social credit codes (or the site files'
	// enterprise codes).
	Enterprises []string `yaml:"enterprises" json:"enterprises,omitempty"`
	// Sites are site ids.
	Sites []string `yaml:"sites" json:"sites,omitempty"`
}

// Whole tells whether the scope is the whole installation.
func (s Scope) Whole() bool {
	return s.Region == "" && len(s.Enterprises) == 0 && len(s.Sites) == 0
}

// Covers tells whether a site, with its region code and enterprise code,
// lies within the scope. A site with an unknown (empty) region or
// enterprise is outside a scope that narrows by it.
func (s Scope) Covers(siteID, region, enterpriseCode string) bool {
	if s.Region != "" && (region == "" || !strings.HasPrefix(region, s.Region)) {
		return false
	}
	if len(s.Enterprises) > 0 && (enterpriseCode == "" || !slices.Contains(s.Enterprises, enterpriseCode)) {
		return false
	}
	if len(s.Sites) > 0 && !slices.Contains(s.Sites, siteID) {
		return false
	}
	return true
}

var regionCode = regexp.MustCompile(`^([0-9]{2}){1,3}$`)

func (s Scope) validate() error {
	if s.Region != "" && !regionCode.MatchString(s.Region) {
		return fmt.Errorf("scope.region %q is not a GB/T 2260 code or prefix (2, 4 or 6 digits, e.g. 3504 or 350481)", s.Region)
	}
	for _, e := range s.Enterprises {
		if strings.TrimSpace(e) == "" {
			return fmt.Errorf("scope.enterprises has a blank entry")
		}
	}
	for _, id := range s.Sites {
		if strings.TrimSpace(id) == "" {
			return fmt.Errorf("scope.sites has a blank entry")
		}
	}
	return nil
}

// Principal is who is making a request.
type Principal struct {
	// Name is the account's login or the token's name; alarm actions are
	// recorded under it.
	Name string `json:"name"`
	// Display is the person's name for screens (Name when not set).
	Display string `json:"display"`
	Role    Role   `json:"role"`
	Scope   Scope  `json:"scope"`
	// Machine is true for an API token, false for a person's session.
	Machine bool `json:"machine"`
}

// May tells whether the principal's role allows the action.
func (p Principal) May(a Action) bool { return p.Name != "" && p.Role.May(a) }

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of a request that Middleware let in.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok && p.Name != ""
}
