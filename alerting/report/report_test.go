package report

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/protocol"
)

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func ev(typ protocol.AlarmEventType, id string, at time.Time, actor string) protocol.AlarmEvent {
	parts := strings.Split(id, "/")
	return protocol.AlarmEvent{Type: typ, AlarmID: id, Site: parts[0], Source: parts[1], TS: protocol.Time{Time: at}, Actor: actor}
}

func inc(id, site, source string, opened time.Time, ack, closed time.Duration, by string) incident.Incident {
	i := incident.Incident{ID: id, Site: site, Source: source, OpenedAt: opened, WorstGrade: protocol.Orange, State: incident.Active, AckedBy: by}
	if ack > 0 {
		i.FirstAckAt = opened.Add(ack)
	}
	if closed > 0 {
		i.ClosedAt, i.State, i.ClosedBy = opened.Add(closed), incident.Closed, by
	}
	return i
}

func sample() Input {
	const (
		gas1 = "jh-chem/nh3-tanks/nh3-gas-1/H"
		gas2 = "jh-chem/nh3-tanks/nh3-gas-2/H"
		lvl  = "jh-chem/lpg-tanks/lpg-level/HH"
		ch4  = "xs-coal/face-3101/ch4-t1/H"
	)
	var evs []protocol.AlarmEvent
	// A flood in the first 10 minutes: gas-1 chatters (8 raises, 3 within a
	// minute), gas-2 raises 4 times.
	for i := range 8 {
		evs = append(evs, ev(protocol.AlarmRaised, gas1, t0.Add(time.Duration(i)*20*time.Second), ""),
			ev(protocol.AlarmCleared, gas1, t0.Add(time.Duration(i)*20*time.Second+10*time.Second), ""))
	}
	for i := range 4 {
		evs = append(evs, ev(protocol.AlarmRaised, gas2, t0.Add(time.Duration(i)*2*time.Minute), ""),
			ev(protocol.AlarmCleared, gas2, t0.Add(time.Duration(i)*2*time.Minute+time.Minute), ""))
	}
	evs = append(evs, ev(protocol.AlarmAcknowledged, gas2, t0.Add(9*time.Minute), "zhang.san"),
		ev(protocol.AlarmAcknowledged, gas1, t0.Add(9*time.Minute), "zhang.san"),
		// The LPG level stands from the start for the whole period: stale.
		ev(protocol.AlarmRaised, lvl, t0.Add(time.Minute), ""),
		ev(protocol.AlarmRaised, ch4, t0.Add(30*time.Minute), ""),
		ev(protocol.AlarmAcknowledged, ch4, t0.Add(31*time.Minute), "li.si"),
		ev(protocol.AlarmCleared, ch4, t0.Add(40*time.Minute), ""))
	return Input{From: t0, To: t0.Add(time.Hour), Now: t0.Add(25 * time.Hour), Events: evs,
		Incidents: []incident.Incident{
			inc("jh-chem/nh3-tanks/a", "jh-chem", "nh3-tanks", t0, time.Minute, 20*time.Minute, "zhang.san"),
			inc("jh-chem/lpg-tanks/b", "jh-chem", "lpg-tanks", t0.Add(time.Minute), 2*time.Minute, 0, "zhang.san"),
			inc("xs-coal/face-3101/c", "xs-coal", "face-3101", t0.Add(30*time.Minute), 10*time.Minute, 30*time.Minute, "li.si"),
		},
		Open: []incident.Incident{
			inc("jh-chem/lpg-tanks/b", "jh-chem", "lpg-tanks", t0.Add(time.Minute), 2*time.Minute, 0, "zhang.san"),
			inc("old", "jh-chem", "lpg-tanks", t0.Add(20*time.Hour), 0, 0, ""),
		},
		SiteNames: map[string]string{"jh-chem": "江海化工"}}
}

func TestReportFigures(t *testing.T) {
	r, err := Make(sample())
	if err != nil {
		t.Fatal(err)
	}
	if r.Periods != 6 || r.Total.Alarms != 14 || r.Total.Peak != 13 {
		t.Errorf("periods %d alarms %d peak %d, want 6, 14, 13", r.Periods, r.Total.Alarms, r.Total.Peak)
	}
	if got := r.Total.FloodShare; got < 0.166 || got > 0.167 {
		t.Errorf("flood share %v, want 1 of 6 periods", got)
	}
	if len(r.BadActors) != 4 || r.BadActors[0].AlarmID != "jh-chem/nh3-tanks/nh3-gas-1/H" || r.BadActors[0].Count != 8 || r.BadActors[1].Count != 4 {
		t.Errorf("bad actors %+v", r.BadActors)
	}
	if r.TopShare < 0.999 {
		t.Errorf("top-10 share %v, want all (four actors)", r.TopShare)
	}
	if len(r.Chattering) != 1 || r.Chattering[0].AlarmID != "jh-chem/nh3-tanks/nh3-gas-1/H" {
		t.Errorf("chattering %+v, want gas-1 alone (gas-2 raised every 2 min)", r.Chattering)
	}
	if len(r.Stale) != 1 || r.Stale[0].AlarmID != "jh-chem/lpg-tanks/lpg-level/HH" || r.Stale[0].For != 25*time.Hour-time.Minute {
		t.Errorf("stale %+v", r.Stale)
	}
	// Time to acknowledge 1, 2, 10 min: median 2, p90 10; to close 20, 30.
	if a := r.Total.Ack; a.N != 3 || a.Median != 2*time.Minute || a.P90 != 10*time.Minute {
		t.Errorf("time to ack %+v", a)
	}
	if c := r.Total.Close; c.N != 2 || c.Median != 25*time.Minute || c.P90 != 30*time.Minute {
		t.Errorf("time to close %+v", c)
	}
	if len(r.Sites) != 2 || r.Sites[0].Key != "jh-chem" || r.Sites[0].Name != "江海化工" || r.Sites[0].Alarms != 13 || r.Sites[0].Open != 2 || r.Sites[0].Stale != 1 {
		t.Errorf("sites %+v", r.Sites)
	}
	if len(r.Sources) != 3 || r.Sources[1].Key != "jh-chem/nh3-tanks" || r.Sources[1].Chattering != 1 || r.Sources[1].FloodShare == 0 {
		t.Errorf("sources %+v", r.Sources)
	}
	if len(r.Officers) != 2 || r.Officers[1].Key != "zhang.san" || r.Officers[1].Alarms != 2 || r.Officers[1].Incidents != 2 || r.Officers[1].Ack.Median != 90*time.Second {
		t.Errorf("officers %+v", r.Officers)
	}
	want := []int{0, 1, 0, 1} // 5 h and 25 h old
	for i, a := range r.OpenByAge {
		if a.Count != want[i] {
			t.Errorf("open by age %+v, want %v", r.OpenByAge, want)
			break
		}
	}
}

func TestReportWritesCSVAndHTML(t *testing.T) {
	r, err := Make(sample())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteCSV(&b, r); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not read back: %v", err)
	}
	if len(recs[0]) != len(CSVHeader) || recs[1][0] != "kpi" || recs[1][1] != "total" || recs[1][4] != "14" || recs[1][12] != "120" {
		t.Errorf("CSV starts %v / %v", recs[0], recs[1])
	}
	var sections []string
	for _, rec := range recs[1:] {
		if len(sections) == 0 || sections[len(sections)-1] != rec[0] {
			sections = append(sections, rec[0])
		}
	}
	if strings.Join(sections, ",") != "kpi,bad_actor,chattering,stale,open_by_age,incident" {
		t.Errorf("sections %v", sections)
	}
	b.Reset()
	if err := WriteHTML(&b, r, "zh"); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{"报警质量报告", "江海化工", "16.7 %", "2.0 min / 10.0 min", "jh-chem/nh3-tanks/nh3-gas-1/H", `class="bad"`} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	b.Reset()
	if err := WriteHTML(&b, r, "en"); err != nil || !strings.Contains(b.String(), "Time to acknowledge") {
		t.Errorf("English page: %v", err)
	}
}

func TestReportNeedsAPeriod(t *testing.T) {
	if _, err := Make(Input{From: t0, To: t0}); err == nil {
		t.Error("an empty period accepted")
	}
	r, err := Make(Input{From: t0, To: t0.Add(time.Minute)})
	if err != nil || r.Periods != 1 || r.Total.Alarms != 0 || r.Total.FloodShare != 0 {
		t.Errorf("an empty journal: %+v %v", r.Total, err)
	}
	var b bytes.Buffer
	if err := WriteHTML(&b, r, "en"); err != nil || !strings.Contains(b.String(), "none") {
		t.Errorf("empty report page: %v", err)
	}
}

func BenchmarkReport(b *testing.B) {
	in := Input{From: t0, To: t0.Add(24 * time.Hour)}
	for i := range 100000 {
		id := "s" + string(rune('a'+i%7)) + "/src" + string(rune('a'+i%13)) + "/p" + string(rune('a'+i%50)) + "/H"
		in.Events = append(in.Events, ev(protocol.AlarmRaised, id, t0.Add(time.Duration(i)*800*time.Millisecond), ""))
	}
	b.ResetTimer()
	for range b.N {
		if _, err := Make(in); err != nil {
			b.Fatal(err)
		}
	}
}
