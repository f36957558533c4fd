package email

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"mime"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/hazardwatch/hazardwatch/alerting/notify"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// mailbox is a real SMTP server in the test process (go-smtp): STARTTLS,
// AUTH PLAIN required, every accepted message kept.
type mailbox struct {
	mu       sync.Mutex
	got      []received
	rcptCode int // answer RCPT with this code when set
}

type received struct {
	from string
	to   []string
	data []byte
}

type session struct {
	mb   *mailbox
	conn *smtp.Conn
	auth bool
	cur  received
}

func (mb *mailbox) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{mb: mb, conn: c}, nil
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if _, ok := s.conn.TLSConnectionState(); !ok {
			return errors.New("AUTH before TLS")
		}
		if user != "alarm@jh-chem.example" || pass != "p@ss" {
			return &smtp.SMTPError{Code: 535, Message: "bad credentials"}
		}
		s.auth = true
		return nil
	}), nil
}
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if !s.auth {
		return smtp.ErrAuthRequired
	}
	s.cur = received{from: from}
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.mb.mu.Lock()
	code := s.mb.rcptCode
	s.mb.mu.Unlock()
	if code != 0 {
		return &smtp.SMTPError{Code: code, Message: "not now"}
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	s.mb.mu.Lock()
	s.mb.got = append(s.mb.got, s.cur)
	s.mb.mu.Unlock()
	return nil
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

// startMailbox serves SMTP with STARTTLS on a free port; it returns the
// address and the CA file that verifies it.
func startMailbox(t *testing.T) (*mailbox, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	mb := &mailbox{}
	srv := smtp.NewServer(mb)
	srv.Domain = "mail.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return mb, l.Addr().String(), caFile
}

func message() *notify.Message {
	at := time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC)
	return &notify.Message{ID: "3f2a9c", Kind: notify.Escalation, Incident: "jh-chem/nh3-tanks/1", Site: "jh-chem", Source: "nh3-tanks",
		SiteName: "江海化工储运有限公司", SourceName: "液氨储罐区", Grade: protocol.Orange, Opened: at.Add(-30 * time.Minute), At: at,
		Link: "https://hazardwatch.example/#incident=jh-chem%2Fnh3-tanks%2F1",
		To: []notify.Recipient{{Role: notify.Principal, Name: "王建国", Email: "wang.jianguo@jh-chem.example", Lang: "zh"},
			{Role: notify.Principal, Name: "Zhang Wei", Email: "zhang@jh-chem.example", Lang: "en"},
			{Role: notify.Principal, Name: "无邮箱", Phone: "13900000000"}}}
}

func TestMailReachesARealSMTPServerOverSTARTTLS(t *testing.T) {
	mb, addr, ca := startMailbox(t)
	n, err := New(Config{Smarthost: addr, From: "HazardWatch <alarm@jh-chem.example>", CAFile: ca,
		Username: "alarm@jh-chem.example", Password: "p@ss"})
	if err != nil {
		t.Fatal(err)
	}
	if retry, err := n.Notify(context.Background(), message()); err != nil {
		t.Fatalf("notify: %v (retry %v)", err, retry)
	}
	mb.mu.Lock()
	got := mb.got
	mb.mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("%d messages arrived, want 2 (the recipient without e-mail is skipped)", len(got))
	}
	for i, want := range []struct{ to, subject, body string }{
		{"wang.jianguo@jh-chem.example", "【橙色预警·升级】江海化工储运有限公司 液氨储罐区", "已 30 分钟未确认"},
		{"zhang@jh-chem.example", "[orange warning, escalated] 江海化工储运有限公司 液氨储罐区", "Unacknowledged for 30 min"},
	} {
		r := got[i]
		if r.from != "alarm@jh-chem.example" || len(r.to) != 1 || r.to[0] != want.to {
			t.Errorf("message %d: from %s to %v", i, r.from, r.to)
		}
		m, err := mail.ReadMessage(strings.NewReader(string(r.data)))
		if err != nil {
			t.Fatalf("message %d is not RFC 5322: %v", i, err)
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if err != nil || subject != want.subject {
			t.Errorf("message %d: subject %q, want %q", i, subject, want.subject)
		}
		if m.Header.Get("X-HazardWatch-Incident") != "jh-chem/nh3-tanks/1" || !strings.HasPrefix(m.Header.Get("Message-Id"), "<3f2a9c.") {
			t.Errorf("message %d: headers %v", i, m.Header)
		}
		body, _ := io.ReadAll(m.Body)
		text, err := decodeBase64Lines(string(body))
		if err != nil || !strings.Contains(text, want.body) || !strings.Contains(text, "https://hazardwatch.example/") {
			t.Errorf("message %d: body %q (%v), want %q and the console link", i, text, err, want.body)
		}
	}
}

func TestMailRetryFollowsSMTPAnswers(t *testing.T) {
	mb, addr, ca := startMailbox(t)
	cfg := Config{Smarthost: addr, From: "alarm@jh-chem.example", CAFile: ca, Username: "alarm@jh-chem.example", Password: "p@ss"}
	n, _ := New(cfg)
	mb.mu.Lock()
	mb.rcptCode = 451
	mb.mu.Unlock()
	if retry, err := n.Notify(context.Background(), message()); err == nil || !retry || !strings.Contains(err.Error(), "451") {
		t.Errorf("451: retry %v err %v, want a retry", retry, err)
	}
	mb.mu.Lock()
	mb.rcptCode = 550
	mb.mu.Unlock()
	if retry, err := n.Notify(context.Background(), message()); err == nil || retry {
		t.Errorf("550: retry %v err %v, want final", retry, err)
	}
	bad := cfg
	bad.Password = "wrong"
	nb, _ := New(bad)
	if retry, err := nb.Notify(context.Background(), message()); err == nil || retry || strings.Contains(err.Error(), "wrong") {
		t.Errorf("bad password: retry %v err %v, want final, without the password", retry, err)
	}
	untrusted := cfg
	untrusted.CAFile = ""
	nu, _ := New(untrusted)
	if retry, err := nu.Notify(context.Background(), message()); err == nil || retry || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("unknown CA: retry %v err %v, want a final error naming ca_file", retry, err)
	}
	if retry, err := n.Notify(context.Background(), &notify.Message{ID: "x", To: []notify.Recipient{{Name: "无邮箱"}}}); !errors.Is(err, notify.ErrNoAddress) || retry {
		t.Errorf("nobody with an address: %v %v", retry, err)
	}
	dead := cfg
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead.Smarthost = l.Addr().String()
	l.Close()
	nd, _ := New(dead)
	if retry, err := nd.Notify(context.Background(), message()); err == nil || !retry {
		t.Errorf("server down: retry %v err %v, want a retry", retry, err)
	}
}

func TestMailConfigChecked(t *testing.T) {
	for _, c := range []Config{
		{Smarthost: "mail.example", From: "a@b.c"},
		{Smarthost: "mail.example:587", From: "nobody"},
		{Smarthost: "mail.example:25", From: "a@b.c", TLS: "none", Username: "u", Password: "p"},
		{Smarthost: "mail.example:25", From: "a@b.c", TLS: "ssl"},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := New(Config{Smarthost: "127.0.0.1:25", From: "a@b.c", TLS: "none", Username: "u"}); err != nil {
		t.Errorf("a local relay without TLS: %v", err)
	}
}

func decodeBase64Lines(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(s))
	return string(b), err
}
