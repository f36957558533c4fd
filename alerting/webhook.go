package alerting

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/internal/redact"
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
const SignatureHeader = "X-HazardWatch-Signature"

// CloudEventContentType is the content type of a structured CloudEvents
// message in JSON.
const CloudEventContentType = "application/cloudevents+json; charset=utf-8"

// CloudEvent is the CloudEvents 1.0 structured envelope POSTed to
// receivers; Data is the alarm event.
type CloudEvent struct {
	SpecVersion     string              `json:"specversion"`
	ID              string              `json:"id"`
	Source          string              `json:"source"`
	Type            string              `json:"type"`
	Subject         string              `json:"subject"`
	Time            protocol.Time       `json:"time"`
	DataContentType string              `json:"datacontenttype"`
	Data            protocol.AlarmEvent `json:"data"`
}

// CloudEventType is the CloudEvents type of an alarm event type, e.g.
// cn.hazardwatch.alarm.raised.
func CloudEventType(t protocol.AlarmEventType) string { return "cn.hazardwatch.alarm." + string(t) }

// Sign returns the SignatureHeader value of a body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a SignatureHeader value in constant time.
func VerifySignature(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

func (r *Receiver) withDefaults() error {
	if r.Name == "" || r.URL == "" {
		return fmt.Errorf("receiver %q: name and url are required", r.Name)
	}
	if !r.MinGrade.Valid() {
		return fmt.Errorf("receiver %s: invalid min_grade", r.Name)
	}
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

func (r *Receiver) backoff(attempts int) time.Duration {
	d := r.MinBackoff
	for i := 1; i < attempts && d < r.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.MaxBackoff)
}

// permanentError is a receiver's answer that retrying cannot change (4xx
// other than 408 and 429).
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }

// deliverer POSTs one receiver's outbox rows strictly in order, so events
// of one alarm arrive in order; a receiver that is down holds its queue.
type deliverer struct {
	rcv     Receiver
	store   *store
	client  *http.Client
	log     *zap.Logger
	metrics *metrics
	wake    chan struct{}
}

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
		rows, err := d.store.pending(ctx, d.rcv.Name, batch)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("read outbox", zap.Error(err))
			}
			d.sleep(ctx, d.rcv.MinBackoff)
			continue
		}
		if len(rows) == 0 {
			d.sleep(ctx, 5*time.Second)
			continue
		}
		for _, o := range rows {
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
	err := d.post(ctx, o.Body)
	now := time.Now()
	if err == nil {
		d.metrics.delivered.WithLabelValues(d.rcv.Name).Inc()
		if err := d.store.delivered(ctx, o.Seq); err != nil {
			d.log.Error("mark delivered", zap.String("event_id", o.EventID), zap.Error(err))
			return false
		}
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	d.metrics.deliveryFailures.WithLabelValues(d.rcv.Name).Inc()
	if perm := (permanentError{}); errors.As(err, &perm) {
		d.log.Error("receiver refused an alarm event for good; moved to dead letters",
			zap.String("event_id", o.EventID), zap.String("alarm_id", o.AlarmID), zap.Error(err))
		if err := d.store.giveUp(ctx, o, now, err.Error()); err != nil {
			d.log.Error("dead letter", zap.Error(err))
			return false
		}
		return true
	}
	attempts := o.Attempts + 1
	next := now.Add(d.rcv.backoff(attempts))
	d.log.Warn("alarm event delivery failed; will retry", zap.String("event_id", o.EventID),
		zap.String("alarm_id", o.AlarmID), zap.Int("attempts", attempts), zap.Time("next_try", next), zap.Error(err))
	if err := d.store.retryLater(ctx, o.Seq, attempts, next, err.Error()); err != nil {
		d.log.Error("reschedule delivery", zap.Error(err))
	}
	return false
}

func (d *deliverer) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, d.rcv.Timeout)
	defer cancel()
	// Errors name the URL masked: a receiver's URL may carry its token.
	shown := redact.URL(d.rcv.URL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.rcv.URL, bytes.NewReader(body))
	if err != nil {
		return permanentError{fmt.Errorf("receiver %s: request to %s: %w", d.rcv.Name, shown, unwrapURLError(err))}
	}
	req.Header.Set("Content-Type", CloudEventContentType)
	if d.rcv.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(d.rcv.Secret, body))
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("receiver %s: POST %s: %w", d.rcv.Name, shown, unwrapURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return permanentError{fmt.Errorf("receiver %s: POST %s: %s", d.rcv.Name, shown, resp.Status)}
	default:
		return fmt.Errorf("receiver %s: POST %s: %s", d.rcv.Name, shown, resp.Status)
	}
}

// unwrapURLError drops the *url.Error around err, whose text repeats the
// URL unmasked.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
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

// envelope wraps an alarm event in a CloudEvents message.
func envelope(source string, e protocol.AlarmEvent) ([]byte, error) {
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
