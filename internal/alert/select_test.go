package alert

import (
	"testing"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// TestNearOfIsOnePicture: NearOf places its centres and selects the
// tracks near them without letting go of the engine's lock (a report
// cannot come in between, which TryLock shows from inside centresOf),
// and gives what TracksOf and SelectNear give one after the other when
// none comes.
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
	own, near := e.NearOf(keys, t0, func(own []*track.State) ([][3]float64, func(int, string, float64, float64) float64) {
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
	}, all)
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
