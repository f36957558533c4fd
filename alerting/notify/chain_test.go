package notify

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func apply(t *testing.T, c *Chain, typ EventType, g protocol.Grade, at time.Time) []Due {
	t.Helper()
	due, err := c.Apply(IncidentEvent{Type: typ, Incident: "jh-chem/nh3-tanks/1", Site: "jh-chem", Source: "nh3-tanks", Grade: g, At: at, Actor: "值班员"})
	if err != nil {
		t.Fatal(err)
	}
	return due
}

// told lists who a batch of due notifications names, as kind:role,role.
func told(due []Due) string {
	var parts []string
	for _, d := range due {
		roles := make([]string, len(d.Roles))
		for i, r := range d.Roles {
			roles[i] = string(r)
		}
		parts = append(parts, fmt.Sprintf("%s:%s", d.Kind, strings.Join(roles, ",")))
	}
	return strings.Join(parts, " ")
}

func TestUnacknowledgedOrangeEscalatesAlongTheChain(t *testing.T) {
	c := NewChain(Policy{})
	if got := told(apply(t, c, Opened, protocol.Orange, t0)); got != "warning:operational" {
		t.Fatalf("at opening: %q, want the operational lead at once", got)
	}
	if got := told(c.Tick(t0.Add(9*time.Minute + 59*time.Second))); got != "" {
		t.Errorf("before 10 min: %q, want nothing", got)
	}
	if next, ok := c.Next(); !ok || !next.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("next due %v %v, want %v", next, ok, t0.Add(10*time.Minute))
	}
	due := c.Tick(t0.Add(10 * time.Minute))
	if got := told(due); got != "escalation:technical" {
		t.Fatalf("at 10 min: %q, want the technical lead", got)
	}
	if !due[0].At.Equal(t0.Add(10*time.Minute)) || due[0].Step != 1 || due[0].Grade != protocol.Orange {
		t.Errorf("escalation = %+v", due[0])
	}
	if got := told(c.Tick(t0.Add(10 * time.Minute))); got != "" {
		t.Errorf("the same tick again: %q, want nothing (each step once)", got)
	}
	if got := told(c.Tick(t0.Add(45 * time.Minute))); got != "escalation:principal" {
		t.Errorf("at 45 min: %q, want the principal", got)
	}
	if _, ok := c.Next(); ok {
		t.Error("a step is still pending after the last one")
	}
}

func TestAcknowledgementStopsTheChainAndTellsThoseTold(t *testing.T) {
	c := NewChain(Policy{})
	apply(t, c, Opened, protocol.Orange, t0)
	c.Tick(t0.Add(10 * time.Minute))
	due := apply(t, c, Acked, protocol.Orange, t0.Add(12*time.Minute))
	if got := told(due); got != "acknowledged:operational,technical" {
		t.Errorf("on acknowledgement: %q", got)
	}
	if due[0].Actor != "值班员" {
		t.Errorf("acknowledgement notice without the officer: %+v", due[0])
	}
	if got := told(c.Tick(t0.Add(time.Hour))); got != "" {
		t.Errorf("after acknowledgement: %q, want no more escalation", got)
	}
	if got := told(apply(t, c, Acked, protocol.Orange, t0.Add(13*time.Minute))); got != "" {
		t.Errorf("second acknowledgement: %q", got)
	}
	if got := told(apply(t, c, IncidentClosed, protocol.None, t0.Add(2*time.Hour))); got != "closed:operational,technical" {
		t.Errorf("on closing: %q", got)
	}
	if c.Open() != 0 {
		t.Error("closed incident still followed")
	}
}

func TestRedTellsAllThreeAndTheDutyOfficerAtOnce(t *testing.T) {
	c := NewChain(Policy{})
	if got := told(apply(t, c, Opened, protocol.Red, t0)); got != "warning:operational,technical,principal,duty_officer" {
		t.Errorf("red: %q", got)
	}
}

func TestRisingGradeStartsItsChainFromThen(t *testing.T) {
	c := NewChain(Policy{})
	if got := told(apply(t, c, Opened, protocol.Yellow, t0)); got != "warning:operational" {
		t.Fatalf("yellow: %q", got)
	}
	if got := told(apply(t, c, GradeChanged, protocol.Orange, t0.Add(5*time.Minute))); got != "warning:operational" {
		t.Fatalf("orange: %q, want the operational lead told of orange", got)
	}
	if got := told(c.Tick(t0.Add(14 * time.Minute))); got != "" {
		t.Errorf("9 min into orange: %q", got)
	}
	if got := told(apply(t, c, GradeChanged, protocol.Yellow, t0.Add(14*time.Minute))); got != "" {
		t.Errorf("falling back to yellow: %q, want nothing", got)
	}
	// Orange is still the worst reached: its chain goes on.
	if got := told(c.Tick(t0.Add(15 * time.Minute))); got != "escalation:technical" {
		t.Errorf("10 min after orange, back at yellow: %q", got)
	}
	if got := told(apply(t, c, GradeChanged, protocol.Orange, t0.Add(16*time.Minute))); got != "" {
		t.Errorf("orange again: %q, want no repeat of orange's sent steps", got)
	}
	if got := told(apply(t, c, GradeChanged, protocol.Red, t0.Add(20*time.Minute))); got != "warning:operational,technical,principal,duty_officer" {
		t.Errorf("red: %q", got)
	}
	if got := told(c.Tick(t0.Add(2 * time.Hour))); got != "" {
		t.Errorf("after red: %q, want orange's pending step dropped", got)
	}
}

func TestRestoreSendsWhatFellDueMeanwhileOnce(t *testing.T) {
	c := NewChain(Policy{})
	apply(t, c, Opened, protocol.Orange, t0)
	st, _ := c.State("jh-chem/nh3-tanks/1")

	// A restart 40 minutes later: the two escalations are late, not lost.
	back := NewChain(Policy{})
	back.Restore(st)
	due := back.Tick(t0.Add(40 * time.Minute))
	if got := told(due); got != "escalation:technical escalation:principal" {
		t.Fatalf("after restore: %q", got)
	}
	if due[0].Key == due[1].Key || due[0].Key != "orange/1" {
		t.Errorf("keys %q %q", due[0].Key, due[1].Key)
	}
	if got := told(back.Tick(t0.Add(41 * time.Minute))); got != "" {
		t.Errorf("again: %q", got)
	}
}

func TestViaIsKeptForTheNotices(t *testing.T) {
	p := Policy{Orange: []Step{{Notify: []Role{Operational}, Via: []string{"sms"}}, {After: time.Minute, Notify: []Role{Operational, Technical}, Via: []string{"mail"}}}}
	c := NewChain(p)
	apply(t, c, Opened, protocol.Orange, t0)
	c.Tick(t0.Add(time.Minute))
	due := apply(t, c, IncidentClosed, protocol.None, t0.Add(time.Hour))
	var got []string
	for _, d := range due {
		got = append(got, fmt.Sprintf("%v via %v", d.Roles, d.Via))
	}
	want := []string{"[technical] via [mail]", "[operational] via [mail sms]"}
	if !slices.Equal(got, want) {
		t.Errorf("closing notices %v, want %v", got, want)
	}
}

func TestNoticesCanBeTurnedOff(t *testing.T) {
	no := false
	c := NewChain(Policy{SendAcknowledged: &no, SendClosed: &no})
	apply(t, c, Opened, protocol.Red, t0)
	if got := told(apply(t, c, Acked, protocol.Red, t0)) + told(apply(t, c, IncidentClosed, protocol.None, t0)); got != "" {
		t.Errorf("notices sent though turned off: %q", got)
	}
}

func TestBlueTellsNoOneByDefault(t *testing.T) {
	c := NewChain(Policy{})
	if got := told(apply(t, c, Opened, protocol.Blue, t0)); got != "" {
		t.Errorf("blue: %q", got)
	}
	if got := told(apply(t, c, IncidentClosed, protocol.None, t0.Add(time.Minute))); got != "" {
		t.Errorf("closing an incident nobody was told of: %q", got)
	}
}

func TestBadEventsAreErrors(t *testing.T) {
	c := NewChain(Policy{})
	if _, err := c.Apply(IncidentEvent{Type: Opened, Grade: protocol.Red}); err == nil {
		t.Error("event without incident accepted")
	}
	if _, err := c.Apply(IncidentEvent{Type: "exploded", Incident: "x"}); err == nil {
		t.Error("unknown type accepted")
	}
	if _, err := c.Apply(IncidentEvent{Type: Opened, Incident: "x", Grade: 9}); err == nil {
		t.Error("grade 9 accepted")
	}
}

func TestPolicyValidate(t *testing.T) {
	p := Policy{Orange: []Step{{After: time.Minute, Notify: []Role{"boss"}}, {After: -time.Second, Via: []string{"pager"}}}}
	err := p.WithDefaults().Validate([]string{"sms"})
	for _, want := range []string{`policy.orange[0].notify: unknown role "boss"`, "policy.orange[1].after -1s is negative",
		"policy.orange[1].after -1s comes before", "policy.orange[1].notify is empty", `policy.orange[1].via: unknown channel "pager"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v, want %q", err, want)
		}
	}
	if err := DefaultPolicy().Validate(nil); err != nil {
		t.Errorf("default policy: %v", err)
	}
}

func FuzzChain(f *testing.F) {
	f.Add([]byte{0, 3, 5, 1, 4, 9, 2, 0, 3})
	f.Fuzz(func(t *testing.T, ops []byte) {
		c := NewChain(Policy{})
		now := t0
		types := []EventType{Opened, GradeChanged, Acked, DisposalRecorded, IncidentClosed}
		seen := map[string]bool{}
		for i := 0; i+1 < len(ops); i += 2 {
			now = now.Add(time.Duration(ops[i+1]) * time.Minute)
			var due []Due
			if ops[i]%6 == 5 {
				due = c.Tick(now)
			} else {
				d, err := c.Apply(IncidentEvent{Type: types[ops[i]%6], Incident: fmt.Sprint("i", ops[i]%2), Grade: protocol.Grade(ops[i+1] % 5), At: now})
				if err != nil {
					t.Fatal(err)
				}
				due = d
			}
			for _, d := range due {
				if d.Kind != Warning && d.Kind != Escalation {
					continue
				}
				k := d.Incident + "/" + d.Key
				if seen[k] {
					t.Fatalf("step %s due twice", k)
				}
				seen[k] = true
				if d.At.After(now) {
					t.Fatalf("step %s due at %v, after now %v", k, d.At, now)
				}
			}
			if ops[i]%6 == 4 { // closed: the same id may open anew
				for k := range seen {
					if strings.HasPrefix(k, fmt.Sprint("i", ops[i]%2)+"/") {
						delete(seen, k)
					}
				}
			}
		}
	})
}

func BenchmarkChainTick(b *testing.B) {
	c := NewChain(Policy{})
	for i := range 1000 {
		if _, err := c.Apply(IncidentEvent{Type: Opened, Incident: fmt.Sprint("inc", i), Grade: protocol.Orange, At: t0}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		c.Tick(t0.Add(time.Duration(i%600) * time.Second))
	}
}
