// Package dingtalk is the notification channel to a DingTalk group through
// its custom robot (自定义机器人): a markdown message that @-mentions the
// recipients by DingTalk user id or mobile number, signed as the robot's
// 加签 security setting requires (timestamp and the base64 HMAC-SHA256 of
// "timestamp\nsecret" in the query).
package dingtalk

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting/notify"
)

// DefaultURL is the robots' send endpoint.
const DefaultURL = "https://oapi.dingtalk.com/robot/send"

// Config is one group's robot.
type Config struct {
	// URL is the send endpoint (default DefaultURL); tests and proxies
	// override it.
	URL string `yaml:"url" json:"url,omitempty"`
	// AccessToken is the access_token of the robot's webhook address.
	AccessToken string `yaml:"access_token" json:"-"`
	// Secret is the robot's 加签 secret (SEC…); empty when the robot is
	// secured by keywords or IP addresses instead.
	Secret string `yaml:"secret" json:"-"`
	// Lang is the group's language, zh (default) or en.
	Lang string `yaml:"lang" json:"lang,omitempty"`
	// Timeout bounds one POST (default 10 s).
	Timeout time.Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// Notifier sends to one group.
type Notifier struct {
	cfg    Config
	client *http.Client
	host   string
	// Now is the clock of the signature's timestamp; DingTalk refuses
	// one more than an hour off.
	Now func() time.Time
}

// New checks a robot's config; client nil takes notify.NewHTTPClient.
func New(cfg Config, client *http.Client) (*Notifier, error) {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	host, ok := notify.RobotEndpoint(cfg.URL)
	if !ok {
		return nil, errors.New("dingtalk: url must be an http(s) URL without query; put the token in access_token")
	}
	if cfg.AccessToken == "" {
		return nil, errors.New("dingtalk: access_token is required (the access_token= of the robot's webhook address)")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Lang == "" {
		cfg.Lang = "zh"
	}
	if client == nil {
		client = notify.NewHTTPClient()
	}
	return &Notifier{cfg: cfg, client: client, host: host, Now: time.Now}, nil
}

// Sign returns the sign parameter for a timestamp in milliseconds.
func Sign(secret string, timestampMillis int64) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestampMillis, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Payload is the robot's markdown message.
type Payload struct {
	MsgType  string   `json:"msgtype"`
	Markdown Markdown `json:"markdown"`
	At       At       `json:"at"`
}

// Markdown is the message's body; Title shows in the notification.
type Markdown struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// At lists who is @-mentioned; each must also appear as @id in the text.
type At struct {
	AtMobiles []string `json:"atMobiles,omitempty"`
	AtUserIDs []string `json:"atUserIds,omitempty"`
	IsAtAll   bool     `json:"isAtAll"`
}

// Payload renders a message for the group.
func (n *Notifier) Payload(m *notify.Message) Payload {
	t := notify.Render(m, n.cfg.Lang)
	var b strings.Builder
	b.WriteString("### " + t.Title + "\n\n")
	for _, l := range t.Lines {
		b.WriteString(l + "\n\n")
	}
	p := Payload{MsgType: "markdown", Markdown: Markdown{Title: t.Title}}
	for _, r := range m.To {
		switch {
		case r.DingTalk != "":
			p.At.AtUserIDs = append(p.At.AtUserIDs, r.DingTalk)
			b.WriteString("@" + r.DingTalk + " ")
		case r.Phone != "":
			p.At.AtMobiles = append(p.At.AtMobiles, r.Phone)
			b.WriteString("@" + r.Phone + " ")
		}
	}
	// The robot takes up to 20000 bytes of text.
	p.Markdown.Text = notify.Truncate(strings.TrimSpace(b.String()), 18000)
	return p
}

// Notify sends the message; DingTalk's errcode 130101 (too fast, more
// than 20 a minute) and -1 (busy) are retried, others are final.
func (n *Notifier) Notify(ctx context.Context, m *notify.Message) (bool, error) {
	body, err := json.Marshal(n.Payload(m))
	if err != nil {
		return false, err
	}
	q := url.Values{"access_token": {n.cfg.AccessToken}}
	if n.cfg.Secret != "" {
		ts := n.Now().UnixMilli()
		q.Set("timestamp", strconv.FormatInt(ts, 10))
		q.Set("sign", Sign(n.cfg.Secret, ts))
	}
	return notify.PostJSON(ctx, n.client, n.cfg.Timeout, n.cfg.URL+"?"+q.Encode(), "DingTalk robot "+n.host, body, 130101, -1)
}
