package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
)

func TestServesUntilCancelled(t *testing.T) {
	path, addrs := testenv.ExampleSite(t, "tank-farm.yaml", "127.0.0.1:15021", "127.0.0.1:15022")
	gds := addrs[0]

	ctx, cancel := context.WithCancel(context.Background())
	var out, errs bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-site", path, "-scenario", "nh3-leak"}, &out, &errs) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", gds, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gds never served on %s: %v", gds, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if err := run(context.Background(), []string{"-site", path, "-scenario", "coal-ch4"}, &out, &errs); err == nil || !strings.Contains(err.Error(), "xs-coal") {
		t.Errorf("scenario for another site: %v", err)
	}
}
