package alerting

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hazardwatch/hazardwatch/internal/testenv"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
)

// journal is a durable journal a test runs against: SQLite in a temp dir
// or a fresh PostgreSQL database. Every Config it makes names the same
// journal, so a restarted service finds what the last one wrote.
type journal struct{ dir, dsn string }

func (j journal) with(c Config) Config {
	c.DataDir, c.JournalDSN = j.dir, j.dsn
	return c
}

// eachJournal runs a test against SQLite and against PostgreSQL.
func eachJournal(t *testing.T, test func(t *testing.T, j journal)) {
	t.Run("sqlite", func(t *testing.T) { test(t, journal{dir: t.TempDir()}) })
	t.Run("postgres", func(t *testing.T) { test(t, journal{dsn: testenv.Postgres(t)}) })
}

// sitesOf returns an OwnsSite that owns exactly these sites.
func sitesOf(sites ...string) func(string) bool {
	return func(s string) bool { return slices.Contains(sites, s) }
}

func alarmStates(svc *Service) map[string]protocol.AlarmState {
	got := map[string]protocol.AlarmState{}
	for _, a := range svc.ActiveAlarms() {
		got[a.ID] = a.State
	}
	return got
}

func eventIDs(t *testing.T, svc *Service, site string) []string {
	t.Helper()
	hist, err := svc.History(context.Background(), HistoryQuery{Site: site, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range hist {
		ids = append(ids, e.ID)
	}
	return ids
}

func depth(t *testing.T, svc *Service) int {
	t.Helper()
	stats, err := svc.OutboxStats(context.Background())
	if err != nil || len(stats) != 1 {
		t.Fatalf("outbox stats %+v %v", stats, err)
	}
	return stats[0].Depth
}

// TestTwoNodesShareOnePostgresJournal runs two ingest nodes' alerting on
// one PostgreSQL database, each owning one site, journaling at the same
// time. After a restart each node rebuilds only its own site's alarms and
// delivers only the events it queued, each exactly once; the history is
// the whole centre's on either node; and a node that takes over both
// sites (fewer nodes) takes their alarms along.
func TestTwoNodesShareOnePostgresJournal(t *testing.T) {
	dsn := testenv.Postgres(t)
	rcv := newReceiver(t)
	rcv.stop() // down while the nodes journal
	ctx := context.Background()
	node := func(name, site string) Config {
		return Config{JournalDSN: dsn, Node: name, OwnsSite: sitesOf(site), Receivers: []Receiver{testReceiver(rcv.URL())}}
	}
	cfgA, cfgB := node("ingest-0", "site-a"), node("ingest-1", "site-b")

	// Both nodes start together on the empty database and create the
	// schema once between them.
	svcs := make([]*Service, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, cfg := range []Config{cfgA, cfgB} {
		wg.Go(func() { svcs[i], errs[i] = New(cfg) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	keys := func(site string) (active, gone, rtn string) {
		return site + "/tanks/gas-1/HH", site + "/tanks/gas-2/H", site + "/tanks/gas-3/H"
	}
	for i, svc := range svcs {
		wg.Go(func() {
			active, gone, rtn := keys([]string{"site-a", "site-b"}[i])
			// Small batches, so the two nodes' rows interleave.
			for _, batch := range [][]rules.Event{
				{event(rules.Raised, active, now, protocol.Red, protocol.None, 90)},
				{event(rules.Raised, gone, now, protocol.Blue, protocol.None, 45)},
				{event(rules.Raised, rtn, now, protocol.Blue, protocol.None, 45)},
				{event(rules.Cleared, rtn, now.Add(time.Minute), protocol.None, protocol.Blue, 30)},
			} {
				if err := svc.HandleEvents(ctx, batch); err != nil {
					t.Error(err)
					return
				}
			}
			if _, err := svc.Ack(ctx, gone, "王工", ""); err != nil {
				t.Error(err)
			}
			if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Cleared, gone, now.Add(time.Minute), protocol.None, protocol.Blue, 30)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	a, b := svcs[0], svcs[1]
	idsA, idsB := eventIDs(t, a, "site-a"), eventIDs(t, a, "site-b")
	if len(idsA) != 6 || len(idsB) != 6 {
		t.Fatalf("journal of site-a %v and site-b %v, want 6 events each", idsA, idsB)
	}
	if got := eventIDs(t, b, "site-a"); !slices.Equal(got, idsA) {
		t.Errorf("node 1's history of site-a %v, node 0's %v: both should show the whole journal", got, idsA)
	}
	if da, db := depth(t, a), depth(t, b); da != 6 || db != 6 {
		t.Errorf("outbox depths %d and %d, want each node's own 6", da, db)
	}
	a.Close()
	b.Close()

	rcv.start()
	a, err := New(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	activeA, _, rtnA := keys("site-a")
	if got := alarmStates(a); len(got) != 2 || got[activeA] != protocol.StateUnacked || got[rtnA] != protocol.StateRTNUnacked {
		t.Fatalf("node 0 restored %v, want only site-a's %s unacked and %s returned unacked", got, activeA, rtnA)
	}
	testenv.Eventually(t, "node 0's events delivered", 20*time.Second, func() bool { return len(rcv.events()) >= 6 })
	time.Sleep(300 * time.Millisecond) // node 1's events, were node 0 to send them, would arrive by now
	if got := ceIDs(rcv.events()); !slices.Equal(got, idsA) {
		t.Fatalf("with node 0 alone the receiver got %v, want site-a's events %v in journal order", got, idsA)
	}

	b, err = New(cfgB)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	activeB, _, rtnB := keys("site-b")
	if got := alarmStates(b); len(got) != 2 || got[activeB] != protocol.StateUnacked || got[rtnB] != protocol.StateRTNUnacked {
		t.Fatalf("node 1 restored %v, want only site-b's", got)
	}
	testenv.Eventually(t, "node 1's events delivered", 20*time.Second, func() bool { return len(rcv.events()) >= 12 })
	time.Sleep(300 * time.Millisecond)
	if got, want := ceIDs(rcv.events()), append(slices.Clone(idsA), idsB...); !slices.Equal(got, want) {
		t.Fatalf("receiver got %v, want every event once, in each node's journal order: %v", got, want)
	}
	if da, db := depth(t, a), depth(t, b); da != 0 || db != 0 {
		t.Errorf("outbox depths %d and %d after delivery", da, db)
	}
	a.Close()
	b.Close()

	// Down to one node: node 0 takes over site-b, and its alarms with it.
	one := cfgA
	one.OwnsSite = nil
	svc, err := New(one)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if got := alarmStates(svc); len(got) != 4 || got[activeB] != protocol.StateUnacked || got[rtnB] != protocol.StateRTNUnacked {
		t.Fatalf("the one node left restored %v, want both sites' 4 alarms", got)
	}
}

func ceIDs(ces []CloudEvent) []string {
	var ids []string
	for _, ce := range ces {
		ids = append(ids, ce.ID)
	}
	return ids
}

// TestSQLiteJournalOfEarlierVersion opens a journal written before outbox
// rows had a node: the rows still queued are this node's, and delivered.
func TestSQLiteJournalOfEarlierVersion(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t)
	rcv.stop()
	ctx := context.Background()
	k := "jh-chem/nh3-tanks/nh3-gas-1/HH"
	svc, err := New(Config{DataDir: dir, Receivers: []Receiver{testReceiver(rcv.URL())}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.HandleEvents(ctx, []rules.Event{event(rules.Raised, k, time.Now().UTC(), protocol.Red, protocol.None, 90)}); err != nil {
		t.Fatal(err)
	}
	svc.Close()

	// Back to the journal of the earlier version: no recorded schema
	// version, no incidents, no node column.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DROP TABLE schema_migrations; DROP TABLE incidents; DROP TABLE incident_journal;
		DROP INDEX outbox_node; ALTER TABLE outbox DROP COLUMN node;
		CREATE INDEX outbox_receiver ON outbox(receiver, seq)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	rcv.start()
	svc, err = New(Config{DataDir: dir, Node: "hazardwatch-ingest", Receivers: []Receiver{testReceiver(rcv.URL())}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if got := alarmStates(svc); got[k] != protocol.StateUnacked {
		t.Fatalf("alarms %v", got)
	}
	testenv.Eventually(t, "the queued event delivered", 20*time.Second, func() bool { return len(rcv.events()) == 1 })
	if ce := rcv.events()[0]; ce.Subject != k {
		t.Fatalf("delivered %+v", ce)
	}
	if v := schemaVersions(t, svc.store.db); !slices.Equal(v, []int{1, 2, 3}) {
		t.Errorf("schema versions recorded %v, want 1 (found), 2, 3", v)
	}
}

func schemaVersions(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestJournalSchemaVersion: a new journal records every schema step, in
// SQLite and in PostgreSQL; a second start runs none again; a journal
// written by a newer release is refused with a clear error.
func TestJournalSchemaVersion(t *testing.T) {
	eachJournal(t, func(t *testing.T, j journal) {
		svc, err := New(j.with(Config{}))
		if err != nil {
			t.Fatal(err)
		}
		if v := schemaVersions(t, svc.store.db); !slices.Equal(v, []int{1, 2, 3}) {
			t.Errorf("schema versions %v, want 1, 2, 3", v)
		}
		if _, err := svc.store.db.Exec(svc.store.q(`INSERT INTO schema_migrations(version, description, applied) VALUES(?,?,?)`), 99, "from the future", 0); err != nil {
			t.Fatal(err)
		}
		svc.Close()
		_, err = New(j.with(Config{}))
		if err == nil || !strings.Contains(err.Error(), "schema version 99, newer than this build's 3") {
			t.Errorf("journal of a newer release: %v", err)
		}
	})
}

// TestSQLiteJournalFollowsTheNode: a node renamed (a new -client-id) still
// delivers what its own SQLite journal holds.
func TestSQLiteJournalFollowsTheNode(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t)
	rcv.stop()
	k := "jh-chem/nh3-tanks/nh3-gas-1/HH"
	svc, err := New(Config{DataDir: dir, Node: "old-name", Receivers: []Receiver{testReceiver(rcv.URL())}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.HandleEvents(context.Background(), []rules.Event{event(rules.Raised, k, time.Now().UTC(), protocol.Red, protocol.None, 90)}); err != nil {
		t.Fatal(err)
	}
	svc.Close()
	rcv.start()
	svc, err = New(Config{DataDir: dir, Node: "new-name", Receivers: []Receiver{testReceiver(rcv.URL())}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	testenv.Eventually(t, "the event queued under the old name delivered", 20*time.Second, func() bool { return len(rcv.events()) == 1 })
}

// TestJournalDSNSecretNotShown: the DSN's password appears in no log line
// and no error.
func TestJournalDSNSecretNotShown(t *testing.T) {
	const pw = "hunter2-journal-secret"
	u, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	// The test server trusts 127.0.0.1, so any password is taken.
	u.User = url.UserPassword(u.User.Username(), pw)
	q := u.Query()
	q.Set("sslpassword", pw+"-param")
	u.RawQuery = q.Encode()
	var logs bytes.Buffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(zapcore.AddSync(&logs)), zap.DebugLevel))
	svc, err := New(Config{JournalDSN: u.String(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.HandleEvents(context.Background(), []rules.Event{
		event(rules.Raised, "jh-chem/a/p1/H", time.Now(), protocol.Blue, protocol.None, 1)}); err != nil {
		t.Fatal(err)
	}
	svc.Close()
	if !strings.Contains(logs.String(), u.Host) {
		t.Errorf("the log does not name the journal's server %s:\n%s", u.Host, logs.String())
	}
	if strings.Contains(logs.String(), pw) {
		t.Errorf("the log shows the password:\n%s", logs.String())
	}

	// A server that does not answer: the error names it, without the password.
	down := *u
	down.Host = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	_, err = New(Config{JournalDSN: down.String()})
	if err == nil || !strings.Contains(err.Error(), down.Host) || strings.Contains(err.Error(), pw) {
		t.Errorf("journal on a closed port: %v; want an error naming %s without the password", err, down.Host)
	}
	for _, bad := range []string{"mysql://root:" + pw + "@127.0.0.1/x", "postgres://root:" + pw + "%zz@127.0.0.1/x"} {
		if _, err := New(Config{JournalDSN: bad}); err == nil || strings.Contains(err.Error(), pw) {
			t.Errorf("DSN %q: %v; want an error without the password", bad, err)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://hw:pw@db.example:5432/hazardwatch?sslmode=verify-full&password=pw2": "postgres://hw@db.example:5432/hazardwatch",
		"postgresql://db.example/hazardwatch":                                           "postgresql://db.example/hazardwatch",
	} {
		if got, err := redactDSN(dsn); err != nil || got != want {
			t.Errorf("redactDSN(%q) = %q, %v; want %q", dsn, got, err, want)
		}
	}
}
