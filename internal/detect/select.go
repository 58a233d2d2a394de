package detect

import "github.com/deconflict/deconflict/internal/track"

// TrackOf returns a copy of the live track of key k.
func (e *Engine) TrackOf(k track.Key) (track.State, bool) {
	id, ok := e.tracks.Lookup(k)
	if !ok {
		return track.State{}, false
	}
	s, ok := e.tracks.Get(id)
	if !ok {
		return track.State{}, false
	}
	return *s, true
}
