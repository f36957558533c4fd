package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting/incident"
)

// incidentRecord is one incident event to journal with its outbox rows.
type incidentRecord struct {
	event  incident.Event
	outbox []outboxRow
}

// incidentBatch is what a batch changed of the incidents: the events, and
// the incidents as they are after them.
type incidentBatch struct {
	events    []incidentRecord
	snapshots []incident.Incident
}

// appendIncidents journals incident events, queues their outbox rows and
// upserts the incidents' snapshots, in the caller's transaction.
func (s *store) appendIncidents(ctx context.Context, tx *sql.Tx, b incidentBatch) error {
	for _, r := range b.events {
		e := r.event
		body, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode incident event %s: %w", e.ID, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO incident_journal(id, incident_id, type, site, source, ts, actor, event)
			VALUES(?,?,?,?,?,?,?,?)`), e.ID, e.IncidentID, string(e.Type), e.Site, e.Source, e.TS.UnixMilli(), e.Actor, body); err != nil {
			return fmt.Errorf("journal incident event %s: %w", e.ID, err)
		}
		for _, o := range r.outbox {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO outbox(receiver, event_id, alarm_id, body, created, next_try, node)
				VALUES(?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`), o.Receiver, o.EventID, o.AlarmID, o.Body, o.Created.UnixMilli(), o.Created.UnixMilli(), s.node); err != nil {
				return fmt.Errorf("queue incident event %s for receiver %s: %w", e.ID, o.Receiver, err)
			}
		}
	}
	for _, inc := range b.snapshots {
		snap, err := json.Marshal(inc)
		if err != nil {
			return fmt.Errorf("encode incident %s: %w", inc.ID, err)
		}
		var closed int64
		if !inc.ClosedAt.IsZero() {
			closed = inc.ClosedAt.UnixMilli()
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO incidents(id, site, source, state, worst_grade, opened, closed, snapshot)
			VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET state = excluded.state, worst_grade = excluded.worst_grade,
				closed = excluded.closed, snapshot = excluded.snapshot`),
			inc.ID, inc.Site, inc.Source, string(inc.State), inc.WorstGrade.String(), inc.OpenedAt.UnixMilli(), closed, snap); err != nil {
			return fmt.Errorf("save incident %s: %w", inc.ID, err)
		}
	}
	return nil
}

// openIncidents returns the incidents not closed of the sites this node
// owns, for the service to rebuild on start.
func (s *store) openIncidents(ctx context.Context) ([]incident.Incident, error) {
	return s.notClosedIncidents(ctx, s.owns)
}

// notClosedIncidents returns the incidents not yet closed, every node's,
// of the sites keep accepts, oldest first.
func (s *store) notClosedIncidents(ctx context.Context, keep func(string) bool) ([]incident.Incident, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT site, snapshot FROM incidents WHERE state <> ? ORDER BY opened`), string(incident.Closed))
	if err != nil {
		return nil, fmt.Errorf("read open incidents from %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []incident.Incident
	for rows.Next() {
		var siteID string
		var snap []byte
		if err := rows.Scan(&siteID, &snap); err != nil {
			return nil, fmt.Errorf("read open incidents from %s: %w", s.path, err)
		}
		if !keep(siteID) {
			continue
		}
		var inc incident.Incident
		if err := json.Unmarshal(snap, &inc); err != nil {
			return nil, fmt.Errorf("incident snapshot in %s: %w", s.path, err)
		}
		out = append(out, inc)
	}
	return out, rows.Err()
}

// IncidentQuery selects incidents from the journal; empty fields match
// everything.
type IncidentQuery struct {
	Site, Source string
	State        incident.State
	// From and To bound the opening time.
	From, To time.Time
	Limit    int // default 100
}

// incidents returns the journal's incidents (every node's) that match q,
// newest first.
func (s *store) incidents(ctx context.Context, q IncidentQuery) ([]incident.Incident, error) {
	var f filter
	f.equal("site", q.Site)
	f.equal("source", q.Source)
	f.equal("state", string(q.State))
	f.between("opened", q.From, q.To)
	query, args := f.query("SELECT snapshot FROM incidents", "opened DESC, id", q.Limit, 100)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("query incidents in %s: %w", s.path, err)
	}
	defer rows.Close()
	out := []incident.Incident{}
	for rows.Next() {
		var snap []byte
		if err := rows.Scan(&snap); err != nil {
			return nil, fmt.Errorf("read incidents in %s: %w", s.path, err)
		}
		var inc incident.Incident
		if err := json.Unmarshal(snap, &inc); err != nil {
			return nil, fmt.Errorf("incident snapshot in %s: %w", s.path, err)
		}
		out = append(out, inc)
	}
	return out, rows.Err()
}

// incident returns one incident of the journal, whichever node wrote it.
func (s *store) incident(ctx context.Context, id string) (incident.Incident, bool, error) {
	var snap []byte
	err := s.db.QueryRowContext(ctx, s.q(`SELECT snapshot FROM incidents WHERE id = ?`), id).Scan(&snap)
	if errors.Is(err, sql.ErrNoRows) {
		return incident.Incident{}, false, nil
	}
	if err != nil {
		return incident.Incident{}, false, fmt.Errorf("read incident %s from %s: %w", id, s.path, err)
	}
	var inc incident.Incident
	if err := json.Unmarshal(snap, &inc); err != nil {
		return incident.Incident{}, false, fmt.Errorf("incident snapshot in %s: %w", s.path, err)
	}
	return inc, true, nil
}

// incidentEvents returns an incident's journaled events, oldest first.
func (s *store) incidentEvents(ctx context.Context, id string) ([]incident.Event, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT event FROM incident_journal WHERE incident_id = ? ORDER BY seq`), id)
	if err != nil {
		return nil, fmt.Errorf("read the events of incident %s from %s: %w", id, s.path, err)
	}
	defer rows.Close()
	out := []incident.Event{}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("read the events of incident %s from %s: %w", id, s.path, err)
		}
		var e incident.Event
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("journaled incident event in %s: %w", s.path, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
