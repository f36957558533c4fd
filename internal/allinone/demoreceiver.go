package allinone

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/alerting/incident"
)

// demoReceiver stands in for the emergency command platform: it checks
// each delivery's signature, prints what arrived and answers 204, so the
// demo shows a warning travelling all the way to its receiver.
type demoReceiver struct {
	out   io.Writer
	color bool
	mu    sync.Mutex
	got   []alerting.IncidentCloudEvent
}

// incidentWords name the incident events on the demo's terminal.
var incidentWords = map[incident.EventType]string{
	incident.TypeOpened: "警情开启", incident.TypeGradeChanged: "警情变级", incident.TypeAcknowledged: "警情已确认",
	incident.TypeDisposalRecorded: "处置记录已提交", incident.TypeClosed: "警情关闭",
}

func (d *demoReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !alerting.VerifySignature(demoSecret, body, r.Header.Get(alerting.SignatureHeader)) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ce alerting.IncidentCloudEvent
	if err := json.Unmarshal(body, &ce); err != nil || ce.Type != alerting.IncidentCloudEventType(ce.Data.Type) {
		http.Error(w, fmt.Sprintf("not a CloudEvent with an incident event: %v", err), http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	d.got = append(d.got, ce)
	if d.out != nil {
		tag := "→ 指挥平台已接收"
		if d.color {
			tag = "\x1b[1;35m" + tag + "\x1b[0m"
		}
		e := ce.Data
		g := e.Grade
		if e.Type == incident.TypeClosed {
			g = e.WorstGrade
		}
		line := fmt.Sprintf("%s %s %s %s（%d 个报警条件）", tag, incidentWords[e.Type], g.Chinese(), e.IncidentID, len(e.Conditions))
		if e.Actor != "" {
			line += " " + e.Actor
		}
		fmt.Fprintln(d.out, line)
	}
	d.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
