package access

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Account is a person who logs in to the console and the API.
type Account struct {
	// Name is the login, recorded with every action: letters, digits and
	// . _ - only, unique.
	Name string `yaml:"name"`
	// Display is the person's name for screens, e.g. 王丽.
	Display string `yaml:"display"`
	Role    Role   `yaml:"role"`
	Scope   Scope  `yaml:"scope"`
	// PasswordHash is a bcrypt hash ($2a$/$2b$/$2y$…), as `hazardwatch
	// passwd` prints it. Never the password itself.
	PasswordHash string `yaml:"password_hash"`
	// Disabled refuses logins and ends the account's sessions.
	Disabled bool `yaml:"disabled"`
	// SessionTTL overrides session.ttl for this account: longer for a
	// wall screen's viewer account, shorter for an admin.
	SessionTTL time.Duration `yaml:"session_ttl"`
}

// Token is a machine's API token, stored as its SHA-256 hash.
type Token struct {
	// Name identifies the machine (grafana, prometheus, command-platform)
	// and is what its actions are recorded under.
	Name  string `yaml:"name"`
	Role  Role   `yaml:"role"`
	Scope Scope  `yaml:"scope"`
	// Hash is "sha256:" and the hex SHA-256 of the token, as `hazardwatch
	// passwd -token` prints it.
	Hash string `yaml:"hash"`
	// Token is refused: tokens are no longer stored in plain text. It is
	// here only to say so clearly.
	Token string `yaml:"token"`
}

// Session tunes console sessions.
type Session struct {
	// TTL is how long a login lasts (default 12h, one shift).
	TTL time.Duration `yaml:"ttl"`
	// SecureCookie marks the cookie Secure even when the request did not
	// come over TLS: set it when a TLS proxy stands in front of the centre.
	SecureCookie bool `yaml:"secure_cookie"`
	// MaxSessions bounds the sessions held in memory (default 10000); the
	// oldest is ended when a login would exceed it.
	MaxSessions int `yaml:"max_sessions"`
}

// Config is who may use the centre.
type Config struct {
	Accounts []Account `yaml:"accounts"`
	Tokens   []Token   `yaml:"tokens"`
	Session  Session   `yaml:"session"`
}

// DefaultSessionTTL is a shift.
const DefaultSessionTTL = 12 * time.Hour

var loginName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate checks every account and token, naming the bad one.
func (c Config) Validate() error {
	var errs []error
	seen := map[string]string{}
	name := func(kind string, i int, n string) error {
		switch {
		case !loginName.MatchString(n):
			return fmt.Errorf("%s %d: name %q: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", kind, i+1, n)
		case seen[strings.ToLower(n)] != "":
			return fmt.Errorf("%s %d: name %q is taken by %s", kind, i+1, n, seen[strings.ToLower(n)])
		}
		seen[strings.ToLower(n)] = fmt.Sprintf("%s %d", kind, i+1)
		return nil
	}
	for i, a := range c.Accounts {
		if err := name("account", i, a.Name); err != nil {
			errs = append(errs, err)
		}
		if a.Display != "" && strings.TrimSpace(a.Display) == "" {
			errs = append(errs, fmt.Errorf("account %s: display is blank", a.Name))
		}
		if !a.Role.Valid() {
			errs = append(errs, fmt.Errorf("account %s: role %q is not viewer, officer, supervisor or admin", a.Name, a.Role))
		}
		if err := a.Scope.validate(); err != nil {
			errs = append(errs, fmt.Errorf("account %s: %w", a.Name, err))
		}
		if a.SessionTTL < 0 {
			errs = append(errs, fmt.Errorf("account %s: session_ttl %s is negative", a.Name, a.SessionTTL))
		}
		if _, err := bcrypt.Cost([]byte(a.PasswordHash)); err != nil {
			errs = append(errs, fmt.Errorf("account %s: password_hash is not a bcrypt hash (make one with `hazardwatch passwd`)", a.Name))
		}
	}
	for i, t := range c.Tokens {
		if err := name("token", i, t.Name); err != nil {
			errs = append(errs, err)
		}
		if t.Token != "" {
			errs = append(errs, fmt.Errorf("token %d (%s): plain-text tokens are not accepted; put its hash instead: printf %%s TOKEN | hazardwatch passwd -hash-token, or make a new one with hazardwatch passwd -token", i+1, t.Name))
		}
		if !t.Role.Valid() {
			errs = append(errs, fmt.Errorf("token %s: role %q is not viewer, officer, supervisor or admin", t.Name, t.Role))
		}
		if err := t.Scope.validate(); err != nil {
			errs = append(errs, fmt.Errorf("token %s: %w", t.Name, err))
		}
		if h, ok := strings.CutPrefix(t.Hash, "sha256:"); !ok || len(h) != 64 || !isHex(h) {
			errs = append(errs, fmt.Errorf("token %s: hash must be sha256: and 64 hex digits (make one with `hazardwatch passwd -token`)", t.Name))
		}
	}
	if c.Session.TTL < 0 {
		errs = append(errs, fmt.Errorf("session.ttl %s is negative", c.Session.TTL))
	}
	if c.Session.MaxSessions < 0 {
		errs = append(errs, fmt.Errorf("session.max_sessions %d is negative", c.Session.MaxSessions))
	}
	return errors.Join(errs...)
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// PasswordCost is the bcrypt cost of new hashes (about 50-100 ms a check
// on a small server).
const PasswordCost = 11

// MinPasswordLength is the shortest password HashPassword accepts.
const MinPasswordLength = 10

// HashPassword returns the bcrypt hash to put in an account's
// password_hash.
func HashPassword(password string) (string, error) {
	if len(password) < MinPasswordLength {
		return "", fmt.Errorf("password: at least %d characters", MinPasswordLength)
	}
	if len(password) > 72 {
		return "", errors.New("password: at most 72 bytes (bcrypt's limit)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), PasswordCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// HashToken returns the hash of a machine token, as a Token's Hash holds
// it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// NewToken returns a fresh random machine token (256 bits) and its hash.
func NewToken() (token, hash string) {
	token = "hwt_" + randomString(32)
	return token, HashToken(token)
}

// NewPassword returns a random password of 20 characters.
func NewPassword() string { return randomString(15) }

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it panics the process instead)
	return base64.RawURLEncoding.EncodeToString(b)
}
