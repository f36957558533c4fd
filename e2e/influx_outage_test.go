package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// influxValues returns jh-chem/nh3-gas-1's readings in InfluxDB by time
// (unix ms), and how many rows InfluxDB holds for it.
func influxValues(t *testing.T, d *testenv.Influxd) (map[int64]float64, int) {
	t.Helper()
	out, rows := map[int64]float64{}, 0
	for _, v := range d.Rows(`SELECT "value" FROM "reading" WHERE "site" = 'jh-chem' AND "point" = 'nh3-gas-1' AND time >= 0`) {
		at, err := time.Parse(time.RFC3339Nano, v[0].(string))
		if err != nil {
			t.Fatalf("InfluxDB time %v: %v", v[0], err)
		}
		f, _ := v[1].(float64)
		out[at.UnixMilli()] = f
		rows++
	}
	return out, rows
}

// TestNoReadingLostAcrossInfluxOutageAndIngestKill runs hazardwatch-ingest
// as its own process writing to a real InfluxDB 1.8, behind a private
// Mosquitto. InfluxDB is stopped, telemetry keeps coming (the ingest
// spills it), the ingest is killed with SIGKILL while messages arrive,
// more telemetry queues at the broker while it is dead, and the ingest
// comes back while InfluxDB is still down. Once InfluxDB is back, every
// reading published is in InfluxDB exactly once, with its value.
func TestNoReadingLostAcrossInfluxOutageAndIngestKill(t *testing.T) {
	broker := testenv.Mosquitto(t)
	db := testenv.NewInfluxd(t, "hazardwatch")
	bin := buildCommand(t, "hazardwatch-ingest")
	sitesDir := t.TempDir()
	site, err := os.ReadFile("../configs/sites/tank-farm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sitesDir, "tank-farm.yaml"), site, 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir, logFile := t.TempDir(), filepath.Join(t.TempDir(), "ingest.log")
	httpAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	args := []string{"-sites", sitesDir, "-data", dataDir, "-broker", broker.URL(), "-client-id", "ingest-influx-outage",
		"-http", httpAddr, "-influx-url", db.URL(), "-influx-bucket", db.Bucket(), "-alerting", e2eAlertingFile(t)}
	defer func() {
		if t.Failed() {
			out, _ := os.ReadFile(logFile)
			t.Logf("hazardwatch-ingest log:\n%s", out)
		}
	}()
	startIngest := func() *process {
		p := startProcess(t, bin, logFile, args...)
		testenv.Eventually(t, "hazardwatch-ingest connected (/readyz)", 30*time.Second, func() bool {
			if p.exited() {
				t.Fatal("hazardwatch-ingest exited")
			}
			resp, err := http.Get("http://" + httpAddr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		return p
	}

	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("test-gateway").SetCleanSession(false))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect the test gateway: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	at := func(seq int) time.Time { return t0.Add(time.Duration(seq) * 100 * time.Millisecond) }
	value := func(seq int) float64 { return float64(seq) / 100 } // below H: no alarms in the way
	var published atomic.Int64
	publish := func(from, to int, pause time.Duration) {
		for seq := from; seq <= to; seq++ {
			msg, err := protocol.Telemetry{V: 1, Site: "jh-chem", Gateway: "gw-tank", Seq: uint64(seq), TS: protocol.Time{Time: at(seq)},
				Readings: []protocol.Reading{{Point: "nh3-gas-1", Value: protocol.F(value(seq))}}}.Encode()
			if err != nil {
				t.Error(err)
				return
			}
			if tok := pub.Publish(protocol.TelemetryTopic("jh-chem", "gw-tank"), 1, false, msg); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Errorf("publish seq %d: %v", seq, tok.Error())
				return
			}
			published.Store(int64(seq))
			time.Sleep(pause)
		}
	}
	stored := func(n int) func() bool {
		return func() bool { _, rows := influxValues(t, db); return rows >= n }
	}

	ingest := startIngest()
	publish(1, 100, 0)
	testenv.Eventually(t, "100 readings in InfluxDB", 30*time.Second, stored(100))

	db.Stop()
	publish(101, 250, 0)
	testenv.Eventually(t, "readings spilled while InfluxDB is down", 30*time.Second, func() bool {
		return metricValue(t, scrape(t, "http://"+httpAddr), "hazardwatch_influx_spill_points") > 0
	})
	// Kill the ingest while telemetry is arriving.
	done := make(chan struct{})
	go func() { defer close(done); publish(251, 500, 5*time.Millisecond) }()
	testenv.Eventually(t, "publishing under way", 30*time.Second, func() bool { return published.Load() >= 320 })
	ingest.kill(t)
	<-done
	if t.Failed() {
		return
	}

	// Back while InfluxDB is still down: the queued messages go to the
	// spill, then to InfluxDB once it returns.
	startIngest()
	time.Sleep(2 * time.Second)
	db.Start()
	testenv.Eventually(t, "all 500 readings in InfluxDB", 90*time.Second, stored(500))

	vals, rows := influxValues(t, db)
	if rows != 500 {
		t.Fatalf("InfluxDB holds %d rows of nh3-gas-1, want 500", rows)
	}
	for seq := 1; seq <= 500; seq++ {
		v, ok := vals[at(seq).UnixMilli()]
		if !ok || v != value(seq) {
			t.Fatalf("reading of seq %d: stored %v (present %v), want %v", seq, v, ok, value(seq))
		}
	}
	if extra := len(vals) - 500; extra != 0 {
		t.Fatalf("%d readings in InfluxDB that were never published", extra)
	}
}
