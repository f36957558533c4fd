// Package notify tells people and systems about incidents. It holds the one
// interface every output channel implements (Notifier; one package per
// channel below this one, each with its own retry classification), the
// message they carry, and the notification policy: who is told of which
// grade, through which channel, after how long unacknowledged. The policy
// runs as Chain, a pure state machine fed with incident events and a clock;
// the alerting service owns it, journals what it returns and hands the
// messages to the channels through its durable outbox.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// Notifier delivers one message through one channel. It is called from one
// goroutine per channel, in outbox order, and again with the same message
// after a failure that it reported as retryable.
type Notifier interface {
	// Notify delivers m. retry reports whether a later attempt may succeed
	// (the peer down or slow, a 5xx, a rate limit); an error with retry
	// false means the message can never be delivered as it is (refused,
	// misaddressed, badly configured) and is moved to the dead letters.
	Notify(ctx context.Context, m *Message) (retry bool, err error)
}

// NotifierFunc lets a function be a Notifier.
type NotifierFunc func(ctx context.Context, m *Message) (bool, error)

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, m *Message) (bool, error) { return f(ctx, m) }

// Kind is why a message is sent.
type Kind string

// Kinds of message.
const (
	// Warning: the incident reached a grade whose chain names the
	// recipients at once.
	Warning Kind = "warning"
	// Escalation: the incident stayed unacknowledged for a step's delay.
	Escalation Kind = "escalation"
	// Acknowledged and Closed tell those already told that an officer took
	// the incident in hand, or that it is over.
	Acknowledged Kind = "acknowledged"
	Closed       Kind = "closed"
	// Urged: a county or city supervisor urged the enterprise to handle
	// the incident (督办); its responsible persons are told what is asked.
	Urged Kind = "urged"
	// Event carries a journal event to a machine receiver as it is
	// (Message.Event: the CloudEvents message).
	Event Kind = "event"
)

// Message is what a channel sends. People's channels render it in each
// recipient's language (Render); machine receivers get Event.
type Message struct {
	// ID is stable: the same notification always has the same id, so a
	// receiver can drop a repeat and the outbox keeps it once.
	ID       string         `json:"id"`
	Kind     Kind           `json:"kind"`
	Incident string         `json:"incident,omitempty"`
	Site     string         `json:"site,omitempty"`
	Source   string         `json:"source,omitempty"`
	Grade    protocol.Grade `json:"grade"`
	// Step is the position of the step in the grade's chain, from 0.
	Step int `json:"step"`
	// SiteName, SourceName and Region describe where, for people.
	SiteName   string `json:"site_name,omitempty"`
	SourceName string `json:"source_name,omitempty"`
	Region     string `json:"region,omitempty"`
	// Opened is when the incident opened; At when this message fell due.
	Opened time.Time `json:"opened,omitzero"`
	At     time.Time `json:"at"`
	// Actor is the officer who acknowledged, closed or urged, for those
	// kinds; Comment what the supervisor asked, for Urged.
	Actor   string `json:"actor,omitempty"`
	Comment string `json:"comment,omitempty"`
	// To are the recipients: one for person channels (e-mail, SMS), all
	// of the step for a group robot, which @-mentions them.
	To         []Recipient `json:"to,omitempty"`
	Conditions []Condition `json:"conditions,omitempty"`
	// Link opens the incident in the officers' console.
	Link string `json:"link,omitempty"`
	// Lang renders a group robot's message (a person's own Lang wins for
	// person channels).
	Lang string `json:"lang,omitempty"`
	// Event is the CloudEvents message of a journal event, for Kind Event.
	Event json.RawMessage `json:"event,omitempty"`
}

// Recipient is a person a message is for.
type Recipient struct {
	// Role is principal, technical, operational or duty_officer.
	Role     Role   `json:"role"`
	Name     string `json:"name"`
	Phone    string `json:"phone,omitempty"`
	Email    string `json:"email,omitempty"`
	DingTalk string `json:"dingtalk,omitempty"`
	WeCom    string `json:"wecom,omitempty"`
	Lang     string `json:"lang,omitempty"`
}

// Condition is one contributing condition of the incident as it stood.
type Condition struct {
	Point string  `json:"point"`
	Name  string  `json:"name,omitempty"`
	What  string  `json:"what,omitempty"` // e.g. hh, vote
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
}

// Role is who a step of the policy names.
type Role string

// Roles a step may name: the source's three responsible persons (site
// file) and the duty officers of the site's region (alerting config).
const (
	Operational Role = "operational"
	Technical   Role = "technical"
	Principal   Role = "principal"
	DutyOfficer Role = "duty_officer"
)

// Roles lists every role.
var Roles = []Role{Operational, Technical, Principal, DutyOfficer}

// ErrNoAddress is wrapped by channels for a recipient they cannot reach
// (no e-mail address, no mobile number); never retried.
var ErrNoAddress = errors.New("recipient has no address for this channel")
