package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/hazardwatch/hazardwatch/site"
)

// validate checks site files (or directories of them) and prints every
// problem as file:line:column: field: message. It returns the exit code.
func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: hazardwatch validate FILE_OR_DIR...\n\nChecks site files and lists every problem with file:line.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	files, err := siteFiles(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	sites, err := site.LoadFiles(files...)
	var ps site.Problems
	switch {
	case errors.As(err, &ps):
		for _, p := range ps {
			fmt.Fprintln(stdout, p)
		}
		fmt.Fprintf(stderr, "%d problem(s) in %d file(s)\n", len(ps), len(files))
		return 1
	case err != nil:
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, s := range sites {
		points := 0
		for _, src := range s.Sources {
			points += len(src.Points)
		}
		fmt.Fprintf(stdout, "%s: ok — site %s (%s), %d gateway(s), %d hazard source(s), %d point(s)\n",
			s.File, s.ID, s.Name, len(s.Gateways), len(s.Sources), points)
	}
	return 0
}
