package mqttconn

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Flags are the broker connection flags every HazardWatch binary has, with
// the same names: -broker, -ca, -cert, -key, -username, -password-file.
type Flags struct {
	Broker, CAFile, CertFile, KeyFile, Username, PasswordFile string
}

// RegisterFlags registers the connection flags on fs with the given default
// broker URL and returns where their values land; Flags.Config turns them
// into a Config once fs is parsed.
func RegisterFlags(fs *flag.FlagSet, defaultBroker string) *Flags {
	f := &Flags{}
	usage := "MQTT broker URL: tcp://host:1883, or ssl://host:8883 for TLS (no password in it: use -password-file)"
	if defaultBroker == "" {
		usage += "; empty: the embedded broker"
	}
	fs.StringVar(&f.Broker, "broker", defaultBroker, usage)
	fs.StringVar(&f.CAFile, "ca", "", "CA certificate (PEM) that signed the broker's certificate; default: the system's roots (needs an ssl:// broker)")
	fs.StringVar(&f.CertFile, "cert", "", "client certificate (PEM), for brokers that require one; with -key")
	fs.StringVar(&f.KeyFile, "key", "", "private key (PEM) of -cert")
	fs.StringVar(&f.Username, "username", "", "MQTT user name")
	fs.StringVar(&f.PasswordFile, "password-file", "", "file holding the MQTT password of -username (one line; keep it readable by this service only)")
	return f
}

// Config is the connection configuration of the flags with clientID,
// reading the password file; it is checked as New would.
func (f *Flags) Config(clientID string) (Config, error) {
	c := Config{Broker: f.Broker, ClientID: clientID, Username: f.Username, CAFile: f.CAFile, CertFile: f.CertFile, KeyFile: f.KeyFile}
	if f.PasswordFile != "" {
		if f.Username == "" {
			return c, errors.New("-password-file given without -username")
		}
		pw, err := ReadPasswordFile(f.PasswordFile)
		if err != nil {
			return c, err
		}
		c.Password = pw
	}
	if c.Broker == "" {
		return c, nil // the caller's own default (the demo's embedded broker)
	}
	if err := c.Check(); err != nil {
		return c, err
	}
	return c, nil
}

// ReadPasswordFile reads a password kept in a file: its first line,
// without the line end. An empty password is refused.
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read MQTT password file: %w", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("MQTT password file %s is empty", path)
	}
	return pw, nil
}

// userinfo is the user:password@ part of a URL inside free text.
var userinfo = regexp.MustCompile(`(://[^/\s:@]*):[^/\s@]*@`)

// redactText masks the passwords of the URLs inside s.
func redactText(s string) string {
	return userinfo.ReplaceAllString(s, "${1}:xxxxx@")
}
