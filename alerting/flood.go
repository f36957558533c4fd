package alerting

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// Flood is one hazard source's alarm-flood state (ISA-18.2 / EEMUA 191: more
// than 10 alarms in 10 minutes is a flood). Its exported fields are
// journaled with every flood event; the window of raises is rebuilt from the
// journal's raised events on start.
type Flood struct {
	ID     string `json:"id"` // site/source/flood, the flood events' alarm_id
	Site   string `json:"site"`
	Source string `json:"source"`
	// SourceName is the source's name in the site file, for the words.
	SourceName string `json:"source_name,omitempty"`
	Active     bool   `json:"active"`
	// Started is when the flood began; LastSummary when the last flood
	// event (start or summary) was sent.
	Started     time.Time `json:"started,omitzero"`
	LastSummary time.Time `json:"last_summary,omitzero"`
	// Grade is the source's highest active grade when last reported.
	Grade protocol.Grade `json:"grade"`
	// Peak is the most raises seen in one window during the flood.
	Peak int `json:"peak"`
	// HeldTotal counts the events held back from receivers during the
	// whole flood; Held and HeldEvents are those since the last summary.
	HeldTotal  int      `json:"held_total"`
	Held       []string `json:"held,omitempty"`
	HeldEvents int      `json:"held_events"`

	raises []floodRaise // raises in the window, oldest first
}

type floodRaise struct {
	at      time.Time
	alarmID string
}

// maxFloodPoints bounds the alarm ids listed in one flood event, keeping it
// far below protocol.MaxAlarmEventSize.
const maxFloodPoints = 100

// floodID is the alarm_id of a source's flood events.
func floodID(site, source string) string { return site + "/" + source + "/flood" }

func (f *Flood) clone() *Flood {
	c := *f
	c.Held = slices.Clone(f.Held)
	c.raises = slices.Clone(f.raises)
	return &c
}

// prune forgets raises at or before now - window.
func (f *Flood) prune(now time.Time, window time.Duration) {
	cut := now.Add(-window)
	i := 0
	for i < len(f.raises) && !f.raises[i].at.After(cut) {
		i++
	}
	f.raises = f.raises[i:]
}

// observe counts a raise; raises arrive roughly in time order, and a late
// one is inserted in place so pruning stays correct.
func (f *Flood) observe(at time.Time, alarmID string, window time.Duration) {
	i := len(f.raises)
	for i > 0 && f.raises[i-1].at.After(at) {
		i--
	}
	f.raises = slices.Insert(f.raises, i, floodRaise{at: at, alarmID: alarmID})
	latest := f.raises[len(f.raises)-1].at
	f.prune(latest, window)
	if f.Active {
		f.Peak = max(f.Peak, len(f.raises))
	}
}

// hold notes an event held back from the receivers.
func (f *Flood) hold(alarmID string) {
	f.HeldEvents++
	f.HeldTotal++
	if !slices.Contains(f.Held, alarmID) {
		f.Held = append(f.Held, alarmID)
	}
}

// raisedAlarms lists the distinct alarms raised in the window, oldest first.
func (f *Flood) raisedAlarms() []string {
	var ids []string
	for _, r := range f.raises {
		if !slices.Contains(ids, r.alarmID) {
			ids = append(ids, r.alarmID)
		}
	}
	return ids
}

// floodPhase names the three kinds of flood event.
type floodPhase int

const (
	floodStarted floodPhase = iota
	floodSummary
	floodEnded
)

// event makes the flood event of a phase and updates the flood for it.
// Started: state unacked (from normal), grade the highest active one,
// points the alarms raised in the window. Summary: state unacked (from
// unacked), points the alarms whose events were held back since the last
// flood event. Ended: state normal (from unacked), grade none (prev the
// last reported), points the alarms held back since the last flood event.
// Value is always the raises in the window and Limit the threshold.
func (f *Flood) event(phase floodPhase, now time.Time, highest protocol.Grade, threshold int, window time.Duration) protocol.AlarmEvent {
	ev := protocol.AlarmEvent{
		V: protocol.Version, AlarmID: f.ID, Type: protocol.AlarmFlood, Site: f.Site, Source: f.Source, Condition: "flood",
		Value: float64(len(f.raises)), Limit: float64(threshold), TS: protocol.Time{Time: now},
	}
	name := f.SourceName
	if name == "" {
		name = f.Source
	}
	facts := &protocol.AlarmFacts{SourceName: name, Count: len(f.raises), Threshold: threshold, WindowS: window.Seconds()}
	var points []string
	switch phase {
	case floodStarted:
		f.Active, f.Started, f.Peak, f.HeldTotal = true, now, len(f.raises), 0
		ev.State, ev.PrevState = protocol.StateUnacked, protocol.StateNormal
		ev.Grade, ev.PrevGrade = highest, protocol.None
		points = f.raisedAlarms()
		facts.Reason, facts.Alarms = "flood_started", len(points)
	case floodSummary:
		ev.State, ev.PrevState = protocol.StateUnacked, protocol.StateUnacked
		ev.Grade, ev.PrevGrade = highest, f.Grade
		points = f.Held
		facts.Reason, facts.Merged, facts.Alarms = "flood_continues", f.HeldEvents, len(f.Held)
	case floodEnded:
		ev.State, ev.PrevState = protocol.StateNormal, protocol.StateUnacked
		ev.Grade, ev.PrevGrade = protocol.None, f.Grade
		points = f.Held
		facts.Reason, facts.HeldS, facts.Max = "flood_ended", now.Sub(f.Started).Seconds(), f.Peak
		facts.Merged, facts.Batch, facts.Alarms = f.HeldTotal, f.HeldEvents, len(f.Held)
		f.Active = false
	}
	if len(points) > maxFloodPoints {
		points = points[:maxFloodPoints]
	}
	ev.Points = slices.Clone(points)
	ev.Facts, ev.RecordedAt, ev.OccurredAt = facts, ev.TS, ev.TS
	render(&ev)
	f.Grade = ev.Grade
	f.LastSummary = now
	f.Held, f.HeldEvents = nil, 0
	return ev
}

// rebuildFloods restores the floods from their last journaled snapshots and
// refills every source's window from the journal's recent raises, so a
// restart neither forgets a flood nor starts a second one.
func (s *Service) rebuildFloods(ctx context.Context, snaps []Flood) error {
	if !s.cfg.floodControl() {
		return nil
	}
	for _, f := range snaps {
		if f.Active {
			s.floods[f.Site+"/"+f.Source] = &f
		}
	}
	raises, err := s.store.raisedSince(ctx, s.cfg.Now().Add(-s.cfg.FloodWindow))
	if err != nil {
		return err
	}
	for _, r := range raises {
		key := r.site + "/" + r.source
		f, ok := s.floods[key]
		if !ok {
			f = &Flood{ID: floodID(r.site, r.source), Site: r.site, Source: r.source}
			s.floods[key] = f
		}
		f.observe(r.at, r.alarmID, s.cfg.FloodWindow)
	}
	return nil
}

// floodFor returns the working copy of a source's flood state in this
// batch, creating it.
func (s *Service) floodFor(floods map[string]*Flood, site, source string) *Flood {
	key := site + "/" + source
	if f, ok := floods[key]; ok {
		return f
	}
	var f *Flood
	if cur, ok := s.floods[key]; ok {
		f = cur.clone()
	} else {
		f = &Flood{ID: floodID(site, source), Site: site, Source: source}
	}
	floods[key] = f
	return f
}

// highestActive is the highest grade among a source's active alarms, this
// batch's changes included.
func (s *Service) highestActive(changed map[string]*Alarm, site, source string) protocol.Grade {
	g := protocol.None
	consider := func(a *Alarm) {
		if a.Active && a.Site == site && a.Source == source {
			g = max(g, a.Grade)
		}
	}
	for id, a := range s.alarms {
		if c, ok := changed[id]; ok {
			a = c
		}
		consider(a)
	}
	for id, a := range changed {
		if _, ok := s.alarms[id]; !ok {
			consider(a)
		}
	}
	return g
}

// group holds an alarm's event back from the receivers when its source is
// flooding and the event is below the source's highest active grade. Red
// is never held back, and neither is anything at the highest grade.
// Called with mu held.
func (s *Service) group(rec *record, changed map[string]*Alarm, floods map[string]*Flood) {
	e := rec.event
	if !s.cfg.floodControl() || silencedEvent(e) {
		return
	}
	switch e.Type {
	case protocol.AlarmRaised, protocol.AlarmGradeChanged, protocol.AlarmCleared, protocol.AlarmEscalated:
	default:
		return
	}
	key := e.Site + "/" + e.Source
	f, ok := floods[key]
	if !ok {
		if f, ok = s.floods[key]; !ok {
			return
		}
	}
	if !f.Active {
		return
	}
	g := max(e.Grade, e.PrevGrade)
	if g >= protocol.Red || g >= s.highestActive(changed, e.Site, e.Source) {
		return
	}
	rec.held = true
	s.floodFor(floods, e.Site, e.Source).hold(e.AlarmID)
}

// observeRaise counts a raised event in its source's window and returns
// the flood-start record when the count goes over the threshold.
func (s *Service) observeRaise(e protocol.AlarmEvent, changed map[string]*Alarm, floods map[string]*Flood) (record, bool) {
	if !s.cfg.floodControl() {
		return record{}, false
	}
	f := s.floodFor(floods, e.Site, e.Source)
	if e.Facts != nil && e.Facts.SourceName != "" {
		f.SourceName = e.Facts.SourceName
	}
	f.observe(e.TS.Time, e.AlarmID, s.cfg.FloodWindow)
	if f.Active || len(f.raises) <= s.cfg.FloodThreshold {
		return record{}, false
	}
	ev := f.event(floodStarted, e.TS.Time, s.highestActive(changed, e.Site, e.Source), s.cfg.FloodThreshold, s.cfg.FloodWindow)
	return s.floodRecord(f, ev), true
}

// tickFloods sends due flood summaries and ends floods whose rate has
// fallen below the threshold. Called with mu held.
func (s *Service) tickFloods(now time.Time, changed map[string]*Alarm, floods map[string]*Flood) []record {
	keys := make([]string, 0, len(s.floods))
	for key, f := range s.floods {
		if !f.Active {
			// Windows of quiet sources are derived data: prune in place.
			f.prune(now, s.cfg.FloodWindow)
			if len(f.raises) == 0 {
				delete(s.floods, key)
			}
			continue
		}
		keys = append(keys, key)
	}
	slices.Sort(keys)
	var recs []record
	for _, key := range keys {
		cur := s.floods[key]
		f := s.floodFor(floods, cur.Site, cur.Source)
		f.prune(now, s.cfg.FloodWindow)
		highest := s.highestActive(changed, f.Site, f.Source)
		var ev protocol.AlarmEvent
		switch {
		case len(f.raises) < s.cfg.FloodThreshold:
			ev = f.event(floodEnded, now, highest, s.cfg.FloodThreshold, s.cfg.FloodWindow)
		case f.HeldEvents > 0 && now.Sub(f.LastSummary) >= s.cfg.FloodSummaryInterval:
			ev = f.event(floodSummary, now, highest, s.cfg.FloodThreshold, s.cfg.FloodWindow)
		default:
			continue
		}
		recs = append(recs, s.floodRecord(f, ev))
	}
	return recs
}

func (s *Service) floodRecord(f *Flood, ev protocol.AlarmEvent) record {
	ev.ID = actionEventID(ev)
	snap, _ := json.Marshal(f) // plain data: cannot fail
	return record{event: ev, snapshot: snap}
}

// Floods returns the hazard sources flooding now.
func (s *Service) Floods() []Flood {
	s.mu.Lock()
	var out []Flood
	for _, f := range s.floods {
		if f.Active {
			c := *f.clone()
			c.raises = nil
			out = append(out, c)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Flood) int { return strings.Compare(a.ID, b.ID) })
	return out
}
