package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/hazardwatch/hazardwatch/internal/brokerconf"
	"github.com/hazardwatch/hazardwatch/site"
)

const brokerConfigUsage = `usage: hazardwatch broker-config -out DIR [-centre NAME] [-viewers NAME,...] [-tls-hosts HOST,...] FILE_OR_DIR...

Writes what a Mosquitto secured for HazardWatch needs (configs/mosquitto,
docs/security.md), from the site files:

  DIR/passwd                     password file (mosquitto password_file)
  DIR/acl                        ACL (mosquitto acl_file): each gateway
                                 writes only hazardwatch/v1/{site}/{gateway}/
                                 telemetry and state and reads only its .../ack;
                                 the centre reads telemetry and state, writes
                                 alarms and grades, reads and writes acks;
                                 viewers only read
  DIR/secrets/gateways/SITE/GW   each gateway's password (-password-file)
  DIR/secrets/NAME               the centre's and each viewer's password
  DIR/tls/ca.pem, server.pem     with -tls-hosts: a CA (ca.key beside it)
                                 and the broker's certificate

Running it again keeps every password and certificate already in DIR.`

// brokerConfig is the broker-config subcommand; it returns the exit code.
func brokerConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("broker-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, brokerConfigUsage+"\n\nflags:"); fs.PrintDefaults() }
	out := fs.String("out", "", "directory to write into (required)")
	centre := fs.String("centre", brokerconf.DefaultCentre, "the centre's account (ingest nodes and the alerting publisher)")
	viewers := fs.String("viewers", brokerconf.DefaultViewer, "comma-separated read-only accounts; empty: none")
	tlsHosts := fs.String("tls-hosts", "", "comma-separated host names and IP addresses of the broker: make a CA and a server certificate for them")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	files, err := siteFiles(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, "hazardwatch broker-config:", err)
		return 1
	}
	sites, err := site.LoadFiles(files...)
	if err != nil {
		fmt.Fprintln(stderr, "hazardwatch broker-config: the site files have problems (run hazardwatch validate):", err)
		return 1
	}
	if len(sites) == 0 {
		fmt.Fprintf(stderr, "hazardwatch broker-config: no site files in %s\n", strings.Join(fs.Args(), " "))
		return 1
	}
	res, err := brokerconf.Generate(*out, brokerconf.Options{Sites: sites, Centre: *centre, Viewers: splitList(*viewers), TLSHosts: splitList(*tlsHosts)})
	if err != nil {
		fmt.Fprintln(stderr, "hazardwatch broker-config:", err)
		return 1
	}
	created := map[string]bool{}
	for _, u := range res.Created {
		created[u] = true
	}
	fmt.Fprintf(stdout, "wrote %s and %s for %d account(s):\n", filepath.Join(*out, "passwd"), filepath.Join(*out, "acl"), len(res.Accounts))
	for _, a := range res.Accounts {
		state := "kept"
		if created[a.User] {
			state = "new"
		}
		fmt.Fprintf(stdout, "  %-8s %-32s -username %s -password-file %s (%s)\n", a.Role, a.User, a.User, filepath.Join(*out, a.SecretFile), state)
	}
	if *tlsHosts != "" {
		fmt.Fprintf(stdout, "TLS: clients verify the broker with -ca %s\n", filepath.Join(*out, "tls", "ca.pem"))
	}
	return 0
}

// splitList splits a comma-separated flag, dropping empty items; "" is an
// empty, non-nil list.
func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
