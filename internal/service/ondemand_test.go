package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/volume"
)

// A search of alternatives takes a turn of work on demand, as the API's
// resolutions on demand do: while every turn is taken (another party's
// resolution or search), it waits, then searches; a search whose request
// ends while it waits searches nothing.
func TestAlternativesTakeTurnsOfWorkOnDemand(t *testing.T) {
	s, closeAll := newVisibilityService(t, t.TempDir())
	defer closeAll()
	s.onDemand = make(chan struct{}, 1)
	waiting := make(chan struct{}, 4)
	s.onDemandWait = func() { waiting <- struct{}{} }
	circle := func(lon float64) volume.Input {
		return volume.Input{
			Footprint: volume.Footprint{Type: "Circle", RadiusM: 3000, Center: []float64{lon, 35}},
			AltLowerM: 1000, AltUpperM: 2000,
			Start: visibilityT0, End: visibilityT0.Add(time.Hour),
			State: volume.Accepted,
		}
	}
	if _, err := declareWithKey(s, "alpha", circle(36)); err != nil {
		t.Fatal(err)
	}
	bravo := party.Principal{Party: "bravo"}
	release, err := s.OnDemandTurn(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		alts []volume.Alternative
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		alts, err := s.VolumeAlternatives(t.Context(), bravo, "", circle(36.02))
		answered <- answer{alts, err}
	}()
	select {
	case <-waiting:
	case a := <-answered:
		t.Fatalf("searched while another took the only turn: %d alternatives, %v", len(a.alts), a.err)
	}
	release()
	if a := <-answered; a.err != nil || len(a.alts) == 0 {
		t.Fatalf("once the turn was free: %d alternatives, %v", len(a.alts), a.err)
	}

	// A request that ends while it waits searches nothing and gives no
	// turn back that it did not take.
	release, err = s.OnDemandTurn(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(t.Context())
	gone := errors.New("client gone")
	s.onDemandWait = func() { cancel(gone) }
	if alts, err := s.VolumeAlternatives(ctx, bravo, "", circle(36.02)); !errors.Is(err, gone) || len(alts) != 0 {
		t.Fatalf("a search whose request ended while it waited: %d alternatives, %v", len(alts), err)
	}
	if len(s.onDemand) != 1 {
		t.Fatalf("%d turns taken, want the one held", len(s.onDemand))
	}
	release()
}
