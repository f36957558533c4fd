package protocol

import (
	"encoding/json"
	"fmt"
)

// AckTopic is where the centre confirms a gateway's telemetry: retained,
// QoS 1, one per gateway.
func AckTopic(site, gw string) string { return Prefix + site + "/" + gw + "/ack" }

// AckFilter subscribes to the acknowledgements of every gateway of every
// site.
const AckFilter = Prefix + "+/+/ack"

// Ack is the centre's end-to-end acknowledgement of one gateway's
// telemetry: every message with a seq up to Seq is durably stored (or was
// settled as bad input, or was given up as lost after the centre waited
// for it); the gateway may forget them. TS is the centre's clock when it
// published the ack, from which a gateway tells its own clock's offset.
type Ack struct {
	V       int    `json:"v"`
	Site    string `json:"site"`
	Gateway string `json:"gateway"`
	Seq     uint64 `json:"seq"`
	TS      Time   `json:"ts"`
}

// Encode checks and serializes an acknowledgement.
func (a Ack) Encode() ([]byte, error) {
	if a.V != Version || a.Site == "" || a.Gateway == "" || a.TS.IsZero() {
		return nil, fmt.Errorf("ack: needs v %d, site, gateway and ts (got v %d, site %q, gateway %q)", Version, a.V, a.Site, a.Gateway)
	}
	return json.Marshal(a)
}

// DecodeAck parses and checks an acknowledgement.
func DecodeAck(b []byte) (Ack, error) {
	if len(b) > 4096 {
		return Ack{}, fmt.Errorf("ack: %d bytes, more than an acknowledgement takes", len(b))
	}
	var a Ack
	if err := json.Unmarshal(b, &a); err != nil {
		return Ack{}, fmt.Errorf("ack: %w", err)
	}
	if a.V != Version {
		return Ack{}, fmt.Errorf("ack: version %d, want %d", a.V, Version)
	}
	if a.Site == "" || a.Gateway == "" || a.TS.IsZero() {
		return Ack{}, fmt.Errorf("ack: needs site, gateway and ts")
	}
	return a, nil
}
