package detect

import "github.com/deconflict/deconflict/internal/track"

// Select returns a copy of the live tracks for which keep returns true,
// in id order: keep sees each track in place, so that a query that
// wants a few tracks out of many copies only those.
func (e *Engine) Select(keep func(*track.State) bool) []track.State {
	var out []track.State
	e.tracks.Each(func(_ track.ID, s *track.State) {
		if keep(s) {
			out = append(out, *s)
		}
	})
	return out
}

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
