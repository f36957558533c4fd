package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/alerting/notify/webhook"
	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/internal/i18n"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// Receiver is a webhook the alarm events are POSTed to, e.g. the emergency
// command platform.
type Receiver struct {
	// Name identifies the receiver in the outbox, logs and metrics; keep it
	// stable, or undelivered events stay queued under the old name.
	Name string `yaml:"name" json:"name"`
	URL  string `yaml:"url" json:"url"`
	// Secret signs each body (HMAC-SHA256 in SignatureHeader); empty sends
	// no signature.
	Secret string `yaml:"secret" json:"-"`
	// MinGrade: only events of alarms at least this grade (now or before
	// the event) are sent. Default none: every event.
	MinGrade protocol.Grade `yaml:"min_grade" json:"min_grade"`
	// Sites: only events of these sites; empty means all.
	Sites []string `yaml:"sites" json:"sites,omitempty"`
	// Scope: only events of the sites in this area — a county's or a
	// city's platform (region), an enterprise's own system (enterprises);
	// empty: all (docs/regions.md).
	Scope access.Scope `yaml:"scope" json:"scope,omitzero"`
	// Timeout bounds one POST (default 10 s).
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// MinBackoff and MaxBackoff bound the wait between attempts while the
	// receiver is down or answers 5xx; it doubles per failure (defaults
	// 1 s and 1 min).
	MinBackoff time.Duration `yaml:"min_backoff" json:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff" json:"max_backoff"`
	// Escalation marks a receiver for escalations (e.g. the duty
	// manager): it gets only escalated events of alarms unacknowledged
	// for Config.EscalateAfter, and nothing else.
	Escalation bool `yaml:"escalation" json:"escalation,omitempty"`
	// Language of the event's message for this receiver: zh (default) or
	// en. The facts and the messages in every language travel regardless.
	Language i18n.Lang `yaml:"language" json:"language,omitempty"`
	// Events says what the receiver gets: EventsIncidents (the default)
	// the incidents' lifecycle — opened, grade_changed, acknowledged,
	// disposal_recorded, closed; EventsAll also the incidents' condition
	// details and the point-level alarm events (raised, cleared,
	// acknowledged … of each condition, floods, escalations' re-sends);
	// EventsPoints the point-level alarm events only, as before incidents.
	Events ReceiverEvents `yaml:"events" json:"events,omitempty"`
}

// ReceiverEvents is what a receiver is sent.
type ReceiverEvents string

// What receivers are sent.
const (
	EventsIncidents ReceiverEvents = "incidents" // the incidents' lifecycle (default)
	EventsAll       ReceiverEvents = "all"       // incidents with their details, and point-level alarm events
	EventsPoints    ReceiverEvents = "points"    // point-level alarm events only
)

func (e ReceiverEvents) incidents() bool { return e != EventsPoints }
func (e ReceiverEvents) points() bool    { return e == EventsAll || e == EventsPoints }

// Receiver defaults.
const (
	DefaultReceiverTimeout = 10 * time.Second
	DefaultMinBackoff      = time.Second
	DefaultMaxBackoff      = time.Minute
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
// with the receiver's secret.
const SignatureHeader = webhook.SignatureHeader

// CloudEventContentType is the content type of a structured CloudEvents
// message in JSON.
const CloudEventContentType = webhook.ContentType

// CloudEvent is the CloudEvents 1.0 structured envelope POSTed to
// receivers; Data is the alarm event.
type CloudEvent = webhook.CloudEvent[protocol.AlarmEvent]

// CloudEventType is the CloudEvents type of an alarm event type, e.g.
// cn.hazardwatch.alarm.raised.
func CloudEventType(t protocol.AlarmEventType) string { return "cn.hazardwatch.alarm." + string(t) }

// Sign returns the SignatureHeader value of a body.
func Sign(secret string, body []byte) string { return webhook.Sign(secret, body) }

// VerifySignature checks a SignatureHeader value in constant time.
func VerifySignature(secret string, body []byte, header string) bool {
	return webhook.VerifySignature(secret, body, header)
}

func (r *Receiver) withDefaults() error {
	if r.Name == "" || r.URL == "" {
		return fmt.Errorf("receiver %q: name and url are required", r.Name)
	}
	if !r.MinGrade.Valid() {
		return fmt.Errorf("receiver %s: invalid min_grade", r.Name)
	}
	lang, err := i18n.Parse(string(r.Language))
	if err != nil {
		return fmt.Errorf("receiver %s: language: %w", r.Name, err)
	}
	r.Language = lang
	switch r.Events {
	case "":
		r.Events = EventsIncidents
	case EventsIncidents, EventsAll, EventsPoints:
	default:
		return fmt.Errorf("receiver %s: events %q: want incidents, all or points", r.Name, r.Events)
	}
	if r.Timeout <= 0 {
		r.Timeout = DefaultReceiverTimeout
	}
	if r.MinBackoff <= 0 {
		r.MinBackoff = DefaultMinBackoff
	}
	if r.MaxBackoff < r.MinBackoff {
		r.MaxBackoff = max(DefaultMaxBackoff, r.MinBackoff)
	}
	return nil
}

// wants reports whether the receiver takes this event.
func (r *Receiver) wants(e protocol.AlarmEvent) bool {
	if len(r.Sites) > 0 && !slices.Contains(r.Sites, e.Site) {
		return false
	}
	return max(e.Grade, e.PrevGrade) >= r.MinGrade
}

func backoff(minB, maxB time.Duration, attempts int) time.Duration {
	d := minB
	for i := 1; i < attempts && d < maxB; i++ {
		d *= 2
	}
	return min(d, maxB)
}

// sender hands one outbox row to its channel; retry as notify.Notifier.
type sender func(ctx context.Context, o outboxRow) (retry bool, err error)

// deliverer hands one outbox queue (a receiver's, or a notification
// channel's) to its channel strictly in order, so the events of one alarm
// or incident arrive in order; a channel that is down holds its queue.
type deliverer struct {
	name       string // the outbox queue: a receiver's name, notify:<channel>
	minBackoff time.Duration
	maxBackoff time.Duration
	send       sender
	// outcome, when set, is told every attempt's result (the notification
	// journal); retry is when the next attempt is due, zero when none.
	outcome func(ctx context.Context, o outboxRow, attempts int, err error, final bool)
	store   *store
	log     *zap.Logger
	metrics *metrics
	wake    chan struct{}
}

// notify wakes the deliverer to look at its queue.
func (d *deliverer) notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run delivers until ctx is done.
func (d *deliverer) run(ctx context.Context) {
	const batch = 64
	for ctx.Err() == nil {
		rows, err := d.store.pending(ctx, d.name, batch)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("read outbox", zap.Error(err))
			}
			d.sleep(ctx, d.minBackoff)
			continue
		}
		if len(rows) == 0 {
			d.sleep(ctx, 5*time.Second)
			continue
		}
		for _, o := range rows {
			if ctx.Err() != nil {
				return // shutting down: no new attempt
			}
			if wait := time.Until(o.NextTry); wait > 0 {
				d.sleep(ctx, wait)
				break // re-read: the row may be gone or rescheduled
			}
			if !d.deliver(ctx, o) {
				break
			}
		}
	}
}

// deliver sends one row and records the outcome; false means stop and
// retry later.
func (d *deliverer) deliver(ctx context.Context, o outboxRow) bool {
	// An attempt under way is finished, not cut off, when the service
	// shuts down (the channel's own timeout bounds it): the receiver may
	// have taken a POST cancelled half-way, and the row left behind would
	// send the event again on the next start.
	retry, err := d.send(context.WithoutCancel(ctx), o)
	now := time.Now()
	// What was sent is recorded even while the service shuts down: a
	// cancelled DELETE may have run on the server and report an error
	// anyway, leaving the delivery unjournaled.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err == nil {
		d.metrics.delivered.WithLabelValues(d.name).Inc()
		if err := d.store.delivered(ctx, o.Seq); err != nil {
			d.log.Error("mark delivered", zap.String("event_id", o.EventID), zap.Error(err))
			return false
		}
		d.told(ctx, o, o.Attempts+1, nil, true)
		return true
	}
	d.metrics.deliveryFailures.WithLabelValues(d.name).Inc()
	if !retry {
		d.log.Error("receiver refused for good; moved to dead letters",
			zap.String("event_id", o.EventID), zap.String("subject", o.AlarmID), zap.Error(err))
		if err := d.store.giveUp(ctx, o, now, err.Error()); err != nil {
			d.log.Error("dead letter", zap.Error(err))
			return false
		}
		d.told(ctx, o, o.Attempts+1, err, true)
		return true
	}
	attempts := o.Attempts + 1
	next := now.Add(backoff(d.minBackoff, d.maxBackoff, attempts))
	d.log.Warn("delivery failed; will retry", zap.String("event_id", o.EventID),
		zap.String("subject", o.AlarmID), zap.Int("attempts", attempts), zap.Time("next_try", next), zap.Error(err))
	if err := d.store.retryLater(ctx, o.Seq, attempts, next, err.Error()); err != nil {
		d.log.Error("reschedule delivery", zap.Error(err))
	}
	d.told(ctx, o, attempts, err, false)
	return false
}

func (d *deliverer) told(ctx context.Context, o outboxRow, attempts int, err error, final bool) {
	if d.outcome == nil {
		return
	}
	d.outcome(ctx, o, attempts, err, final)
}

func (d *deliverer) sleep(ctx context.Context, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-d.wake:
	}
}

// receiverSender POSTs a receiver's CloudEvents as they were queued.
func receiverSender(r Receiver, source string) (sender, error) {
	n, err := webhook.New(webhook.Config{URL: r.URL, Secret: r.Secret, Timeout: r.Timeout}, source, nil)
	if err != nil {
		return nil, fmt.Errorf("receiver %s: %w", r.Name, err)
	}
	return func(ctx context.Context, o outboxRow) (bool, error) {
		retry, err := n.Post(ctx, o.Body)
		if err != nil {
			err = fmt.Errorf("receiver %s: %w", r.Name, err)
		}
		return retry, err
	}, nil
}

// envelope wraps an alarm event in a CloudEvents message, its message said
// in the receiver's language.
func envelope(source string, lang i18n.Lang, e protocol.AlarmEvent) ([]byte, error) {
	if e.Facts != nil && lang != i18n.ZH {
		e.Message = i18n.Render(lang, e)
	}
	ce := CloudEvent{
		SpecVersion: "1.0", ID: e.ID, Source: source + "/" + e.Site, Type: CloudEventType(e.Type),
		Subject: e.AlarmID, Time: e.TS, DataContentType: "application/json", Data: e,
	}
	b, err := json.Marshal(ce)
	if err != nil {
		return nil, fmt.Errorf("encode CloudEvent %s: %w", e.ID, err)
	}
	return b, nil
}
