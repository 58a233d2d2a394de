package alert

import (
	"time"

	"github.com/deconflict/deconflict/internal/track"
)

// Select returns the live tracks for which keep returns true (called under
// the engine's lock: it must be quick and must not call the engine).
func (e *Engine) Select(keep func(*track.State) bool) []track.State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.det.Select(keep)
}

// SelectNear is detect.Engine.SelectNear under the engine's lock: the
// tracks keep accepts among those near the centres, without reading the
// others (called under the lock: radiusM and keep must be quick and must
// not call the engine).
func (e *Engine) SelectNear(centres [][3]float64, now time.Time, radiusM func(centre int, class string, maxSpeedMps, maxStaleS float64) float64, keep func(*track.State) bool) []track.State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.det.SelectNear(centres, now, radiusM, keep)
}

// TracksOf returns a copy of the live track of each key, nil for a key
// with none, all as of one moment (under the engine's lock).
func (e *Engine) TracksOf(keys []track.Key) []*track.State {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*track.State, len(keys))
	for i, k := range keys {
		if s, ok := e.det.TrackOf(k); ok {
			out[i] = &s
		}
	}
	return out
}

// NearOf reads one picture of the tracks, under the engine's lock
// throughout: the live track of each key (a copy, nil for a key with
// none), then the tracks keep accepts near the centres that centresOf
// places from those tracks (SelectNear). No report comes in between, so
// that the tracks a search was centred on and those found near them are
// of one moment: several alerts resolved from one read see the same
// track of each aircraft. centresOf, radiusM and keep run under the lock:
// they must be quick and must not call the engine.
func (e *Engine) NearOf(keys []track.Key, now time.Time,
	centresOf func(own []*track.State) (centres [][3]float64, radiusM func(centre int, class string, maxSpeedMps, maxStaleS float64) float64),
	keep func(*track.State) bool) (own []*track.State, near []track.State) {
	e.mu.Lock()
	defer e.mu.Unlock()
	own = make([]*track.State, len(keys))
	for i, k := range keys {
		if s, ok := e.det.TrackOf(k); ok {
			own[i] = &s
		}
	}
	centres, radiusM := centresOf(own)
	return own, e.det.SelectNear(centres, now, radiusM, keep)
}
