// Command hazardwatch runs HazardWatch in one process on its embedded
// defaults — MQTT broker, time-series store, Modbus simulators, gateway,
// ingest, rules, alerting and status page — and checks site files.
//
//	hazardwatch [run] [flags]          the all-in-one demo (default)
//	hazardwatch validate FILE_OR_DIR…  list every problem of site files
//	hazardwatch grafana -out DIR FILE_OR_DIR…  write Grafana dashboards of site files
//	hazardwatch healthcheck URL        exit 0 if URL answers 2xx (container healthchecks)
//	hazardwatch report [flags]         the alarm-quality report as CSV, HTML or JSON
//	hazardwatch broker-config -out DIR FILE_OR_DIR…  Mosquitto password file, ACL, TLS (docs/security.md)
//	hazardwatch passwd [-generate|-token]  a password's hash, or a new API token, for the alerting file
//	hazardwatch version                print the version (also -version)
//
// -h or help prints this list (exit 0); "hazardwatch COMMAND -h" a
// command's flags.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/hazardwatch/hazardwatch/internal/version"
)

func main() {
	os.Exit(dispatchIn(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	return dispatchIn(args, os.Stdin, stdout, stderr)
}

func dispatchIn(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	if len(args) > 0 && cmd == "run" {
		switch args[0] {
		case "-version", "--version":
			cmd = "version"
		}
	}
	switch cmd {
	case "version":
		version.Print(stdout, "hazardwatch")
		return 0
	case "run":
		return run(args, stdout, stderr)
	case "validate":
		return validate(args, stdout, stderr)
	case "grafana":
		return grafanaCmd(args, stdout, stderr)
	case "healthcheck":
		return healthcheck(args, stdout, stderr)
	case "report":
		return reportCmd(args, stdout, stderr)
	case "broker-config":
		return brokerConfig(args, stdout, stderr)
	case "passwd":
		return passwd(args, stdin, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "hazardwatch: unknown command %q\n\n%s\n", cmd, usage)
		return 2
	}
}

const usage = `usage:
  hazardwatch [run] [flags]           run everything in one process (try -h)
  hazardwatch validate FILE_OR_DIR... check site files, listing every problem
  hazardwatch grafana [-datasource prometheus|influx] -out DIR FILE_OR_DIR...
                                      write a Grafana wall display per site file
  hazardwatch healthcheck URL         exit 0 if URL answers 2xx (container healthchecks)
  hazardwatch report [flags]          the alarm-quality report (ISA-18.2 / EEMUA 191) as CSV, HTML or JSON
  hazardwatch broker-config -out DIR [-tls-hosts HOST,...] FILE_OR_DIR...
                                      write Mosquitto's password file, ACL, the
                                      accounts' password files and TLS certificates
  hazardwatch passwd [-generate | -token | -hash-token]
                                      a password's bcrypt hash (password on standard input),
                                      or a new API token and its hash, for the alerting file
  hazardwatch version                 print the version (also -version)

"hazardwatch COMMAND -h" lists a command's flags.`
