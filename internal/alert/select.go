package alert

import "github.com/deconflict/deconflict/internal/track"

// Select returns the live tracks for which keep returns true (called under
// the engine's lock: it must be quick and must not call the engine).
func (e *Engine) Select(keep func(*track.State) bool) []track.State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.det.Select(keep)
}
