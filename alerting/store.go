package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// DBFile is the SQLite file the service keeps in its data dir.
const DBFile = "alerting.db"

// store is the durable side: the journal of every event, with the alarm's
// state after it, and the outbox of webhook deliveries. It is SQLite in the
// data dir, or PostgreSQL shared by several ingest nodes.
type store struct {
	db      *sql.DB
	dialect dialect
	// path names the database in logs and errors: the SQLite file, or the
	// PostgreSQL URL without its password.
	path string
	// node tags the outbox rows this node queues; it delivers only those.
	node string
	// owns selects the sites whose state this node rebuilds on start.
	owns func(site string) bool
}

// dialect is what differs between the SQLite and the PostgreSQL journal.
// Every query is written once, with ? placeholders and the upserts both
// understand (INSERT … ON CONFLICT); no query has a ? inside a literal.
type dialect struct {
	driver  string
	serial  string // an auto-numbered 64-bit primary key
	integer string // a 64-bit integer
	blob    string
	// numbered: $1, $2 … placeholders instead of ?.
	numbered bool
	// schemaLock is run in the schema's transaction so that nodes starting
	// together do not race to create the same tables.
	schemaLock string
}

var (
	sqliteDialect = dialect{driver: "sqlite", serial: "INTEGER PRIMARY KEY AUTOINCREMENT", integer: "INTEGER", blob: "BLOB"}
	// 0x4857_4a4e: "HWJN", the advisory lock of the journal's schema.
	postgresDialect = dialect{driver: "pgx", serial: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", integer: "BIGINT", blob: "BYTEA",
		numbered: true, schemaLock: "SELECT pg_advisory_xact_lock(1213680206)"}
)

// bind writes a query's placeholders the way the database wants them.
func (d dialect) bind(query string) string {
	if !d.numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r != '?' {
			b.WriteRune(r)
			continue
		}
		n++
		b.WriteString("$" + strconv.Itoa(n))
	}
	return b.String()
}

// migrations are the journal's schema, one numbered step after another.
// Each runs once, in the transaction that records its number in
// schema_migrations, so the database says which version it is. Steps are
// written for both databases: {serial}, {integer} and {blob} are the
// dialect's types. Never edit a released step: add one.
var migrations = []struct {
	version     int
	description string
	ddl         string
}{
	{1, "journal, outbox and dead letters", `
CREATE TABLE IF NOT EXISTS journal (
	seq      {serial},
	id       TEXT NOT NULL UNIQUE,
	alarm_id TEXT NOT NULL,
	type     TEXT NOT NULL,
	site     TEXT NOT NULL,
	source   TEXT NOT NULL,
	point    TEXT NOT NULL,
	ts       {integer} NOT NULL, -- unix milliseconds
	actor    TEXT NOT NULL,
	event    TEXT NOT NULL,    -- protocol.AlarmEvent JSON
	snapshot TEXT NOT NULL     -- the alarm (or source grade) after the event, JSON
);
CREATE INDEX IF NOT EXISTS journal_alarm ON journal(alarm_id, seq);
CREATE INDEX IF NOT EXISTS journal_site_ts ON journal(site, ts);
CREATE INDEX IF NOT EXISTS journal_actor_ts ON journal(actor, ts);
CREATE TABLE IF NOT EXISTS outbox (
	seq        {serial},
	receiver   TEXT NOT NULL,
	event_id   TEXT NOT NULL,
	alarm_id   TEXT NOT NULL,
	body       {blob} NOT NULL,    -- the CloudEvents message
	created    {integer} NOT NULL, -- unix milliseconds
	attempts   INTEGER NOT NULL DEFAULT 0,
	next_try   {integer} NOT NULL,
	last_error TEXT NOT NULL DEFAULT '',
	UNIQUE(receiver, event_id)
);
CREATE TABLE IF NOT EXISTS dead_letters (
	seq      {integer} PRIMARY KEY,
	receiver TEXT NOT NULL,
	event_id TEXT NOT NULL,
	body     {blob} NOT NULL,
	failed   {integer} NOT NULL,
	error    TEXT NOT NULL
);`},
	{2, "outbox rows carry the node that queued and delivers them", `
ALTER TABLE outbox ADD COLUMN node TEXT NOT NULL DEFAULT '';
DROP INDEX IF EXISTS outbox_receiver;
CREATE INDEX IF NOT EXISTS outbox_node ON outbox(node, receiver, seq);`},
	{3, "incidents and their journal", `
CREATE TABLE incident_journal (
	seq         {serial},
	id          TEXT NOT NULL UNIQUE,
	incident_id TEXT NOT NULL,
	type        TEXT NOT NULL,
	site        TEXT NOT NULL,
	source      TEXT NOT NULL,
	ts          {integer} NOT NULL, -- unix milliseconds
	actor       TEXT NOT NULL,
	event       TEXT NOT NULL       -- incident.Event JSON
);
CREATE INDEX incident_journal_incident ON incident_journal(incident_id, seq);
CREATE INDEX incident_journal_site_ts ON incident_journal(site, ts);
CREATE TABLE incidents (
	id          TEXT PRIMARY KEY,
	site        TEXT NOT NULL,
	source      TEXT NOT NULL,
	state       TEXT NOT NULL,
	worst_grade TEXT NOT NULL,
	opened      {integer} NOT NULL, -- unix milliseconds
	closed      {integer} NOT NULL, -- unix milliseconds; 0 while open
	snapshot    TEXT NOT NULL       -- the incident after its last event, JSON
);
CREATE INDEX incidents_state ON incidents(state, site);
CREATE INDEX incidents_site_opened ON incidents(site, opened);`},
	{4, "notification journal and the notification chain's state", notifySchema},
}

// SchemaVersion is the journal schema this build writes.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// openStore opens (creating) the journal: in PostgreSQL when dsn is set,
// else in SQLite in dir, where "" keeps it in memory. node names this node
// in a shared journal and owns selects its sites (nil: every site).
func openStore(dir, dsn, node string, owns func(site string) bool) (*store, error) {
	if owns == nil {
		owns = func(string) bool { return true }
	}
	s := &store{node: node, owns: owns}
	var err error
	if dsn != "" {
		err = s.openPostgres(dsn)
	} else {
		err = s.openSQLite(dir)
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

func (s *store) openSQLite(dir string) error {
	const common = "_pragma=busy_timeout(5000)"
	dsn, path := "file::memory:?"+common, ":memory:"
	if dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("alerting data dir %s: %w", dir, err)
		}
		path = filepath.Join(dir, DBFile)
		dsn = "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&" + common
	}
	db, err := sql.Open(sqliteDialect.driver, dsn)
	if err != nil {
		return fmt.Errorf("open alerting database %s: %w", path, err)
	}
	// One connection: writes are serialised anyway, and an in-memory
	// database lives in its connection.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s.db, s.dialect, s.path = db, sqliteDialect, path
	return nil
}

func (s *store) openPostgres(dsn string) error {
	path, err := redactDSN(dsn)
	if err != nil {
		return err
	}
	db, err := sql.Open(postgresDialect.driver, dsn)
	if err != nil {
		return fmt.Errorf("open alerting journal %s: %w", path, err)
	}
	// The deliverers read and write beside the journal writer; a few
	// connections are plenty for one node.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return fmt.Errorf("connect to alerting journal %s: %w", path, err)
	}
	s.db, s.dialect, s.path = db, postgresDialect, path
	return nil
}

// redactDSN checks that a journal DSN is a postgres:// URL and returns it
// without its password and parameters, fit for logs and errors.
func redactDSN(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		// url's errors quote the URL, password and all.
		return "", errors.New("alerting journal DSN is not a valid URL (is a character of the password not %-escaped?)")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("alerting journal DSN: scheme %q, want a postgres:// URL", u.Scheme)
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	if u.User != nil {
		r.User = url.User(u.User.Username())
	}
	return r.String(), nil
}

// migrate brings the schema to SchemaVersion, in one transaction (under an
// advisory lock in PostgreSQL, so that nodes starting together do not race
// to create the same tables), and gives this node the outbox of a SQLite
// journal. A journal newer than this build is refused.
func (s *store) migrate() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin alerting schema in %s: %w", s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	if s.dialect.schemaLock != "" {
		if _, err := tx.ExecContext(ctx, s.dialect.schemaLock); err != nil {
			return fmt.Errorf("lock alerting schema in %s: %w", s.path, err)
		}
	}
	version, err := s.version(ctx, tx)
	if err != nil {
		return err
	}
	if version > SchemaVersion() {
		return fmt.Errorf("alerting journal %s is at schema version %d, newer than this build's %d: run the HazardWatch release that wrote it, or a newer one",
			s.path, version, SchemaVersion())
	}
	d := s.dialect
	types := strings.NewReplacer("{serial}", d.serial, "{integer}", d.integer, "{blob}", d.blob)
	for _, m := range migrations {
		if m.version <= version {
			continue
		}
		if _, err := tx.ExecContext(ctx, types.Replace(m.ddl)); err != nil {
			return fmt.Errorf("alerting journal %s: schema step %d (%s): %w", s.path, m.version, m.description, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations(version, description, applied) VALUES(?,?,?)`),
			m.version, m.description, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("alerting journal %s: record schema step %d: %w", s.path, m.version, err)
		}
	}
	if !d.numbered {
		// A SQLite journal is the node's own, whatever the node was
		// called before: it delivers every row in it. In PostgreSQL rows
		// stay with the nodes that queued them.
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET node = ? WHERE node <> ?`, s.node, s.node); err != nil {
			return fmt.Errorf("take over the outbox in %s: %w", s.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit alerting schema in %s: %w", s.path, err)
	}
	return nil
}

// version returns the schema version recorded in schema_migrations,
// creating the table. A journal of the releases before numbered
// migrations has tables but no record: it is version 1 when its outbox
// lacks the node column, else 2 (PostgreSQL journals always had it).
func (s *store) version(ctx context.Context, tx *sql.Tx) (int, error) {
	if _, err := tx.ExecContext(ctx, strings.ReplaceAll(`CREATE TABLE IF NOT EXISTS schema_migrations (
	version     INTEGER PRIMARY KEY,
	description TEXT NOT NULL,
	applied     {integer} NOT NULL -- unix milliseconds
)`, "{integer}", s.dialect.integer)); err != nil {
		return 0, fmt.Errorf("create schema_migrations in %s: %w", s.path, err)
	}
	var version sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil {
		return 0, fmt.Errorf("read the schema version of %s: %w", s.path, err)
	}
	if version.Valid {
		return int(version.Int64), nil
	}
	legacy, hasNode, err := s.legacyTables(ctx, tx)
	if err != nil || !legacy {
		return 0, err
	}
	adopted := 1
	if hasNode {
		adopted = 2
	}
	for _, m := range migrations[:adopted] {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations(version, description, applied) VALUES(?,?,?)`),
			m.version, m.description+" (found in place)", time.Now().UnixMilli()); err != nil {
			return 0, fmt.Errorf("record the schema version of %s: %w", s.path, err)
		}
	}
	return adopted, nil
}

// legacyTables tells whether the journal tables exist already (a journal
// from before numbered migrations) and whether the outbox has its node
// column.
func (s *store) legacyTables(ctx context.Context, tx *sql.Tx) (exists, hasNode bool, err error) {
	var tables, cols int
	if s.dialect.numbered {
		err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'journal'`).Scan(&tables)
		if err == nil {
			err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'outbox' AND column_name = 'node'`).Scan(&cols)
		}
	} else {
		err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'journal'`).Scan(&tables)
		if err == nil {
			err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('outbox') WHERE name = 'node'`).Scan(&cols)
		}
	}
	if err != nil {
		return false, false, fmt.Errorf("inspect the alerting journal %s: %w", s.path, err)
	}
	return tables > 0, cols > 0, nil
}

func (s *store) Close() error { return s.db.Close() }

// q is a query in the store's dialect.
func (s *store) q(query string) string { return s.dialect.bind(query) }

// text makes an error message storable: PostgreSQL's TEXT takes neither
// NUL nor invalid UTF-8, and a receiver's answer may hold either.
func text(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

// record is one event to journal with the state after it and the outbox
// rows it makes.
type record struct {
	event    protocol.AlarmEvent
	snapshot []byte
	outbox   []outboxRow
	// held: a flood holds this event back from the receivers.
	held bool
	// escalate: an escalated re-send past the limit, for the escalation
	// receivers too.
	escalate bool
}

type outboxRow struct {
	Seq      int64
	Receiver string
	EventID  string
	AlarmID  string
	Body     []byte
	Created  time.Time
	Attempts int
	NextTry  time.Time
}

// seen reports whether an event id is already in the journal.
func (s *store) seen(ctx context.Context, id string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT 1 FROM journal WHERE id = ?`), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up event %s in %s: %w", id, s.path, err)
	}
	return true, nil
}

// append writes records and their outbox rows, the incident events with
// theirs and the incidents' new snapshots, in one transaction.
func (s *store) append(ctx context.Context, recs []record, incs incidentBatch) error {
	if len(recs) == 0 && len(incs.events) == 0 && len(incs.snapshots) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin journal write in %s: %w", s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	for _, r := range recs {
		body, err := json.Marshal(r.event)
		if err != nil {
			return fmt.Errorf("encode event %s of %s: %w", r.event.ID, r.event.AlarmID, err)
		}
		e := r.event
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO journal(id, alarm_id, type, site, source, point, ts, actor, event, snapshot)
			VALUES(?,?,?,?,?,?,?,?,?,?)`), e.ID, e.AlarmID, string(e.Type), e.Site, e.Source, e.Point, e.TS.UnixMilli(), e.Actor, body, r.snapshot); err != nil {
			return fmt.Errorf("journal event %s of %s: %w", e.ID, e.AlarmID, err)
		}
		for _, o := range r.outbox {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO outbox(receiver, event_id, alarm_id, body, created, next_try, node)
				VALUES(?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`), o.Receiver, o.EventID, o.AlarmID, o.Body, o.Created.UnixMilli(), o.Created.UnixMilli(), s.node); err != nil {
				return fmt.Errorf("queue event %s for receiver %s: %w", e.ID, o.Receiver, err)
			}
		}
	}
	if err := s.appendIncidents(ctx, tx, incs); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit journal write in %s: %w", s.path, err)
	}
	return nil
}

// lastSnapshots returns the newest snapshot of every alarm, source and
// flood of the sites this node owns, the state the service rebuilds on
// start. A shared journal holds other nodes' sites too; the newest
// snapshot counts whichever node wrote it, so a site that moves to another
// node takes its alarms along.
func (s *store) lastSnapshots(ctx context.Context) (alarms []Alarm, sources []protocol.SourceGrade, floods []Flood, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT j.site, j.type, j.snapshot FROM journal j
		JOIN (SELECT MAX(seq) AS seq FROM journal GROUP BY alarm_id) last ON j.seq = last.seq ORDER BY j.seq`)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read alarm states from %s: %w", s.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var site, typ string
		var snap []byte
		if err := rows.Scan(&site, &typ, &snap); err != nil {
			return nil, nil, nil, fmt.Errorf("read alarm state from %s: %w", s.path, err)
		}
		if !s.owns(site) {
			continue
		}
		if protocol.AlarmEventType(typ) == protocol.AlarmFlood {
			var f Flood
			if err := json.Unmarshal(snap, &f); err != nil {
				return nil, nil, nil, fmt.Errorf("flood snapshot in %s: %w", s.path, err)
			}
			floods = append(floods, f)
			continue
		}
		if protocol.AlarmEventType(typ) == protocol.AlarmSourceGradeChanged {
			var g protocol.SourceGrade
			if err := json.Unmarshal(snap, &g); err != nil {
				return nil, nil, nil, fmt.Errorf("source grade snapshot in %s: %w", s.path, err)
			}
			sources = append(sources, g)
			continue
		}
		var a Alarm
		if err := json.Unmarshal(snap, &a); err != nil {
			return nil, nil, nil, fmt.Errorf("alarm snapshot in %s: %w", s.path, err)
		}
		alarms = append(alarms, a)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("read alarm states from %s: %w", s.path, err)
	}
	return alarms, sources, floods, nil
}

// raise is a journaled raised event, for rebuilding flood windows.
type raise struct {
	site, source, alarmID string
	at                    time.Time
}

// raisedSince returns the raised events of this node's sites stamped after
// from, in journal order.
func (s *store) raisedSince(ctx context.Context, from time.Time) ([]raise, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT site, source, alarm_id, ts FROM journal WHERE type = ? AND ts > ? ORDER BY seq`),
		string(protocol.AlarmRaised), from.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read recent raises from %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []raise
	for rows.Next() {
		var r raise
		var ts int64
		if err := rows.Scan(&r.site, &r.source, &r.alarmID, &ts); err != nil {
			return nil, fmt.Errorf("read recent raises from %s: %w", s.path, err)
		}
		if !s.owns(r.site) {
			continue
		}
		r.at = time.UnixMilli(ts)
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeadLetter is an event a receiver refused for good (a 4xx answer).
type DeadLetter struct {
	Seq      int64           `json:"seq"`
	Receiver string          `json:"receiver"`
	EventID  string          `json:"event_id"`
	Failed   time.Time       `json:"failed"`
	Error    string          `json:"error"`
	Body     json.RawMessage `json:"body"` // the CloudEvents message as it was POSTed
}

// deadLetters returns a receiver's (or every receiver's, for "") dead
// letters, newest first.
func (s *store) deadLetters(ctx context.Context, receiver string, limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		limit = 1000
	}
	query, args := `SELECT seq, receiver, event_id, body, failed, error FROM dead_letters`, []any{}
	if receiver != "" {
		query += ` WHERE receiver = ?`
		args = append(args, receiver)
	}
	query += ` ORDER BY failed DESC, seq DESC LIMIT ?`
	rows, err := s.db.QueryContext(ctx, s.q(query), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("read dead letters from %s: %w", s.path, err)
	}
	defer rows.Close()
	out := []DeadLetter{}
	for rows.Next() {
		var d DeadLetter
		var body []byte
		var failed int64
		if err := rows.Scan(&d.Seq, &d.Receiver, &d.EventID, &body, &failed, &d.Error); err != nil {
			return nil, fmt.Errorf("read dead letters from %s: %w", s.path, err)
		}
		d.Failed = time.UnixMilli(failed).UTC()
		if json.Valid(body) {
			d.Body = body
		} else {
			d.Body, _ = json.Marshal(string(body)) // cannot fail for a string
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// filter gathers the conditions of a journal query whose empty fields
// match everything, with their arguments in order.
type filter struct {
	where []string
	args  []any
}

// equal keeps the rows whose column is v; an empty v keeps all.
func (f *filter) equal(column, v string) {
	if v != "" {
		f.where = append(f.where, column+" = ?")
		f.args = append(f.args, v)
	}
}

// between keeps the rows whose column, in Unix milliseconds, lies within
// [from, to]; a zero bound is open.
func (f *filter) between(column string, from, to time.Time) {
	if !from.IsZero() {
		f.where = append(f.where, column+" >= ?")
		f.args = append(f.args, from.UnixMilli())
	}
	if !to.IsZero() {
		f.where = append(f.where, column+" <= ?")
		f.args = append(f.args, to.UnixMilli())
	}
}

// query returns selectFrom with the conditions, ordered by orderBy and
// cut to limit rows (def when limit is not positive), and its arguments.
func (f *filter) query(selectFrom, orderBy string, limit, def int) (string, []any) {
	if limit <= 0 {
		limit = def
	}
	query := selectFrom
	if len(f.where) > 0 {
		query += " WHERE " + strings.Join(f.where, " AND ")
	}
	return query + " ORDER BY " + orderBy + " LIMIT ?", append(f.args, limit)
}

// HistoryQuery selects journaled events; empty fields match everything.
type HistoryQuery struct {
	Site, Source, Point string
	AlarmID             string
	Actor               string // an officer's actions
	From, To            time.Time
	Limit               int // default 1000
}

// history returns matching events, oldest first.
func (s *store) history(ctx context.Context, q HistoryQuery) ([]protocol.AlarmEvent, error) {
	var f filter
	f.equal("site", q.Site)
	f.equal("source", q.Source)
	f.equal("point", q.Point)
	f.equal("alarm_id", q.AlarmID)
	f.equal("actor", q.Actor)
	f.between("ts", q.From, q.To)
	query, args := f.query("SELECT event FROM journal", "seq", q.Limit, 1000)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("query history in %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []protocol.AlarmEvent
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("read history in %s: %w", s.path, err)
		}
		var e protocol.AlarmEvent
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("journaled event in %s: %w", s.path, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// pending returns a receiver's oldest undelivered rows, in order.
func (s *store) pending(ctx context.Context, receiver string, limit int) ([]outboxRow, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT seq, event_id, alarm_id, body, created, attempts, next_try
		FROM outbox WHERE node = ? AND receiver = ? ORDER BY seq LIMIT ?`), s.node, receiver, limit)
	if err != nil {
		return nil, fmt.Errorf("read outbox of %s in %s: %w", receiver, s.path, err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		o := outboxRow{Receiver: receiver}
		var created, next int64
		if err := rows.Scan(&o.Seq, &o.EventID, &o.AlarmID, &o.Body, &created, &o.Attempts, &next); err != nil {
			return nil, fmt.Errorf("read outbox of %s in %s: %w", receiver, s.path, err)
		}
		o.Created, o.NextTry = time.UnixMilli(created), time.UnixMilli(next)
		out = append(out, o)
	}
	return out, rows.Err()
}

func (s *store) delivered(ctx context.Context, seq int64) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM outbox WHERE seq = ?`), seq); err != nil {
		return fmt.Errorf("remove delivered outbox row %d in %s: %w", seq, s.path, err)
	}
	return nil
}

func (s *store) retryLater(ctx context.Context, seq int64, attempts int, next time.Time, cause string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE outbox SET attempts = ?, next_try = ?, last_error = ? WHERE seq = ?`),
		attempts, next.UnixMilli(), text(cause), seq); err != nil {
		return fmt.Errorf("reschedule outbox row %d in %s: %w", seq, s.path, err)
	}
	return nil
}

// giveUp moves a row the receiver refused for good to dead_letters.
func (s *store) giveUp(ctx context.Context, o outboxRow, now time.Time, cause string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin dead letter in %s: %w", s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO dead_letters(seq, receiver, event_id, body, failed, error) VALUES(?,?,?,?,?,?)
		ON CONFLICT(seq) DO UPDATE SET receiver = excluded.receiver, event_id = excluded.event_id, body = excluded.body,
			failed = excluded.failed, error = excluded.error`),
		o.Seq, o.Receiver, o.EventID, o.Body, now.UnixMilli(), text(cause)); err != nil {
		return fmt.Errorf("dead letter %s for %s: %w", o.EventID, o.Receiver, err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM outbox WHERE seq = ?`), o.Seq); err != nil {
		return fmt.Errorf("dead letter %s for %s: %w", o.EventID, o.Receiver, err)
	}
	return tx.Commit()
}

// OutboxStat is one receiver's backlog.
type OutboxStat struct {
	Receiver string    `json:"receiver"`
	Depth    int       `json:"depth"`
	Oldest   time.Time `json:"oldest,omitzero"`
}

func (s *store) outboxStats(ctx context.Context) (map[string]OutboxStat, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT receiver, COUNT(*), MIN(created) FROM outbox WHERE node = ? GROUP BY receiver`), s.node)
	if err != nil {
		return nil, fmt.Errorf("outbox stats in %s: %w", s.path, err)
	}
	defer rows.Close()
	out := map[string]OutboxStat{}
	for rows.Next() {
		var st OutboxStat
		var oldest int64
		if err := rows.Scan(&st.Receiver, &st.Depth, &oldest); err != nil {
			return nil, fmt.Errorf("outbox stats in %s: %w", s.path, err)
		}
		st.Oldest = time.UnixMilli(oldest)
		out[st.Receiver] = st
	}
	return out, rows.Err()
}
