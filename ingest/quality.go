package ingest

import (
	"fmt"

	"github.com/hazardwatch/hazardwatch/protocol"
	"github.com/hazardwatch/hazardwatch/site"
	"github.com/hazardwatch/hazardwatch/storage"
)

// settleQuality gives a reading about to be stored the quality the site
// file says it has: a value the decoder stripped from a bad or comm_fail
// reading is recorded as a dead letter (the reading is stored without
// it), and a good value outside the point's measuring range is stored as
// over_range. How rules grade over_range is theirs to say; ingest only
// names it.
func (s *Service) settleQuality(sm *storage.Sample, r protocol.Reading, ref *site.PointRef, rj rejection) {
	if r.ValueStripped() {
		rj.reason = protocol.ReasonValueStripped
		rj.err = fmt.Errorf("point %s: a %s reading came with a value; value dropped, reading stored as %s", r.Point, sm.Quality, sm.Quality)
		s.reject(rj)
	}
	if sm.Quality != protocol.Good || !sm.HasValue || ref.Point == nil {
		return
	}
	if rng := ref.Point.Range; rng.Min < rng.Max && (sm.Value < rng.Min || sm.Value > rng.Max) {
		sm.Quality = protocol.OverRange
		s.metrics.overRange.Inc()
	}
}
