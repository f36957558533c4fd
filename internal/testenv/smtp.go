package testenv

import (
	"io"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one message an SMTP server in the test received.
type Mail struct {
	From string
	To   []string
	Msg  *mail.Message
	Raw  []byte
}

// Mailbox is a real SMTP server (github.com/emersion/go-smtp) in the test
// process on a free loopback port, without TLS or AUTH (set the client's
// tls: none); it keeps every message it accepts.
type Mailbox struct {
	Addr string
	mu   sync.Mutex
	got  []Mail
}

// SMTP starts a Mailbox; it stops with the test.
func SMTP(t testing.TB) *Mailbox {
	t.Helper()
	mb := &Mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{mb: mb}, nil }))
	srv.Domain = "mail.test"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.Addr = l.Addr().String()
	go srv.Serve(l) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return mb
}

// Mails returns the messages received so far.
func (mb *Mailbox) Mails() []Mail {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]Mail(nil), mb.got...)
}

// To returns the messages received for one address.
func (mb *Mailbox) To(addr string) []Mail {
	var out []Mail
	for _, m := range mb.Mails() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
			}
		}
	}
	return out
}

type mailSession struct {
	mb  *Mailbox
	cur Mail
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.cur = Mail{From: from}
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(strings.NewReader(string(b)))
	if err != nil {
		return &smtp.SMTPError{Code: 554, Message: "not an RFC 5322 message: " + err.Error()}
	}
	s.cur.Msg, s.cur.Raw = m, b
	s.mb.mu.Lock()
	s.mb.got = append(s.mb.got, s.cur)
	s.mb.mu.Unlock()
	return nil
}

func (s *mailSession) Reset()        { s.cur = Mail{} }
func (s *mailSession) Logout() error { return nil }
