package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
)

// LatestReader returns the newest reading of each point of a site: the
// ingest service's copy in memory, or a store. Incidents show and send
// their points' live values from it.
type LatestReader interface {
	Latest(ctx context.Context, site string) ([]storage.Sample, error)
}

// LatestPointsReader is a LatestReader that also returns the newest
// readings of a few points of a site alone (the ingest service): an
// incident event then reads its conditions' points, not every point of a
// large site.
type LatestPointsReader interface {
	LatestReader
	LatestOf(ctx context.Context, site string, points []string) ([]storage.Sample, error)
}

// IncidentsTopic is the MQTT topic of a site's incident events
// (incident.Event JSON, QoS 1).
func IncidentsTopic(site string) string { return protocol.Prefix + site + "/incidents" }

// IncidentCloudEventType is the CloudEvents type of an incident event
// type, e.g. cn.hazardwatch.incident.opened.
func IncidentCloudEventType(t incident.EventType) string {
	return "cn.hazardwatch.incident." + string(t)
}

// IncidentCloudEvent is the CloudEvents envelope of an incident event.
type IncidentCloudEvent struct {
	SpecVersion     string         `json:"specversion"`
	ID              string         `json:"id"`
	Source          string         `json:"source"`
	Type            string         `json:"type"`
	Subject         string         `json:"subject"`
	Time            protocol.Time  `json:"time"`
	DataContentType string         `json:"datacontenttype"`
	Data            incident.Event `json:"data"`
}

func incidentEnvelope(source string, e incident.Event) ([]byte, error) {
	ce := IncidentCloudEvent{SpecVersion: "1.0", ID: e.ID, Source: source + "/" + e.Site, Type: IncidentCloudEventType(e.Type),
		Subject: e.IncidentID, Time: protocol.Time{Time: e.TS}, DataContentType: "application/json", Data: e}
	b, err := json.Marshal(ce)
	if err != nil {
		return nil, fmt.Errorf("encode CloudEvent %s: %w", e.ID, err)
	}
	return b, nil
}

// wantsIncident reports whether a receiver takes an incident event: the
// lifecycle events by default, the condition details too with events
// all; never escalation receivers (they take alarms' re-sends).
func (r *Receiver) wantsIncident(e incident.Event) bool {
	if r.Escalation || !r.Events.incidents() || (!e.Type.Lifecycle() && r.Events != EventsAll) {
		return false
	}
	if len(r.Sites) > 0 && !slices.Contains(r.Sites, e.Site) {
		return false
	}
	return max(e.Grade, e.PrevGrade, e.WorstGrade) >= r.MinGrade
}

// incidentSubscribers are the live listeners of incident events.
type incidentSubscribers struct {
	mu   sync.Mutex
	subs map[chan incident.Event]struct{}
}

// SubscribeIncidents returns every incident event journaled from now on,
// in journal order, and a function that ends the subscription. As with
// Subscribe, a listener more than buffer events behind has its channel
// closed: subscribe again and re-read Incidents.
func (s *Service) SubscribeIncidents(buffer int) (<-chan incident.Event, func()) {
	ch := make(chan incident.Event, max(buffer, 1))
	ss := &s.incSubs
	ss.mu.Lock()
	if ss.subs == nil {
		ss.subs = map[chan incident.Event]struct{}{}
	}
	ss.subs[ch] = struct{}{}
	ss.mu.Unlock()
	return ch, func() {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if _, ok := ss.subs[ch]; ok {
			delete(ss.subs, ch)
			close(ch)
		}
	}
}

func (ss *incidentSubscribers) publish(evs []incidentRecord) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for ch := range ss.subs {
		for _, r := range evs {
			select {
			case ch <- r.event:
				continue
			default:
			}
			delete(ss.subs, ch)
			close(ch)
			break
		}
	}
}

// feedIncidents runs a batch's journal records through the incidents'
// state machine, in order. Called with mu held.
func (s *Service) feedIncidents(tx *incident.Txn, recs []record) {
	for _, r := range recs {
		e := r.event
		var err error
		if e.Type == protocol.AlarmSourceGradeChanged {
			_, err = tx.SourceGrade(e.Site, e.Source, e.Grade, e.TS.Time)
		} else {
			_, err = tx.Alarm(e)
		}
		if err != nil {
			s.metrics.invalidEvents.Inc()
			s.log.Error("incident input refused", zap.String("event_id", e.ID), zap.String("alarm_id", e.AlarmID), zap.Error(err))
		}
	}
}

// incidentRecords turns a batch's incident events into journal records
// with their outbox rows, the events decorated with names and live values.
func (s *Service) incidentRecords(ctx context.Context, tx *incident.Txn) ([]incidentRecord, error) {
	evs := tx.Events()
	if len(evs) == 0 {
		return nil, nil
	}
	d := s.decorator(ctx)
	for _, e := range evs {
		d.need(e.Site, e.Conditions) // one read of the site's newest readings for all
	}
	out := make([]incidentRecord, 0, len(evs))
	now := time.Now()
	for _, e := range evs {
		e.SourceName = d.sourceName(e.Site, e.Source)
		d.conditions(e.Site, e.Conditions)
		r := incidentRecord{event: e}
		var body []byte
		for _, rc := range s.cfg.Receivers {
			if !rc.wantsIncident(e) || !s.inScope(rc.Scope, e.Site) {
				continue
			}
			if body == nil {
				var err error
				if body, err = incidentEnvelope(s.cfg.CloudEventSource, e); err != nil {
					return nil, err
				}
			}
			r.outbox = append(r.outbox, outboxRow{Receiver: rc.Name, EventID: e.ID, AlarmID: e.IncidentID, Body: body, Created: now})
		}
		out = append(out, r)
	}
	return out, nil
}

// decorator fills in what the site files and the newest readings say of
// an incident's source and points: names, units, live values.
type decorator struct {
	s      *Service
	ctx    context.Context
	sites  map[string]*site.Site
	latest map[string]map[string]storage.Sample // site → point → newest, of the points needed
	// needed are the points whose live values are shown, by site: only
	// those of a site's newest readings are kept, not a map of every
	// point of a large site for each incident event.
	needed map[string]map[string]bool
}

func (s *Service) decorator(ctx context.Context) *decorator {
	d := &decorator{s: s, ctx: ctx, sites: map[string]*site.Site{}, latest: map[string]map[string]storage.Sample{},
		needed: map[string]map[string]bool{}}
	if s.cfg.Sites != nil {
		for _, st := range s.cfg.Sites() {
			d.sites[st.ID] = st
		}
	}
	return d
}

func (d *decorator) source(siteID, sourceID string) *site.Source {
	st := d.sites[siteID]
	if st == nil {
		return nil
	}
	for i := range st.Sources {
		if st.Sources[i].ID == sourceID {
			return &st.Sources[i]
		}
	}
	return nil
}

func (d *decorator) sourceName(siteID, sourceID string) string {
	if src := d.source(siteID, sourceID); src != nil {
		return src.Name
	}
	return ""
}

// livePoints are the points whose newest readings a condition shows: a
// vote's or count's points, or its own.
func livePoints(c incident.Condition) []string {
	if c.Point != "" {
		return []string{c.Point}
	}
	return c.Points
}

// need notes the points of conditions whose live values will be shown.
// Callers that decorate several incidents of a site note them all first,
// so the site's newest readings are read once.
func (d *decorator) need(siteID string, conds []incident.Condition) {
	n := d.needed[siteID]
	if n == nil {
		n = map[string]bool{}
		d.needed[siteID] = n
	}
	for _, c := range conds {
		for _, p := range livePoints(c) {
			if !n[p] {
				n[p] = true
				delete(d.latest, siteID) // read without this point: read again
			}
		}
	}
}

// readings returns the newest readings of the needed points of a site.
func (d *decorator) readings(siteID string) map[string]storage.Sample {
	if m, ok := d.latest[siteID]; ok {
		return m
	}
	need := d.needed[siteID]
	m := make(map[string]storage.Sample, len(need))
	d.latest[siteID] = m
	if d.s.cfg.Latest == nil {
		return m
	}
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
	defer cancel()
	var samples []storage.Sample
	var err error
	if pr, ok := d.s.cfg.Latest.(LatestPointsReader); ok {
		points := make([]string, 0, len(need))
		for p := range need {
			points = append(points, p)
		}
		samples, err = pr.LatestOf(ctx, siteID, points)
	} else {
		samples, err = d.s.cfg.Latest.Latest(ctx, siteID)
	}
	if err != nil {
		d.s.log.Warn("live values of an incident's points", zap.String("site", siteID), zap.Error(err))
		return m
	}
	for _, sm := range samples {
		if need[sm.Point] {
			m[sm.Point] = sm
		}
	}
	return m
}

// conditions fills in the conditions' names, units and live values.
func (d *decorator) conditions(siteID string, conds []incident.Condition) {
	d.need(siteID, conds)
	st := d.sites[siteID]
	for i := range conds {
		c := &conds[i]
		points := livePoints(*c)
		if st != nil {
			if ref := st.Point(c.Point); c.Point != "" && ref != nil {
				c.Name, c.Unit = ref.Point.Name, ref.Point.Unit
			} else if c.Point == "" {
				c.Name = voteName(st, c.AlarmID)
			}
		}
		c.Live = c.Live[:0]
		var rd map[string]storage.Sample
		if len(points) > 0 {
			rd = d.readings(siteID)
		}
		for _, p := range points {
			l := incident.Live{Point: p}
			if st != nil {
				if ref := st.Point(p); ref != nil {
					l.Name, l.Unit = ref.Point.Name, ref.Point.Unit
				}
			}
			if sm, ok := rd[p]; ok {
				l.Value, l.HasValue, l.Quality, l.Time = finiteOrZero(sm.Value), sm.HasValue, sm.Quality, sm.Time.UTC()
			}
			c.Live = append(c.Live, l)
		}
		if len(c.Live) == 0 {
			c.Live = nil
		}
	}
}

// voteName names a vote's condition (site/source/vote-id/condition) by
// the vote's name in the site file.
func voteName(st *site.Site, alarmID string) string {
	parts := strings.Split(alarmID, "/")
	if len(parts) != 4 {
		return ""
	}
	for _, src := range st.Sources {
		if src.ID != parts[1] {
			continue
		}
		for _, v := range src.Votes {
			if v.ID == parts[2] {
				return v.Name
			}
		}
	}
	return ""
}

// Incidents returns the incidents not yet closed of this node's sites,
// worst first, with names and live values.
func (s *Service) Incidents(ctx context.Context) []incident.Incident {
	s.mu.Lock()
	out := s.book.Open()
	s.mu.Unlock()
	d := s.decorator(ctx)
	for i := range out {
		d.need(out[i].Site, out[i].Conditions)
	}
	for i := range out {
		d.conditions(out[i].Site, out[i].Conditions)
	}
	return out
}

// Incident returns one incident, open (this node's) or from the journal
// (any node's, closed ones too), with names and live values.
func (s *Service) Incident(ctx context.Context, id string) (incident.Incident, bool, error) {
	s.mu.Lock()
	inc, ok := s.book.Get(id)
	s.mu.Unlock()
	if !ok {
		var err error
		if inc, ok, err = s.store.incident(ctx, id); err != nil || !ok {
			return inc, ok, err
		}
	}
	s.decorator(ctx).conditions(inc.Site, inc.Conditions)
	return inc, true, nil
}

// QueryIncidents returns incidents of the journal (every node's, closed
// ones too), newest first.
func (s *Service) QueryIncidents(ctx context.Context, q IncidentQuery) ([]incident.Incident, error) {
	return s.store.incidents(ctx, q)
}

// IncidentTimeline returns an incident's journaled events, oldest first.
func (s *Service) IncidentTimeline(ctx context.Context, id string) ([]incident.Event, error) {
	return s.store.incidentEvents(ctx, id)
}

// SourceName returns a hazard source's name from the site files.
func (s *Service) SourceName(siteID, sourceID string) string {
	return s.decorator(context.Background()).sourceName(siteID, sourceID)
}

// AckIncident acknowledges an incident of this node's sites and, in the
// same journal transaction, every alarm of it that waits for an
// acknowledgement, under the officer's name.
func (s *Service) AckIncident(ctx context.Context, id, officer, comment string) (incident.Event, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	before, _ := s.book.Get(id)
	tx := s.book.Begin()
	ev, err := tx.Ack(id, officer, comment, now)
	if err != nil {
		s.mu.Unlock()
		return incident.Event{}, err
	}
	var recs []record
	changed := map[string]*Alarm{}
	var annunciated []time.Time
	for _, c := range ev.Conditions {
		cur, ok := s.alarms[c.AlarmID]
		if !ok {
			continue
		}
		st := cur.state()
		if st != protocol.StateUnacked && st != protocol.StateRTNUnacked {
			continue
		}
		a := *cur
		out, err := a.Ack(officer, comment, now)
		if err != nil {
			continue // nothing to acknowledge after all
		}
		rec, err := s.actionRecord(&a, out)
		if err != nil {
			s.mu.Unlock()
			return incident.Event{}, err
		}
		recs = append(recs, rec)
		changed[a.ID] = &a
		annunciated = append(annunciated, cur.Annunciated)
	}
	incs, err := s.commitTx(ctx, tx, recs, changed, nil, nil)
	s.mu.Unlock()
	if err != nil {
		return incident.Event{}, err
	}
	if before.FirstAckAt.IsZero() {
		s.incMetrics.timeToAck.Observe(now.Sub(before.OpenedAt).Seconds())
	}
	for _, t := range annunciated {
		if !t.IsZero() {
			s.metrics.timeToAck.Observe(now.Sub(t).Seconds())
		}
	}
	s.emit(recs, incs)
	return incs[0].event, nil
}

// UrgeIncident records a supervisor's urging (督办) of an open incident;
// the source's responsible persons are told what is asked.
func (s *Service) UrgeIncident(ctx context.Context, id, supervisor, comment string) (incident.Event, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	tx := s.book.Begin()
	if _, err := tx.Urge(id, supervisor, comment, now); err != nil {
		s.mu.Unlock()
		return incident.Event{}, err
	}
	incs, err := s.commitTx(ctx, tx, nil, nil, nil, nil)
	s.mu.Unlock()
	if err != nil {
		return incident.Event{}, err
	}
	s.emit(nil, incs)
	return incs[0].event, nil
}

// DisposeIncident files an incident's disposal record; it returns the
// disposal_recorded event and, when the incident closes with it, closed.
func (s *Service) DisposeIncident(ctx context.Context, id string, d incident.Disposal) ([]incident.Event, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	tx := s.book.Begin()
	if _, err := tx.Dispose(id, d, now); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	incs, err := s.commitTx(ctx, tx, nil, nil, nil, nil)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s.emit(nil, incs)
	out := make([]incident.Event, len(incs))
	for i, r := range incs {
		out[i] = r.event
	}
	return out, nil
}

// incidentMetrics are the incidents' gauges and histograms.
type incidentMetrics struct {
	events      *prometheus.CounterVec
	open        *prometheus.GaugeVec
	timeToAck   prometheus.Histogram
	timeToClose prometheus.Histogram
}

func newIncidentMetrics(reg prometheus.Registerer) *incidentMetrics {
	m := &incidentMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "incident_events_total",
			Help: "Incident events journaled, by type."}, []string{"type"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "open_incidents",
			Help: "Incidents not closed, by worst grade and state."}, []string{"worst_grade", "state"}),
		timeToAck: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "incident_time_to_acknowledge_seconds",
			Help: "Time from an incident's opening to its first acknowledgement.", Buckets: []float64{10, 30, 60, 120, 300, 600, 1800, 3600}}),
		timeToClose: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "incident_time_to_close_seconds",
			Help: "Time from an incident's opening to its closing.", Buckets: []float64{60, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600}}),
	}
	reg.MustRegister(m.events, m.open, m.timeToAck, m.timeToClose)
	return m
}

func (m *incidentMetrics) observe(recs []incidentRecord, open []incident.Incident) {
	for _, r := range recs {
		e := r.event
		m.events.WithLabelValues(string(e.Type)).Inc()
		if e.Type == incident.TypeClosed {
			m.timeToClose.Observe(e.TS.Sub(e.OpenedAt).Seconds())
		}
	}
	m.open.Reset()
	for _, inc := range open {
		m.open.WithLabelValues(inc.WorstGrade.String(), string(inc.State)).Inc()
	}
}

// logIncident writes an incident event in the log.
func (s *Service) logIncident(e incident.Event) {
	level := zapcore.InfoLevel
	if max(e.Grade, e.PrevGrade) >= protocol.Orange && e.Actor == "" {
		level = zapcore.WarnLevel
	}
	s.log.Log(level, "incident "+string(e.Type), zap.String("incident_id", e.IncidentID), zap.String("event_id", e.ID),
		zap.String("grade", e.Grade.String()), zap.String("worst_grade", e.WorstGrade.String()), zap.String("state", string(e.State)),
		zap.Bool("acknowledged", e.Acknowledged), zap.Int("conditions", len(e.Conditions)), zap.String("actor", e.Actor))
}

// errIncidentStatus maps the incident state machine's errors to HTTP.
func incidentErrStatus(err error) (int, bool) {
	switch {
	case errors.Is(err, incident.ErrUnknown):
		return 404, true
	case errors.Is(err, incident.ErrNoActor), errors.Is(err, incident.ErrBadCause), errors.Is(err, incident.ErrNoFound),
		errors.Is(err, incident.ErrNoMeasures), errors.Is(err, incident.ErrTextTooLong), errors.Is(err, incident.ErrNoComment):
		return 400, true
	case errors.Is(err, incident.ErrAcked), errors.Is(err, incident.ErrNotAcked), errors.Is(err, incident.ErrDisposed), errors.Is(err, incident.ErrClosed):
		return 409, true
	}
	return 0, false
}
