// Package webhook is the notification channel that POSTs signed CloudEvents
// (structured JSON mode) to a receiver: the emergency command platform, or
// the operator's SMS gateway, which gets one event per person with the
// mobile number and the text to send.
package webhook

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
	"time"

	"github.com/hazardwatch/hazardwatch/alerting/notify"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// Config is a webhook receiver.
type Config struct {
	URL string `yaml:"url" json:"url"`
	// Secret signs each body (HMAC-SHA256 in SignatureHeader); empty sends
	// no signature.
	Secret string `yaml:"secret" json:"-"`
	// Timeout bounds one POST (default 10 s).
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
}

// DefaultTimeout bounds one POST.
const DefaultTimeout = 10 * time.Second

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
// with the receiver's secret.
const SignatureHeader = "X-HazardWatch-Signature"

// ContentType is the content type of a structured CloudEvents message in
// JSON.
const ContentType = "application/cloudevents+json; charset=utf-8"

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

// CloudEvent is the CloudEvents 1.0 structured envelope; Data is the alarm
// or incident event, or a Notification.
type CloudEvent[T any] struct {
	SpecVersion     string        `json:"specversion"`
	ID              string        `json:"id"`
	Source          string        `json:"source"`
	Type            string        `json:"type"`
	Subject         string        `json:"subject"`
	Time            protocol.Time `json:"time"`
	DataContentType string        `json:"datacontenttype"`
	Data            T             `json:"data"`
}

// NotificationType prefixes the CloudEvents type of a message to people,
// e.g. cn.hazardwatch.notification.escalation.
const NotificationType = "cn.hazardwatch.notification."

// Notification is the data of a message to people: the message with its
// text rendered for the (first) recipient, so an SMS gateway need only
// send Text to Phone.
type Notification struct {
	*notify.Message
	Phone string `json:"phone,omitempty"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

// Notifier POSTs messages to one receiver.
type Notifier struct {
	cfg    Config
	source string
	client *http.Client
	// host names the receiver in errors: its URL without query (which
	// may hold a key) and without user info.
	host string
}

// New checks a receiver; source prefixes the CloudEvents source of
// notifications ("/hazardwatch"), client nil takes notify.NewHTTPClient.
func New(cfg Config, source string, client *http.Client) (*Notifier, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("webhook: url must be an http:// or https:// URL")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if client == nil {
		client = notify.NewHTTPClient()
	}
	if source == "" {
		source = "/hazardwatch"
	}
	return &Notifier{cfg: cfg, source: source, client: client, host: u.Scheme + "://" + u.Host + u.Path}, nil
}

// Body is what Notify POSTs for a message.
func (n *Notifier) Body(m *notify.Message) ([]byte, error) {
	if m.Kind == notify.Event {
		if len(m.Event) == 0 {
			return nil, fmt.Errorf("message %s: event without a body", m.ID)
		}
		return m.Event, nil
	}
	data := Notification{Message: m}
	lang := m.Lang
	if len(m.To) > 0 {
		data.Phone = m.To[0].Phone
		lang = m.To[0].Lang
	}
	t := notify.Render(m, lang)
	data.Title, data.Text = t.Title, t.Title+"\n"+t.Body()
	ce := CloudEvent[Notification]{SpecVersion: "1.0", ID: m.ID, Source: n.source + "/" + m.Site, Type: NotificationType + string(m.Kind),
		Subject: m.Incident, Time: protocol.Time{Time: m.At}, DataContentType: "application/json", Data: data}
	return json.Marshal(ce)
}

// Notify POSTs the message; 2xx is delivered, 5xx, 408, 429 and network
// errors are retried, other answers are final.
func (n *Notifier) Notify(ctx context.Context, m *notify.Message) (bool, error) {
	body, err := n.Body(m)
	if err != nil {
		return false, err
	}
	return n.Post(ctx, body)
}

// Post sends a ready body.
func (n *Notifier) Post(ctx context.Context, body []byte) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("request to %s: %w", n.host, err)
	}
	req.Header.Set("Content-Type", ContentType)
	if n.cfg.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(n.cfg.Secret, body))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("POST %s: %w", n.host, notify.UnwrapURL(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	return notify.RetryStatus(resp.StatusCode), fmt.Errorf("POST %s: %s", n.host, resp.Status)
}
