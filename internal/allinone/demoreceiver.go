package allinone

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/alerting/incident"
	"github.com/hazardwatch/hazardwatch/internal/i18n"
)

// demoReceiver stands in for the emergency command platform: it checks
// each delivery's signature, prints what arrived and answers 204, so the
// demo shows a warning travelling all the way to its receiver.
type demoReceiver struct {
	out   io.Writer
	color bool
	lang  i18n.Lang
	mu    sync.Mutex
	got   []alerting.IncidentCloudEvent
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
		tag := i18n.T(d.lang, "term.platform", nil)
		if d.color {
			tag = "\x1b[1;35m" + tag + "\x1b[0m"
		}
		e := ce.Data
		g := e.Grade
		if e.Type == incident.TypeClosed {
			g = e.WorstGrade
		}
		args := i18n.Args{"tag": tag, "what": i18n.T(d.lang, "incident."+string(e.Type), nil), "grade": i18n.T(d.lang, "grade."+g.String(), nil),
			"id": e.IncidentID, "conditions": strconv.Itoa(len(e.Conditions)), "actor": e.Actor}
		key := "term.incident"
		if e.Actor != "" {
			key = "term.incident_by"
		}
		fmt.Fprintln(d.out, i18n.T(d.lang, key, args))
	}
	d.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
