package service

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
)

// A party whose agreed fleet is none (max_aircraft_by_party 0: one that
// only declares airspace) starts no aircraft, while the one it flew when
// the rules came into force reports on: 0 was taken for "no bound" and
// let it start any number, beyond the server's --max-aircraft-per-party
// too.
func TestAgreedFleetOfNoneStartsNoAircraft(t *testing.T) {
	ctx := context.Background()
	s, _ := newEmbedded(t)
	for _, p := range []string{"coalition", "russia"} {
		if _, err := s.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	russia := party.Principal{Party: "russia"}
	now := time.Now().UTC()
	if n, refused, err := s.IngestPositions(ctx, russia, []PositionReport{{Aircraft: "R1", Time: now, LatDeg: 35, LonDeg: 36, AltM: 6000}}); err != nil || n != 1 || len(refused) != 0 {
		t.Fatalf("R1 before the rules: %d accepted, refused %v, %v", n, refused, err)
	}
	r := s.Rules()
	r.MaxAircraftByParty = map[string]int{"russia": 0}
	bringIntoForce(t, s, r, "coalition", "russia")
	if got := s.MaxAircraftFor("russia"); got != 0 {
		t.Fatalf("MaxAircraftFor(russia) = %d, want 0", got)
	}
	later := now.Add(time.Second)
	n, refused, err := s.IngestPositions(ctx, russia, []PositionReport{
		{Aircraft: "R1", Time: later, LatDeg: 35, LonDeg: 36.01, AltM: 6000},
		{Aircraft: "R2", Time: later, LatDeg: 35.5, LonDeg: 36, AltM: 6000},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || !slices.Equal(refused, []int{1}) {
		t.Fatalf("under a fleet of none: %d accepted, refused %v; want R1 (live) accepted and R2 (new) refused", n, refused)
	}
}
