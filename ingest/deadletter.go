package ingest

import (
	"strings"
	"time"

	"go.uber.org/zap"
)

// DeadLetter is one refused message or reading, kept for the engineer
// commissioning a gateway to see what went wrong.
type DeadLetter struct {
	Time    time.Time // when the centre refused it
	Topic   string
	Site    string
	Gateway string
	Seq     uint64 // 0 when the message could not be decoded
	Point   string // empty when the whole message was refused
	Reason  string // the metric's reason label
	Error   string
	// Excerpt is the start of the payload, as valid UTF-8.
	Excerpt string
	Size    int // the payload's full size in bytes
}

// rejection is a refusal on its way to the metric, the log and the
// dead-letter list.
type rejection struct {
	reason               string
	topic, site, gateway string
	seq                  uint64
	point                string
	err                  error
	payload              []byte
}

func (s *Service) reject(r rejection) {
	s.metrics.rejected.WithLabelValues(r.reason).Inc()
	log := s.log.Warn
	if r.reason == ReasonDuplicate {
		log = s.log.Info // QoS 1 redelivers after a reconnect: routine
	}
	log("rejected", zap.String("reason", r.reason), zap.String("site", r.site), zap.String("gateway", r.gateway),
		zap.Uint64("seq", r.seq), zap.String("point", r.point), zap.String("topic", r.topic), zap.Error(r.err))
	d := DeadLetter{Time: s.cfg.Clock(), Topic: r.topic, Site: r.site, Gateway: r.gateway, Seq: r.seq, Point: r.point,
		Reason: r.reason, Excerpt: excerpt(r.payload, defaultExcerptBytes), Size: len(r.payload)}
	if r.err != nil {
		d.Error = r.err.Error()
	}
	s.mu.Lock()
	s.dead.add(d)
	s.mu.Unlock()
}

// excerpt returns at most n bytes of b as valid UTF-8.
func excerpt(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// deadLetters is a ring of the most recent refusals; the caller locks.
type deadLetters struct {
	buf  []DeadLetter
	next int
	full bool
}

func newDeadLetters(n int) *deadLetters { return &deadLetters{buf: make([]DeadLetter, n)} }

func (d *deadLetters) add(l DeadLetter) {
	d.buf[d.next] = l
	d.next = (d.next + 1) % len(d.buf)
	if d.next == 0 {
		d.full = true
	}
}

func (d *deadLetters) list() []DeadLetter {
	if !d.full {
		return append([]DeadLetter{}, d.buf[:d.next]...)
	}
	out := make([]DeadLetter, 0, len(d.buf))
	out = append(out, d.buf[d.next:]...)
	return append(out, d.buf[:d.next]...)
}
