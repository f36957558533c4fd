// Package alerting turns the rules engine's events into alarms that officers
// handle: it keeps each alarm's ISA-18.2 lifecycle, journals every event in
// SQLite (or in PostgreSQL shared by several ingest nodes), publishes
// events on MQTT, delivers them to webhook receivers (the emergency command
// platform) through a durable outbox, and serves the alarm API officers
// acknowledge and shelve through.
package alerting

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/internal/i18n"
	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
)

// Config configures a Service.
type Config struct {
	// DataDir holds the SQLite journal and outbox; empty keeps them in
	// memory (nothing survives a restart). Unused with JournalDSN.
	DataDir string
	// JournalDSN, a postgres:// URL, keeps the journal, outbox and dead
	// letters in PostgreSQL instead, so that several ingest nodes can
	// share one database (docs/scale-out.md). Its password is never
	// logged; better still, leave it out and use PGPASSWORD or ~/.pgpass.
	JournalDSN string
	// Node names this node in a shared journal: its outbox rows carry the
	// name, and it delivers only those. Keep it unique and stable (the
	// centre uses the ingest client id).
	Node string
	// OwnsSite tells the sites this node owns: on start it rebuilds only
	// their alarms, source grades and floods from a shared journal. nil
	// owns every site (a single node).
	OwnsSite func(site string) bool
	// Publisher sends events on MQTT; nil publishes nothing.
	Publisher Publisher
	// Receivers get every event they want by HTTP POST.
	Receivers []Receiver
	// MaxShelve is the longest an alarm may be shelved (default 8 h, a
	// shift): a shelved alarm must come back to someone on duty.
	MaxShelve time.Duration
	// CloudEventSource prefixes the CloudEvents source, followed by
	// "/{site}" (default "/hazardwatch").
	CloudEventSource string
	Logger           *zap.Logger
	// Registerer takes the metrics; nil keeps them private.
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now); tests pass a fake one.
	Now func() time.Time
	// TickInterval is how often shelve expiries are checked (default 1 s);
	// negative disables the ticker (tests call Tick).
	TickInterval time.Duration
	// PublishTimeout bounds one MQTT publish (default 5 s).
	PublishTimeout time.Duration

	// Escalation: an alarm unacknowledged at EscalationMinGrade or above
	// (default orange) is re-sent as an escalated event every
	// ResendInterval (default 5 min; negative disables escalation) until
	// it is acknowledged, shelved, out of service or cleared. Once it has
	// been unacknowledged for EscalateAfter (default 15 min; negative:
	// never) its re-sends also go to the escalation receivers.
	EscalationMinGrade protocol.Grade
	ResendInterval     time.Duration
	EscalateAfter      time.Duration

	// Flood control (ISA-18.2 / EEMUA 191): more than FloodThreshold
	// (default 10; negative disables) raised alarms of one hazard source
	// within FloodWindow (default 10 min) is a flood. During it, the
	// source's events below its highest active grade (never red ones) are
	// held back from the receivers and summarised at most once per
	// FloodSummaryInterval (default 1 min). See docs/alerting.md.
	FloodThreshold       int
	FloodWindow          time.Duration
	FloodSummaryInterval time.Duration

	// Notification tells people of incidents by the notification policy
	// (notification.go, with the responsible persons of Sites).
	Notification Notification

	// Incidents (警情, docs/alerting.md): one per hazard source while it
	// is out of normal. An incident whose worst grade is at most
	// AutoCloseMaxGrade (default yellow; orange and red never) closes by
	// itself after staying normal for AutoCloseAfter (default 30 min;
	// negative: never, every incident needs a disposal record).
	AutoCloseAfter    time.Duration
	AutoCloseMaxGrade protocol.Grade
	// Sites returns the site files in force, for the names and units of
	// incidents' sources and points; nil leaves them out.
	Sites func() []*site.Site
	// Latest gives incidents their points' live values; nil leaves them
	// out.
	Latest LatestReader
}

// Escalation and flood defaults.
const (
	DefaultEscalationMinGrade   = protocol.Orange
	DefaultResendInterval       = 5 * time.Minute
	DefaultEscalateAfter        = 15 * time.Minute
	DefaultFloodThreshold       = 10 // ISA-18.2 / EEMUA 191
	DefaultFloodWindow          = 10 * time.Minute
	DefaultFloodSummaryInterval = time.Minute
)

func (c *Config) withDefaults() error {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.TickInterval == 0 {
		c.TickInterval = time.Second
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.CloudEventSource == "" {
		c.CloudEventSource = "/hazardwatch"
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if !c.EscalationMinGrade.Valid() {
		return fmt.Errorf("alerting config: invalid escalation minimum grade %d", c.EscalationMinGrade)
	}
	if c.EscalationMinGrade == protocol.None {
		c.EscalationMinGrade = DefaultEscalationMinGrade
	}
	if c.ResendInterval == 0 {
		c.ResendInterval = DefaultResendInterval
	}
	if c.EscalateAfter == 0 {
		c.EscalateAfter = DefaultEscalateAfter
	}
	if c.FloodThreshold == 0 {
		c.FloodThreshold = DefaultFloodThreshold
	}
	if c.FloodWindow == 0 {
		c.FloodWindow = DefaultFloodWindow
	}
	if c.FloodWindow < 0 {
		return fmt.Errorf("alerting config: negative flood window %s", c.FloodWindow)
	}
	if c.FloodSummaryInterval <= 0 {
		c.FloodSummaryInterval = DefaultFloodSummaryInterval
	}
	if c.AutoCloseAfter == 0 {
		c.AutoCloseAfter = incident.DefaultAutoCloseAfter
	}
	if c.AutoCloseMaxGrade == protocol.None {
		c.AutoCloseMaxGrade = incident.DefaultAutoCloseMaxGrade
	}
	if err := c.incidentConfig().Check(); err != nil {
		return fmt.Errorf("alerting config: %w", err)
	}
	return nil
}

func (c *Config) incidentConfig() incident.Config {
	return incident.Config{AutoCloseAfter: c.AutoCloseAfter, AutoCloseMaxGrade: c.AutoCloseMaxGrade}
}

func (c *Config) escalating() bool   { return c.ResendInterval > 0 }
func (c *Config) floodControl() bool { return c.FloodThreshold > 0 }

// escalateAfter is the escalation limit; never when negative.
func (c *Config) escalateAfter() time.Duration {
	if c.EscalateAfter < 0 {
		return time.Duration(math.MaxInt64)
	}
	return c.EscalateAfter
}

// Service is the alerting service. It implements the ingest service's
// EventSink.
type Service struct {
	cfg     Config
	log     *zap.Logger
	store   *store
	metrics *metrics

	mu      sync.Mutex // alarms, sources, floods, and journal order
	alarms  map[string]*Alarm
	sources map[string]protocol.SourceGrade
	floods  map[string]*Flood // by site/source
	book    *incident.Book    // the incidents not closed
	subs    subscribers       // live listeners (the console), fed by commit
	incSubs incidentSubscribers

	incMetrics *incidentMetrics

	deliverers []*deliverer
	notifier   *notifier
	pubQueue   chan pubMsg
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

type pubMsg struct {
	topic    string
	retained bool
	payload  []byte
}

// ErrUnknownAlarm is returned for an alarm id that is not present.
var ErrUnknownAlarm = errors.New("unknown alarm")

// New opens the journal, rebuilds the alarms from it, and starts
// publishing and delivering. Close stops it.
func New(cfg Config) (*Service, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	names := map[string]bool{}
	cfg.Receivers = slices.Clone(cfg.Receivers)
	for i := range cfg.Receivers {
		if err := cfg.Receivers[i].withDefaults(); err != nil {
			return nil, err
		}
		if names[cfg.Receivers[i].Name] {
			return nil, fmt.Errorf("receiver %s is configured twice", cfg.Receivers[i].Name)
		}
		names[cfg.Receivers[i].Name] = true
	}
	if cfg.MaxShelve < 0 {
		return nil, fmt.Errorf("alerting config: max shelve %s is negative", cfg.MaxShelve)
	}
	if cfg.MaxShelve == 0 {
		cfg.MaxShelve = DefaultMaxShelve
	}
	st, err := openStore(cfg.DataDir, cfg.JournalDSN, cfg.Node, cfg.OwnsSite)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger, store: st, alarms: map[string]*Alarm{}, sources: map[string]protocol.SourceGrade{},
		floods: map[string]*Flood{}, pubQueue: make(chan pubMsg, 4096)}
	alarms, sources, floods, err := st.lastSnapshots(context.Background())
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := s.rebuildFloods(context.Background(), floods); err != nil {
		st.Close()
		return nil, err
	}
	for _, a := range alarms {
		if a.Present() {
			s.alarms[a.ID] = &a
		}
	}
	for _, g := range sources {
		if g.Grade != protocol.None {
			s.sources[g.Site+"/"+g.Source] = g
		}
	}
	open, err := st.openIncidents(context.Background())
	if err == nil {
		s.book, err = incident.NewBook(cfg.incidentConfig(), open, sources)
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	s.metrics = newMetrics(cfg.Registerer, st, cfg.Receivers)
	s.metrics.setActive(s.alarms)
	if err := s.initNotifications(context.Background()); err != nil {
		st.Close()
		return nil, err
	}
	s.incMetrics = newIncidentMetrics(cfg.Registerer)
	s.incMetrics.observe(nil, s.book.Open())

	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, r := range cfg.Receivers {
		send, err := receiverSender(r, cfg.CloudEventSource)
		if err != nil {
			cancel()
			st.Close()
			return nil, err
		}
		d := &deliverer{name: r.Name, minBackoff: r.MinBackoff, maxBackoff: r.MaxBackoff, send: send, store: st,
			log: s.log.With(zap.String("receiver", r.Name)), metrics: s.metrics, wake: make(chan struct{}, 1)}
		s.deliverers = append(s.deliverers, d)
		s.wg.Go(func() { d.run(ctx) })
	}
	for _, d := range s.notifier.deliverers {
		s.deliverers = append(s.deliverers, d)
		s.wg.Go(func() { d.run(ctx) })
	}
	s.wg.Go(func() { s.runPublisher(ctx) })
	if cfg.TickInterval > 0 {
		s.wg.Go(func() { s.runTicker(ctx) })
	}
	s.log.Info("alerting started", zap.String("journal", st.path), zap.String("node", cfg.Node),
		zap.Int("active_alarms", len(s.alarms)), zap.Int("open_incidents", s.book.Len()), zap.Int("receivers", len(cfg.Receivers)))
	return s, nil
}

// Close stops delivery and publishing and closes the journal. A delivery
// under way is finished first (at most its receiver's or channel's
// timeout), so a restart sends nothing twice; undelivered events stay in
// the outbox for the next start.
func (s *Service) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		err = s.store.Close()
	})
	return err
}

// HandleEvents takes a batch of rules events: it journals each with its
// alarm's new state, then logs, publishes and queues it for the receivers.
// Events already journaled (a replay) are skipped. Malformed events are
// reported in the error and do not stop the others.
func (s *Service) HandleEvents(ctx context.Context, events []rules.Event) error {
	var errs []error
	s.mu.Lock()
	var recs []record
	changed := map[string]*Alarm{}
	changedSources := map[string]protocol.SourceGrade{}
	changedFloods := map[string]*Flood{}
	seen := map[string]bool{}
	for _, ev := range events {
		id := ruleEventID(ev)
		if seen[id] {
			continue
		}
		seen[id] = true
		dup, err := s.store.seen(ctx, id)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		if dup {
			continue
		}
		var rec record
		if ev.Type == rules.SourceGradeChanged {
			rec, err = s.sourceRecord(ev)
			if err == nil {
				var g protocol.SourceGrade
				_ = json.Unmarshal(rec.snapshot, &g) // just marshalled
				changedSources[ev.Key] = g
			}
		} else {
			a := s.lookup(changed, ev.Key)
			var out protocol.AlarmEvent
			if out, err = a.Apply(ev); err == nil {
				rec = record{event: out}
				rec.snapshot, err = json.Marshal(a)
				changed[a.ID] = a
			}
		}
		if err != nil {
			s.metrics.invalidEvents.Inc()
			errs = append(errs, fmt.Errorf("rules event %s %s at %s: %w", ev.Type, ev.Key, ev.Time.Format(time.RFC3339), err))
			continue
		}
		rec.event.ID = id
		if ev.Type == rules.SourceGradeChanged {
			recs = append(recs, rec)
			continue
		}
		s.group(&rec, changed, changedFloods)
		recs = append(recs, rec)
		if ev.Type == rules.Raised {
			if start, ok := s.observeRaise(rec.event, changed, changedFloods); ok {
				recs = append(recs, start)
			}
		}
	}
	incs, err := s.commit(ctx, recs, changed, changedSources, changedFloods)
	if err != nil {
		s.mu.Unlock()
		return errors.Join(append(errs, err)...)
	}
	s.mu.Unlock()
	s.emit(recs, incs)
	return errors.Join(errs...)
}

// lookup returns a working copy of an alarm: the one already changed in
// this batch, a copy of the present one, or a new normal one.
func (s *Service) lookup(changed map[string]*Alarm, id string) *Alarm {
	if a, ok := changed[id]; ok {
		return a
	}
	if a, ok := s.alarms[id]; ok {
		c := *a
		return &c
	}
	return &Alarm{ID: id}
}

func (s *Service) sourceRecord(ev rules.Event) (record, error) {
	if ev.Key == "" || ev.Site == "" || ev.Source == "" {
		return record{}, errors.New("source grade event without key, site or source")
	}
	if !ev.Grade.Valid() || !ev.PrevGrade.Valid() {
		return record{}, fmt.Errorf("invalid grade %d/%d", ev.Grade, ev.PrevGrade)
	}
	facts := ev.Facts
	out := protocol.AlarmEvent{V: protocol.Version, AlarmID: ev.Key, Type: protocol.AlarmSourceGradeChanged,
		Site: ev.Site, Source: ev.Source, Grade: ev.Grade, PrevGrade: ev.PrevGrade,
		Value: finiteOrZero(ev.Value), Limit: finiteOrZero(ev.Limit), TS: protocol.Time{Time: ev.Time},
		RecordedAt: protocol.Time{Time: ev.Time}, OccurredAt: protocol.Time{Time: ev.OccurredAt},
		Points: slices.Clone(ev.Points), Facts: &facts}
	render(&out)
	g := protocol.SourceGrade{V: protocol.Version, Site: ev.Site, Source: ev.Source, Grade: ev.Grade, PrevGrade: ev.PrevGrade,
		Since: protocol.Time{Time: ev.Time}, Message: out.Message}
	snap, err := json.Marshal(g)
	if err != nil {
		return record{}, err
	}
	return record{event: out, snapshot: snap}, nil
}

// commit journals the records with their outbox rows, and the incident
// events they make with theirs, and only then makes the changes visible.
// It returns the incident records. Called with mu held.
func (s *Service) commit(ctx context.Context, recs []record, changed map[string]*Alarm, sources map[string]protocol.SourceGrade, floods map[string]*Flood) ([]incidentRecord, error) {
	return s.commitTx(ctx, s.book.Begin(), recs, changed, sources, floods)
}

// commitTx is commit with an incident batch that may already hold
// officers' actions on incidents; the records are fed to it after them.
func (s *Service) commitTx(ctx context.Context, tx *incident.Txn, recs []record, changed map[string]*Alarm, sources map[string]protocol.SourceGrade, floods map[string]*Flood) ([]incidentRecord, error) {
	s.feedIncidents(tx, recs)
	if len(recs) == 0 && len(tx.Events()) == 0 {
		return nil, nil
	}
	incs, err := s.incidentRecords(ctx, tx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for i := range recs {
		e := recs[i].event
		if silencedEvent(e) || recs[i].held {
			continue // journaled, published, but not pushed to receivers
		}
		bodies := map[i18n.Lang][]byte{} // one per receivers' language
		for _, r := range s.cfg.Receivers {
			// Escalation receivers get only the re-sends past the limit;
			// the others the point-level events only when they ask.
			if r.Escalation && !recs[i].escalate || !r.Escalation && !r.Events.points() {
				continue
			}
			if !r.wants(e) || !s.inScope(r.Scope, e.Site) {
				continue
			}
			body := bodies[r.Language]
			if body == nil {
				var err error
				if body, err = envelope(s.cfg.CloudEventSource, r.Language, e); err != nil {
					return nil, err
				}
				bodies[r.Language] = body
			}
			recs[i].outbox = append(recs[i].outbox, outboxRow{Receiver: r.Name, EventID: e.ID, AlarmID: e.AlarmID, Body: body, Created: now})
		}
	}
	if err := s.store.append(ctx, recs, incidentBatch{events: incs, snapshots: tx.Changed()}); err != nil {
		return nil, err
	}
	s.book.Commit(tx)
	for id, a := range changed {
		if a.Present() {
			s.alarms[id] = a
		} else {
			delete(s.alarms, id)
		}
	}
	for key, g := range sources {
		if g.Grade == protocol.None {
			delete(s.sources, key)
		} else {
			s.sources[key] = g
		}
	}
	for key, f := range floods {
		s.floods[key] = f
	}
	for _, r := range recs {
		s.metrics.events.WithLabelValues(string(r.event.Type)).Inc()
		if r.held {
			s.metrics.held.Inc()
		}
	}
	s.metrics.setActive(s.alarms)
	if len(incs) > 0 {
		s.incMetrics.observe(incs, s.book.Open())
	}
	s.subs.publish(recs)
	s.incSubs.publish(incs)
	return incs, nil
}

// silencedEvent: process changes of a shelved or out-of-service alarm are
// kept and shown but do not call anyone.
func silencedEvent(e protocol.AlarmEvent) bool {
	switch e.Type {
	case protocol.AlarmRaised, protocol.AlarmGradeChanged, protocol.AlarmCleared:
		return e.State == protocol.StateShelved || e.State == protocol.StateOutOfService
	}
	return false
}

// emit logs and publishes committed records and incident events and
// wakes the deliverers.
func (s *Service) emit(recs []record, incs []incidentRecord) {
	if len(recs) == 0 && len(incs) == 0 {
		return
	}
	for _, r := range recs {
		e := r.event
		level := zapcore.InfoLevel
		if max(e.Grade, e.PrevGrade) >= protocol.Orange && e.Actor == "" {
			level = zapcore.WarnLevel
		}
		s.log.Log(level, e.Message, zap.String("event_id", e.ID), zap.String("type", string(e.Type)), zap.String("alarm_id", e.AlarmID),
			zap.String("grade", e.Grade.String()), zap.String("prev_grade", e.PrevGrade.String()), zap.String("state", string(e.State)),
			zap.Float64("value", e.Value), zap.Float64("limit", e.Limit), zap.String("actor", e.Actor), zap.String("comment", e.Comment))
		if s.cfg.Publisher == nil {
			continue
		}
		if b, err := e.Encode(); err != nil {
			s.log.Error("encode alarm event", zap.String("event_id", e.ID), zap.Error(err))
		} else {
			s.enqueuePublish(pubMsg{topic: protocol.AlarmsTopic(e.Site), payload: b})
		}
		if e.Type == protocol.AlarmSourceGradeChanged {
			s.enqueuePublish(pubMsg{topic: protocol.SourceGradeTopic(e.Site, e.Source), retained: true, payload: r.snapshot})
		}
	}
	s.notifyCommitted(incs)
	for _, r := range incs {
		s.logIncident(r.event)
		if s.cfg.Publisher == nil {
			continue
		}
		if b, err := json.Marshal(r.event); err != nil {
			s.log.Error("encode incident event", zap.String("event_id", r.event.ID), zap.Error(err))
		} else {
			s.enqueuePublish(pubMsg{topic: IncidentsTopic(r.event.Site), payload: b})
		}
	}
	for _, d := range s.deliverers {
		d.notify()
	}
}

func (s *Service) enqueuePublish(m pubMsg) {
	select {
	case s.pubQueue <- m:
	default:
		s.metrics.publishFailures.Inc()
		s.log.Error("MQTT publish queue full; alarm event not published (it is journaled and delivered to receivers)", zap.String("topic", m.topic))
	}
}

// runPublisher publishes queued messages in order.
func (s *Service) runPublisher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.pubQueue:
			pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
			err := s.cfg.Publisher.Publish(pctx, m.topic, 1, m.retained, m.payload)
			cancel()
			if err != nil && ctx.Err() == nil {
				s.metrics.publishFailures.Inc()
				s.log.Error("publish alarm event", zap.String("topic", m.topic), zap.Error(err))
			}
		}
	}
}

func (s *Service) runTicker(ctx context.Context) {
	t := time.NewTicker(s.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Tick(ctx); err != nil {
				s.log.Error("alerting tick", zap.Error(err))
			}
		}
	}
}

// Tick does what falls due with time: it returns shelved alarms whose
// expiry has come, re-sends unacknowledged alarms (escalation), and sends
// flood summaries and ends floods whose rate has fallen.
func (s *Service) Tick(ctx context.Context) error {
	now := s.cfg.Now()
	s.mu.Lock()
	var recs []record
	changed := map[string]*Alarm{}
	floods := map[string]*Flood{}
	ids := make([]string, 0, len(s.alarms))
	for id := range s.alarms {
		ids = append(ids, id)
	}
	slices.Sort(ids) // a deterministic journal order
	for _, id := range ids {
		a := *s.alarms[id]
		touched := false
		if ev, ok := a.Tick(now); ok {
			rec, err := s.actionRecord(&a, ev)
			if err != nil {
				s.mu.Unlock()
				return err
			}
			touched = true
			recs = append(recs, rec)
		}
		if rec, ok, err := s.escalation(&a, now); err != nil {
			s.mu.Unlock()
			return err
		} else if ok {
			changed[id] = &a // group looks at this batch's alarms
			s.group(&rec, changed, floods)
			touched = true
			recs = append(recs, rec)
		}
		if touched {
			changed[id] = &a
		}
	}
	if s.cfg.floodControl() {
		recs = append(recs, s.tickFloods(now, changed, floods)...)
	}
	tx := s.book.Begin()
	tx.Tick(now) // incidents normal long enough close by themselves
	incs, err := s.commitTx(ctx, tx, recs, changed, nil, floods)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.emit(recs, incs)
	return s.notifier.tick(ctx, now)
}

func (s *Service) actionRecord(a *Alarm, ev protocol.AlarmEvent) (record, error) {
	ev.ID = actionEventID(ev)
	snap, err := json.Marshal(a)
	if err != nil {
		return record{}, fmt.Errorf("snapshot of %s: %w", a.ID, err)
	}
	return record{event: ev, snapshot: snap}, nil
}

// act runs an officer's action on a present alarm.
func (s *Service) act(ctx context.Context, id string, do func(a *Alarm, now time.Time) (protocol.AlarmEvent, error)) (protocol.AlarmEvent, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	cur, ok := s.alarms[id]
	if !ok {
		s.mu.Unlock()
		return protocol.AlarmEvent{}, fmt.Errorf("alarm %q: %w", id, ErrUnknownAlarm)
	}
	a := *cur
	annunciated := a.Annunciated
	ev, err := do(&a, now)
	if err != nil {
		s.mu.Unlock()
		return protocol.AlarmEvent{}, err
	}
	rec, err := s.actionRecord(&a, ev)
	var incs []incidentRecord
	if err == nil {
		incs, err = s.commit(ctx, []record{rec}, map[string]*Alarm{id: &a}, nil, nil)
	}
	s.mu.Unlock()
	if err != nil {
		return protocol.AlarmEvent{}, err
	}
	if ev.Type == protocol.AlarmAcknowledged && !annunciated.IsZero() {
		s.metrics.timeToAck.Observe(now.Sub(annunciated).Seconds())
	}
	s.emit([]record{rec}, incs)
	return rec.event, nil
}

// Ack acknowledges an alarm.
func (s *Service) Ack(ctx context.Context, id, officer, comment string) (protocol.AlarmEvent, error) {
	return s.act(ctx, id, func(a *Alarm, now time.Time) (protocol.AlarmEvent, error) { return a.Ack(officer, comment, now) })
}

// DefaultMaxShelve is the longest shelving unless configured: a shift.
const DefaultMaxShelve = 8 * time.Hour

// Shelve silences an alarm until the expiry, at most MaxShelve ahead.
func (s *Service) Shelve(ctx context.Context, id, officer, reason string, until time.Time) (protocol.AlarmEvent, error) {
	return s.act(ctx, id, func(a *Alarm, now time.Time) (protocol.AlarmEvent, error) {
		if until.Sub(now) > s.cfg.MaxShelve {
			return protocol.AlarmEvent{}, fmt.Errorf("shelve %s until %s: %w (%s)", id, until.Format(time.RFC3339), ErrShelveTooLong, s.cfg.MaxShelve)
		}
		return a.Shelve(officer, reason, until, now)
	})
}

// Unshelve ends a shelving early.
func (s *Service) Unshelve(ctx context.Context, id, officer, comment string) (protocol.AlarmEvent, error) {
	return s.act(ctx, id, func(a *Alarm, now time.Time) (protocol.AlarmEvent, error) { return a.Unshelve(officer, comment, now) })
}

// OutOfService takes an alarm out of service.
func (s *Service) OutOfService(ctx context.Context, id, officer, reason string) (protocol.AlarmEvent, error) {
	return s.act(ctx, id, func(a *Alarm, now time.Time) (protocol.AlarmEvent, error) {
		return a.OutOfService(officer, reason, now)
	})
}

// ReturnToService puts an alarm back in service.
func (s *Service) ReturnToService(ctx context.Context, id, officer, comment string) (protocol.AlarmEvent, error) {
	return s.act(ctx, id, func(a *Alarm, now time.Time) (protocol.AlarmEvent, error) {
		return a.ReturnToService(officer, comment, now)
	})
}

// Comment records an officer's remark on an alarm; the alarm does not
// change.
func (s *Service) Comment(ctx context.Context, id, officer, comment string) (protocol.AlarmEvent, error) {
	return s.act(ctx, id, func(a *Alarm, now time.Time) (protocol.AlarmEvent, error) { return a.Comment(officer, comment, now) })
}

// AlarmFilter selects alarms; empty fields match all.
type AlarmFilter struct {
	Site, Source string
	State        protocol.AlarmState
	Grade        protocol.Grade // exactly this grade; None matches all
}

// ActiveAlarms returns the alarms not in the normal state, most severe
// first, then oldest first.
func (s *Service) ActiveAlarms() []Alarm { return s.Alarms(AlarmFilter{}) }

// Alarms returns the present alarms that match f, most severe first.
func (s *Service) Alarms(f AlarmFilter) []Alarm {
	s.mu.Lock()
	out := make([]Alarm, 0, len(s.alarms))
	for _, a := range s.alarms {
		if (f.Site == "" || a.Site == f.Site) && (f.Source == "" || a.Source == f.Source) &&
			(f.State == "" || a.state() == f.State) && (f.Grade == protocol.None || a.Grade == f.Grade) {
			c := *a
			c.Points = slices.Clone(a.Points)
			out = append(out, c)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Alarm) int {
		if a.Grade != b.Grade {
			return int(b.Grade) - int(a.Grade)
		}
		if c := a.Changed.Compare(b.Changed); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Alarm returns one present alarm.
func (s *Service) Alarm(id string) (Alarm, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.alarms[id]
	if !ok {
		return Alarm{}, false
	}
	return *a, true
}

// SourceGrades returns the hazard sources above normal.
func (s *Service) SourceGrades() []protocol.SourceGrade {
	s.mu.Lock()
	out := make([]protocol.SourceGrade, 0, len(s.sources))
	for _, g := range s.sources {
		out = append(out, g)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b protocol.SourceGrade) int {
		return strings.Compare(a.Site+"/"+a.Source, b.Site+"/"+b.Source)
	})
	return out
}

// Timeline returns every journaled event of an alarm, oldest first. Here and
// in History and OfficerActions, a shared journal answers for every node's
// sites.
func (s *Service) Timeline(ctx context.Context, id string) ([]protocol.AlarmEvent, error) {
	return s.store.history(ctx, HistoryQuery{AlarmID: id, Limit: 10000})
}

// History returns journaled events that match q, oldest first.
func (s *Service) History(ctx context.Context, q HistoryQuery) ([]protocol.AlarmEvent, error) {
	return s.store.history(ctx, q)
}

// OfficerActions returns an officer's actions in [from, to] (zero times
// leave that end open).
func (s *Service) OfficerActions(ctx context.Context, officer string, from, to time.Time) ([]protocol.AlarmEvent, error) {
	if officer == "" {
		return nil, ErrNoOfficer
	}
	return s.store.history(ctx, HistoryQuery{Actor: officer, From: from, To: to})
}

// OutboxStats returns each receiver's undelivered events queued by this
// node.
func (s *Service) OutboxStats(ctx context.Context) ([]OutboxStat, error) {
	st, err := s.store.outboxStats(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]OutboxStat, 0, len(s.cfg.Receivers))
	for _, r := range s.cfg.Receivers {
		o := st[r.Name]
		o.Receiver = r.Name
		out = append(out, o)
	}
	return out, nil
}

// DeadLetters returns the events a receiver ("" for all) refused for good
// with a 4xx answer, newest first, at most limit (default 1000); a shared
// journal's of every node.
func (s *Service) DeadLetters(ctx context.Context, receiver string, limit int) ([]DeadLetter, error) {
	return s.store.deadLetters(ctx, receiver, limit)
}

func (s *Service) hasReceiver(name string) bool {
	return slices.ContainsFunc(s.cfg.Receivers, func(r Receiver) bool { return r.Name == name })
}

// ruleEventID names a rules event by its content, so the same event handed
// over twice (a replay after a restart) has the same id.
func ruleEventID(ev rules.Event) string {
	h := sha256.New()
	h.Write([]byte("rule\x00" + ev.Key + "\x00" + ev.Type.String() + "\x00"))
	var b [8]byte
	for _, v := range []uint64{uint64(ev.Time.UnixNano()), uint64(ev.Grade), uint64(ev.PrevGrade), math.Float64bits(ev.Value), math.Float64bits(ev.Limit)} {
		binary.BigEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	h.Write([]byte(strings.Join(ev.Points, ",")))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// actionEventID names an officer's action or the service's own event.
func actionEventID(ev protocol.AlarmEvent) string {
	h := sha256.New()
	fmt.Fprintf(h, "action\x00%s\x00%s\x00%d\x00%s\x00%s\x00%s", ev.AlarmID, ev.Type, ev.TS.UnixNano(), ev.PrevState, ev.Actor, ev.Comment)
	return hex.EncodeToString(h.Sum(nil)[:16])
}
