package alert

import (
	"time"

	"github.com/deconflict/deconflict/internal/track"
)

// NearOf reads one picture of the tracks, under the engine's lock
// throughout: the live track of each key (a copy, nil for a key with
// none), which it returns, then each track near the centres that
// centresOf places from those tracks, handed to keep
// (detect.Engine.SelectNear: every track listed within radiusM of a
// centre, and perhaps others, in id order). NearOf keeps none of them:
// keep copies what it wants, the track it is handed being the engine's
// own, valid during the call only, and must not be modified. No report
// comes in between, so that the tracks a search was centred on and those
// found near them are of one moment: several alerts resolved from one
// read see the same track of each aircraft. centresOf, radiusM and keep
// run under the lock: they must be quick and must not call the engine.
func (e *Engine) NearOf(keys []track.Key, now time.Time,
	centresOf func(own []*track.State) (centres [][3]float64, radiusM func(centre int, class string, maxSpeedMps, maxStaleS float64) float64),
	keep func(*track.State)) (own []*track.State) {
	e.mu.Lock()
	defer e.mu.Unlock()
	own = make([]*track.State, len(keys))
	for i, k := range keys {
		if s, ok := e.det.TrackOf(k); ok {
			own[i] = &s
		}
	}
	centres, radiusM := centresOf(own)
	e.det.SelectNear(centres, now, radiusM, func(st *track.State) bool {
		keep(st)
		return false
	})
	return own
}
