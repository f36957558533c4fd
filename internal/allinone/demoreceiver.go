package allinone

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/hazardwatch/hazardwatch/alerting"
	"github.com/hazardwatch/hazardwatch/protocol"
)

// demoReceiver stands in for the emergency command platform: it checks
// each delivery's signature, prints what arrived and answers 204, so the
// demo shows a warning travelling all the way to its receiver.
type demoReceiver struct {
	out   io.Writer
	color bool
	mu    sync.Mutex
	got   []protocol.AlarmEvent
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
	var ce alerting.CloudEvent
	if err := json.Unmarshal(body, &ce); err != nil {
		http.Error(w, "not a CloudEvent with an alarm event: "+err.Error(), http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	d.got = append(d.got, ce.Data)
	if d.out != nil && (ce.Data.Type == protocol.AlarmRaised || ce.Data.Type == protocol.AlarmGradeChanged) {
		tag := "→ 指挥平台已接收"
		if d.color {
			tag = "\x1b[1;35m" + tag + "\x1b[0m"
		}
		fmt.Fprintf(d.out, "%s %s %s %s\n", tag, ce.Data.Grade.Chinese(), ce.Data.AlarmID, ce.Data.Type)
	}
	d.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
