package httpserve

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
)

func serve(t *testing.T, h http.Handler, lim Limits) (string, *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(h, lim)
	srv.ServeBackground(ln, func(err error) { t.Errorf("serve: %v", err) })
	t.Cleanup(func() { _ = srv.ShutdownWithin(2 * time.Second) })
	return ln.Addr().String(), srv
}

func healthz() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	return mux
}

// TestIdleFloodLeavesRoomForHealthz: one client holds thousands of idle
// keep-alive connections and silent ones that never send a request — more
// than the bound — and /healthz still answers at once, while the server
// never holds more connections than the bound.
func TestIdleFloodLeavesRoomForHealthz(t *testing.T) {
	const max, idle, silent = 200, 1500, 500
	reg := prometheus.NewRegistry()
	// Timeouts far beyond the test: only the bound can make room.
	addr, srv := serve(t, healthz(), Limits{MaxConns: max, IdleTimeout: time.Hour, ReadHeaderTimeout: time.Hour, Registerer: reg})

	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for i := range idle + silent {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		flood = append(flood, c)
		if i < idle {
			// One request, then the connection stays open, idle.
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
				t.Fatalf("flood request %d: %v", i, err)
			}
		}
	}
	testenv.Eventually(t, "server holds at most the bound", 10*time.Second, func() bool {
		srv.conns.mu.Lock()
		defer srv.conns.mu.Unlock()
		return len(srv.conns.open) <= max
	})

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 20 {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatalf("/healthz %d during the flood: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
			t.Fatalf("/healthz %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := testutil.ToFloat64(srv.conns.evicted); n < idle+silent-max {
		t.Errorf("evicted %v connections, want at least %d", n, idle+silent-max)
	}
	if n, err := testutil.GatherAndCount(reg, "hazardwatch_http_connections_open"); err != nil || n != 1 {
		t.Errorf("open-connections gauge: %d, %v", n, err)
	}
}

// TestStreamsHaveNoWriteDeadline: an answer that outlives WriteTimeout is
// cut, except on a stream path.
func TestStreamsHaveNoWriteDeadline(t *testing.T) {
	ticker := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := range 8 {
			if _, err := fmt.Fprintf(w, "tick %d\n", i); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		fmt.Fprintln(w, "end")
	})
	mux := http.NewServeMux()
	mux.Handle("/api/stream", ticker)
	mux.Handle("/api/slow", ticker)
	addr, _ := serve(t, mux, Limits{WriteTimeout: 250 * time.Millisecond, ReadTimeout: 250 * time.Millisecond, Streams: []string{"/api/stream"}})

	get := func(path string) (string, error) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	body, err := get("/api/stream")
	if err != nil || !strings.HasSuffix(body, "end\n") {
		t.Errorf("stream cut: %q, %v", body, err)
	}
	body, err = get("/api/slow")
	if err == nil && strings.HasSuffix(body, "end\n") {
		t.Errorf("an answer outliving the write timeout was not cut: %q", body)
	}
}

// TestSlowHeaderIsCut: a client that never finishes its header is
// disconnected after ReadHeaderTimeout.
func TestSlowHeaderIsCut(t *testing.T) {
	addr, _ := serve(t, healthz(), Limits{ReadHeaderTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("server kept a connection with an unfinished header for 10s")
	}
}

func TestHeaderBound(t *testing.T) {
	addr, _ := serve(t, healthz(), Limits{MaxHeaderBytes: 4 << 10})
	req, _ := http.NewRequest("GET", "http://"+addr+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: %d, want 431", resp.StatusCode)
	}
}
