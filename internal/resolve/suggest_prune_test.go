package resolve

import (
	"cmp"
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
)

// TestSuggestPruneIsExact: the suggestion with the others of each
// manoeuvre family pruned (beyondFamily) and the pairs judged by their
// shared start (startConflicts) is the one checking every other each
// aircraft is clear of and flying every pair through, and no candidate of a family comes into
// conflict with an other its family left out, on pairs in conflict with a
// crowd of others around them, some within reach and some not.
func TestSuggestPruneIsExact(t *testing.T) {
	manned := DefaultKinematics()
	cyl := CylinderSeparation(detect.Cylinder{HorizontalM: geo.NMToM(5), VerticalM: geo.FeetToM(1000)}, 300, 300, 120, 60)
	do365 := DO365()
	drones := CylinderSeparation(detect.Cylinder{HorizontalM: 50, VerticalM: 15}, 60, 60, 30, 15)
	droneK := manned
	droneK.VerticalRateMps, droneK.AltStepM, droneK.MaxClimbM, droneK.MinAltM, droneK.MaxAltM = 2, 5, 60, 30, 150
	var pruned, mattered, found int
	rapid.Check(t, func(t *rapid.T) {
		sep, ka, kb := &cyl, &manned, &manned
		speed := func(name string) float64 { return rapid.Float64Range(150, 260).Draw(t, name) }
		alt := rapid.Float64Range(3000, 9000).Draw(t, "alt")
		missM, missAltM, spreadM, spreadAltM, vzMps := 300.0, 60.0, 40000.0, 3000.0, 5.0
		tc := rapid.Float64Range(60, 170).Draw(t, "t_meet")
		switch rapid.IntRange(0, 2).Draw(t, "kind") {
		case 1:
			sep = &do365
			speed = func(name string) float64 { return rapid.Float64Range(20, 120).Draw(t, name) }
			spreadM, spreadAltM = 15000, 1000
		case 2:
			sep, ka, kb = &drones, &droneK, &droneK
			speed = func(name string) float64 { return rapid.Float64Range(5, 50).Draw(t, name) }
			alt = rapid.Float64Range(40, 140).Draw(t, "drone_alt")
			missM, missAltM, spreadM, spreadAltM, vzMps = 30, 10, 2000, 80, 1
			tc = rapid.Float64Range(20, 50).Draw(t, "drone_t_meet")
		}
		// Each aircraft reacts after its own time, sometimes at once:
		// the start every pair shares (startConflicts) ends at the
		// earlier, or is not shared.
		reacts := []float64{0, 3, 10, 10, 10, 25}
		kaR, kbR := *ka, *kb
		kaR.ReactionS = rapid.SampledFrom(reacts).Draw(t, "a_reaction_s")
		kbR.ReactionS = rapid.SampledFrom(reacts).Draw(t, "b_reaction_s")
		ka, kb = &kaR, &kbR
		vel := func(name string, sp float64) detect.Vec3 {
			tr := rapid.Float64Range(0, 2*math.Pi).Draw(t, name+"_track")
			return detect.Vec3{X: sp * math.Sin(tr), Y: sp * math.Cos(tr), Z: rapid.Float64Range(-vzMps, vzMps).Draw(t, name+"_vz")}
		}
		a := Aircraft{Pos: detect.Vec3{Z: alt}, Vel: vel("a", speed("a_speed"))}
		bv := vel("b", speed("b_speed"))
		meet := detect.Vec3{X: a.Pos.X + a.Vel.X*tc, Y: a.Pos.Y + a.Vel.Y*tc, Z: a.Pos.Z + a.Vel.Z*tc}
		off := detect.Vec3{X: rapid.Float64Range(-missM, missM).Draw(t, "off_x"), Y: rapid.Float64Range(-missM, missM).Draw(t, "off_y"), Z: rapid.Float64Range(-missAltM, missAltM).Draw(t, "off_z")}
		b := Aircraft{Pos: detect.Vec3{X: meet.X - bv.X*tc + off.X, Y: meet.Y - bv.Y*tc + off.Y, Z: meet.Z - bv.Z*tc + off.Z}, Vel: bv}
		var oa, ob []Intruder
		for range rapid.IntRange(0, 25).Draw(t, "others") {
			o := Aircraft{
				Pos: detect.Vec3{X: rapid.Float64Range(-spreadM, spreadM).Draw(t, "ox"), Y: rapid.Float64Range(-spreadM, spreadM).Draw(t, "oy"), Z: alt + rapid.Float64Range(-spreadAltM, spreadAltM).Draw(t, "oz")},
				Vel: vel("o", speed("o_speed")),
			}
			oa = append(oa, Intruder{Aircraft: o, Sep: sep})
			ob = append(ob, Intruder{Aircraft: o, Sep: sep})
		}
		pa, pb := &Party{Aircraft: a, Others: oa}, &Party{Aircraft: b, Others: ob}
		got, gotOK := suggest(pa, pb, sep, ka, kb, false)
		want, wantOK := suggest(pa, pb, sep, ka, kb, true)
		if got != want || gotOK != wantOK {
			t.Fatalf("pruned %+v %v, unpruned %+v %v", got, gotOK, want, wantOK)
		}
		if wantOK {
			found++
			alone, _ := suggest(&Party{Aircraft: a}, &Party{Aircraft: b}, sep, ka, kb, true)
			if alone != want {
				mattered++
			}
		}
		// Every candidate of a family, flown, against each other the
		// family left out.
		s := &suggester{a: pa, b: pb, sep: sep, ka: ka, kb: kb}
		for f, cands := range []candidates{s.turnCandidates, s.verticalCandidates} {
			ma, mb, _, _ := cands()
			for _, side := range []struct {
				p  *Party
				ms []Manoeuvre
			}{{pa, ma}, {pb, mb}} {
				for n := range side.p.Others {
					o := &side.p.Others[n]
					if !beyondFamily(side.p.Aircraft, o, family(f)) {
						continue
					}
					pruned++
					for _, m := range side.ms {
						if conflicts(s.flown(side.p, m), straight(o.Aircraft), o.Sep) {
							t.Fatalf("family %d: %+v conflicts with an other left out (%+v)", f, m, o.Aircraft)
						}
					}
				}
			}
		}
	})
	t.Logf("%d suggestions, %d changed by the others; %d others left out of a family", found, mattered, pruned)
	if pruned == 0 || mattered == 0 {
		t.Fatalf("vacuous: %d others left out, %d suggestions changed by the others", pruned, mattered)
	}
}

// TestMergedPairsAreSorted: for candidate times that strictly increase,
// the pairs of each level merged (mergedPairs) are the pairs of the level
// in the order of i then j sorted stably by their sum, as the search
// sorted them, ties included (the times are drawn from few values, on
// steps that make equal sums).
func TestMergedPairsAreSorted(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		times := func(name string) []float64 {
			step := rapid.SampledFrom([]float64{1, 0.5, 1.0 / 3, 0.1, 2.5}).Draw(t, name+"_step")
			var ts []float64
			for k, n := 0, rapid.IntRange(1, 12).Draw(t, name+"_n"); len(ts) < n; k++ {
				if k == 0 || rapid.Bool().Draw(t, name+"_keep") {
					ts = append(ts, float64(k)*step)
				}
			}
			return ts
		}
		ta, tb := times("a"), times("b")
		if !increasingFromZero(ta) || !increasingFromZero(tb) {
			t.Fatalf("drawn times do not increase: %v %v", ta, tb)
		}
		upTo := func(ts []float64, c float64) int {
			n, _ := slices.BinarySearch(ts, math.Nextafter(c, math.Inf(1)))
			return n
		}
		for _, c := range sortUnique(append(slices.Clone(ta), tb...)) {
			na, nb := upTo(ta, c), upTo(tb, c)
			fromA, fromB := upTo(ta, math.Nextafter(c, math.Inf(-1))), upTo(tb, math.Nextafter(c, math.Inf(-1)))
			var want []pair
			for i := range na {
				for j := range nb {
					if max(ta[i], tb[j]) == c {
						want = append(want, pair{i, j, ta[i] + tb[j]})
					}
				}
			}
			slices.SortStableFunc(want, func(x, y pair) int { return cmp.Compare(x.sum, y.sum) })
			if got := mergedPairs(nil, ta, tb, fromA, na, fromB, nb); !slices.Equal(got, want) {
				t.Fatalf("level %v of %v and %v: merged %v, sorted %v", c, ta, tb, got, want)
			}
		}
	})
}

// TestConflictsUnderPieceByPiece: conflictsUnder, which runs the last
// piece of the relative motion first, before the others are cut, finds
// a conflict exactly when running the detectors on every piece between
// the times either path bends, in time order, does: on the paths of
// candidates of drawn aircraft (turns, climbs and descents, reacting at
// once or after a while), under a cylinder and well clear, over
// lookaheads ending before, between and after the bends, and none.
func TestConflictsUnderPieceByPiece(t *testing.T) {
	cyl := CylinderSeparation(detect.Cylinder{HorizontalM: geo.NMToM(5), VerticalM: geo.FeetToM(1000)}, 300, 300, 120, 60)
	do365 := DO365()
	var met, clear int
	rapid.Check(t, func(t *rapid.T) {
		sep := &cyl
		if rapid.Bool().Draw(t, "well_clear") {
			sep = &do365
		}
		k := DefaultKinematics()
		k.ReactionS = rapid.SampledFrom([]float64{0, 3, 10}).Draw(t, "reaction_s")
		// Far apart or already close (a loss in the first piece).
		spreadM := rapid.SampledFrom([]float64{2000, 20000}).Draw(t, "spread_m")
		aircraft := func(name string) *Party {
			tr := rapid.Float64Range(0, 2*math.Pi).Draw(t, name+"_track")
			sp := rapid.Float64Range(20, 250).Draw(t, name+"_speed")
			return &Party{Aircraft: Aircraft{
				Pos: detect.Vec3{X: rapid.Float64Range(-spreadM, spreadM).Draw(t, name+"_x"), Y: rapid.Float64Range(-spreadM, spreadM).Draw(t, name+"_y"), Z: 3000 + rapid.Float64Range(-600, 600).Draw(t, name+"_z")},
				Vel: detect.Vec3{X: sp * math.Sin(tr), Y: sp * math.Cos(tr), Z: rapid.Float64Range(-10, 10).Draw(t, name+"_vz")},
			}}
		}
		pa, pb := aircraft("a"), aircraft("b")
		s := &suggester{a: pa, b: pb, sep: sep, ka: &k, kb: &k}
		manoeuvre := func(name string) Manoeuvre {
			switch rapid.IntRange(0, 2).Draw(t, name+"_kind") {
			case 1:
				turn := float64(rapid.IntRange(1, 90).Draw(t, name+"_turn"))
				return Manoeuvre{Kind: KindTurn, TurnDeg: turn}
			case 2:
				climb := geo.FeetToM(float64(rapid.IntRange(-30, 30).Draw(t, name+"_climb")) * 100)
				return Manoeuvre{Kind: KindClimb, ClimbM: climb, AltM: 3000 + climb}
			}
			return Manoeuvre{Kind: KindMaintain}
		}
		a, b := s.flown(pa, manoeuvre("a")), s.flown(pb, manoeuvre("b"))
		look := rapid.SampledFrom([]float64{-1, 0, 5, 10, 20, 45, 180, 300}).Draw(t, "look_s")
		dets := pairDetectors(nil, sep)
		// Every piece in time order.
		var cuts []float64
		for _, p := range []path{a, b} {
			for _, sg := range p {
				if sg.t > 0 && sg.t < look {
					cuts = append(cuts, sg.t)
				}
			}
		}
		cuts = append(sortUnique(append(cuts, 0)), look)
		want := false
		for n := 0; n+1 < len(cuts) && cuts[n] < look; n++ {
			want = want || pieceConflicts(a, b, cuts[n], cuts[n+1], dets)
		}
		if got := conflictsUnder(a, b, look, dets); got != want {
			t.Fatalf("conflictsUnder %v, piece by piece %v (look %v, paths %v and %v)", got, want, look, a, b)
		}
		if want {
			met++
		} else {
			clear++
		}
	})
	if met == 0 || clear == 0 {
		t.Fatalf("vacuous: %d conflicts, %d clear", met, clear)
	}
}

// beyondFamily is sepReach.beyondFamily of o under its own separation,
// its reach worked out afresh (reachOf): what Suggest prunes each other
// with, asked of one other.
func beyondFamily(a Aircraft, o *Intruder, f family) bool {
	r := reachOf(o.Sep)
	return r.beyondFamily(a, o, f)
}
