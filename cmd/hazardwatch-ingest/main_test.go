package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/hazardwatch/hazardwatch/internal/access"
	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/storage"
	"github.com/hazardwatch/hazardwatch/storage/embedded"
)

// TestServesAndStores runs the command against the machine's Mosquitto
// with the example tank farm under a random site id.
func TestServesAndStores(t *testing.T) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := "cmd" + hex.EncodeToString(b[:])
	src, err := os.ReadFile("../../configs/sites/tank-farm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sitesDir, dataDir := t.TempDir(), t.TempDir()
	yaml := bytes.Replace(src, []byte("\nid: jh-chem\n"), []byte("\nid: "+id+"\n"), 1)
	if err := os.WriteFile(filepath.Join(sitesDir, "site.yaml"), yaml, 0o644); err != nil {
		t.Fatal(err)
	}

	// Everything but the health checks needs a token.
	const token = "ingest-test-viewer-token-0123456789"
	alertingFile := filepath.Join(t.TempDir(), "alerting.yaml")
	if err := os.WriteFile(alertingFile, []byte("tokens:\n  - name: test\n    role: viewer\n    hash: \""+access.HashToken(token)+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-sites", sitesDir, "-data", dataDir, "-http", "127.0.0.1:0", "-client-id", "ingest-" + id, "-alerting", alertingFile}, io.Discard, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not serving within 30s")
	}
	get := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	testenv.Eventually(t, "readyz ok", 20*time.Second, func() bool { code, _ := get("/readyz"); return code == http.StatusOK })

	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://127.0.0.1:1883").SetClientID("pub-" + id))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	at := time.Now().Truncate(time.Millisecond)
	var seq uint64
	// Publish until the subscription is in place and a reading is counted.
	testenv.Eventually(t, "reading stored", 20*time.Second, func() bool {
		seq++
		msg, err := protocol.Telemetry{V: 1, Site: id, Gateway: "gw-tank", Seq: seq, TS: protocol.Time{Time: at.Add(time.Duration(seq) * time.Millisecond)},
			Readings: []protocol.Reading{{Point: "nh3-gas-1", Value: protocol.F(86)}}}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		pub.Publish(protocol.TelemetryTopic(id, "gw-tank"), 1, false, msg).WaitTimeout(5 * time.Second)
		time.Sleep(100 * time.Millisecond)
		_, metrics := get("/metrics")
		return strings.Contains(metrics, "\nhazardwatch_ingest_readings_total ") && !strings.Contains(metrics, "\nhazardwatch_ingest_readings_total 0\n")
	})
	if code, body := get("/api/deadletters"); code != http.StatusOK || !strings.HasPrefix(body, "[") {
		t.Errorf("/deadletters = %d %q", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop within 30s")
	}

	store, err := embedded.Open(filepath.Join(dataDir, "tsdb"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	got, err := store.Range(context.Background(), storage.Point{Site: id, Point: "nh3-gas-1"}, at.Add(-time.Minute), at.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0].Value != 86 {
		t.Errorf("after shutdown the store holds %+v, want readings of 86", got)
	}
}

func TestBadFlagsAndSitesFail(t *testing.T) {
	ctx := context.Background()
	if err := run(ctx, []string{"-nope"}, io.Discard, nil); err == nil {
		t.Error("unknown flag accepted")
	}
	if err := run(ctx, []string{"-sites", filepath.Join(t.TempDir(), "missing")}, io.Discard, nil); err == nil {
		t.Error("missing sites directory accepted")
	}
	if err := run(ctx, []string{"-sites", "../../configs/sites", "-max-in-flight", "0"}, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "-max-in-flight 0") {
		t.Errorf("-max-in-flight 0: %v, want an error naming the flag and its value", err)
	}
	bad := filepath.Join(t.TempDir(), "alerting.yaml")
	if err := os.WriteFile(bad, []byte("receivers:\n  - name: x\n    url: http://127.0.0.1:1/\n    colour: red\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(ctx, []string{"-sites", "../../configs/sites", "-alerting", bad}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "line 4") || !strings.Contains(err.Error(), "colour") {
		t.Errorf("alerting config with an unknown key: %v, want an error naming line 4 and the key", err)
	}
}

// runOnTankFarm runs the command on a copy of the tank-farm site under a
// fresh site id (prefix + random), with extra flags, until stop, which
// cancels and waits for it to return.
func runOnTankFarm(t *testing.T, prefix string, logs io.Writer, extra ...string) (id string, stop func()) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	id = prefix + hex.EncodeToString(b[:])
	src, err := os.ReadFile("../../configs/sites/tank-farm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sitesDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(sitesDir, "site.yaml"), bytes.Replace(src, []byte("\nid: jh-chem\n"), []byte("\nid: "+id+"\n"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args := append([]string{"-sites", sitesDir, "-data", t.TempDir(), "-http", "127.0.0.1:0", "-client-id", "ingest-" + id}, extra...)
	go func() { done <- run(ctx, args, logs, ready) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("not serving within 30s")
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not stop within 30s")
		}
	}
	t.Cleanup(stop)
	return id, stop
}

// publishUntil publishes a reading of nh3-gas-1 at ppm, taken at at(),
// from the site's gateway every 200 ms until ok.
func publishUntil(t *testing.T, id, what string, ppm float64, at func() time.Time, ok func() bool) {
	t.Helper()
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://127.0.0.1:1883").SetClientID("pub-" + id))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	var seq uint64
	testenv.Eventually(t, what, 20*time.Second, func() bool {
		seq++
		msg, err := protocol.Telemetry{V: 1, Site: id, Gateway: "gw-tank", Seq: seq, TS: protocol.Time{Time: at()},
			Readings: []protocol.Reading{{Point: "nh3-gas-1", Value: protocol.F(ppm)}}}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		pub.Publish(protocol.TelemetryTopic(id, "gw-tank"), 1, false, msg).WaitTimeout(5 * time.Second)
		time.Sleep(200 * time.Millisecond)
		return ok()
	})
}

// TestStoresInInflux runs the command with -influx-url against a real
// InfluxDB 1.8 and finds the reading there.
func TestStoresInInflux(t *testing.T) {
	db := testenv.NewInfluxd(t, "hazardwatch")
	id, stop := runOnTankFarm(t, "ix", io.Discard, "-influx-url", db.URL(), "-influx-bucket", db.Bucket())
	at := time.Now().Truncate(time.Millisecond)
	publishUntil(t, id, "reading in InfluxDB", 42.5, func() time.Time { return at }, func() bool {
		return strings.Contains(db.Query(`SELECT "value" FROM "reading" WHERE "site" = '`+id+`'`), "42.5")
	})
	stop()
}

// TestJournalInPostgres runs the command with -journal-dsn against a fresh
// PostgreSQL database: the alarm a reading raises is journaled there, and
// the DSN's password is in no log line.
func TestJournalInPostgres(t *testing.T) {
	const pw = "hunter2-ingest-secret"
	u, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), pw) // the test server trusts 127.0.0.1
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var logs syncBuffer
	id, stop := runOnTankFarm(t, "pg", &logs, "-journal-dsn", u.String())
	// 86 ppm over HH 80 for longer than the on-delay raises the alarm.
	publishUntil(t, id, "the raised alarm in the PostgreSQL journal", 86, time.Now, func() bool {
		var n int
		err := db.QueryRow(`SELECT COUNT(*) FROM journal WHERE site = $1 AND alarm_id = $2 AND type = 'raised'`, id, id+"/nh3-tanks/nh3-gas-1/HH").Scan(&n)
		return err == nil && n == 1
	})
	stop()
	if !strings.Contains(logs.String(), u.Host) {
		t.Errorf("the log does not name the journal's server %s:\n%s", u.Host, logs.String())
	}
	if strings.Contains(logs.String(), pw) {
		t.Errorf("the log shows the journal's password:\n%s", logs.String())
	}
}

// syncBuffer is a log sink the command and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
