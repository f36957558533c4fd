package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting/notify"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// notifySchema (migration 4) is the notification journal — every message queued for a
// channel and every attempt's outcome, append only — and the chain's state
// per open incident, which a restart rebuilds the chain from.
const notifySchema = `
CREATE TABLE notifications (
	seq        {serial},
	id         TEXT NOT NULL,     -- the message (one channel, one person or group)
	incident   TEXT NOT NULL,
	site       TEXT NOT NULL,
	source     TEXT NOT NULL,
	channel    TEXT NOT NULL,
	kind       TEXT NOT NULL,     -- warning, escalation, acknowledged, closed
	grade      TEXT NOT NULL,
	step       INTEGER NOT NULL,
	recipients TEXT NOT NULL,     -- JSON list of "role name"
	outcome    TEXT NOT NULL,     -- queued, delivered, retrying, failed, skipped
	attempts   INTEGER NOT NULL,
	error      TEXT NOT NULL,
	ts         {integer} NOT NULL, -- unix milliseconds
	UNIQUE(id, outcome, attempts)
);
CREATE INDEX notifications_incident ON notifications(incident, seq);
CREATE TABLE notify_state (
	incident TEXT PRIMARY KEY,
	state    TEXT NOT NULL -- notify.IncidentState JSON
);
`

func insertNotification(ctx context.Context, tx *sql.Tx, s *store, r NotificationRecord) (bool, error) {
	to, err := json.Marshal(r.To)
	if err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO notifications(id, incident, site, source, channel, kind, grade, step, recipients, outcome, attempts, error, ts)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`),
		r.ID, r.Incident, r.Site, r.Source, r.Channel, string(r.Kind), r.Grade.String(), r.Step, string(to), r.Outcome, r.Attempts, text(r.Error), r.At.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("journal notification %s: %w", r.ID, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// queueNotifications journals messages and puts them in the outbox, with
// the chain's state of the incident after them, in one transaction. A
// message whose queued line is already there is not queued again.
func (s *store) queueNotifications(ctx context.Context, msgs []queuedMessage, incident string, st notify.IncidentState, open bool) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin notification write in %s: %w", s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	now := time.Now()
	for _, m := range msgs {
		fresh, err := insertNotification(ctx, tx, s, m.rec)
		if err != nil {
			return err
		}
		if !fresh || m.body == nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO outbox(receiver, event_id, alarm_id, body, created, next_try, node)
			VALUES(?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`), m.queue, m.rec.ID, incident, m.body, now.UnixMilli(), now.UnixMilli(), s.node); err != nil {
			return fmt.Errorf("queue notification %s for %s: %w", m.rec.ID, m.queue, err)
		}
	}
	if open {
		b, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("notification state of %s: %w", incident, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO notify_state(incident, state) VALUES(?,?)
			ON CONFLICT(incident) DO UPDATE SET state = excluded.state`), incident, string(b)); err != nil {
			return fmt.Errorf("notification state of %s: %w", incident, err)
		}
	} else if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM notify_state WHERE incident = ?`), incident); err != nil {
		return fmt.Errorf("notification state of %s: %w", incident, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit notifications in %s: %w", s.path, err)
	}
	return nil
}

// journalOutcome adds an attempt's outcome, copying what the queued line
// says of the message.
func (s *store) journalOutcome(ctx context.Context, r NotificationRecord) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO notifications(id, incident, site, source, channel, kind, grade, step, recipients, outcome, attempts, error, ts)
		SELECT id, incident, site, source, channel, kind, grade, step, recipients, ?, ?, ?, ? FROM notifications
		WHERE id = ? AND outcome = ? ON CONFLICT DO NOTHING`),
		r.Outcome, r.Attempts, text(r.Error), r.At.UnixMilli(), r.ID, OutcomeQueued)
	if err != nil {
		return fmt.Errorf("journal outcome of notification %s in %s: %w", r.ID, s.path, err)
	}
	return nil
}

// notifyStates returns the chain's state of every open incident.
func (s *store) notifyStates(ctx context.Context) ([]notify.IncidentState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state FROM notify_state ORDER BY incident`)
	if err != nil {
		return nil, fmt.Errorf("read notification states from %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []notify.IncidentState
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("read notification states from %s: %w", s.path, err)
		}
		var st notify.IncidentState
		if err := json.Unmarshal([]byte(b), &st); err != nil {
			return nil, fmt.Errorf("notification state in %s: %w", s.path, err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// NotificationQuery selects notification journal lines; empty fields
// match all.
type NotificationQuery struct {
	Incident string
	Site     string
	From, To time.Time
	Limit    int // default 1000
}

// notifications returns journal lines oldest first.
func (s *store) notifications(ctx context.Context, q NotificationQuery) ([]NotificationRecord, error) {
	var f filter
	f.equal("incident", q.Incident)
	f.equal("site", q.Site)
	f.between("ts", q.From, q.To)
	query, args := f.query(`SELECT id, incident, site, source, channel, kind, grade, step, recipients, outcome, attempts, error, ts FROM notifications`,
		"seq", q.Limit, 1000)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("read notifications from %s: %w", s.path, err)
	}
	defer rows.Close()
	out := []NotificationRecord{}
	for rows.Next() {
		var r NotificationRecord
		var kind, grade, to string
		var ts int64
		if err := rows.Scan(&r.ID, &r.Incident, &r.Site, &r.Source, &r.Channel, &kind, &grade, &r.Step, &to, &r.Outcome, &r.Attempts, &r.Error, &ts); err != nil {
			return nil, fmt.Errorf("read notifications from %s: %w", s.path, err)
		}
		r.Kind, r.At = notify.Kind(kind), time.UnixMilli(ts).UTC()
		r.Grade, _ = protocol.ParseGrade(grade)
		_ = json.Unmarshal([]byte(to), &r.To)
		out = append(out, r)
	}
	return out, rows.Err()
}
