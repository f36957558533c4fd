package forward

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hazardwatch/hazardwatch/internal/queue"
)

// Message is what a spool record carries: everything needed to publish it.
type Message struct {
	Topic    string
	QoS      byte // 0, 1 or 2
	Retained bool
	Payload  []byte
}

// Record encoding, version 1: version byte, flags byte (bits 0-1 QoS, bit 2
// retained), topic length (uint16 little-endian), topic, payload.
const (
	encodingV1   = 1
	flagRetained = 1 << 2
	maxTopicLen  = 65535
)

// EncodeMessage turns m into a spool record.
func EncodeMessage(m Message) ([]byte, error) {
	if m.Topic == "" {
		return nil, errors.New("forward: message has no topic")
	}
	if len(m.Topic) > maxTopicLen {
		return nil, fmt.Errorf("forward: topic of %d bytes is over the MQTT limit of %d", len(m.Topic), maxTopicLen)
	}
	if m.QoS > 2 {
		return nil, fmt.Errorf("forward: message to %s has QoS %d, want 0, 1 or 2", m.Topic, m.QoS)
	}
	b := make([]byte, 4+len(m.Topic)+len(m.Payload))
	b[0] = encodingV1
	b[1] = m.QoS
	if m.Retained {
		b[1] |= flagRetained
	}
	binary.LittleEndian.PutUint16(b[2:4], uint16(len(m.Topic)))
	copy(b[4:], m.Topic)
	copy(b[4+len(m.Topic):], m.Payload)
	return b, nil
}

// DecodeMessage reads a spool record written by EncodeMessage. The payload
// aliases b.
func DecodeMessage(b []byte) (Message, error) {
	if len(b) < 4 {
		return Message{}, fmt.Errorf("forward: record of %d bytes is shorter than its 4-byte header", len(b))
	}
	if b[0] != encodingV1 {
		return Message{}, fmt.Errorf("forward: record encoding version %d, want %d", b[0], encodingV1)
	}
	flags := b[1]
	if flags&^(3|flagRetained) != 0 || flags&3 > 2 {
		return Message{}, fmt.Errorf("forward: record flags %#x are not valid", flags)
	}
	n := int(binary.LittleEndian.Uint16(b[2:4]))
	if n == 0 || 4+n > len(b) {
		return Message{}, fmt.Errorf("forward: record topic length %d does not fit its %d bytes", n, len(b))
	}
	return Message{
		Topic:    string(b[4 : 4+n]),
		QoS:      flags & 3,
		Retained: flags&flagRetained != 0,
		Payload:  b[4+n:],
	}, nil
}

// Enqueue stores messages in the spool durably, with one fsync for all of
// them; it returns the spool id of the first.
func Enqueue(sp *queue.Queue, msgs ...Message) (uint64, error) {
	recs := make([][]byte, len(msgs))
	for i, m := range msgs {
		b, err := EncodeMessage(m)
		if err != nil {
			return 0, fmt.Errorf("enqueue message %d: %w", i, err)
		}
		recs[i] = b
	}
	first, err := sp.AppendBatch(recs)
	if err != nil {
		return 0, fmt.Errorf("enqueue %d messages: %w", len(msgs), err)
	}
	return first, nil
}
