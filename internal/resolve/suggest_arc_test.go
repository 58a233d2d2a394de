package resolve

import (
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
)

// TestChordErrorBoundsTheArc: at every instant of a piece of a turn, the
// arc's position and velocity are within chordError of its chord's, the
// chord joining the arc's ends at a constant velocity (chordOver).
func TestChordErrorBoundsTheArc(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		gs := rapid.Float64Range(1, 300).Draw(t, "gs_mps")
		rate := rapid.Float64Range(0.5, 20).Draw(t, "rate_deg_per_s") * math.Pi / 180
		if rapid.Bool().Draw(t, "left") {
			rate = -rate
		}
		arc := segment{t: 10, pos: detect.Vec3{X: 100, Y: -50, Z: 300}, vel: detect.Vec3{Z: 2}, turnRadPerS: rate,
			headingRad: rapid.Float64Range(-math.Pi, math.Pi).Draw(t, "heading_rad"), gsMps: gs}
		arc.sinHeading, arc.cosHeading = math.Sincos(arc.headingRad)
		turnDeg := rapid.Float64Range(1e-6, 10).Draw(t, "turn_deg")
		t0 := arc.t + rapid.Float64Range(0, 20).Draw(t, "from_s")
		t1 := t0 + turnDeg*math.Pi/180/math.Abs(rate)
		pos, vel, posErrM, velErrMps := arc.chordOver(t0, t1)
		for i := 0; i <= 50; i++ {
			at := t0 + (t1-t0)*float64(i)/50
			p, v := arc.arcAt(at)
			c := detect.Vec3{X: pos.X + vel.X*(at-t0), Y: pos.Y + vel.Y*(at-t0), Z: pos.Z + vel.Z*(at-t0)}
			// The rounding of positions some km from the origin, and of
			// the chord's velocity worked out from two of them.
			if d := p.Sub(c); math.Hypot(d.X, d.Y) > posErrM*(1+1e-9)+1e-9 || math.Abs(d.Z) > 1e-9 {
				t.Fatalf("at %g s the arc is %+v off its chord, beyond %g m", at, d, posErrM)
			}
			if d := v.Sub(vel); math.Hypot(d.X, d.Y) > velErrMps*(1+1e-9)+1e-10/(t1-t0) || d.Z != 0 {
				t.Fatalf("at %g s the arc's velocity is %+v off its chord's, beyond %g m/s", at, d, velErrMps)
			}
		}
	})
}

// TestFlownChordsBoundTheArc: on every chord of a flown turn, the arc is
// within the chord's errors (posErrM, velErrMps) of it all along, and
// the path after the turn is the arc's: the chords end on it.
func TestFlownChordsBoundTheArc(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := DefaultKinematics()
		k.TurnRateDegPerS = rapid.Float64Range(1, 20).Draw(t, "rate_deg_per_s")
		gs := rapid.Float64Range(1, 300).Draw(t, "gs_mps")
		tr := rapid.Float64Range(0, 2*math.Pi).Draw(t, "track_rad")
		p := &Party{Aircraft: Aircraft{Pos: detect.Vec3{X: 3000, Y: -2000, Z: 100}, Vel: detect.Vec3{X: gs * math.Sin(tr), Y: gs * math.Cos(tr), Z: 1}}}
		turnDeg := float64(rapid.IntRange(1, 90).Draw(t, "turn_deg"))
		s := &suggester{a: p, b: p, ka: &k, kb: &k}
		fp := s.flown(p, Manoeuvre{Kind: KindTurn, TurnDeg: turnDeg})
		arc := segment{t: k.ReactionS, pos: fp[1].pos, vel: p.Vel, turnRadPerS: fp[1].turnRadPerS, headingRad: tr, gsMps: gs}
		arc.sinHeading, arc.cosHeading = math.Sincos(arc.headingRad)
		end := k.ReactionS + turnDeg/k.TurnRateDegPerS
		for i := 0; i <= 2000; i++ {
			at := k.ReactionS + (end+30-k.ReactionS)*float64(i)/2000
			seg := &fp[fp.pieceAt(at)]
			cp, cv := seg.along(at)
			ap, av := arc.arcAt(at)
			if at > end {
				// Straight on from the arc's end.
				ap, av = arc.arcAt(end)
				ap = detect.Vec3{X: ap.X + av.X*(at-end), Y: ap.Y + av.Y*(at-end), Z: ap.Z + av.Z*(at-end)}
			}
			if d := ap.Sub(cp); math.Hypot(d.X, d.Y) > seg.posErrM+1e-6 || math.Abs(d.Z) > 1e-6 {
				t.Fatalf("at %g s the arc is %+v off its chord %+v, beyond %g m", at, d, *seg, seg.posErrM)
			}
			if at <= end {
				if d := av.Sub(cv); math.Hypot(d.X, d.Y) > seg.velErrMps+1e-9 {
					t.Fatalf("at %g s the arc's velocity is %+v off its chord's %+v, beyond %g m/s", at, d, *seg, seg.velErrMps)
				}
			}
		}
	})
}

// TestWidenedHoldsEveryNearbyState: a relative state within posErrM and
// velErrMps (horizontally) of a chord's state at an instant of a piece
// that loses a detector's separation (DO-365 well clear, a cylinder)
// makes the chord lose the widened detector's at that instant. Drawn
// near the edge of well clear, and counted: some states lose well clear
// that the chord keeps, without widening.
func TestWidenedHoldsEveryNearbyState(t *testing.T) {
	var lost, onlyNearby int
	// About one drawn state in a hundred loses separation where its
	// chord keeps it: a round of rapid's checks (100 by default) finds
	// none in about one run in eight. Rounds, each of a fresh seed, are
	// checked until one is found (20 rounds all without: about 1e-18),
	// so that the count below tells a generator that never reaches them,
	// not bad luck.
	for round := 0; round < 20 && onlyNearby == 0; round++ {
		checkWidenedHoldsEveryNearbyState(t, &lost, &onlyNearby)
	}
	t.Logf("%d nearby states lost separation, %d of them where the chord kept it", lost, onlyNearby)
	if onlyNearby == 0 {
		t.Fatalf("vacuous: %d lost, none where the chord kept separation", lost)
	}
}

// checkWidenedHoldsEveryNearbyState is a round of
// TestWidenedHoldsEveryNearbyState, counting the states that lose
// separation, and those of them whose chord keeps it.
func checkWidenedHoldsEveryNearbyState(t *testing.T, lost, onlyNearby *int) {
	rapid.Check(t, func(t *rapid.T) {
		var d detect.Detector = detect.DO365PhaseICorrective()
		if rapid.IntRange(0, 3).Draw(t, "cylinder") == 0 {
			d = detect.Cylinder{HorizontalM: rapid.Float64Range(20, 10000).Draw(t, "h_m"), VerticalM: 300}
		}
		polar := func(name string, lo, hi float64) detect.Vec3 {
			r := rapid.Float64Range(lo, hi).Draw(t, name+"_len")
			s, c := math.Sincos(rapid.Float64Range(0, 2*math.Pi).Draw(t, name+"_dir"))
			return detect.Vec3{X: r * s, Y: r * c}
		}
		// The path's state u, w at the instant: a velocity, and a place
		// it entered the DTHR circle (or the cylinder) from, up to 40 s
		// before, some 30 m around it.
		w := polar("w", 0, 300)
		var edgeM float64
		switch d := d.(type) {
		case detect.WCV:
			edgeM = d.DTHRM
		case detect.Cylinder:
			edgeM = d.HorizontalM
		}
		entry := polar("entry", edgeM-30, edgeM+30)
		before := rapid.Float64Range(-40, 5).Draw(t, "entry_s")
		u := detect.Vec3{X: entry.X + w.X*before, Y: entry.Y + w.Y*before, Z: rapid.Float64Range(-200, 200).Draw(t, "z_m")}
		posErrM := rapid.Float64Range(0, 20).Draw(t, "pos_err_m")
		velErrMps := rapid.Float64Range(0, 15).Draw(t, "vel_err_mps")
		// The chord's errors: anywhere within the bounds, or at them
		// and where they hide most of the loss: the chord farther out,
		// its velocity turned off the path's or slower to close.
		e, f := polar("e", 0, posErrM), polar("f", 0, velErrMps)
		if rapid.Bool().Draw(t, "worst") {
			// Along u, or (u on the vertical axis, every direction
			// alike) along y: no division by zero.
			ux, uy, n := 0.0, 1.0, math.Hypot(u.X, u.Y)
			if n > 0 {
				ux, uy = u.X/n, u.Y/n
			}
			e = detect.Vec3{X: -posErrM * ux, Y: -posErrM * uy}
			side := 1.0
			if rapid.Bool().Draw(t, "other_side") {
				side = -1
			}
			// Across the line from the chord to the path, or away.
			out := rapid.Float64Range(0, 1).Draw(t, "slower")
			f = detect.Vec3{X: side*uy*(1-out) + ux*out, Y: -side*ux*(1-out) + uy*out}
			if fn := math.Hypot(f.X, f.Y); fn > 0 {
				f.X, f.Y = f.X*velErrMps/fn, f.Y*velErrMps/fn
			}
		}
		// The chord's state s, rv at the instant at of its piece.
		s := detect.Vec3{X: u.X - e.X, Y: u.Y - e.Y, Z: u.Z}
		rv := detect.Vec3{X: w.X - f.X, Y: w.Y - f.Y}
		durS := rapid.Float64Range(0.001, 4).Draw(t, "dur_s")
		at := rapid.Float64Range(0, durS).Draw(t, "at_s")
		rp := detect.Vec3{X: s.X - rv.X*at, Y: s.Y - rv.Y*at, Z: s.Z}
		wide, _, ok := widened(d, rp, rv, durS, posErrM, velErrMps)
		if !ok {
			t.Fatalf("%T not widened", d)
		}
		if !violatedAt(d, u, w) {
			return
		}
		*lost++
		if !violatedAt(d, s, rv) {
			*onlyNearby++
		}
		if !violatedAt(wide, s, rv) {
			t.Fatalf("%+v loses %+v at %+v, %+v; the chord at %+v, %+v keeps %+v", d, d, u, w, s, rv, wide)
		}
	})
}

// TestSuggestionsOnTheArc: a coordinated suggestion (DO-365 well clear
// or a 5 NM cylinder, the pair alone) flown on its arcs, not its chords,
// sampled every 20 ms over the lookahead, keeps the whole separation of
// every level: distances, times and miss distance of well clear, the
// cylinder, unshrunk.
func TestSuggestionsOnTheArc(t *testing.T) {
	k := DefaultKinematics()
	cyl := CylinderSeparation(detect.Cylinder{HorizontalM: geo.NMToM(5), VerticalM: geo.FeetToM(1000)}, 300, 300, 120, 60)
	do365 := DO365()
	var turns int
	rapid.Check(t, func(t *rapid.T) {
		sep, lo, hi := &do365, 20.0, 120.0
		if rapid.Bool().Draw(t, "cylinder") {
			sep, lo, hi = &cyl, 150, 260
		}
		vel := func(name string) detect.Vec3 {
			sp := rapid.Float64Range(lo, hi).Draw(t, name+"_speed")
			tr := rapid.Float64Range(0, 2*math.Pi).Draw(t, name+"_track")
			return detect.Vec3{X: sp * math.Sin(tr), Y: sp * math.Cos(tr), Z: rapid.Float64Range(-3, 3).Draw(t, name+"_vz")}
		}
		a := Aircraft{Pos: detect.Vec3{Z: 3000}, Vel: vel("a")}
		bv := vel("b")
		tc := rapid.Float64Range(40, 170).Draw(t, "t_meet")
		off := func(name string, m float64) float64 { return rapid.Float64Range(-m, m).Draw(t, name) }
		b := Aircraft{Pos: detect.Vec3{X: (a.Vel.X-bv.X)*tc + off("off_x", 300), Y: (a.Vel.Y-bv.Y)*tc + off("off_y", 300), Z: 3000 + (a.Vel.Z-bv.Z)*tc + off("off_z", 60)}, Vel: bv}
		pa, pb := &Party{Aircraft: a}, &Party{Aircraft: b}
		sg, ok := Suggest(pa, pb, sep, &k, &k)
		if !ok || sg.A.Kind != KindTurn && sg.B.Kind != KindTurn {
			return
		}
		turns++
		s := &suggester{a: pa, b: pb, sep: sep, ka: &k, kb: &k}
		fa, fb := s.flown(pa, sg.A), s.flown(pb, sg.B)
		const dtS = 0.02
		for i := 0; float64(i)*dtS <= sep.Alerter.LookaheadS; i++ {
			at := float64(i) * dtS
			p, v := fa[fa.pieceAt(at)].flownAt(at)
			q, w := fb[fb.pieceAt(at)].flownAt(at)
			for _, l := range sep.Alerter.Levels {
				if violatedAt(l.Detector, q.Sub(p), w.Sub(v)) {
					t.Fatalf("%+v: at %.2f s the pair flown on the arc loses %+v", sg, at, l.Detector)
				}
			}
		}
	})
	if turns < 20 {
		t.Fatalf("only %d suggestions turned", turns)
	}
}
