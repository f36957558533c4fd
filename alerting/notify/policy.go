package notify

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// Policy says who is told of an incident of each grade, through which
// channels, and after how long unacknowledged. configs/alerting.yaml shows
// every option; DefaultPolicy is what applies where the file is silent.
type Policy struct {
	Blue   []Step `yaml:"blue" json:"blue"`
	Yellow []Step `yaml:"yellow" json:"yellow"`
	Orange []Step `yaml:"orange" json:"orange"`
	Red    []Step `yaml:"red" json:"red"`
	// SendAcknowledged and SendClosed tell everyone already told of an
	// incident when an officer acknowledges it and when it closes.
	SendAcknowledged *bool `yaml:"send_acknowledged" json:"send_acknowledged"`
	SendClosed       *bool `yaml:"send_closed" json:"send_closed"`
}

// Step is one link of a grade's chain: once the incident has been at that
// grade (its worst so far) and unacknowledged for After, the roles in
// Notify are told through the channels in Via.
type Step struct {
	After  time.Duration `yaml:"after" json:"after"`
	Notify []Role        `yaml:"notify" json:"notify"`
	// Via names channels of the notification config; empty: every
	// channel that can reach the recipients.
	Via []string `yaml:"via" json:"via,omitempty"`
}

// DefaultPolicy is the shipped chain, after the city's four-grade warning
// practice: blue stays on the console; yellow tells the operational lead;
// orange tells the operational lead at once, the technical lead after 10
// minutes and the principal after 30 unacknowledged; red tells all three
// and the county's duty officer at once.
func DefaultPolicy() Policy {
	yes := true
	return Policy{
		Yellow: []Step{{After: 0, Notify: []Role{Operational}}},
		Orange: []Step{
			{After: 0, Notify: []Role{Operational}},
			{After: 10 * time.Minute, Notify: []Role{Technical}},
			{After: 30 * time.Minute, Notify: []Role{Principal}},
		},
		Red:              []Step{{After: 0, Notify: []Role{Operational, Technical, Principal, DutyOfficer}}},
		SendAcknowledged: &yes,
		SendClosed:       &yes,
	}
}

// WithDefaults returns p with DefaultPolicy's chain for every grade p does
// not mention (nil: say blue: [] to tell no one) and its flags where unset.
func (p Policy) WithDefaults() Policy {
	d := DefaultPolicy()
	if p.Blue == nil {
		p.Blue = d.Blue
	}
	if p.Yellow == nil {
		p.Yellow = d.Yellow
	}
	if p.Orange == nil {
		p.Orange = d.Orange
	}
	if p.Red == nil {
		p.Red = d.Red
	}
	if p.SendAcknowledged == nil {
		p.SendAcknowledged = d.SendAcknowledged
	}
	if p.SendClosed == nil {
		p.SendClosed = d.SendClosed
	}
	return p
}

// Chain returns the steps of a grade, sorted by delay.
func (p Policy) Chain(g protocol.Grade) []Step {
	switch g {
	case protocol.Blue:
		return p.Blue
	case protocol.Yellow:
		return p.Yellow
	case protocol.Orange:
		return p.Orange
	case protocol.Red:
		return p.Red
	}
	return nil
}

// Validate checks the policy against the channel names configured; errors
// name the grade and step, as in "policy.orange[1].via: unknown channel".
func (p Policy) Validate(channels []string) error {
	var errs []error
	for _, g := range []protocol.Grade{protocol.Blue, protocol.Yellow, protocol.Orange, protocol.Red} {
		var prev time.Duration
		for i, s := range p.Chain(g) {
			at := fmt.Sprintf("policy.%s[%d]", g, i)
			if s.After < 0 {
				errs = append(errs, fmt.Errorf("%s.after %s is negative", at, s.After))
			}
			if s.After < prev {
				errs = append(errs, fmt.Errorf("%s.after %s comes before the step above it (%s); list the steps in the order they fire", at, s.After, prev))
			}
			prev = s.After
			if len(s.Notify) == 0 {
				errs = append(errs, fmt.Errorf("%s.notify is empty; name one or more of %v", at, Roles))
			}
			for _, r := range s.Notify {
				if !slices.Contains(Roles, r) {
					errs = append(errs, fmt.Errorf("%s.notify: unknown role %q (want %v)", at, r, Roles))
				}
			}
			for _, v := range s.Via {
				if !slices.Contains(channels, v) {
					errs = append(errs, fmt.Errorf("%s.via: unknown channel %q (configured: %v)", at, v, channels))
				}
			}
		}
	}
	return errors.Join(errs...)
}
