package alert

import (
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// TestNearOfIsOnePicture: NearOf places its centres and hands keep the
// tracks near them without letting go of the engine's lock (a report
// cannot come in between, which TryLock shows from inside centresOf and
// keep), and gives what TracksOf and SelectNear give one after the other
// when none comes.
func TestNearOfIsOnePicture(t *testing.T) {
	e := NewEngine(rules.Default(), nil)
	reports := closing(t0, 80_000)
	if _, err := e.Ingest(reports, t0); err != nil {
		t.Fatal(err)
	}
	keys := []track.Key{reports[0].Key(), {Party: "blue", Aircraft: "none"}}
	radius := func(int, string, float64, float64) float64 { return 100_000 }
	all := func(*track.State) bool { return true }
	var centres [][3]float64
	var near []track.State
	own := e.NearOf(keys, t0, func(own []*track.State) ([][3]float64, func(int, string, float64, float64) float64) {
		if e.mu.TryLock() {
			e.mu.Unlock()
			t.Error("centresOf runs with the engine's lock free: a report could come in between")
		}
		if own[0] == nil || own[0].Key() != keys[0] || own[1] != nil {
			t.Errorf("centresOf got %v, want the track of %v and nil", own, keys[0])
		}
		if own[0] != nil {
			centres = [][3]float64{own[0].ECEF}
		}
		return centres, radius
	}, func(st *track.State) {
		if e.mu.TryLock() {
			e.mu.Unlock()
			t.Error("keep runs with the engine's lock free: a report could come in between")
		}
		near = append(near, *st)
	})
	wantOwn := e.TracksOf(keys)
	if own[0] == nil || *own[0] != *wantOwn[0] || own[1] != nil {
		t.Fatalf("own %v, want %v", own, wantOwn)
	}
	wantNear := e.SelectNear(centres, t0, radius, all)
	if len(near) != 2 || len(near) != len(wantNear) {
		t.Fatalf("near %d tracks, SelectNear %d, want both aircraft", len(near), len(wantNear))
	}
	for i := range near {
		if near[i] != wantNear[i] {
			t.Fatalf("near[%d] %v, SelectNear %v", i, near[i], wantNear[i])
		}
	}
}

// SelectNear is detect.Engine.SelectNear under the engine's lock, by
// itself: what NearOf's tracks are compared with.
func (e *Engine) SelectNear(centres [][3]float64, now time.Time, radiusM func(centre int, class string, maxSpeedMps, maxStaleS float64) float64, keep func(*track.State) bool) []track.State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.det.SelectNear(centres, now, radiusM, keep)
}

// TracksOf returns a copy of the live track of each key, nil for a key
// with none, all as of one moment (under the engine's lock): what NearOf's
// own tracks are compared with.
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
