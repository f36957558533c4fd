// Package brokerconf writes what a Mosquitto broker secured for HazardWatch
// needs, from the site files: a password file with one account per
// gateway, the centre and the viewers; an ACL that lets each gateway write
// only its own telemetry and state and read only its own
// acknowledgements, the centre read telemetry and state, write alarms and
// grades and read and write acknowledgements, and viewers only read; each account's password in a file of its own for the
// client's -password-file; and, when asked, a certificate authority and
// the broker's TLS certificate. Running it again keeps the passwords and
// certificates already made, so adding a site does not log the others out.
package brokerconf

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
)

// Defaults of Options.
const (
	DefaultCentre = "hazardwatch-centre"
	DefaultViewer = "hazardwatch-viewer"
)

// Options say which accounts to make.
type Options struct {
	Sites []*site.Site
	// Centre is the centre's account (every ingest node and its alerting
	// publisher log in with it); default hazardwatch-centre.
	Centre string
	// Viewers are read-only accounts (wall displays, a command platform's
	// MQTT bridge); nil: one, hazardwatch-viewer.
	Viewers []string
	// TLSHosts, when not empty, makes a CA (kept in tls/ca.key) and a
	// server certificate for these host names and IP addresses.
	TLSHosts []string
}

// Account is one MQTT login.
type Account struct {
	User string
	Role string // gateway, centre or viewer
	// SecretFile is the path, under the output directory, of the file
	// holding its password (for the client's -password-file).
	SecretFile string
	// Site and Gateway of a gateway's account.
	Site, Gateway string
}

// GatewayUser is the MQTT user name of a gateway: site/gateway (ids hold
// no '/', so two gateways never share a name).
func GatewayUser(siteID, gatewayID string) string { return siteID + "/" + gatewayID }

// Accounts lists the accounts of o, gateways first, sorted.
func Accounts(o Options) ([]Account, error) {
	o.defaults()
	var out []Account
	seen := map[string]bool{}
	add := func(a Account) error {
		if err := checkUser(a.User); err != nil {
			return err
		}
		if seen[a.User] {
			return fmt.Errorf("account %q is named twice (site %q?)", a.User, a.Site)
		}
		seen[a.User] = true
		out = append(out, a)
		return nil
	}
	sites := append([]*site.Site(nil), o.Sites...)
	sort.Slice(sites, func(i, j int) bool { return sites[i].ID < sites[j].ID })
	for _, s := range sites {
		for _, g := range s.Gateways {
			if err := add(Account{User: GatewayUser(s.ID, g.ID), Role: "gateway", Site: s.ID, Gateway: g.ID,
				SecretFile: filepath.Join("secrets", "gateways", s.ID, g.ID)}); err != nil {
				return nil, err
			}
		}
	}
	if err := add(Account{User: o.Centre, Role: "centre", SecretFile: filepath.Join("secrets", o.Centre)}); err != nil {
		return nil, err
	}
	for _, v := range o.Viewers {
		if err := add(Account{User: v, Role: "viewer", SecretFile: filepath.Join("secrets", v)}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (o *Options) defaults() {
	if o.Centre == "" {
		o.Centre = DefaultCentre
	}
	if o.Viewers == nil {
		o.Viewers = []string{DefaultViewer}
	}
}

// checkUser refuses names Mosquitto's files cannot hold or that would
// escape the secrets directory.
func checkUser(u string) error {
	switch {
	case u == "":
		return errors.New("an account without a name")
	case strings.ContainsAny(u, ": \t\r\n#+\\"):
		return fmt.Errorf("account name %q: no ':', '#', '+', '\\' or white space", u)
	case strings.Contains(u, ".."):
		return fmt.Errorf("account name %q: no '..'", u)
	}
	return nil
}

// ACL is the Mosquitto acl_file of the accounts. Nothing is allowed that is
// not written here: an account without a line can neither read nor write.
func ACL(accounts []Account) string {
	var b strings.Builder
	b.WriteString("# Mosquitto ACL for HazardWatch, written by `hazardwatch broker-config`\n" +
		"# from the site files. Do not edit: run it again after changing a site file.\n" +
		"# Anonymous clients get nothing (the broker also refuses them).\n")
	p := protocol.Prefix
	for _, a := range accounts {
		fmt.Fprintf(&b, "\n# %s\nuser %s\n", a.Role, a.User)
		switch a.Role {
		case "gateway":
			// Its two topics, not .../#: the ack beside them is the
			// centre's, read back by the centre, and must not be forged.
			own := p + a.Site + "/" + a.Gateway
			fmt.Fprintf(&b, "topic write %s/telemetry\n", own)
			fmt.Fprintf(&b, "topic write %s/state\n", own)
			fmt.Fprintf(&b, "topic read %s/ack\n", own)
		case "centre":
			fmt.Fprintf(&b, "topic read %s+/+/telemetry\n", p)
			fmt.Fprintf(&b, "topic read %s+/+/state\n", p)
			fmt.Fprintf(&b, "topic write %s+/alarms\n", p)
			fmt.Fprintf(&b, "topic write %s+/sources/+/grade\n", p)
			// Read too: the centre takes its retained acks back at connect.
			fmt.Fprintf(&b, "topic readwrite %s+/+/ack\n", p)
		case "viewer":
			fmt.Fprintf(&b, "topic read %s#\n", p)
		}
	}
	return b.String()
}

// Result says what Generate wrote.
type Result struct {
	Accounts []Account
	// Created are the accounts whose passwords were made now (the others
	// kept theirs).
	Created []string
}

// Generate writes into dir: acl, passwd (Mosquitto's password file), the
// accounts' passwords under secrets/, and with TLSHosts the certificates
// under tls/. Passwords and certificates present from an earlier run are
// kept.
func Generate(dir string, o Options) (Result, error) {
	accounts, err := Accounts(o)
	if err != nil {
		return Result{}, err
	}
	res := Result{Accounts: accounts}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	var passwd strings.Builder
	for _, a := range accounts {
		pw, created, err := secret(filepath.Join(dir, a.SecretFile))
		if err != nil {
			return res, fmt.Errorf("password of %s: %w", a.User, err)
		}
		if created {
			res.Created = append(res.Created, a.User)
		}
		line, err := PasswdLine(a.User, pw)
		if err != nil {
			return res, err
		}
		passwd.WriteString(line + "\n")
	}
	if err := writeFile(filepath.Join(dir, "passwd"), passwd.String(), 0o600); err != nil {
		return res, err
	}
	if err := writeFile(filepath.Join(dir, "acl"), ACL(accounts), 0o644); err != nil {
		return res, err
	}
	if len(o.TLSHosts) > 0 {
		if err := writeTLS(filepath.Join(dir, "tls"), o.TLSHosts); err != nil {
			return res, fmt.Errorf("tls: %w", err)
		}
	}
	return res, nil
}

// secret reads the password kept at path, or makes and writes a new one.
func secret(path string) (pw string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		pw = strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return "", false, fmt.Errorf("%s is empty: delete it to make a new password", path)
		}
		return pw, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", false, err
	}
	pw = base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, err
	}
	if err := writeFile(path, pw+"\n", 0o600); err != nil {
		return "", false, err
	}
	return pw, true, nil
}

// passwdIterations is Mosquitto 2's default for its PBKDF2-SHA512 hashes;
// the passwords made here are random, 192 bits, so more would buy nothing.
const passwdIterations = 101

// PasswdLine is the Mosquitto password-file line of user with password, as
// mosquitto_passwd writes it: user:$7$iterations$salt$hash (PBKDF2-SHA512).
func PasswdLine(user, password string) (string, error) {
	salt := make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := pbkdf2.Key(sha512.New, password, salt, passwdIterations, sha512.Size)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s:$7$%d$%s$%s", user, passwdIterations,
		base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(key)), nil
}

// writeFile replaces path atomically, so a broker never reads half a file.
func writeFile(path, content string, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
