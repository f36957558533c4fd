package alerting

import (
	"sync"

	"github.com/hazardwatch/hazardwatch/protocol"
)

// subscribers are the live listeners of journaled events (the officers'
// console). The zero value has none.
type subscribers struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct{ ch chan protocol.AlarmEvent }

// Subscribe returns every alarm event journaled from now on, in journal
// order, and a function that ends the subscription. The service never
// waits for a subscriber: one that falls more than buffer events behind has
// its channel closed after the events it already holds. A closed channel
// therefore means "events were lost": subscribe again, then re-read the
// state (ActiveAlarms, SourceGrades).
func (s *Service) Subscribe(buffer int) (<-chan protocol.AlarmEvent, func()) {
	sub := &subscriber{ch: make(chan protocol.AlarmEvent, max(buffer, 1))}
	s.subs.mu.Lock()
	if s.subs.subs == nil {
		s.subs.subs = map[*subscriber]struct{}{}
	}
	s.subs.subs[sub] = struct{}{}
	s.subs.mu.Unlock()
	return sub.ch, func() { s.subs.drop(sub) }
}

// drop ends a subscription once, whether the subscriber cancelled it or
// fell behind.
func (ss *subscribers) drop(sub *subscriber) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.subs[sub]; ok {
		delete(ss.subs, sub)
		close(sub.ch)
	}
}

// publish hands committed records to every subscriber without blocking.
// It is called with the service's mu held, so subscribers see the journal
// order.
func (ss *subscribers) publish(recs []record) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for sub := range ss.subs {
		for _, r := range recs {
			select {
			case sub.ch <- r.event:
				continue
			default:
			}
			delete(ss.subs, sub)
			close(sub.ch)
			break
		}
	}
}
