package main

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// healthcheck GETs a URL and exits 0 on a 2xx answer: the container
// healthcheck of the HazardWatch image, which has no shell, curl or wget.
func healthcheck(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: hazardwatch healthcheck URL   (e.g. http://127.0.0.1:8080/readyz)\n\nExits 0 if URL answers 2xx within 5s, 1 otherwise."
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprintln(stdout, usage)
		return 0
	}
	if len(args) != 1 || len(args[0]) > 0 && args[0][0] == '-' {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck %s: %v\n", args[0], err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(stderr, "healthcheck %s: %s %s\n", args[0], resp.Status, body)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s\n", args[0], resp.Status)
	return 0
}
