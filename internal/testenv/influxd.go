package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// influxdInstall is how to get the InfluxDB 1.8 server the storage tests use.
const influxdInstall = "go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10"

// Influxd is an InfluxDB 1.8 server owned by one test, with its meta, data
// and WAL in a temp dir, reachable only on 127.0.0.1.
type Influxd struct {
	t        testing.TB
	bin      string
	conf     string
	Dir      string // meta, data and wal live under it
	Port     int    // HTTP API port
	Database string // created by NewInfluxd
	cmd      *exec.Cmd
	exited   chan struct{}
}

// URL is the server's HTTP API, http://127.0.0.1:PORT.
func (d *Influxd) URL() string { return "http://127.0.0.1:" + strconv.Itoa(d.Port) }

// Bucket is the v2-API bucket of the test database and its default
// retention policy, db/autogen.
func (d *Influxd) Bucket() string { return d.Database + "/autogen" }

// lookInfluxd finds influxd on PATH or in $(go env GOPATH)/bin.
func lookInfluxd(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("influxd"); err == nil {
		return p
	}
	var dirs []string
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.SplitList(gp)...)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.SplitList(strings.TrimSpace(string(out)))...)
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go"))
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, "bin", "influxd")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("influxd not found: install it with %s (scripts/test.sh does this)", influxdInstall)
	return ""
}

// NewInfluxd starts a private InfluxDB 1.8 on free ports with Flux enabled,
// creates database, and stops the server when the test ends.
func NewInfluxd(t testing.TB, database string) *Influxd {
	t.Helper()
	dir := t.TempDir()
	d := &Influxd{t: t, bin: lookInfluxd(t), Dir: dir, Port: FreePort(t), Database: database,
		conf: filepath.Join(dir, "influxdb.conf")}
	rpcPort := FreePort(t)
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"

[meta]
  dir = %q

[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:%d"
  flux-enabled = true
  log-enabled = false

[logging]
  level = "warn"

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false
`, rpcPort, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), d.Port)
	if err := os.WriteFile(d.conf, []byte(conf), 0o600); err != nil {
		t.Fatalf("write influxd config: %v", err)
	}
	d.Start()
	t.Cleanup(d.Stop)
	d.Query("CREATE DATABASE " + strconv.Quote(database))
	return d
}

// Start (re)starts the server on the same dirs and ports and waits until
// it answers /ping.
func (d *Influxd) Start() {
	d.t.Helper()
	if d.cmd != nil {
		return
	}
	logFile, err := os.OpenFile(filepath.Join(d.Dir, "influxd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		d.t.Fatalf("open influxd log: %v", err)
	}
	cmd := exec.Command(d.bin, "-config", d.conf)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		d.t.Fatalf("start influxd: %v", err)
	}
	d.cmd, d.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); logFile.Close(); close(exited) }(d.exited)

	// influxd opens its stores before it answers; on a busy CI machine
	// that has taken more than 30 s.
	const startWithin = 2 * time.Minute
	deadline := time.Now().Add(startWithin)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(d.URL() + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return
			}
		}
		select {
		case <-d.exited:
			d.cmd = nil
			d.t.Fatalf("influxd exited while starting; see %s", filepath.Join(d.Dir, "influxd.log"))
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("influxd did not answer /ping on port %d within %s; see %s", d.Port, startWithin, filepath.Join(d.Dir, "influxd.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server with SIGTERM (SIGKILL after 15s) and waits for it.
func (d *Influxd) Stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
}

// Query runs an InfluxQL statement through POST /query against the test
// database and returns the JSON answer, failing the test on any error.
func (d *Influxd) Query(q string) string {
	d.t.Helper()
	form := url.Values{"q": {q}, "db": {d.Database}}
	resp, err := http.PostForm(d.URL()+"/query", form)
	if err != nil {
		d.t.Fatalf("influxd query %q: %v", q, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatalf("influxd query %q: read answer: %v", q, err)
	}
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), `"error"`) {
		d.t.Fatalf("influxd query %q: status %d: %s", q, resp.StatusCode, body)
	}
	return string(body)
}

// Series runs an InfluxQL query and returns the rows of each series of its
// first statement's answer (each row: time, then the selected columns).
func (d *Influxd) Series(q string) [][][]any {
	d.t.Helper()
	body := d.Query(q)
	var ans struct {
		Results []struct {
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		d.t.Fatalf("influxd query %q: parse answer %s: %v", q, body, err)
	}
	var out [][][]any
	for _, r := range ans.Results {
		for _, s := range r.Series {
			out = append(out, s.Values)
		}
	}
	return out
}

// Rows is Series with the rows of every series in one list.
func (d *Influxd) Rows(q string) [][]any {
	d.t.Helper()
	var out [][]any
	for _, s := range d.Series(q) {
		out = append(out, s...)
	}
	return out
}

// WriteLines writes line protocol (ms precision) through the 1.x /write
// endpoint, bypassing any client under test.
func (d *Influxd) WriteLines(lines string) {
	d.t.Helper()
	u := d.URL() + "/write?precision=ms&db=" + url.QueryEscape(d.Database)
	resp, err := http.Post(u, "text/plain", strings.NewReader(lines))
	if err != nil {
		d.t.Fatalf("influxd write: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		body, _ := io.ReadAll(resp.Body)
		d.t.Fatalf("influxd write: status %d: %s", resp.StatusCode, body)
	}
}

// PID is the running server's process id (0 when stopped), for reading
// its CPU time from /proc in benchmarks.
func (d *Influxd) PID() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}
