package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/hazardwatch/hazardwatch/internal/access"
)

// passwd prints what goes into the accounts and tokens of an alerting
// file: a password's bcrypt hash, or a new API token and its hash. The
// secret comes from standard input, never from the command line (which
// every user of the machine can read in the process list).
func passwd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hazardwatch passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	generate := fs.Bool("generate", false, "make a random password and print it with its hash")
	token := fs.Bool("token", false, "make a random API token and print it with its hash")
	hashToken := fs.Bool("hash-token", false, "print the hash of the API token read from standard input")
	fs.Usage = func() {
		_, _ = io.WriteString(stderr, `usage: hazardwatch passwd [-generate | -token | -hash-token] [< secret]

Without a flag it reads a password (one line) from standard input and prints
its bcrypt hash for an account's password_hash, e.g.
  read -rs PW && printf '%s\n' "$PW" | hazardwatch passwd
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case *token:
		tok, hash := access.NewToken()
		fmt.Fprintf(stdout, "token: %s\nhash:  %s\n", tok, hash)
		fmt.Fprintln(stderr, "Give the token to the machine (e.g. Grafana's data source); put only the hash in the tokens of the alerting file.")
		return 0
	case *generate:
		pw := access.NewPassword()
		hash, err := access.HashPassword(pw)
		if err != nil {
			fmt.Fprintln(stderr, "hazardwatch passwd:", err)
			return 1
		}
		fmt.Fprintf(stdout, "password:      %s\npassword_hash: %s\n", pw, hash)
		return 0
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 1024)).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "hazardwatch passwd: read standard input:", err)
		return 1
	}
	secret := strings.TrimRight(line, "\r\n")
	if secret == "" {
		fmt.Fprintln(stderr, "hazardwatch passwd: nothing on standard input (see hazardwatch passwd -h)")
		return 2
	}
	if *hashToken {
		fmt.Fprintln(stdout, access.HashToken(secret))
		return 0
	}
	hash, err := access.HashPassword(secret)
	if err != nil {
		fmt.Fprintln(stderr, "hazardwatch passwd:", err)
		return 1
	}
	fmt.Fprintln(stdout, hash)
	return 0
}
