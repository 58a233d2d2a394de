package volume

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/rules"
)

// scene is a registry holding other parties' volumes around one point
// and a write of party "a" there.
type scene struct {
	r   *Registry
	all []*Volume
	in  Input
	rl  rules.Rules
	now time.Time
	v   *Volume // the write, compiled
}

// drawScene places a few volumes of parties b and c near (35, 36): circles
// from 1 to 20 km across within 30 km, bands anywhere from the ground to
// 6 km, windows of minutes to hours within six hours of the write's.
func drawScene(t *rapid.T) *scene {
	rl := rules.Default()
	// Now is before every window: every shift considered is a valid write.
	sc := &scene{r: NewRegistry(rl), rl: rl, now: t0.Add(-24 * time.Hour)}
	place := func(name string) (Footprint, float64, float64, time.Time, time.Time) {
		lat, lon := destination(35, 36, rapid.Float64Range(0, 360).Draw(t, name+"_bearing"), rapid.Float64Range(0, 30000).Draw(t, name+"_dist")/meanEarthRadiusM)
		fp := circle(lat, lon, rapid.Float64Range(500, 10000).Draw(t, name+"_radius"))
		lower := rapid.Float64Range(0, 6000).Draw(t, name+"_lower")
		upper := lower + rapid.Float64Range(1, 1500).Draw(t, name+"_thick")
		start := t0.Add(time.Duration(rapid.Int64Range(-6*3600, 6*3600).Draw(t, name+"_start")) * time.Second)
		end := start.Add(time.Duration(rapid.Int64Range(60, 4*3600).Draw(t, name+"_len")) * time.Second)
		return fp, lower, upper, start, end
	}
	for i := range rapid.IntRange(1, 8).Draw(t, "volumes") {
		fp, lo, hi, st, en := place(fmt.Sprint("v", i))
		party := []string{"b", "c"}[i%2]
		v := mkVol(t, fmt.Sprint("v", i), party, input(fp, lo, hi, st, en))
		sc.r.idx.Put(v)
		sc.all = append(sc.all, v)
	}
	fp, lo, hi, st, en := place("write")
	sc.in = input(fp, lo, hi, st, en)
	sc.v = mkVol(t, "(new)", "a", sc.in)
	return sc
}

// conflictsAt is the oracle: the write moved by climb meters and shift
// seconds, checked against every volume with the plain scan.
func (sc *scene) conflictsAt(t *rapid.T, climbM float64, shiftS int64) bool {
	v := *sc.v
	v.AltLowerM += climbM
	v.AltUpperM += climbM
	v.Start = v.Start.Add(time.Duration(shiftS) * time.Second)
	v.End = v.End.Add(time.Duration(shiftS) * time.Second)
	return len(ScanConflicts(sc.all, &v, sc.rl)) > 0
}

// freeAt says whether the write moved by climb meters and shift seconds
// is an alternative the search must find: a valid write by the write's own
// validation (the band within the altitude floor and ceiling), not over
// yet, within the horizon searched, and without conflict. A move below
// the floor is no alternative, however free the airspace there.
func (sc *scene) freeAt(t *rapid.T, climbM float64, shiftS int64) bool {
	in := sc.in
	in.AltLowerM += climbM
	in.AltUpperM += climbM
	shift := time.Duration(shiftS) * time.Second
	in.Start, in.End = in.Start.Add(shift), in.End.Add(shift)
	if _, err := NewVolume("(new)", "a", in, sc.rl); err != nil {
		return false
	}
	if !sc.now.Before(in.End.Add(sc.rl.TimeBuffer())) || shift.Abs() > AlternativesHorizon {
		return false
	}
	return !sc.conflictsAt(t, climbM, shiftS)
}

// TestAlternativesExhaustive compares the alternatives with an exhaustive
// search at 1 m and 1 s steps: each single change is conflict-free (by the
// plain scan of every volume) and no whole number of meters or seconds
// smaller in its direction is; a change of both is conflict-free and no
// point of the 1 m by 1 s grid with a smaller cost in its directions is.
func TestAlternativesExhaustive(t *testing.T) {
	var offered int
	kinds := map[string]int{}
	defer func() {
		if offered < 20 || kinds[ChangeAltitude] == 0 || kinds[ChangeTime] == 0 || kinds[ChangeAltitudeTime] == 0 {
			t.Errorf("only %d draws had alternatives, of each kind %v", offered, kinds)
		}
		t.Logf("%d draws had alternatives, of each kind %v", offered, kinds)
	}()
	rapid.Check(t, func(t *rapid.T) {
		sc := drawScene(t)
		alts, _, err := sc.r.Alternatives("a", "", sc.in, sc.rl, sc.now, func(*Volume) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		conflicting := sc.conflictsAt(t, 0, 0)
		if !conflicting {
			if len(alts) > 0 {
				t.Fatalf("alternatives %+v for a write without conflict", alts)
			}
			return
		}
		offered++
		vsep, buf := sc.rl.VerticalSepM, sc.rl.TimeBufferS
		seen := map[string]bool{}
		for _, a := range alts {
			if a.AltUpperM-a.AltLowerM-(sc.in.AltUpperM-sc.in.AltLowerM) > 1e-6 || a.End.Sub(a.Start) != sc.in.End.Sub(sc.in.Start) {
				t.Fatalf("%+v does not keep the thickness and the duration", a)
			}
			if a.ClimbM != a.AltLowerM-sc.in.AltLowerM || a.ShiftS != a.Start.Sub(sc.in.Start).Seconds() {
				t.Fatalf("%+v: the sizes do not say the change", a)
			}
			v := mkVol(t, "(new)", "a", a.Input)
			if c := ScanConflicts(sc.all, v, sc.rl); len(c) > 0 {
				t.Fatalf("alternative %+v conflicts with %s", a, c[0].ID)
			}
			up, later := a.ClimbM > 0, a.ShiftS > 0
			kinds[a.Change]++
			switch a.Change {
			case ChangeAltitude:
				seen[dir("alt", up)] = true
				// No whole meter smaller in that direction is free.
				for m := 0.0; m < math.Abs(a.ClimbM)-1e-6; m++ {
					if sc.freeAt(t, math.Copysign(m, a.ClimbM), 0) {
						t.Fatalf("%+v, but a climb of %v m is free", a, math.Copysign(m, a.ClimbM))
					}
				}
			case ChangeTime:
				seen[dir("time", later)] = true
				for s := int64(0); float64(s) < math.Abs(a.ShiftS)-1e-9; s++ {
					if sc.freeAt(t, 0, int64(math.Copysign(float64(s), a.ShiftS))) {
						t.Fatalf("%+v, but a shift of %v s is free", a, math.Copysign(float64(s), a.ShiftS))
					}
				}
			case ChangeAltitudeTime:
				// The grid points of lower cost in these directions: all
				// of them when they are few, else a random sample.
				cost := math.Abs(a.ClimbM)/vsep + math.Abs(a.ShiftS)/buf
				maxM, maxS := math.Floor(cost*vsep), math.Floor(cost*buf)
				check := func(m, s float64) {
					if m/vsep+s/buf < cost-1e-9 && sc.freeAt(t, math.Copysign(m, a.ClimbM), int64(math.Copysign(s, a.ShiftS))) {
						t.Fatalf("%+v (cost %v), but climbing %v m and shifting %v s is free", a, cost, math.Copysign(m, a.ClimbM), math.Copysign(s, a.ShiftS))
					}
				}
				if (maxM+1)*(maxS+1) <= 200_000 {
					for m := 0.0; m <= maxM; m++ {
						for s := 0.0; s <= maxS && m/vsep+s/buf < cost; s++ {
							check(m, s)
						}
					}
				} else {
					for range 20_000 {
						check(float64(rapid.IntRange(0, int(maxM)).Draw(t, "m")), float64(rapid.IntRange(0, int(maxS)).Draw(t, "s")))
					}
				}
			}
		}
		// A direction without a single alternative has no free change
		// within reach: the ceiling, the floor or the horizon stop it.
		for _, up := range []bool{true, false} {
			if seen[dir("alt", up)] {
				continue
			}
			sign := 1.0
			if !up {
				sign = -1
			}
			for m := 0.0; ; m++ {
				lo, hi := sc.in.AltLowerM+sign*m, sc.in.AltUpperM+sign*m
				if lo < MinAltitudeM || hi > MaxAltitudeM {
					break
				}
				if sc.freeAt(t, sign*m, 0) {
					t.Fatalf("no alternative %s, but %v m is free", dir("alt", up), sign*m)
				}
			}
		}
	})
}

// TestAlternativesSeeOnlyWhatTheWriterMay: the write conflicts with A;
// right above A's band lies B, which the write does not conflict with.
// When the writer may not see B, the upward alternative ignores it (and so
// tells nothing of it): it sits right above A, though that meets B; when
// it may, the alternative clears B too. A counts either way: the answer to
// the write names it.
func TestAlternativesSeeOnlyWhatTheWriterMay(t *testing.T) {
	rl := rules.Default()
	r := NewRegistry(rl)
	end := t0.Add(time.Hour)
	a := mkVol(t, "A", "b", input(circle(35, 36, 2000), 1000, 2000, t0, end))
	b := mkVol(t, "B", "c", input(circle(35, 36, 2000), 2400, 3000, t0, end))
	r.idx.Put(a)
	r.idx.Put(b)
	in := input(circle(35, 36.01, 2000), 1500, 1600, t0, end)
	now := t0.Add(-time.Hour)
	up := func(visible func(*Volume) bool) Alternative {
		alts, _, err := r.Alternatives("a", "", in, rl, now, visible)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range alts {
			if x.Change == ChangeAltitude && x.ClimbM > 0 {
				return x
			}
		}
		t.Fatalf("no upward alternative in %+v", alts)
		return Alternative{}
	}
	blind := up(func(v *Volume) bool { return false })
	if want := 2000 + rl.VerticalSepM; blind.AltLowerM != want {
		t.Fatalf("seeing nothing, the band moves to %v, want right above A at %v", blind.AltLowerM, want)
	}
	seeing := up(func(v *Volume) bool { return true })
	if want := 3000 + rl.VerticalSepM; seeing.AltLowerM != want {
		t.Fatalf("seeing B, the band moves to %v, want right above B at %v", seeing.AltLowerM, want)
	}
	// An invalid write is refused as the write would be.
	bad := in
	bad.AltUpperM = bad.AltLowerM - 1
	if _, _, err := r.Alternatives("a", "", bad, rl, now, func(*Volume) bool { return true }); err == nil {
		t.Fatal("an invalid write has alternatives")
	}
}

// TestAlternativesSearchIsBounded: another party's volumes stacked over
// every altitude for the whole horizon, each with edges of its own, leave
// no alternative, and the exact search would try every pair of their
// edges against every volume (billions of checks, minutes of a core in
// the request of whoever writes there). The search stops at
// MaxAlternativesChecks and offers only what it found exact before, here
// nothing.
func TestAlternativesSearchIsBounded(t *testing.T) {
	rl := rules.Default()
	r := NewRegistry(rl)
	const perDay = 200
	thickM := float64(MaxAltitudeM-MinAltitudeM) / perDay
	n := 0
	for day := -8; day <= 8; day++ {
		for i := range perDay {
			lo := MinAltitudeM + float64(i)*thickM
			// Each starts a second earlier than the one below it: every
			// volume has an edge in time and in altitude of its own.
			start := t0.Add(time.Duration(day)*24*time.Hour - time.Duration(i+1)*time.Second)
			r.idx.Put(mkVol(t, fmt.Sprintf("B%d", n), "b", input(circle(35, 36, 2000), lo, min(lo+thickM, MaxAltitudeM), start, start.Add(24*time.Hour))))
			n++
		}
	}
	in := input(circle(35, 36.01, 2000), 1500, 1600, t0, t0.Add(time.Hour))
	alts, checks, err := r.Alternatives("a", "", in, rl, t0.Add(-time.Hour), func(*Volume) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if len(alts) != 0 {
		t.Errorf("%d volumes over every altitude and day: alternatives %+v", n, alts)
	}
	// At the bound: what a budget of searches charges for it.
	if checks != MaxAlternativesChecks {
		t.Fatalf("the search reports %d checks, not the %d it may make at most, which it reached", checks, MaxAlternativesChecks)
	}
}

// A search is paid for before it checks anything, by the most it can make
// among the volumes near it (AlternativesChecksBound), which it never
// exceeds: a search among a few volumes reserves little, not
// MaxAlternativesChecks. A payer that refuses ends the search, nothing
// searched.
func TestAlternativesPaidByTheirBound(t *testing.T) {
	rl := rules.Default()
	r := NewRegistry(rl)
	// Stacked over every altitude for a day, each with an edge in time and
	// in altitude of its own: the search tries many candidates.
	const stacked = 40
	thickM := float64(MaxAltitudeM-MinAltitudeM) / stacked
	for i := range stacked {
		lo := MinAltitudeM + float64(i)*thickM
		start := t0.Add(-time.Duration(i+1) * time.Minute)
		r.idx.Put(mkVol(t, fmt.Sprintf("B%d", i), "b", input(circle(35, 36, 2000), lo, min(lo+thickM, MaxAltitudeM), start, start.Add(24*time.Hour))))
	}
	in := input(circle(35, 36.01, 2000), 1500, 1600, t0, t0.Add(time.Hour))
	var asked []int
	pay := func(near, mostChecks int) error {
		if near != stacked {
			t.Errorf("paid for a search among %d volumes, not %d", near, stacked)
		}
		asked = append(asked, mostChecks)
		return nil
	}
	_, checks, err := r.AlternativesPaid("a", "", in, rl, t0.Add(-time.Hour), func(*Volume) bool { return true }, pay)
	if err != nil {
		t.Fatal(err)
	}
	bound := AlternativesChecksBound(stacked)
	if len(asked) != 1 || asked[0] != bound {
		t.Fatalf("paid %v, want once the bound among %d volumes, %d", asked, stacked, bound)
	}
	if bound >= MaxAlternativesChecks || checks > bound || checks == 0 {
		t.Fatalf("%d checks against a bound of %d (at most %d)", checks, bound, MaxAlternativesChecks)
	}
	// The bound is the search's own: unpaid, it finds the same.
	unpaid, uncheck, err := r.Alternatives("a", "", in, rl, t0.Add(-time.Hour), func(*Volume) bool { return true })
	paid, _, _ := r.AlternativesPaid("a", "", in, rl, t0.Add(-time.Hour), func(*Volume) bool { return true }, pay)
	if err != nil || uncheck != checks || !reflect.DeepEqual(unpaid, paid) {
		t.Fatalf("unpaid: %d checks %+v, paid: %d %+v (%v)", uncheck, unpaid, checks, paid, err)
	}

	refused := errors.New("budget spent")
	alts, checks, err := r.AlternativesPaid("a", "", in, rl, t0.Add(-time.Hour), func(*Volume) bool { return true }, func(int, int) error { return refused })
	if !errors.Is(err, refused) || alts != nil || checks != 0 {
		t.Fatalf("refused by its payer: %+v, %d checks, %v", alts, checks, err)
	}
	// Nothing to search: nothing paid.
	asked = nil
	clear := input(circle(10, 10, 2000), 1500, 1600, t0, t0.Add(time.Hour))
	if _, _, err := r.AlternativesPaid("a", "", clear, rl, t0.Add(-time.Hour), func(*Volume) bool { return true }, pay); err != nil || len(asked) != 0 {
		t.Fatalf("a write conflicting with nothing paid %v (%v)", asked, err)
	}
}

// The bound grows with the cube of the volumes near, up to the bound of
// any search.
func TestAlternativesChecksBound(t *testing.T) {
	for _, c := range []struct{ n, want int }{{0, 0}, {1, 48}, {10, 17_760}, {107, 19_785_584}, {108, MaxAlternativesChecks}, {999, MaxAlternativesChecks}, {1_000_000, MaxAlternativesChecks}} {
		if got := AlternativesChecksBound(c.n); got != c.want {
			t.Errorf("AlternativesChecksBound(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// TestAlternativesPayForEveryCandidate: a search whose directions are
// closed (the band at the floor, the window starting now, so that no
// variant may go down or earlier) among many volumes stacked over the
// write looks at no candidate it does not pay a check for, but the
// write's own position in each direction. Each volume's edges are a
// candidate; listed although no variant may take them, every pair of
// the closed directions was turned away unchecked: n² among n volumes,
// 4 million for 2,000, minutes of a core for 20,000, while the search
// was charged a few thousand checks.
func TestAlternativesPayForEveryCandidate(t *testing.T) {
	rl := rules.Default()
	r := NewRegistry(rl)
	now := t0
	const n = 300
	var obstacles []*Volume
	for i := range n {
		// Bands a centimetre apart above the floor, windows started
		// half a minute apart before now, all over the write.
		lower := MinAltitudeM + float64(i)*0.01
		in := input(circle(35, 36, 1000), lower, lower+50, now.Add(-time.Duration(i+1)*30*time.Second), now.Add(2*time.Hour))
		o := mkVol(t, fmt.Sprintf("b%05d", n-i), "b", in)
		r.idx.Put(o)
		obstacles = append(obstacles, o)
	}
	in := input(circle(35, 36, 1000), MinAltitudeM, MinAltitudeM+100, now, now.Add(time.Hour))
	v := mkVol(t, "(new)", "a", in)
	bound := AlternativesChecksBound(n)
	s := &shifter{v: v, p: r.idx.p, obstacles: obstacles, rl: rl, now: now, in: in, checksLeft: bound}
	alts := s.alternatives()
	if s.unchecked > 4 {
		t.Errorf("the search turned away %d candidates without a check (%d checks made): only the write's own position in each of the 4 directions may be", s.unchecked, bound-s.checksLeft)
	}
	// The search itself is what it was: up, or later, as near as can be.
	got, checks, err := r.Alternatives("a", "", in, rl, now, func(*Volume) bool { return true })
	if err != nil || len(got) == 0 || checks == 0 {
		t.Fatalf("Alternatives = %d alternatives, %d checks, %v; want some", len(got), checks, err)
	}
	if !reflect.DeepEqual(got, alts) {
		t.Errorf("Alternatives = %+v, the shifter found %+v", got, alts)
	}
	for _, a := range got {
		if a.ClimbM < 0 || a.ShiftS < 0 {
			t.Errorf("alternative %+v goes down or earlier, where no variant may", a)
		}
	}
}

// TestAlternativesTestOnlyFootprintsTheyCount: the footprints a search
// tests against the write's (the dearest part of choosing its obstacles)
// are only those of the volumes it counts, the writer's conflicts and
// the volumes it may see: tested first, every volume listed around the
// write over the horizon was, 50,000 a party may hold that the writer
// may not see taking a quarter of a second, while the search reserved
// what it may cost among the one it counted.
func TestAlternativesTestOnlyFootprintsTheyCount(t *testing.T) {
	rl := rules.Default()
	r := NewRegistry(rl)
	now := t0.Add(-time.Hour)
	conflicting := mkVol(t, "b-conflicting", "b", input(circle(35, 36, 3000), 9000, 9100, t0, t0.Add(time.Hour)))
	r.idx.Put(conflicting)
	for i := range 50 {
		// Below the write's band, beyond the separation, over the days
		// of the horizon: near it, none in conflict.
		lower := float64(i) * 100
		start := t0.Add(time.Duration(i%7) * 24 * time.Hour)
		r.idx.Put(mkVol(t, fmt.Sprintf("b%03d", i), "b", input(circle(35, 36.01, 3000), lower, lower+50, start, start.Add(time.Hour))))
	}
	var tested []string
	r.onGeometryTest = func(o *Volume) { tested = append(tested, o.ID) }
	in := input(circle(35, 36, 3000), 9000, 9100, t0, t0.Add(time.Hour))
	var counted int
	alts, _, err := r.AlternativesPaid("a", "", in, rl, now, func(*Volume) bool { return false }, func(near, _ int) error {
		counted = near
		return nil
	})
	if err != nil || len(alts) == 0 {
		t.Fatalf("Alternatives = %d alternatives, %v; want some", len(alts), err)
	}
	if counted != 1 {
		t.Errorf("the search counted %d volumes, want the 1 it conflicts with", counted)
	}
	if len(tested) != 1 || tested[0] != conflicting.ID {
		t.Errorf("the footprints of %d volumes were tested (%v), want only that of %s, the one counted", len(tested), tested, conflicting.ID)
	}
}

// TestAlternativesPayForTheirListingFirst: the listing of the volumes
// around a write over the horizon is paid for before it is made, at
// AlternativesListingChecks a listing (a volume is listed in each hour
// bucket its window meets, in each cell of the write's covering that
// lists it); refused, nothing is listed or searched; a write that
// conflicts with nothing pays for nothing.
func TestAlternativesPayForTheirListingFirst(t *testing.T) {
	rl := rules.Default()
	r := NewRegistry(rl)
	for i := range 20 {
		lower := float64(i) * 500
		r.idx.Put(mkVol(t, fmt.Sprintf("b%02d", i), "b", input(circle(35, 36, 2000), lower, lower+100, t0, t0.Add(time.Hour))))
	}
	in := input(circle(35, 36.01, 2000), 0, 100, t0, t0.Add(time.Hour))
	var order []string
	var listing int
	payListing := func(checks int) error { order, listing = append(order, "listing"), checks; return nil }
	pay := func(int, int) error { order = append(order, "search"); return nil }
	r.onGeometryTest = func(*Volume) { order = append(order, "listed") }
	if _, _, err := r.AlternativesPaidListed("a", "", in, rl, t0.Add(-time.Hour), func(*Volume) bool { return true }, payListing, pay); err != nil {
		t.Fatal(err)
	}
	if len(order) < 3 || order[0] != "listing" || order[len(order)-1] != "search" {
		t.Fatalf("paid and listed in the order %v, want the listing paid first, the search last", order)
	}
	v := mkVol(t, "(new)", "a", in)
	from, to := grownWindowNs(v, r.idx.p.bufNs+AlternativesHorizon.Nanoseconds())
	// Each volume's window grown by the buffer meets 3 hour buckets.
	if want := AlternativesListingChecks * r.idx.listings(r.idx.covering(v.shape), from, to); listing != want || listing < AlternativesListingChecks*20*3 {
		t.Errorf("the listing was paid %d checks, want %d: %d a listing, 20 volumes listed in 3 hour buckets of each cell that lists them", listing, want, AlternativesListingChecks)
	}

	refused := errors.New("budget spent")
	order = nil
	alts, checks, err := r.AlternativesPaidListed("a", "", in, rl, t0.Add(-time.Hour), func(*Volume) bool { return true }, func(int) error { return refused }, pay)
	if !errors.Is(err, refused) || alts != nil || checks != 0 || len(order) != 0 {
		t.Fatalf("the listing refused: %d alternatives, %d checks, %v, and %v done", len(alts), checks, err, order)
	}
	clear := input(circle(10, 10, 2000), 0, 100, t0, t0.Add(time.Hour))
	if _, _, err := r.AlternativesPaidListed("a", "", clear, rl, t0.Add(-time.Hour), func(*Volume) bool { return true }, payListing, pay); err != nil || len(order) != 0 {
		t.Fatalf("a write conflicting with nothing: %v, and %v done", err, order)
	}
}
