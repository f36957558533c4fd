// Package wecom is the notification channel to a WeCom (企业微信) group
// through its group robot (群机器人): a text message with the robot's key in
// the webhook address, @-mentioning the recipients by WeCom user id or
// mobile number.
package wecom

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting/notify"
)

// DefaultURL is the group robots' send endpoint.
const DefaultURL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"

// Config is one group's robot.
type Config struct {
	// URL is the send endpoint (default DefaultURL).
	URL string `yaml:"url" json:"url,omitempty"`
	// Key is the key= of the robot's webhook address: whoever has it can
	// post to the group, so keep it like a password.
	Key string `yaml:"key" json:"-"`
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
}

// New checks a robot's config; client nil takes notify.NewHTTPClient.
func New(cfg Config, client *http.Client) (*Notifier, error) {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	host, ok := notify.RobotEndpoint(cfg.URL)
	if !ok {
		return nil, errors.New("wecom: url must be an http(s) URL without query; put the robot's key in key")
	}
	if cfg.Key == "" {
		return nil, errors.New("wecom: key is required (the key= of the robot's webhook address)")
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
	return &Notifier{cfg: cfg, client: client, host: host}, nil
}

// Payload is the robot's text message.
type Payload struct {
	MsgType string `json:"msgtype"`
	Text    Text   `json:"text"`
}

// Text is the message; the robot takes up to 2048 bytes of content.
type Text struct {
	Content             string   `json:"content"`
	MentionedList       []string `json:"mentioned_list,omitempty"`
	MentionedMobileList []string `json:"mentioned_mobile_list,omitempty"`
}

// MaxContent is the robot's limit on a text message's content, in bytes.
const MaxContent = 2048

// Payload renders a message for the group.
func (n *Notifier) Payload(m *notify.Message) Payload {
	t := notify.Render(m, n.cfg.Lang)
	p := Payload{MsgType: "text", Text: Text{Content: notify.Truncate(t.Title+"\n"+t.Body(), MaxContent)}}
	for _, r := range m.To {
		switch {
		case r.WeCom != "":
			p.Text.MentionedList = append(p.Text.MentionedList, r.WeCom)
		case r.Phone != "":
			p.Text.MentionedMobileList = append(p.Text.MentionedMobileList, r.Phone)
		}
	}
	return p
}

// Notify sends the message; WeCom's errcode 45009 (over the rate of 20 a
// minute) and -1 (busy) are retried, others (93000: the key is invalid)
// are final.
func (n *Notifier) Notify(ctx context.Context, m *notify.Message) (bool, error) {
	body, err := json.Marshal(n.Payload(m))
	if err != nil {
		return false, err
	}
	return notify.PostJSON(ctx, n.client, n.cfg.Timeout, n.cfg.URL+"?"+url.Values{"key": {n.cfg.Key}}.Encode(), "WeCom robot "+n.host, body, 45009, -1)
}
