package ingest

import (
	"hash/maphash"
	"runtime"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/storage"
)

// Messages flow through lanes: each gateway's telemetry goes to one lane
// (by a hash of site and gateway), so a gateway's messages keep their
// order while different gateways' messages are decoded and stored on
// every core. A lane has three steps, each one goroutine: prepare (decode,
// check, seq, start the store), finish (wait until durable, record the
// seq, hand the readings to the rules) and journaled (wait until alerting
// journaled the events raised, acknowledge). Several messages of a lane are being stored at
// once — that is what fills the store's batches — but each is finished,
// and so acknowledged, in the order it came.

// Defaults of the pipeline.
const (
	// lanesPerCore is how many lanes there are per GOMAXPROCS.
	lanesPerCore = 4
	// laneDepth bounds the messages a lane holds between two steps.
	laneDepth = 1024
	// DefaultMaxInFlight is how many telemetry messages may be in the lanes
	// at once (Config.MaxInFlight): enough to fill the store's batches, few
	// enough to bound memory; past it paho stops reading and the broker
	// keeps the rest. At 200 readings a message, 512 cover InfluxDB's four
	// requests of 10,000 lines in flight and the next ones filling; with
	// 256 the writers waited on acknowledgements (docs/load.md, "The
	// in-flight window").
	DefaultMaxInFlight = 512
)

// job is one telemetry message on its way through its lane.
type job struct {
	topic   string
	payload []byte
	ack     func() // acknowledges the MQTT message

	// Set by prepare.
	settled       bool // refused or a duplicate: nothing to store
	dupOfInFlight bool // a redelivery of a message still being stored
	msg           protocol.Telemetry
	gk            gatewayKey
	tracker       *seqTracker
	rj            rejection
	received      time.Time     // the centre's clock when the message was taken in
	storedCh      chan struct{} // closed when the store returned
	stored        []storage.Sample
	storeErr      error

	// Set by finish.
	evaluated bool         // stored and handed to the rules
	handled   <-chan error // the sink's word on the events raised; nil: none
	err       error        // finish failed: not acknowledged
}

type lane struct {
	in   chan *job // to prepare
	out  chan *job // prepare to finish
	done chan *job // finish to journaled and the acknowledgement
}

// startLanes starts the lanes; closing their inputs (stopLanes) ends them.
func (s *Service) startLanes() {
	n := s.cfg.Lanes
	if n <= 0 {
		n = lanesPerCore * runtime.GOMAXPROCS(0)
	}
	s.lanes = make([]lane, n)
	s.lanesDone = make(chan struct{})
	finished := make(chan struct{}, n)
	for i := range s.lanes {
		l := lane{in: make(chan *job, 16), out: make(chan *job, laneDepth), done: make(chan *job, laneDepth)}
		s.lanes[i] = l
		go func() {
			defer close(l.out)
			for j := range l.in {
				s.prepare(j)
				l.out <- j
			}
		}()
		go func() {
			defer close(l.done)
			for j := range l.out {
				j.err = s.finish(j)
				l.done <- j
			}
		}()
		go func() {
			defer func() { finished <- struct{}{} }()
			for j := range l.done {
				err := j.err
				if err == nil {
					err = s.journaled(j)
				}
				s.settle(j, err)
			}
		}()
	}
	go func() {
		for range n {
			<-finished
		}
		close(s.lanesDone)
	}()
}

// settle acknowledges a finished message, or leaves it for redelivery.
func (s *Service) settle(j *job, err error) {
	if j.ack != nil {
		defer func() { <-s.inFlightSlots }()
	}
	if err != nil {
		// Not acknowledged: the broker delivers it again after reconnect.
		s.log.Error("message not stored, left unacknowledged for redelivery", zap.String("topic", j.topic), zap.Error(err))
		return
	}
	if j.ack != nil {
		j.ack()
	}
}

var laneSeed = maphash.MakeSeed()

// laneOf picks a gateway's lane from its topic's site and gateway.
func (s *Service) laneOf(t protocol.Topic) lane {
	var h maphash.Hash
	h.SetSeed(laneSeed)
	h.WriteString(t.Site)
	h.WriteByte('/')
	h.WriteString(t.Gateway)
	return s.lanes[h.Sum64()%uint64(len(s.lanes))]
}

// onMessage is paho's callback; messages arrive one at a time, in order.
// State messages are handled here; telemetry goes to its gateway's lane.
func (s *Service) onMessage(_ mqtt.Client, m mqtt.Message) {
	s.metrics.messages.Inc()
	topic := m.Topic()
	t, err := protocol.ParseTopic(topic)
	if err != nil {
		s.reject(rejection{reason: ReasonTopic, topic: topic, err: err, payload: m.Payload()})
		m.Ack()
		return
	}
	if t.Kind == "state" {
		s.handleState(t, m.Payload())
		m.Ack()
		return
	}
	s.laneMu.RLock()
	defer s.laneMu.RUnlock()
	if s.lanesClosed || s.lanes == nil {
		// Shutting down: left unacknowledged, delivered again next time.
		return
	}
	s.inFlightSlots <- struct{}{}
	s.laneOf(t).in <- &job{topic: topic, payload: m.Payload(), ack: m.Ack}
}

// stopLanes stops feeding the lanes and waits, at most wait, until every
// message in them is finished (and acknowledged while still connected).
func (s *Service) stopLanes(wait time.Duration) {
	s.laneMu.Lock()
	if s.lanesClosed || s.lanes == nil {
		s.laneMu.Unlock()
		return
	}
	s.lanesClosed = true
	for _, l := range s.lanes {
		close(l.in)
	}
	s.laneMu.Unlock()
	select {
	case <-s.lanesDone:
	case <-time.After(wait):
		s.log.Warn("messages still being stored at shutdown are left unacknowledged for redelivery", zap.Duration("waited", wait))
	}
}

// messageDurable is the hook for "message of gateway G of site S with
// sequence number seq is durable": its readings are stored (in the store's
// WAL, in InfluxDB or in the local spill). It is called once per stored
// message, in each gateway's order, before the rules see the readings.
func (s *Service) messageDurable(site, gateway string, seq uint64) {
	s.acks.durable(site, gateway, seq)
	if s.cfg.OnDurable != nil {
		s.cfg.OnDurable(site, gateway, seq)
	}
}
