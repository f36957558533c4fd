package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// DBFile is the SQLite file the service keeps in its data dir.
const DBFile = "alerting.db"

// store is the durable side: the journal of every event, with the alarm's
// state after it, and the outbox of webhook deliveries.
type store struct {
	db   *sql.DB
	path string
}

const schema = `
CREATE TABLE IF NOT EXISTS journal (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT,
	id       TEXT NOT NULL UNIQUE,
	alarm_id TEXT NOT NULL,
	type     TEXT NOT NULL,
	site     TEXT NOT NULL,
	source   TEXT NOT NULL,
	point    TEXT NOT NULL,
	ts       INTEGER NOT NULL, -- unix milliseconds
	actor    TEXT NOT NULL,
	event    TEXT NOT NULL,    -- protocol.AlarmEvent JSON
	snapshot TEXT NOT NULL     -- the alarm (or source grade) after the event, JSON
);
CREATE INDEX IF NOT EXISTS journal_alarm ON journal(alarm_id, seq);
CREATE INDEX IF NOT EXISTS journal_site_ts ON journal(site, ts);
CREATE INDEX IF NOT EXISTS journal_actor_ts ON journal(actor, ts);
CREATE TABLE IF NOT EXISTS outbox (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	receiver   TEXT NOT NULL,
	event_id   TEXT NOT NULL,
	alarm_id   TEXT NOT NULL,
	body       BLOB NOT NULL,    -- the CloudEvents message
	created    INTEGER NOT NULL, -- unix milliseconds
	attempts   INTEGER NOT NULL DEFAULT 0,
	next_try   INTEGER NOT NULL,
	last_error TEXT NOT NULL DEFAULT '',
	UNIQUE(receiver, event_id)
);
CREATE INDEX IF NOT EXISTS outbox_receiver ON outbox(receiver, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
	seq      INTEGER PRIMARY KEY,
	receiver TEXT NOT NULL,
	event_id TEXT NOT NULL,
	body     BLOB NOT NULL,
	failed   INTEGER NOT NULL,
	error    TEXT NOT NULL
);
`

// openStore opens (creating) the database in dir; dir "" keeps it in memory.
func openStore(dir string) (*store, error) {
	const common = "_pragma=busy_timeout(5000)"
	dsn, path := "file::memory:?"+common, ":memory:"
	if dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("alerting data dir %s: %w", dir, err)
		}
		path = filepath.Join(dir, DBFile)
		dsn = "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&" + common
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open alerting database %s: %w", path, err)
	}
	// One connection: writes are serialised anyway, and an in-memory
	// database lives in its connection.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create alerting schema in %s: %w", path, err)
	}
	return &store{db: db, path: path}, nil
}

func (s *store) Close() error { return s.db.Close() }

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
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM journal WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up event %s in %s: %w", id, s.path, err)
	}
	return true, nil
}

// append writes records and their outbox rows in one transaction.
func (s *store) append(ctx context.Context, recs []record) error {
	if len(recs) == 0 {
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
		if _, err := tx.ExecContext(ctx, `INSERT INTO journal(id, alarm_id, type, site, source, point, ts, actor, event, snapshot)
			VALUES(?,?,?,?,?,?,?,?,?,?)`, e.ID, e.AlarmID, string(e.Type), e.Site, e.Source, e.Point, e.TS.UnixMilli(), e.Actor, body, r.snapshot); err != nil {
			return fmt.Errorf("journal event %s of %s: %w", e.ID, e.AlarmID, err)
		}
		for _, o := range r.outbox {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO outbox(receiver, event_id, alarm_id, body, created, next_try)
				VALUES(?,?,?,?,?,?)`, o.Receiver, o.EventID, o.AlarmID, o.Body, o.Created.UnixMilli(), o.Created.UnixMilli()); err != nil {
				return fmt.Errorf("queue event %s for receiver %s: %w", e.ID, o.Receiver, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit journal write in %s: %w", s.path, err)
	}
	return nil
}

// lastSnapshots returns the newest snapshot of every alarm and source, the
// state the service rebuilds on start.
func (s *store) lastSnapshots(ctx context.Context) (alarms []Alarm, sources []protocol.SourceGrade, floods []Flood, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT j.type, j.snapshot FROM journal j
		JOIN (SELECT MAX(seq) AS seq FROM journal GROUP BY alarm_id) last ON j.seq = last.seq ORDER BY j.seq`)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read alarm states from %s: %w", s.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ string
		var snap []byte
		if err := rows.Scan(&typ, &snap); err != nil {
			return nil, nil, nil, fmt.Errorf("read alarm state from %s: %w", s.path, err)
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

// raisedSince returns the raised events stamped after from, in journal
// order.
func (s *store) raisedSince(ctx context.Context, from time.Time) ([]raise, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT site, source, alarm_id, ts FROM journal WHERE type = ? AND ts > ? ORDER BY seq`,
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
	rows, err := s.db.QueryContext(ctx, query, append(args, limit)...)
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
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if q.Site != "" {
		add("site = ?", q.Site)
	}
	if q.Source != "" {
		add("source = ?", q.Source)
	}
	if q.Point != "" {
		add("point = ?", q.Point)
	}
	if q.AlarmID != "" {
		add("alarm_id = ?", q.AlarmID)
	}
	if q.Actor != "" {
		add("actor = ?", q.Actor)
	}
	if !q.From.IsZero() {
		add("ts >= ?", q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		add("ts <= ?", q.To.UnixMilli())
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	query := "SELECT event FROM journal"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY seq LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, query, args...)
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
	rows, err := s.db.QueryContext(ctx, `SELECT seq, event_id, alarm_id, body, created, attempts, next_try
		FROM outbox WHERE receiver = ? ORDER BY seq LIMIT ?`, receiver, limit)
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
	if _, err := s.db.ExecContext(ctx, `DELETE FROM outbox WHERE seq = ?`, seq); err != nil {
		return fmt.Errorf("remove delivered outbox row %d in %s: %w", seq, s.path, err)
	}
	return nil
}

func (s *store) retryLater(ctx context.Context, seq int64, attempts int, next time.Time, cause string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE outbox SET attempts = ?, next_try = ?, last_error = ? WHERE seq = ?`,
		attempts, next.UnixMilli(), cause, seq); err != nil {
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
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO dead_letters(seq, receiver, event_id, body, failed, error) VALUES(?,?,?,?,?,?)`,
		o.Seq, o.Receiver, o.EventID, o.Body, now.UnixMilli(), cause); err != nil {
		return fmt.Errorf("dead letter %s for %s: %w", o.EventID, o.Receiver, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq = ?`, o.Seq); err != nil {
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
	rows, err := s.db.QueryContext(ctx, `SELECT receiver, COUNT(*), MIN(created) FROM outbox GROUP BY receiver`)
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
