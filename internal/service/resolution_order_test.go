package service

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/deconflict/deconflict/internal/alert"
)

// pairAlert is a conflict alert between two aircraft of party p, by id.
func pairAlert(id, a, b string) *alert.Alert {
	return &alert.Alert{ID: id, Kind: alert.KindConflict, Aircraft: []alert.Aircraft{{Party: "p", Aircraft: a}, {Party: "p", Aircraft: b}}}
}

// TestSharingAircraftTogetherGathersAManned: a manned aircraft in three
// alerts of a task, spread among drones' alerts as the engine hands them
// over, has them resolved one after the other, in one group, first; then
// a drone in two; then the alerts sharing nothing, in the order they came.
func TestSharingAircraftTogetherGathersAManned(t *testing.T) {
	var live []*alert.Alert
	for i := range 24 {
		a, b := fmt.Sprintf("d%02da", i), fmt.Sprintf("d%02db", i)
		switch i {
		case 0, 9, 17:
			a = "m1"
		case 3, 20:
			a = "d-shared"
		}
		live = append(live, pairAlert(fmt.Sprint(i), a, b))
	}
	pending := make([]*pendingResolution, len(live))
	for i := range pending {
		pending[i] = &pendingResolution{}
	}
	gotLive, gotPending := sharingAircraftTogether(slices.Clone(live), slices.Clone(pending))
	var ids []string
	for i, a := range gotLive {
		ids = append(ids, a.ID)
		if n := slices.Index(live, a); gotPending[i] != pending[n] {
			t.Fatalf("alert %s moved without its pending resolution", a.ID)
		}
	}
	want := []string{"0", "9", "17", "3", "20"}
	for i := range 24 {
		if !slices.Contains(want[:5], fmt.Sprint(i)) {
			want = append(want, fmt.Sprint(i))
		}
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("order %v, want %v", ids, want)
	}
}

// TestSharingAircraftTogetherIsAnOrder: on random tasks over a few
// aircraft, the result is the same alerts, each with its own pending
// resolution; the alerts of the aircraft in the most alerts come first,
// all of them; and the alerts sharing no aircraft with another come last,
// in the order they came.
func TestSharingAircraftTogetherIsAnOrder(t *testing.T) {
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 17))
		fleet := 2 + rng.IntN(40)
		var live []*alert.Alert
		for i := range 1 + rng.IntN(30) {
			a, b := rng.IntN(fleet), rng.IntN(fleet)
			if a == b {
				b = (a + 1) % fleet
			}
			live = append(live, pairAlert(fmt.Sprint(i), fmt.Sprint("ac", a), fmt.Sprint("ac", b)))
		}
		pending := make([]*pendingResolution, len(live))
		for i := range pending {
			pending[i] = &pendingResolution{}
		}
		gotLive, gotPending := sharingAircraftTogether(slices.Clone(live), slices.Clone(pending))
		if len(gotLive) != len(live) || len(gotPending) != len(live) {
			t.Fatalf("seed %d: %d alerts and %d pending out of %d", seed, len(gotLive), len(gotPending), len(live))
		}
		count := map[string]int{}
		for _, a := range live {
			for _, ac := range a.Aircraft {
				count[ac.Aircraft]++
			}
		}
		seen := map[*alert.Alert]bool{}
		for i, a := range gotLive {
			n := slices.Index(live, a)
			if n < 0 || seen[a] {
				t.Fatalf("seed %d: alert %s is not one of the task's, or twice", seed, a.ID)
			}
			seen[a] = true
			if gotPending[i] != pending[n] {
				t.Fatalf("seed %d: alert %s moved without its pending resolution", seed, a.ID)
			}
		}
		// The most shared aircraft (the first by key among equals).
		most, mostN := "", 1
		for k, n := range count {
			if n > mostN || n == mostN && k < most {
				most, mostN = k, n
			}
		}
		if mostN > 1 {
			for i, a := range gotLive {
				has := a.Aircraft[0].Aircraft == most || a.Aircraft[1].Aircraft == most
				if has != (i < mostN) {
					t.Fatalf("seed %d: the %d alerts of %s are not the first ones: %s at %d", seed, mostN, most, a.ID, i)
				}
			}
		}
		lone := func(a *alert.Alert) bool {
			return count[a.Aircraft[0].Aircraft] == 1 && count[a.Aircraft[1].Aircraft] == 1
		}
		var wantLone, gotLone []*alert.Alert
		for _, a := range live {
			if lone(a) {
				wantLone = append(wantLone, a)
			}
		}
		gotLone = gotLive[len(gotLive)-len(wantLone):]
		if !slices.Equal(gotLone, wantLone) {
			t.Fatalf("seed %d: the alerts sharing no aircraft are not last in their order", seed)
		}
	}
}
