// Package email is the notification channel to people's mailboxes over
// SMTP (STARTTLS or implicit TLS, AUTH PLAIN), one message per recipient in
// the recipient's language. SMTP's own answers decide the retry: a 4xx
// (mailbox busy, greylisting, server shutting down) or a broken connection
// is tried again, a 5xx (no such mailbox, relaying refused) is final.
package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/hazardwatch/hazardwatch/alerting/notify"
)

// Config is the mail server messages are submitted to.
type Config struct {
	// Smarthost is the submission server, host:port (587 for STARTTLS,
	// 465 for implicit TLS).
	Smarthost string `yaml:"smarthost" json:"smarthost"`
	// From is the sender, e.g. "HazardWatch <alarm@example.gov.cn>".
	From string `yaml:"from" json:"from"`
	// TLS is starttls (default), tls (implicit, port 465) or none (only
	// for a relay on this host: credentials never go in the clear).
	TLS string `yaml:"tls" json:"tls"`
	// CAFile verifies a server whose certificate a private CA signed;
	// empty uses the system's roots.
	CAFile string `yaml:"ca_file" json:"ca_file,omitempty"`
	// Username and Password log in with AUTH PLAIN; empty sends without.
	// PasswordFile reads the password from a file instead, keeping it out
	// of this config.
	Username     string `yaml:"username" json:"username,omitempty"`
	Password     string `yaml:"password" json:"-"`
	PasswordFile string `yaml:"password_file" json:"password_file,omitempty"`
	// Timeout bounds one submission, connect to QUIT (default 30 s).
	Timeout time.Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// Notifier submits messages to one server.
type Notifier struct {
	cfg  Config
	from *mail.Address
	host string
	tls  *tls.Config
	// Now stamps the Date header.
	Now func() time.Time
}

// New checks the config and reads the password and CA files.
func New(cfg Config) (*Notifier, error) {
	host, _, err := net.SplitHostPort(cfg.Smarthost)
	if err != nil || host == "" {
		return nil, fmt.Errorf("email: smarthost %q is not host:port", cfg.Smarthost)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("email: from %q is not an address: %w", cfg.From, err)
	}
	if cfg.TLS == "" {
		cfg.TLS = "starttls"
	}
	switch cfg.TLS {
	case "starttls", "tls":
	case "none":
		if cfg.Username != "" && !isLoopback(host) {
			return nil, fmt.Errorf("email: tls none would send the password to %s in the clear; use starttls or tls", host)
		}
	default:
		return nil, fmt.Errorf("email: tls %q is not starttls, tls or none", cfg.TLS)
	}
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("email: password file: %w", err)
		}
		cfg.Password = strings.TrimRight(string(b), "\r\n")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("email: ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("email: ca_file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	return &Notifier{cfg: cfg, from: from, host: cfg.Smarthost, tls: tc, Now: time.Now}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Notify sends one mail to each recipient of m that has an address; the
// first failure stops and is reported (a retry resends to all: the
// Message-ID lets mail clients fold the repeat).
func (n *Notifier) Notify(ctx context.Context, m *notify.Message) (bool, error) {
	var to []notify.Recipient
	for _, r := range m.To {
		if r.Email != "" {
			to = append(to, r)
		}
	}
	if len(to) == 0 {
		return false, fmt.Errorf("email to %s: %w", names(m.To), notify.ErrNoAddress)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	c, err := n.dial(ctx)
	if err != nil {
		return classify(n.host, "connect", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.CommandTimeout, c.SubmissionTimeout = time.Until(dl), time.Until(dl)
	}
	if n.cfg.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", n.cfg.Username, n.cfg.Password)); err != nil {
			return classify(n.host, "AUTH", err)
		}
	}
	for _, r := range to {
		msg := n.compose(m, r)
		if err := c.SendMail(n.from.Address, []string{r.Email}, bytes.NewReader(msg)); err != nil {
			return classify(n.host, "mail to "+r.Email, err)
		}
	}
	if err := c.Quit(); err != nil {
		return classify(n.host, "QUIT", err)
	}
	return false, nil
}

func (n *Notifier) dial(ctx context.Context) (*smtp.Client, error) {
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", n.cfg.Smarthost)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if n.cfg.TLS == "tls" {
		tc := tls.Client(conn, n.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return smtp.NewClient(tc), nil
	}
	if n.cfg.TLS == "starttls" {
		// Says EHLO, checks that STARTTLS is offered and upgrades.
		c, err := smtp.NewClientStartTLS(conn, n.tls)
		if err != nil {
			conn.Close()
			return nil, err
		}
		return c, nil
	}
	return smtp.NewClient(conn), nil
}

// classify: a 4xx answer or a broken connection may pass, a 5xx will not.
func classify(host, what string, err error) (bool, error) {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code >= 400 && se.Code < 500, fmt.Errorf("email: %s: %s: %d %s", host, what, se.Code, se.Message)
	}
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		return false, fmt.Errorf("email: %s: %s: %w (set ca_file for a private CA)", host, what, err)
	}
	if strings.Contains(err.Error(), "doesn't support STARTTLS") {
		return false, fmt.Errorf("email: %s offers no STARTTLS; set tls: tls for port 465, or fix the server", host)
	}
	return true, fmt.Errorf("email: %s: %s: %w", host, what, err)
}

// compose writes the RFC 5322 message for one recipient.
func (n *Notifier) compose(m *notify.Message, r notify.Recipient) []byte {
	t := notify.Render(m, r.Lang)
	var b bytes.Buffer
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("From", n.from.String())
	h("To", (&mail.Address{Name: r.Name, Address: r.Email}).String())
	h("Subject", mime.BEncoding.Encode("utf-8", t.Title))
	h("Date", n.Now().Format(time.RFC1123Z))
	h("Message-ID", "<"+m.ID+"."+base64.RawURLEncoding.EncodeToString([]byte(r.Email))+"@hazardwatch>")
	if m.Incident != "" {
		h("X-HazardWatch-Incident", m.Incident)
	}
	h("X-HazardWatch-Grade", m.Grade.String())
	h("Auto-Submitted", "auto-generated")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "base64")
	b.WriteString("\r\n")
	body := base64.StdEncoding.EncodeToString([]byte(t.Title + "\n\n" + t.Body() + "\n"))
	for len(body) > 76 {
		b.WriteString(body[:76] + "\r\n")
		body = body[76:]
	}
	b.WriteString(body + "\r\n")
	return b.Bytes()
}

func names(rs []notify.Recipient) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return strings.Join(out, ", ")
}
