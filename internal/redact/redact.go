// Package redact removes credentials from text meant for people: log
// lines, error messages, status pages. A URL is shown with its password
// and any secret-looking query value replaced by "xxxxx", so what an
// operator reads (or a process list, or a log shipper) never carries a
// secret.
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces a secret.
const Mask = "xxxxx"

// secretParams are query parameters that carry credentials in the URLs we
// meet: chat robots' access tokens and signatures, InfluxDB and PostgreSQL
// passwords, API keys.
var secretParams = []string{"access_token", "token", "key", "secret", "sign", "signature", "password", "passwd", "pwd", "sslpassword", "auth", "apikey", "api_key", "u", "p"}

// URL returns raw with its password and the values of secret query
// parameters masked. Text that does not parse as a URL is masked from the
// start up to its last '@' (a user:password@ part), or returned whole when
// it has none.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return Mask + raw[i:]
		}
		return raw
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for name := range q {
			if isSecretParam(name) {
				q[name] = []string{Mask}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

func isSecretParam(name string) bool {
	name = strings.ToLower(name)
	for _, s := range secretParams {
		if name == s {
			return true
		}
	}
	return false
}

// HasPassword reports whether raw is a URL carrying a password in its
// user-info part (scheme://user:password@host).
func HasPassword(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return false
	}
	_, has := u.User.Password()
	return has
}
