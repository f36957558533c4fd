package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestServesUntilCancelled(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	text, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "configs", "sites", "tank-farm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	gds, plc := freeAddr(t), freeAddr(t)
	yaml := strings.NewReplacer("127.0.0.1:15021", gds, "127.0.0.1:15022", plc).Replace(string(text))
	path := filepath.Join(t.TempDir(), "tanks.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

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
