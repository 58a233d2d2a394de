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
