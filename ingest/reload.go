package ingest

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/rules"
	"github.com/hazardwatch/hazardwatch/site"
)

// Reloader is an evaluator that takes new site files without losing the
// state of points that still exist (rules.Engine is one).
type Reloader interface {
	Reload(sites []*site.Site, now time.Time, out []rules.Event) ([]rules.Event, error)
}

// Reload switches the service to new site files while it runs: messages
// are checked against them from now on, the evaluator (when it is a
// Reloader) keeps the state of points that still exist and clears the
// alarms of removed ones, and the subscriptions follow added and removed
// sites. When the evaluator refuses the files, nothing changes.
func (s *Service) Reload(sites []*site.Site) error {
	next, err := siteMap(sites)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if _, ok := s.cfg.Evaluator.(Reloader); ok {
		// The rules loop reloads between two messages' readings.
		if rep := s.ask(rulesReq{reload: sites, isReload: true}); rep.err != nil {
			return fmt.Errorf("reload: the rules refused the site files: %w", rep.err)
		}
	}
	prev := *s.sites.Swap(&next)

	added, removed := map[string]byte{}, []string{}
	for f := range filtersOf(next) {
		added[f] = 1
	}
	for f := range filtersOf(prev) {
		if _, still := added[f]; still {
			delete(added, f)
		} else {
			removed = append(removed, f)
		}
	}
	if s.client.IsConnectionOpen() {
		if len(added) > 0 {
			if tok := s.client.SubscribeMultiple(added, s.onMessage); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				// onConnect subscribes to every current site on reconnect.
				s.log.Error("subscribe to added sites failed; forcing a reconnect", zap.Error(tok.Error()))
				go s.client.Disconnect(0)
			}
		}
		if len(removed) > 0 {
			s.client.Unsubscribe(removed...).WaitTimeout(10 * time.Second)
		}
	}
	s.log.Info("site files reloaded", zap.Int("sites", len(next)), zap.Int("subscribed", len(added)), zap.Int("unsubscribed", len(removed)))
	return nil
}

// site returns a configured site.
func (s *Service) site(id string) (*site.Site, bool) {
	st, ok := (*s.sites.Load())[id]
	return st, ok
}

func siteMap(list []*site.Site) (map[string]*site.Site, error) {
	m := make(map[string]*site.Site, len(list))
	for i, st := range list {
		if st == nil || st.ID == "" {
			return nil, fmt.Errorf("site %d has no id", i)
		}
		if _, dup := m[st.ID]; dup {
			return nil, fmt.Errorf("site %s given twice", st.ID)
		}
		m[st.ID] = st
	}
	return m, nil
}

func filtersOf(sites map[string]*site.Site) map[string]byte {
	filters := make(map[string]byte, 2*len(sites))
	for id := range sites {
		filters[protocol.TelemetryFilter(id)] = 1
		filters[protocol.StateFilter(id)] = 1
	}
	return filters
}
