package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hazardwatch/hazardwatch/internal/grafana"
	"github.com/hazardwatch/hazardwatch/site"
)

// grafanaCmd writes the Grafana wall displays of the site files into a
// directory, a folder per county with the county's overview and its
// enterprises' dashboards and a folder per city with its overview (see
// internal/grafana and docs/grafana.md). It returns the exit code.
func grafanaCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("grafana", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsFlag := fs.String("datasource", string(grafana.Prometheus), "what the dashboards query: prometheus (HazardWatch's query API over the embedded store, PromQL) or influx (InfluxDB 2.x, Flux)")
	out := fs.String("out", "", "directory to write the dashboards into, a folder per county and per city (required)")
	bucket := fs.String("bucket", grafana.DefaultBucket, "InfluxDB bucket the Flux queries read")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: hazardwatch grafana [-datasource prometheus|influx] [-bucket NAME] -out DIR FILE_OR_DIR...\n\nWrites the Grafana wall displays of the site files into DIR: a folder per county\nwith its overview and its enterprises' (sites') dashboards, a folder per city\nwith its overview.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ds, err := grafana.ParseDatasource(*dsFlag)
	if *out == "" || fs.NArg() == 0 || err != nil {
		if err != nil {
			fmt.Fprintln(stderr, "hazardwatch grafana: -datasource:", err)
		}
		fs.Usage()
		return 2
	}
	files, err := siteFiles(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	sites, err := site.LoadFiles(files...)
	if err != nil {
		var ps site.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				fmt.Fprintln(stderr, p)
			}
		} else {
			fmt.Fprintln(stderr, err)
		}
		fmt.Fprintln(stderr, "hazardwatch grafana: no dashboards written: the site files have problems (see hazardwatch validate)")
		return 1
	}
	dashboards, err := grafana.Layout(sites, grafana.Options{Datasource: ds, Bucket: *bucket})
	if err != nil {
		fmt.Fprintf(stderr, "hazardwatch grafana: %v\n", err)
		return 1
	}
	for _, f := range dashboards {
		path := filepath.Join(*out, f.Path())
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			fmt.Fprintf(stderr, "hazardwatch grafana: %v\n", err)
			return 1
		}
		if err := os.WriteFile(path, f.JSON, 0o644); err != nil {
			fmt.Fprintf(stderr, "hazardwatch grafana: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: dashboard %s\n", path, f.UID)
	}
	return 0
}

// siteFiles expands directories into their *.yaml and *.yml files; a
// directory without any is an error.
func siteFiles(args []string) ([]string, error) {
	var files []string
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil {
			return nil, fmt.Errorf("site files: %w", err)
		}
		if !st.IsDir() {
			files = append(files, arg)
			continue
		}
		n := len(files)
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(arg, pat)) // pattern is constant and valid
			files = append(files, m...)
		}
		if len(files) == n {
			// Nothing checked is no proof of anything: say so and fail.
			return nil, fmt.Errorf("site files: no *.yaml or *.yml files in directory %s", arg)
		}
	}
	return files, nil
}
