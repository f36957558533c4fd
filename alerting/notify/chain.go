package notify

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// EventType is a change of an incident the chain follows.
type EventType string

// Incident changes.
const (
	Opened           EventType = "opened"
	GradeChanged     EventType = "grade_changed"
	Acked            EventType = "acknowledged"
	DisposalRecorded EventType = "disposal_recorded"
	IncidentClosed   EventType = "closed"
)

// IncidentEvent is one change of an incident, stamped with the service's
// clock (not a gateway's).
type IncidentEvent struct {
	Type     EventType
	Incident string
	Site     string
	Source   string
	Grade    protocol.Grade // after the change
	At       time.Time
	Actor    string // the officer, for acknowledgements and closing
}

// Due is a notification the chain says to send now: the caller turns it
// into messages per channel and recipient, journals and queues them.
type Due struct {
	// Key names the notification within its incident, stably: the same
	// step of the same grade is due once, however often the chain is fed
	// or rebuilt.
	Key      string
	Kind     Kind
	Incident string
	Site     string
	Source   string
	Grade    protocol.Grade
	Step     int
	Roles    []Role
	Via      []string // empty: every channel that reaches the recipients
	Opened   time.Time
	At       time.Time
	Actor    string
	Comment  string // what a supervisor asked, for Urged
}

// IncidentState is what the chain keeps of an open incident; Restore takes
// it back after a restart.
type IncidentState struct {
	Incident string
	Site     string
	Source   string
	Opened   time.Time
	// Worst is the worst grade reached and WorstAt when: its chain runs
	// from then.
	Worst   protocol.Grade
	WorstAt time.Time
	Acked   bool
	// Told is who was told so far, by role, with the channels used; the
	// acknowledged and closed notices go to them.
	Told map[Role][]string
	// Fired are the keys of the notifications already due.
	Fired map[string]bool
}

// Chain is the notification policy as a state machine: no I/O, time passed
// in. Feed it every incident event (Apply) and the clock (Tick); send what
// they return. One goroutine owns it.
type Chain struct {
	policy Policy
	open   map[string]*IncidentState
}

// NewChain starts a chain with a policy (WithDefaults applied).
func NewChain(p Policy) *Chain {
	return &Chain{policy: p.WithDefaults(), open: map[string]*IncidentState{}}
}

// Policy returns the policy in force.
func (c *Chain) Policy() Policy { return c.policy }

// Restore puts back an open incident after a restart; Tick then sends the
// steps that fell due meanwhile and were not yet sent.
func (c *Chain) Restore(st IncidentState) {
	st.Told = cloneTold(st.Told)
	if st.Fired == nil {
		st.Fired = map[string]bool{}
	}
	c.open[st.Incident] = &st
}

// State returns an open incident's state, for journaling and tests.
func (c *Chain) State(incident string) (IncidentState, bool) {
	st, ok := c.open[incident]
	if !ok {
		return IncidentState{}, false
	}
	out := *st
	out.Told = cloneTold(st.Told)
	out.Fired = make(map[string]bool, len(st.Fired))
	for k := range st.Fired {
		out.Fired[k] = true
	}
	return out, true
}

// Open returns the number of incidents followed.
func (c *Chain) Open() int { return len(c.open) }

// Apply takes one incident event and returns what is due at once.
func (c *Chain) Apply(ev IncidentEvent) ([]Due, error) {
	if ev.Incident == "" {
		return nil, fmt.Errorf("incident event %s without an incident id", ev.Type)
	}
	if !ev.Grade.Valid() {
		return nil, fmt.Errorf("incident %s: invalid grade %d", ev.Incident, ev.Grade)
	}
	st := c.open[ev.Incident]
	switch ev.Type {
	case Opened, GradeChanged:
		if st == nil {
			st = &IncidentState{Incident: ev.Incident, Site: ev.Site, Source: ev.Source, Opened: ev.At,
				Told: map[Role][]string{}, Fired: map[string]bool{}}
			c.open[ev.Incident] = st
		}
		if ev.Grade > st.Worst {
			// A new worst grade starts its own chain; the steps left of
			// the lower grade's are dropped, the higher chain covers them.
			st.Worst, st.WorstAt = ev.Grade, ev.At
		}
		return c.due(st, ev.At), nil
	case Acked:
		if st == nil || st.Acked {
			return nil, nil
		}
		st.Acked = true
		if !*c.policy.SendAcknowledged {
			return nil, nil
		}
		return st.notice(Acknowledged, ev), nil
	case DisposalRecorded:
		return nil, nil
	case IncidentClosed:
		if st == nil {
			return nil, nil
		}
		delete(c.open, ev.Incident)
		if !*c.policy.SendClosed {
			return nil, nil
		}
		return st.notice(Closed, ev), nil
	}
	return nil, fmt.Errorf("incident %s: unknown event type %q", ev.Incident, ev.Type)
}

// Tick returns the escalations due at now, incidents in id order.
func (c *Chain) Tick(now time.Time) []Due {
	ids := make([]string, 0, len(c.open))
	for id := range c.open {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []Due
	for _, id := range ids {
		out = append(out, c.due(c.open[id], now)...)
	}
	return out
}

// Next returns when the next step falls due, if any is pending.
func (c *Chain) Next() (time.Time, bool) {
	var next time.Time
	for _, st := range c.open {
		if st.Acked {
			continue
		}
		for i, s := range c.policy.Chain(st.Worst) {
			if st.Fired[stepKey(st.Worst, i)] {
				continue
			}
			if at := st.WorstAt.Add(s.After); next.IsZero() || at.Before(next) {
				next = at
			}
		}
	}
	return next, !next.IsZero()
}

// due fires the steps of the worst grade's chain whose delay has passed.
func (c *Chain) due(st *IncidentState, now time.Time) []Due {
	if st.Acked {
		return nil
	}
	var out []Due
	for i, s := range c.policy.Chain(st.Worst) {
		key := stepKey(st.Worst, i)
		if st.Fired[key] || now.Before(st.WorstAt.Add(s.After)) {
			continue
		}
		st.Fired[key] = true
		kind := Warning
		if s.After > 0 {
			kind = Escalation
		}
		for _, r := range s.Notify {
			st.Told[r] = mergeVia(st.Told[r], s.Via)
		}
		out = append(out, Due{Key: key, Kind: kind, Incident: st.Incident, Site: st.Site, Source: st.Source,
			Grade: st.Worst, Step: i, Roles: slices.Clone(s.Notify), Via: slices.Clone(s.Via), Opened: st.Opened,
			At: st.WorstAt.Add(s.After)})
	}
	return out
}

// notice tells everyone told so far, one Due per distinct set of channels.
func (st *IncidentState) notice(kind Kind, ev IncidentEvent) []Due {
	if len(st.Told) == 0 {
		return nil
	}
	byVia := map[string][]Role{}
	for _, r := range Roles {
		if via, ok := st.Told[r]; ok {
			k := strings.Join(via, ",")
			byVia[k] = append(byVia[k], r)
		}
	}
	keys := make([]string, 0, len(byVia))
	for k := range byVia {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Due, 0, len(keys))
	for i, k := range keys {
		var via []string
		if k != "" {
			via = strings.Split(k, ",")
		}
		out = append(out, Due{Key: fmt.Sprintf("%s/%d", kind, i), Kind: kind, Incident: st.Incident, Site: st.Site,
			Source: st.Source, Grade: max(st.Worst, ev.Grade), Roles: byVia[k], Via: via, Opened: st.Opened, At: ev.At, Actor: ev.Actor})
	}
	return out
}

func stepKey(g protocol.Grade, i int) string { return fmt.Sprintf("%s/%d", g, i) }

// mergeVia joins channel lists; empty means every channel and absorbs the
// others.
func mergeVia(have, more []string) []string {
	if have != nil && len(have) == 0 || len(more) == 0 {
		return []string{}
	}
	out := slices.Clone(have)
	for _, v := range more {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

func cloneTold(t map[Role][]string) map[Role][]string {
	out := make(map[Role][]string, len(t))
	for r, v := range t {
		out[r] = slices.Clone(v)
	}
	return out
}
