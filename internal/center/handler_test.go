package center

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/storage"
)

// TestHandlerServesQueryAPIs: the centre's HTTP handler answers the
// readings API and, over the embedded store, the Prometheus query API that
// Grafana's data source uses.
func TestHandlerServesQueryAPIs(t *testing.T) {
	broker := testenv.Mosquitto(t)
	raw, err := os.ReadFile("../../configs/sites/tank-farm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := openCenterWith(t, broker.URL(), t.TempDir(), loadSite(t, string(raw)), testAccess(t))
	now := time.Now().Truncate(time.Millisecond)
	err = c.Store().Append(context.Background(), []storage.Sample{{Site: "jh-chem", Gateway: "gw-1", Source: "nh3-tanks",
		Point: "nh3-gas-1", Time: now, Value: 42.5, HasValue: true, Quality: protocol.Good}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()

	get := func(path string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+testViewerToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", path, resp.Status, body)
		}
		return string(body)
	}

	var latest struct {
		Points []struct {
			Point string   `json:"point"`
			Value *float64 `json:"value"`
		} `json:"points"`
	}
	if err := json.Unmarshal([]byte(get("/api/points/latest?site=jh-chem")), &latest); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range latest.Points {
		if p.Point == "nh3-gas-1" && p.Value != nil && *p.Value == 42.5 {
			found = true
		}
	}
	if !found {
		t.Fatalf("/api/points/latest lacks nh3-gas-1 = 42.5: %+v", latest.Points)
	}

	body := get("/api/v1/query?query=" + `hazardwatch_value{point="nh3-gas-1"}`)
	if !strings.Contains(body, `"status":"success"`) || !strings.Contains(body, `"42.5"`) {
		t.Fatalf("/api/v1/query of nh3-gas-1: %s", body)
	}
	// The alarm API still answers under /api/ beside the query APIs.
	resp, err := http.Get(srv.URL + "/api/alarms")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api/alarms without a token: %s, want 401", resp.Status)
	}
}

// TestRestartSeedsLatestReadings: after a restart the ingest service knows
// the stored newest readings before any new one arrives, so the console
// does not show sources with recent data as having none.
func TestRestartSeedsLatestReadings(t *testing.T) {
	broker := testenv.Mosquitto(t)
	raw, err := os.ReadFile("../../configs/sites/tank-farm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sites, dir := loadSite(t, string(raw)), t.TempDir()
	c := openCenter(t, broker.URL(), dir, sites)
	at := time.Now().Truncate(time.Millisecond)
	err = c.Store().Append(context.Background(), []storage.Sample{{Site: "jh-chem", Gateway: "gw-tank", Source: "nh3-tanks",
		Point: "nh3-gas-1", Time: at, Value: 3.5, HasValue: true, Quality: protocol.Good}})
	c.Close()
	if err != nil {
		t.Fatal(err)
	}

	c = openCenter(t, broker.URL(), dir, sites)
	defer c.Close()
	latest, err := c.ingest.Latest(context.Background(), "jh-chem")
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 1 || latest[0].Point != "nh3-gas-1" || latest[0].Value != 3.5 || !latest[0].Time.Equal(at) {
		t.Fatalf("latest readings after a restart = %+v, want nh3-gas-1 = 3.5 at %s", latest, at)
	}
}
