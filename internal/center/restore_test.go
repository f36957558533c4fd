package center

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
)

const nh3Key = "jh-chem/nh3-tanks/nh3-gas-1/HH"

func loadSite(t *testing.T, text string) []*site.Site {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tank-farm.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := site.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return []*site.Site{s}
}

func openCenter(t *testing.T, broker, dir string, sites []*site.Site) *Center {
	t.Helper()
	c, err := Open(context.Background(), Config{Sites: sites, Broker: broker, DataDir: dir, ClientID: "restore-test"})
	if err != nil {
		t.Fatalf("open centre: %v", err)
	}
	return c
}

// leak feeds nh3-gas-1 a value above HH for a minute up to now.
func leak(c *Center, now time.Time, ppm float64) []rules.Event {
	var evs []rules.Event
	for s := 60; s >= 0; s-- {
		evs = c.engine.Observe(rules.Reading{Site: "jh-chem", Point: "nh3-gas-1", Time: now.Add(-time.Duration(s) * time.Second),
			Value: ppm, Quality: protocol.Good}, evs)
	}
	return evs
}

func hasEvent(evs []rules.Event, typ rules.EventType, key string) bool {
	for _, e := range evs {
		if e.Type == typ && e.Key == key {
			return true
		}
	}
	return false
}

// TestRestartRestoresRules: an alarm active before a restart is taken over
// by the rules engine (no second Raised while the leak goes on), and is
// cleared when its limit was removed from the site file meanwhile.
func TestRestartRestoresRules(t *testing.T) {
	broker := testenv.Mosquitto(t)
	raw, err := os.ReadFile("../../configs/sites/tank-farm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sites := loadSite(t, string(raw))
	dir := t.TempDir()
	ctx := context.Background()

	c := openCenter(t, broker.URL(), dir, sites)
	evs := leak(c, time.Now(), 95)
	if !hasEvent(evs, rules.Raised, nh3Key) {
		c.Close()
		t.Fatalf("a minute at 95 ppm raised no %s: %+v", nh3Key, evs)
	}
	if err := c.alerts.HandleEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	c.Close()

	c = openCenter(t, broker.URL(), dir, sites)
	restored := false
	for _, e := range c.engine.Active() {
		restored = restored || e.Key == nh3Key
	}
	if !restored {
		c.Close()
		t.Fatalf("after a restart the engine does not hold %s active: %+v", nh3Key, c.engine.Active())
	}
	if evs := leak(c, time.Now(), 95); hasEvent(evs, rules.Raised, nh3Key) {
		c.Close()
		t.Fatalf("the leak going on after a restart raised %s a second time", nh3Key)
	}
	c.Close()

	// The HH limit of nh3-gas-1 is removed while the centre is down.
	edited := strings.Replace(string(raw), "limits: {h: 40, hh: 80}", "limits: {h: 40}", 1)
	if edited == string(raw) {
		t.Fatal("test site: nh3-gas-1 limits not found")
	}
	c = openCenter(t, broker.URL(), dir, loadSite(t, edited))
	defer c.Close()
	a, ok := c.alerts.Alarm(nh3Key)
	if !ok {
		t.Fatalf("alarm %s vanished from the journal", nh3Key)
	}
	if a.Active {
		t.Fatalf("alarm %s of a removed limit is still active after the restart: %+v", nh3Key, a)
	}
}
