package alerting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/alerting/notify"
	"github.com/hazardwatch/hazardwatch/alerting/notify/dingtalk"
	"github.com/hazardwatch/hazardwatch/alerting/notify/email"
	"github.com/hazardwatch/hazardwatch/alerting/notify/webhook"
	"github.com/hazardwatch/hazardwatch/alerting/notify/wecom"
	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// Notification configures who is told of incidents and how
// (configs/alerting.yaml, notification; docs/alerting.md).
type Notification struct {
	// Channels are the ways out: e-mail, SMS gateways, group robots,
	// webhooks. None: incidents are shown and journaled but nobody is
	// told.
	Channels []Channel `yaml:"channels"`
	// Policy: who is told of which grade, through which channels, after
	// how long unacknowledged. Grades it leaves out take the defaults.
	Policy notify.Policy `yaml:"policy"`
	// DutyOfficers are the government duty officers (role duty_officer of
	// the policy), by administrative division: a site's warnings go to
	// those whose region is the longest prefix of the site's region code.
	DutyOfficers []DutyOfficer `yaml:"duty_officers"`
	// ConsoleURL is the officers' console as people reach it; messages
	// link to the incident there. Empty: no link.
	ConsoleURL string `yaml:"console_url"`
}

// DutyOfficer is an officer on duty for a region.
type DutyOfficer struct {
	// Region is a GB/T 2260 code or its prefix (35, 3504, 350403); empty
	// matches every site.
	Region      string `yaml:"region"`
	site.Person `yaml:",inline"`
}

// Channel is one configured way out; exactly one of its kinds is set.
type Channel struct {
	// Name is what the policy's via lists and the journal name it by;
	// keep it stable, undelivered messages are queued under it.
	Name string `yaml:"name"`
	// Sites limits the channel to these sites (a company's own group
	// robot); empty: all.
	Sites []string `yaml:"sites"`
	// Scope limits the channel to the sites of an area (a county's duty
	// robot: region 350404); empty: all.
	Scope access.Scope `yaml:"scope"`
	// MinBackoff and MaxBackoff bound the wait between attempts while the
	// channel fails in a way that may pass (defaults 1 s and 1 min).
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`

	Email    *email.Config    `yaml:"email"`
	SMS      *webhook.Config  `yaml:"sms"`
	Webhook  *webhook.Config  `yaml:"webhook"`
	DingTalk *dingtalk.Config `yaml:"dingtalk"`
	WeCom    *wecom.Config    `yaml:"wecom"`
}

// Kind names the channel's kind.
func (c *Channel) Kind() string {
	var kinds []string
	for k, set := range map[string]bool{"email": c.Email != nil, "sms": c.SMS != nil, "webhook": c.Webhook != nil,
		"dingtalk": c.DingTalk != nil, "wecom": c.WeCom != nil} {
		if set {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

// grouped channels send one message per step to a group, @-mentioning the
// recipients; the others one message per person.
func (c *Channel) grouped() bool {
	k := c.Kind()
	return k == "dingtalk" || k == "wecom" || k == "webhook"
}

func (c *Channel) notifier(source string) (notify.Notifier, error) {
	switch c.Kind() {
	case "email":
		return email.New(*c.Email)
	case "sms":
		return webhook.New(*c.SMS, source, nil)
	case "webhook":
		return webhook.New(*c.Webhook, source, nil)
	case "dingtalk":
		return dingtalk.New(*c.DingTalk, nil)
	case "wecom":
		return wecom.New(*c.WeCom, nil)
	}
	return nil, fmt.Errorf("set exactly one of email, sms, webhook, dingtalk, wecom")
}

// queue is the channel's outbox queue name, apart from the receivers'.
func (c *Channel) queue() string { return "notify:" + c.Name }

// reaches reports whether the channel can reach a recipient.
func (c *Channel) reaches(r notify.Recipient) (bool, string) {
	switch c.Kind() {
	case "email":
		return r.Email != "", "no e-mail address"
	case "sms":
		p := site.Person{Phone: r.Phone}
		return p.IsMobile(), "no mobile number"
	}
	return true, ""
}

// Notification outcomes in the notification journal.
const (
	OutcomeQueued    = "queued"
	OutcomeDelivered = "delivered"
	OutcomeRetrying  = "retrying"
	OutcomeFailed    = "failed"  // refused for good; in the dead letters
	OutcomeSkipped   = "skipped" // the recipient has no address for the channel
)

// NotificationRecord is one line of an incident's notification journal: a
// message queued for a channel, or an attempt's outcome.
type NotificationRecord struct {
	ID       string         `json:"id"` // the message
	Incident string         `json:"incident"`
	Site     string         `json:"site"`
	Source   string         `json:"source"`
	Channel  string         `json:"channel"`
	Kind     notify.Kind    `json:"kind"`
	Grade    protocol.Grade `json:"grade"`
	Step     int            `json:"step"`
	To       []string       `json:"to"` // "role name" of each recipient
	Outcome  string         `json:"outcome"`
	Attempts int            `json:"attempts"`
	Error    string         `json:"error,omitempty"`
	At       time.Time      `json:"at"`
}

// notifier runs the notification policy: it owns the chain, turns what
// falls due into messages per channel and recipient, and journals and
// queues them in one transaction. Its mutex orders feeding and ticking.
type notifier struct {
	mu       sync.Mutex
	chain    *notify.Chain
	channels []*Channel
	cfg      Notification
	sites    func() []*site.Site
	store    *store
	log      *zap.Logger
	counts   *prometheus.CounterVec
	// conditions are each open incident's last known conditions, for the
	// messages of escalations that fall due between events.
	conditions map[string][]notify.Condition
	deliverers []*deliverer
}

// Check reports every problem of the notification config and fills in the
// channels' backoff defaults.
func (n *Notification) Check() error {
	var errs []error
	names := map[string]bool{}
	var list []string
	for i := range n.Channels {
		c := &n.Channels[i]
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("notification.channels[%d]: name is required", i))
		case names[c.Name]:
			errs = append(errs, fmt.Errorf("notification.channels[%d]: channel %s is configured twice", i, c.Name))
		}
		names[c.Name] = true
		list = append(list, c.Name)
		if c.Kind() == "" {
			errs = append(errs, fmt.Errorf("notification.channels[%d] (%s): set exactly one of email, sms, webhook, dingtalk, wecom", i, c.Name))
		}
		if c.MinBackoff <= 0 {
			c.MinBackoff = DefaultMinBackoff
		}
		if c.MaxBackoff < c.MinBackoff {
			c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
		}
	}
	if err := n.Policy.WithDefaults().Validate(list); err != nil {
		errs = append(errs, fmt.Errorf("notification.%w", err))
	}
	for i, d := range n.DutyOfficers {
		if d.Name == "" || d.Phone == "" && d.Email == "" {
			errs = append(errs, fmt.Errorf("notification.duty_officers[%d]: name and a phone or e-mail are required", i))
		}
		if strings.Trim(d.Region, "0123456789") != "" || len(d.Region) > 6 {
			errs = append(errs, fmt.Errorf("notification.duty_officers[%d]: region %q is not a GB/T 2260 code or prefix", i, d.Region))
		}
	}
	if n.ConsoleURL != "" {
		if u, err := url.Parse(n.ConsoleURL); err != nil || u.Host == "" {
			errs = append(errs, fmt.Errorf("notification.console_url %q is not an absolute URL", n.ConsoleURL))
		}
	}
	return errors.Join(errs...)
}

// newNotifier checks the config and makes the channels' deliverers (not
// yet running).
func newNotifier(cfg Notification, sites func() []*site.Site, st *store, log *zap.Logger, m *metrics, reg prometheus.Registerer, source string) (*notifier, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if sites == nil {
		sites = func() []*site.Site { return nil }
	}
	n := &notifier{chain: notify.NewChain(cfg.Policy), cfg: cfg, sites: sites, store: st, log: log.Named("notify"),
		conditions: map[string][]notify.Condition{},
		counts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "notifications_total",
			Help: "Notifications to people by channel and outcome (queued, delivered, retrying, failed, skipped)."}, []string{"channel", "outcome"})}
	if err := reg.Register(n.counts); err != nil {
		return nil, fmt.Errorf("notification metrics: %w", err)
	}
	for i := range cfg.Channels {
		c := &cfg.Channels[i]
		nf, err := c.notifier(source)
		if err != nil {
			return nil, fmt.Errorf("notification channel %s: %w", c.Name, err)
		}
		for _, o := range []string{OutcomeQueued, OutcomeDelivered, OutcomeRetrying, OutcomeFailed, OutcomeSkipped} {
			n.counts.WithLabelValues(c.Name, o)
		}
		n.channels = append(n.channels, c)
		name := c.Name
		d := &deliverer{name: c.queue(), minBackoff: c.MinBackoff, maxBackoff: c.MaxBackoff, store: st,
			log: n.log.With(zap.String("channel", name)), metrics: m, wake: make(chan struct{}, 1),
			send: func(ctx context.Context, o outboxRow) (bool, error) {
				var msg notify.Message
				if err := json.Unmarshal(o.Body, &msg); err != nil {
					return false, fmt.Errorf("queued message %s: %w", o.EventID, err)
				}
				return nf.Notify(ctx, &msg)
			},
			outcome: func(ctx context.Context, o outboxRow, attempts int, err error, final bool) {
				n.outcome(ctx, name, o, attempts, err, final)
			}}
		m.delivered.WithLabelValues(d.name)
		m.deliveryFailures.WithLabelValues(d.name)
		n.deliverers = append(n.deliverers, d)
	}
	return n, nil
}

// IncidentChange is one change of an incident as the notifier takes it;
// the incident lifecycle's events map onto it one to one.
type IncidentChange struct {
	notify.IncidentEvent
	// Conditions as they stand after the change, with live values; nil
	// keeps the last known ones.
	Conditions []notify.Condition
}

// feed runs incident changes through the chain and queues what falls due.
func (n *notifier) feed(ctx context.Context, changes []IncidentChange) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for _, ch := range changes {
		if ch.Conditions != nil {
			n.conditions[ch.Incident] = ch.Conditions
		}
		due, err := n.chain.Apply(ch.IncidentEvent)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st, open := n.chain.State(ch.Incident)
		if err := n.queue(ctx, due, ch.Incident, st, open); err != nil {
			errs = append(errs, err)
		}
		if !open {
			delete(n.conditions, ch.Incident)
		}
	}
	return errors.Join(errs...)
}

// urged tells the source's three responsible persons, through every
// channel that reaches them, that a supervisor urged the incident (督办),
// whatever the policy's chain says of its grade.
func (n *notifier) urged(ctx context.Context, e incident.Event, now time.Time) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := notify.Due{Key: fmt.Sprintf("urged/%d", e.Seq), Kind: notify.Urged, Incident: e.IncidentID, Site: e.Site, Source: e.Source,
		Grade: e.Grade, Roles: []notify.Role{notify.Operational, notify.Technical, notify.Principal},
		Opened: e.OpenedAt, At: now, Actor: e.Actor, Comment: e.Comment}
	st, open := n.chain.State(e.IncidentID)
	return n.queue(ctx, []notify.Due{d}, e.IncidentID, st, open)
}

// tick queues the escalations due at now.
func (n *notifier) tick(ctx context.Context, now time.Time) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	due := n.chain.Tick(now)
	byIncident := map[string][]notify.Due{}
	var order []string
	for _, d := range due {
		if byIncident[d.Incident] == nil {
			order = append(order, d.Incident)
		}
		byIncident[d.Incident] = append(byIncident[d.Incident], d)
	}
	var errs []error
	for _, id := range order {
		st, open := n.chain.State(id)
		if err := n.queue(ctx, byIncident[id], id, st, open); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// queue journals and queues an incident's due notifications with the
// chain's state after them, in one transaction. A message already
// journaled (the chain rebuilt after a crash) is not queued again.
func (n *notifier) queue(ctx context.Context, due []notify.Due, incident string, st notify.IncidentState, open bool) error {
	var msgs []queuedMessage
	for _, d := range due {
		msgs = append(msgs, n.messages(d)...)
	}
	if err := n.store.queueNotifications(ctx, msgs, incident, st, open); err != nil {
		return err
	}
	for _, m := range msgs {
		n.counts.WithLabelValues(m.rec.Channel, m.rec.Outcome).Inc()
		if m.rec.Outcome == OutcomeSkipped {
			n.log.Warn("recipient unreachable through channel", zap.String("incident", incident), zap.String("channel", m.rec.Channel),
				zap.Strings("to", m.rec.To), zap.String("why", m.rec.Error))
		}
	}
	for _, d := range n.deliverers {
		d.notify()
	}
	return nil
}

// queuedMessage is one message for one channel with its journal line; a
// skipped one has no message.
type queuedMessage struct {
	rec   NotificationRecord
	queue string
	body  []byte
}

// place is what the site files say of a source.
type place struct {
	siteName, sourceName, region, enterprise string
	responsible                              *site.Responsible
}

func (n *notifier) place(siteID, sourceID string) place {
	for _, s := range n.sites() {
		if s.ID != siteID {
			continue
		}
		p := place{siteName: s.Name, region: s.Region, enterprise: s.EnterpriseCode}
		if src := s.Source(sourceID); src != nil {
			p.sourceName, p.responsible = src.Name, src.Responsible
		}
		return p
	}
	return place{}
}

// recipients resolves the roles of a step.
func (n *notifier) recipients(p place, roles []notify.Role) []notify.Recipient {
	var out []notify.Recipient
	add := func(role notify.Role, per *site.Person) {
		out = append(out, notify.Recipient{Role: role, Name: per.Name, Phone: per.Phone, Email: per.Email,
			DingTalk: per.DingTalk, WeCom: per.WeCom, Lang: per.Lang})
	}
	for _, r := range roles {
		if r == notify.DutyOfficer {
			best := -1
			for _, d := range n.cfg.DutyOfficers {
				if strings.HasPrefix(p.region, d.Region) && len(d.Region) > best {
					best = len(d.Region)
				}
			}
			for _, d := range n.cfg.DutyOfficers {
				if best >= 0 && len(d.Region) == best && strings.HasPrefix(p.region, d.Region) {
					per := d.Person
					add(r, &per)
				}
			}
			continue
		}
		if per := p.responsible.Person(site.Role(r)); per != nil {
			add(r, per)
		}
	}
	return out
}

// messages expands one due notification into a message per channel (group
// robots, webhooks) or per channel and person (e-mail, SMS).
func (n *notifier) messages(d notify.Due) []queuedMessage {
	p := n.place(d.Site, d.Source)
	to := n.recipients(p, d.Roles)
	base := notify.Message{Kind: d.Kind, Incident: d.Incident, Site: d.Site, Source: d.Source, Grade: d.Grade, Step: d.Step,
		SiteName: p.siteName, SourceName: p.sourceName, Region: p.region, Opened: d.Opened, At: d.At, Actor: d.Actor, Comment: d.Comment,
		Conditions: n.conditions[d.Incident]}
	if n.cfg.ConsoleURL != "" {
		base.Link = strings.TrimRight(n.cfg.ConsoleURL, "/") + "/#incident=" + url.QueryEscape(d.Incident)
	}
	var out []queuedMessage
	for _, c := range n.channels {
		if len(d.Via) > 0 && !slices.Contains(d.Via, c.Name) || len(c.Sites) > 0 && !slices.Contains(c.Sites, d.Site) ||
			!c.Scope.Whole() && !c.Scope.Covers(d.Site, p.region, p.enterprise) {
			continue
		}
		rec := NotificationRecord{Incident: d.Incident, Site: d.Site, Source: d.Source, Channel: c.Name, Kind: d.Kind,
			Grade: d.Grade, Step: d.Step, At: d.At}
		if c.grouped() {
			if len(to) == 0 {
				continue
			}
			m := base
			m.To = to
			if c.DingTalk != nil {
				m.Lang = c.DingTalk.Lang
			} else if c.WeCom != nil {
				m.Lang = c.WeCom.Lang
			}
			out = append(out, n.message(c, d, m, rec))
			continue
		}
		for _, r := range to {
			if ok, why := c.reaches(r); !ok {
				rec := rec
				rec.ID = messageID(d, c.Name, r)
				rec.To = []string{string(r.Role) + " " + r.Name}
				rec.Outcome, rec.Error = OutcomeSkipped, why
				out = append(out, queuedMessage{rec: rec})
				continue
			}
			m := base
			m.To = []notify.Recipient{r}
			out = append(out, n.message(c, d, m, rec))
		}
	}
	return out
}

func (n *notifier) message(c *Channel, d notify.Due, m notify.Message, rec NotificationRecord) queuedMessage {
	var who notify.Recipient
	if len(m.To) == 1 {
		who = m.To[0]
	}
	m.ID = messageID(d, c.Name, who)
	rec.ID = m.ID
	for _, r := range m.To {
		rec.To = append(rec.To, string(r.Role)+" "+r.Name)
	}
	rec.Outcome = OutcomeQueued
	body, err := json.Marshal(m)
	if err != nil { // a Message always marshals; keep the line anyway
		rec.Outcome, rec.Error = OutcomeFailed, err.Error()
		return queuedMessage{rec: rec}
	}
	return queuedMessage{rec: rec, queue: c.queue(), body: body}
}

// messageID names one message stably: the incident, the step, the channel
// and the person.
func messageID(d notify.Due, channel string, r notify.Recipient) string {
	h := sha256.New()
	fmt.Fprintf(h, "notify\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s", d.Incident, d.Key, channel, r.Role, r.Name, r.Phone+r.Email)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// outcome journals a delivery attempt's result.
func (n *notifier) outcome(ctx context.Context, channel string, o outboxRow, attempts int, err error, final bool) {
	rec := NotificationRecord{ID: o.EventID, Incident: o.AlarmID, Channel: channel, Attempts: attempts, At: time.Now()}
	switch {
	case err == nil:
		rec.Outcome = OutcomeDelivered
	case final:
		rec.Outcome, rec.Error = OutcomeFailed, err.Error()
	default:
		rec.Outcome, rec.Error = OutcomeRetrying, err.Error()
	}
	n.counts.WithLabelValues(channel, rec.Outcome).Inc()
	if err := n.store.journalOutcome(ctx, rec); err != nil && ctx.Err() == nil {
		n.log.Error("journal notification outcome", zap.String("id", o.EventID), zap.Error(err))
	}
}
