package main

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/hazardwatch/hazardwatch/internal/access"
)

// TestPasswd: the subcommand prints a bcrypt hash of the password read
// from standard input, or a fresh token with the hash the alerting file
// holds; a short or missing password is refused.
func TestPasswd(t *testing.T) {
	run := func(stdin string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := dispatchIn(append([]string{"passwd"}, args...), strings.NewReader(stdin), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, _ := run("a password of the officer\n")
	if code != 0 || bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(out)), []byte("a password of the officer")) != nil {
		t.Fatalf("passwd: %d %q", code, out)
	}
	if code, _, errOut := run("short\n"); code == 0 || !strings.Contains(errOut, "at least") {
		t.Errorf("a short password: %d %q", code, errOut)
	}
	if code, _, _ := run(""); code == 0 {
		t.Error("nothing on standard input accepted")
	}
	code, out, _ = run("", "-token")
	var tok, hash string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "token: "); ok {
			tok = v
		}
		if v, ok := strings.CutPrefix(line, "hash:"); ok {
			hash = strings.TrimSpace(v)
		}
	}
	if code != 0 || tok == "" || hash != access.HashToken(tok) {
		t.Fatalf("passwd -token: %d %q", code, out)
	}
	if code, out, _ := run(tok+"\n", "-hash-token"); code != 0 || strings.TrimSpace(out) != hash {
		t.Errorf("passwd -hash-token: %d %q, want %s", code, out, hash)
	}
	code, out, _ = run("", "-generate")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("passwd -generate: %d %q", code, out)
	}
	pw := strings.TrimSpace(strings.TrimPrefix(lines[0], "password:"))
	h := strings.TrimSpace(strings.TrimPrefix(lines[1], "password_hash:"))
	if bcrypt.CompareHashAndPassword([]byte(h), []byte(pw)) != nil || len(pw) < access.MinPasswordLength {
		t.Errorf("passwd -generate: password %q does not match hash %q", pw, h)
	}
}
