package service

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume"
)

// recordingBudget is an alternatives budget that holds everything and
// records each reservation, or refuses every reservation once refuse is
// set.
type recordingBudget struct {
	mu       sync.Mutex
	reserved []int
	refuse   bool
}

func (b *recordingBudget) Reserve(party string, checks int) (func(int), time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refuse {
		return nil, time.Second, false
	}
	b.reserved = append(b.reserved, checks)
	return func(int) {}, 0, true
}

func (b *recordingBudget) Most(string) int { return 1 << 40 }

// A search of alternatives pays for listing the volumes around the write
// over the horizon, before it lists them: under need to know, the
// volumes a writer may not see around it are listed (the dearest part of
// a search among many, 110 ms among 50,000) but not counted among those
// it searches, so that a search among the one it conflicts with reserved
// 10,048 checks whatever it listed, and a party could keep every core
// listing at its request rate. And the listing waits for its turn of work
// on demand with the search.
func TestAlternativesPayForListingTheVolumesAround(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := rules.Default()
	r.VolumeVisibility = rules.VolumesNeedToKnow
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, func(tx store.Tx) error {
		return tx.PutRules(store.RulesRecord{Version: r.Version, Created: visibilityT0, Actor: "deconflict", Body: body})
	}); err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, Config{Store: st, Now: func() time.Time { return visibilityT0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	for _, p := range []string{"alpha", "bravo"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	// Bravo's volumes of 20 hours stacked around one place, 100 m apart
	// from the ground up, a day apart over the week: alpha sees none.
	const stacked = 300
	for i := range stacked {
		start := visibilityT0.Add(time.Duration(i%7) * 24 * time.Hour)
		lower := float64(i/7) * 100
		in := volume.Input{Footprint: volume.Footprint{Type: "Circle", Center: []float64{36, 35}, RadiusM: 5000},
			AltLowerM: lower, AltUpperM: lower + 50, Start: start, End: start.Add(20 * time.Hour), State: volume.Accepted}
		if _, err := s.CreateVolume(ctx, party.Principal{Party: "bravo"}, in); err != nil {
			t.Fatal(err)
		}
	}
	alpha := party.Principal{Party: "alpha"}
	// Conflicting with the lowest of the first day's only.
	probe := volume.Input{Footprint: volume.Footprint{Type: "Circle", Center: []float64{36.01, 35}, RadiusM: 5000},
		AltLowerM: 0, AltUpperM: 10, Start: visibilityT0, End: visibilityT0.Add(time.Hour), State: volume.Accepted}
	b := &recordingBudget{}
	alts, err := s.VolumeAlternatives(WithAlternativesBudget(ctx, b), alpha, "", probe)
	if err != nil || len(alts) == 0 {
		t.Fatalf("VolumeAlternatives = %d alternatives, %v; want some", len(alts), err)
	}
	// Each of bravo's volumes is listed at least once for each of its 20
	// hours in the cells around the write.
	least := volume.AlternativesListingChecks * stacked * 20
	total := 0
	for _, n := range b.reserved {
		total += n
	}
	if len(b.reserved) != 2 || b.reserved[0] < least {
		t.Errorf("reserved %v (%d in all), want the listing of %d volumes of 20 hours around the write first, at least %d checks, then the search", b.reserved, total, stacked, least)
	}

	// Refused, the listing is not made, and nothing more is reserved.
	refusing := &recordingBudget{refuse: true}
	_, err = s.VolumeAlternatives(WithAlternativesBudget(ctx, refusing), alpha, "", probe)
	var be *AlternativesBudgetError
	if !errors.As(err, &be) || !be.Listing || be.Checks < least {
		t.Errorf("refused by the budget: %v, want the listing's refusal, at least %d checks", err, least)
	}
}
