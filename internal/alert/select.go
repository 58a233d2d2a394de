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
