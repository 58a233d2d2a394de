package resolve

import "testing"

// TestSuggestMetroIsExact: on every conflict of metro traffic (metro5000:
// arrivals in trail, departures and helicopters among thousands of
// drones, and drones among themselves, with the others as the service
// handed them over at first and since), the suggestion is the one of the
// unpruned search, which checks every other each aircraft is clear of
// and flies every pair it tries through all its pieces. Both outcomes
// must be met: pairs with a suggestion and pairs without, some of them
// already in conflict before either aircraft can manoeuvre.
func TestSuggestMetroIsExact(t *testing.T) {
	var found, early int
	for _, sc := range metro5000(t) {
		got, gotOK := suggest(&sc.a, &sc.b, sc.sep, sc.ka, sc.kb, false)
		want, wantOK := suggest(&sc.a, &sc.b, sc.sep, sc.ka, sc.kb, true)
		if got != want || gotOK != wantOK {
			t.Fatalf("%s, near by %s: pruned %+v %v, unpruned %+v %v", sc.classes, sc.near, got, gotOK, want, wantOK)
		}
		s := &suggester{a: &sc.a, b: &sc.b, sep: sc.sep, ka: sc.ka, kb: sc.kb, pairDets: pairDetectors(nil, sc.sep)}
		if s.everyPairConflictsAtStart() {
			early++
		}
		if wantOK {
			found++
		}
	}
	t.Logf("%d conflicts, %d with a suggestion, %d in conflict before any manoeuvre", len(metro5000(t)), found, early)
	if found == 0 || early == 0 || found+early == len(metro5000(t)) {
		t.Fatalf("vacuous: %d with a suggestion, %d decided at the start, of %d", found, early, len(metro5000(t)))
	}
}
