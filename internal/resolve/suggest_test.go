package resolve_test

import (
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/resolve"
)

// flight is an aircraft flown through time by small steps, turning along
// a true arc and changing altitude at the standard rate after the
// reaction time: the simulation the suggestions are checked against,
// independent of the straight pieces Suggest reasons with.
type flight struct {
	pos, vel detect.Vec3
	m        resolve.Manoeuvre
}

func (f *flight) step(t, dt float64, k *resolve.Kinematics) {
	if t >= k.ReactionS {
		switch f.m.Kind {
		case resolve.KindTurn:
			gs := math.Hypot(f.vel.X, f.vel.Y)
			heading := math.Atan2(f.vel.X, f.vel.Y) * 180 / math.Pi
			left := math.Mod(f.m.TrackDeg-heading+720, 360)
			if left > 180 {
				left -= 360
			}
			turn := math.Copysign(min(math.Abs(left), k.TurnRateDegPerS*dt), left)
			s, c := math.Sincos((heading + turn) * math.Pi / 180)
			f.vel.X, f.vel.Y = gs*s, gs*c
		case resolve.KindClimb, resolve.KindDescend:
			dz := f.m.AltM - f.pos.Z
			f.vel.Z = math.Copysign(min(math.Abs(dz)/dt, k.VerticalRateMps), dz)
		}
	}
	f.pos.X += f.vel.X * dt
	f.pos.Y += f.vel.Y * dt
	f.pos.Z += f.vel.Z * dt
}

// violated is a loss of separation now under any level of sep: inside a
// cylinder (shrunk by the flown path's difference from straight pieces,
// a few meters: 30 m, or a tenth of a small cylinder) or inside well
// clear (shrunk alike), all of it, turning or not: its distances, its
// times (modified tau, TTHR; time to co-altitude, TCOA) and its
// horizontal miss distance. TestSuggestionsOnTheArc checks the same on
// the exact arc, unshrunk.
func violated(a, b *flight, sep *resolve.Separation) bool {
	rp, rv := b.pos.Sub(a.pos), b.vel.Sub(a.vel)
	for _, l := range sep.Alerter.Levels {
		switch d := l.Detector.(type) {
		case detect.Cylinder:
			if math.Hypot(rp.X, rp.Y) < d.HorizontalM-min(30, d.HorizontalM/10) && math.Abs(rp.Z) < d.VerticalM-1 {
				return true
			}
		case detect.WCV:
			d.DTHRM -= 30
			d.ZTHRM--
			if d.Violation(rp, rv) {
				return true
			}
		}
	}
	return false
}

// TestSuggestionsSimulated draws a pair on collision course with other
// traffic around, asks for the coordinated suggestion and flies it: both
// aircraft following their manoeuvres at once, the pair keeps its
// separation over the lookahead, and neither loses separation with any
// other aircraft it was clear of. The senses are coordinated: both turn
// right, or the higher climbs and the lower descends. Each aircraft
// flies as its own kinematics say (an airliner's, or a small drone's
// between drones) and its manoeuvre stays within them.
func TestSuggestionsSimulated(t *testing.T) {
	manned := resolve.DefaultKinematics()
	cyl := resolve.CylinderSeparation(detect.Cylinder{HorizontalM: geo.NMToM(5), VerticalM: geo.FeetToM(1000)}, 300, 300, 120, 60)
	do365 := resolve.DO365()
	drones := resolve.CylinderSeparation(detect.Cylinder{HorizontalM: 50, VerticalM: 15}, 60, 60, 30, 15)
	var found, droneFound, droneVertical int
	defer func() {
		if found < 20 || droneFound < 5 {
			t.Errorf("only %d draws had a suggestion, %d of drones", found, droneFound)
		}
		t.Logf("%d suggestions, %d of drones, %d of them vertical", found, droneFound, droneVertical)
	}()
	rapid.Check(t, func(t *rapid.T) {
		sep, ka, kb := &cyl, &manned, &manned
		speed := func(name string) float64 { return rapid.Float64Range(150, 260).Draw(t, name) }
		alt := rapid.Float64Range(3000, 9000).Draw(t, "alt")
		// Scales the geometry: where b is missed and the others fly.
		missM, missAltM, spreadM, spreadAltM, vzMps := 300.0, 60.0, 60000.0, 1500.0, 3.0
		tc := rapid.Float64Range(60, 170).Draw(t, "t_meet")
		kind := rapid.IntRange(0, 2).Draw(t, "kind")
		switch kind {
		case 1:
			sep = &do365
			speed = func(name string) float64 { return rapid.Float64Range(20, 120).Draw(t, name) }
		case 2:
			// Two drones each with a drone's kinematics, the other
			// traffic drones too.
			sep, ka, kb = &drones, &droneKinematics, &droneKinematics
			speed = func(name string) float64 { return rapid.Float64Range(5, 50).Draw(t, name) }
			alt = rapid.Float64Range(40, 140).Draw(t, "drone_alt")
			missM, missAltM, spreadM, spreadAltM, vzMps = 30, 10, 3000, 60, 0.5
			tc = rapid.Float64Range(20, 50).Draw(t, "drone_t_meet")
		}
		vel := func(name string, sp float64) detect.Vec3 {
			tr := rapid.Float64Range(0, 2*math.Pi).Draw(t, name+"_track")
			return detect.Vec3{X: sp * math.Sin(tr), Y: sp * math.Cos(tr), Z: rapid.Float64Range(-vzMps, vzMps).Draw(t, name+"_vz")}
		}
		a := resolve.Aircraft{Pos: detect.Vec3{Z: alt}, Vel: vel("a", speed("a_speed"))}
		// b meets a at tc, missed by an offset within the separation.
		bv := vel("b", speed("b_speed"))
		meet := detect.Vec3{X: a.Pos.X + a.Vel.X*tc, Y: a.Pos.Y + a.Vel.Y*tc, Z: a.Pos.Z + a.Vel.Z*tc}
		off := detect.Vec3{X: rapid.Float64Range(-missM, missM).Draw(t, "off_x"), Y: rapid.Float64Range(-missM, missM).Draw(t, "off_y"), Z: rapid.Float64Range(-missAltM, missAltM).Draw(t, "off_z")}
		b := resolve.Aircraft{Pos: detect.Vec3{X: meet.X - bv.X*tc + off.X, Y: meet.Y - bv.Y*tc + off.Y, Z: meet.Z - bv.Z*tc + off.Z}, Vel: bv}
		var others []resolve.Aircraft
		for range rapid.IntRange(0, 6).Draw(t, "others") {
			others = append(others, resolve.Aircraft{
				Pos: detect.Vec3{X: rapid.Float64Range(-spreadM, spreadM).Draw(t, "ox"), Y: rapid.Float64Range(-spreadM, spreadM).Draw(t, "oy"), Z: alt + rapid.Float64Range(-spreadAltM, spreadAltM).Draw(t, "oz")},
				Vel: vel("o", speed("o_speed")),
			})
		}
		var oa, ob []resolve.Intruder
		for _, o := range others {
			oa = append(oa, resolve.Intruder{Aircraft: o, Sep: sep})
			ob = append(ob, resolve.Intruder{Aircraft: o, Sep: sep})
		}
		pa, pb := &resolve.Party{Aircraft: a, Others: oa}, &resolve.Party{Aircraft: b, Others: ob}
		sg, ok := resolve.Suggest(pa, pb, sep, ka, kb)
		if !ok {
			return
		}
		found++
		if kind == 2 {
			droneFound++
			if sg.A.ClimbM != 0 || sg.B.ClimbM != 0 {
				droneVertical++
			}
		}
		for _, m := range []struct {
			m resolve.Manoeuvre
			k *resolve.Kinematics
		}{{sg.A, ka}, {sg.B, kb}} {
			steps := math.Abs(m.m.ClimbM) / m.k.AltStepM
			if m.m.TurnDeg > m.k.MaxTurnDeg || math.Abs(m.m.ClimbM) > m.k.MaxClimbM || math.Abs(steps-math.Round(steps)) > 1e-9 ||
				m.m.ClimbM != 0 && (m.m.AltM < m.k.MinAltM || m.m.AltM > m.k.MaxAltM) {
				t.Fatalf("%+v beyond its kinematics %+v", m.m, *m.k)
			}
		}
		turning := sg.A.Kind == resolve.KindTurn || sg.B.Kind == resolve.KindTurn
		vertical := sg.A.Kind == resolve.KindClimb || sg.A.Kind == resolve.KindDescend || sg.B.Kind == resolve.KindClimb || sg.B.Kind == resolve.KindDescend
		if turning && vertical {
			t.Fatalf("one turns while the other changes altitude: %+v", sg)
		}
		if sg.A.TurnDeg < 0 || sg.B.TurnDeg < 0 {
			t.Fatalf("a turn to the left: %+v", sg)
		}
		if vertical && (sg.A.ClimbM > 0 || sg.B.ClimbM < 0) != (a.Pos.Z >= b.Pos.Z) {
			t.Fatalf("the lower aircraft climbs or the higher descends: %+v (a at %f, b at %f)", sg, a.Pos.Z, b.Pos.Z)
		}
		// Which others each was clear of, as the straight paths say.
		clear := func(x resolve.Aircraft, o resolve.Aircraft) bool {
			for _, l := range sep.Alerter.Levels {
				if l.Detector.Loss(o.Pos.Sub(x.Pos), o.Vel.Sub(x.Vel), 0, sep.Alerter.LookaheadS).Conflict {
					return false
				}
			}
			return true
		}
		fa, fb := flight{pos: a.Pos, vel: a.Vel, m: sg.A}, flight{pos: b.Pos, vel: b.Vel, m: sg.B}
		fo := make([]flight, len(others))
		for i, o := range others {
			fo[i] = flight{pos: o.Pos, vel: o.Vel}
		}
		const dt = 0.1
		for step := 0; float64(step)*dt <= sep.Alerter.LookaheadS; step++ {
			now := float64(step) * dt
			if violated(&fa, &fb, sep) {
				t.Fatalf("at %.1f s the pair loses separation following %+v", now, sg)
			}
			for i := range fo {
				if clear(a, others[i]) && violated(&fa, &fo[i], sep) {
					t.Fatalf("at %.1f s a, following %+v, loses separation with other %d", now, sg.A, i)
				}
				if clear(b, others[i]) && violated(&fb, &fo[i], sep) {
					t.Fatalf("at %.1f s b, following %+v, loses separation with other %d", now, sg.B, i)
				}
			}
			fa.step(now, dt, ka)
			fb.step(now, dt, kb)
			for i := range fo {
				fo[i].step(now, dt, ka)
			}
		}
	})
}

// TestSuggestTurnRollsOutNearTTHR is the draw of TestSuggestionsSimulated
// that found the chords of a turn off its arc: DO-365 well clear, a at
// 120 m/s and b at 70.75 m/s both climbing at 1 m/s, b 1 m above and
// meeting a 1 m off at 60.125 s. Judged on chords of 10° flown at the
// heading of their middle, a turning 18° and b 5° was clear: the pair
// ended a's turn at a modified tau of 35.014 s; flown on the arc, it is
// within modified tau 15.6 to 15.8 s, 3.4 km apart, just before a rolls
// out. Judged on the arc (turnConflicts), b turns 7°, and the pair flown
// keeps all of well clear all along.
func TestSuggestTurnRollsOutNearTTHR(t *testing.T) {
	k := resolve.DefaultKinematics()
	sep := resolve.DO365()
	vel := func(speedMps, trackRad float64) detect.Vec3 {
		return detect.Vec3{X: speedMps * math.Sin(trackRad), Y: speedMps * math.Cos(trackRad), Z: 1}
	}
	const meetS = 60.125
	a := resolve.Aircraft{Pos: detect.Vec3{Z: 3000}, Vel: vel(120, 1)}
	bv := vel(70.75, 0.34375)
	// As TestSuggestionsSimulated places b, to the bit.
	b := resolve.Aircraft{Pos: detect.Vec3{X: a.Vel.X*meetS - bv.X*meetS + 1, Y: a.Vel.Y*meetS - bv.Y*meetS + 1, Z: 3001}, Vel: bv}
	if b.Pos.X != 4638.582441154093 || b.Pos.Y != -105.70196232876424 {
		t.Fatalf("b at %+v, not where the draw had it", b.Pos)
	}
	sg, ok := resolve.Suggest(&resolve.Party{Aircraft: a}, &resolve.Party{Aircraft: b}, &sep, &k, &k)
	if !ok || sg.A.Kind != resolve.KindTurn || sg.A.TurnDeg != 18 || sg.B.Kind != resolve.KindTurn || sg.B.TurnDeg != 7 {
		t.Fatalf("%+v (%v), want a to turn 18° and b 7°", sg, ok)
	}
	if lost := simulatePair(a, b, sg.A, sg.B, &sep, &k); lost >= 0 {
		t.Fatalf("%+v: the pair loses separation at %.1f s", sg, lost)
	}
	// What the chords called clear is not, on the arc.
	chords := sg.B
	chords.TurnDeg -= 2
	chords.TrackDeg -= 2
	if lost := simulatePair(a, b, sg.A, chords, &sep, &k); lost < 0 {
		t.Fatalf("%+v and %+v: the pair keeps well clear, as the chords had it", sg.A, chords)
	}
}

// TestSuggestHeadOn: two aircraft head on at the same level are told to
// turn right, each by the same amount, the smallest that clears 5 NM.
func TestSuggestHeadOn(t *testing.T) {
	k := resolve.DefaultKinematics()
	sep := resolve.CylinderSeparation(detect.Cylinder{HorizontalM: geo.NMToM(5), VerticalM: geo.FeetToM(1000)}, 300, 300, 120, 60)
	a := resolve.Party{Aircraft: resolve.Aircraft{Pos: detect.Vec3{Z: 6000}, Vel: detect.Vec3{Y: 200}}}
	b := resolve.Party{Aircraft: resolve.Aircraft{Pos: detect.Vec3{Y: 48000, Z: 6000}, Vel: detect.Vec3{Y: -200}}}
	sg, ok := resolve.Suggest(&a, &b, &sep, &k, &k)
	if !ok {
		t.Fatal("no suggestion")
	}
	if sg.A.Kind != resolve.KindTurn || sg.B.Kind != resolve.KindTurn || math.Abs(sg.A.TurnDeg-sg.B.TurnDeg) > 1 {
		t.Fatalf("%+v: want both to turn right by about the same amount", sg)
	}
	if sg.A.TrackDeg != sg.A.TurnDeg || sg.B.TrackDeg != 180+sg.B.TurnDeg {
		t.Fatalf("%+v: tracks do not follow the turns", sg)
	}
	if lost := simulatePair(a.Aircraft, b.Aircraft, sg.A, sg.B, &sep, &k); lost >= 0 {
		t.Fatalf("%+v: the pair loses separation at %.1f s", sg, lost)
	}
	// A degree less for either does not clear: the suggestion is the
	// smallest.
	for _, less := range [][2]float64{{1, 0}, {0, 1}} {
		sa, sb := sg.A, sg.B
		sa.TurnDeg -= less[0]
		sa.TrackDeg -= less[0]
		sb.TurnDeg -= less[1]
		sb.TrackDeg -= less[1]
		if simulatePair(a.Aircraft, b.Aircraft, sa, sb, &sep, &k) < 0 {
			t.Fatalf("%+v and %+v clear too", sa, sb)
		}
	}
	t.Logf("head on at 400 m/s closure from 48 km: %+v", sg)
}

// droneKinematics is a small drone's (the default rules' uas class):
// turns at 15°/s, climbs at 2.5 m/s by steps of 5 m up to 60 m, between
// 30 and 150 m.
var droneKinematics = resolve.Kinematics{
	ReactionS: 10, TurnRateDegPerS: 15, VerticalRateMps: 2.5,
	TurnStepDeg: 1, MaxTurnDeg: 90, AltStepM: 5, MaxClimbM: 60,
	MinAltM: 30, MaxAltM: 150,
}

// simulatePair flies both manoeuvres and returns the first time the pair
// loses separation, -1 if it never does within the lookahead.
func simulatePair(a, b resolve.Aircraft, ma, mb resolve.Manoeuvre, sep *resolve.Separation, k *resolve.Kinematics) float64 {
	fa, fb := flight{pos: a.Pos, vel: a.Vel, m: ma}, flight{pos: b.Pos, vel: b.Vel, m: mb}
	const dt = 0.1
	for step := 0; float64(step)*dt <= sep.Alerter.LookaheadS; step++ {
		now := float64(step) * dt
		if violated(&fa, &fb, sep) {
			return now
		}
		fa.step(now, dt, k)
		fb.step(now, dt, k)
	}
	return -1
}

func BenchmarkSuggestHeadOn(b *testing.B) {
	k := resolve.DefaultKinematics()
	sep := resolve.CylinderSeparation(detect.Cylinder{HorizontalM: geo.NMToM(5), VerticalM: geo.FeetToM(1000)}, 300, 300, 120, 60)
	pa := resolve.Party{Aircraft: resolve.Aircraft{Pos: detect.Vec3{Z: 6000}, Vel: detect.Vec3{Y: 200}}}
	pb := resolve.Party{Aircraft: resolve.Aircraft{Pos: detect.Vec3{Y: 48000, Z: 6000}, Vel: detect.Vec3{Y: -200}}}
	for b.Loop() {
		resolve.Suggest(&pa, &pb, &sep, &k, &k)
	}
}

// TestSuggestAlreadyClear: a pair already clear of each other is told to
// fly on (the pair of no manoeuvres, at no cost).
func TestSuggestAlreadyClear(t *testing.T) {
	k := resolve.DefaultKinematics()
	sep := resolve.CylinderSeparation(detect.Cylinder{HorizontalM: geo.NMToM(5), VerticalM: geo.FeetToM(1000)}, 300, 300, 120, 60)
	a := resolve.Party{Aircraft: resolve.Aircraft{Pos: detect.Vec3{Z: 6000}, Vel: detect.Vec3{Y: 200}}}
	parallel := resolve.Party{Aircraft: resolve.Aircraft{Pos: detect.Vec3{X: 30000, Z: 6000}, Vel: detect.Vec3{Y: 200}}}
	sg, ok := resolve.Suggest(&a, &parallel, &sep, &k, &k)
	if !ok || sg.CostS != 0 || sg.A.Kind != resolve.KindMaintain || sg.B.Kind != resolve.KindMaintain {
		t.Fatalf("a pair 30 km apart on parallel tracks: %+v (%v), want both to fly on", sg, ok)
	}
}

// TestSuggestDronesVertical: two drones head on near the top of their
// altitudes, not allowed to turn, are told to climb and descend in their
// own steps, the higher no higher than its ceiling, and clear each other
// flying it at their own rate.
func TestSuggestDronesVertical(t *testing.T) {
	k := droneKinematics
	k.MaxTurnDeg = 0
	sep := resolve.CylinderSeparation(detect.Cylinder{HorizontalM: 50, VerticalM: 15}, 60, 60, 30, 15)
	a := resolve.Party{Aircraft: resolve.Aircraft{Pos: detect.Vec3{Z: 142}, Vel: detect.Vec3{Y: 20}}}
	b := resolve.Party{Aircraft: resolve.Aircraft{Pos: detect.Vec3{Y: 1600, Z: 140}, Vel: detect.Vec3{Y: -20}}}
	sg, ok := resolve.Suggest(&a, &b, &sep, &k, &k)
	if !ok {
		t.Fatal("no suggestion")
	}
	if sg.A.Kind != resolve.KindClimb || sg.B.Kind != resolve.KindDescend || sg.A.AltM > k.MaxAltM {
		t.Fatalf("%+v: want the higher to climb to at most %g m and the lower to descend", sg, k.MaxAltM)
	}
	for _, m := range []resolve.Manoeuvre{sg.A, sg.B} {
		if steps := math.Abs(m.ClimbM) / k.AltStepM; math.Abs(steps-math.Round(steps)) > 1e-9 {
			t.Fatalf("%+v: not in steps of %g m", m, k.AltStepM)
		}
	}
	if lost := simulatePair(a.Aircraft, b.Aircraft, sg.A, sg.B, &sep, &k); lost >= 0 {
		t.Fatalf("%+v: the pair loses separation at %.1f s", sg, lost)
	}
	t.Logf("drones head on 1.6 km apart, 2 m apart in altitude: %+v", sg)
}

// TestSuggestDroneAboveItsCeiling: a drone reported above its class's
// ceiling, head on with a drone just below it and neither allowed to
// turn, flies on while the lower one descends: the higher is offered no
// climb beyond its altitudes, but flying on is always a candidate.
func TestSuggestDroneAboveItsCeiling(t *testing.T) {
	k := droneKinematics
	k.MaxTurnDeg = 0
	sep := resolve.CylinderSeparation(detect.Cylinder{HorizontalM: 50, VerticalM: 15}, 60, 60, 30, 15)
	a := resolve.Party{Aircraft: resolve.Aircraft{Pos: detect.Vec3{Z: 160}, Vel: detect.Vec3{Y: 20}}}
	b := resolve.Party{Aircraft: resolve.Aircraft{Pos: detect.Vec3{Y: 1600, Z: 158}, Vel: detect.Vec3{Y: -20}}}
	sg, ok := resolve.Suggest(&a, &b, &sep, &k, &k)
	if !ok || sg.A.Kind != resolve.KindMaintain || sg.B.Kind != resolve.KindDescend || sg.B.AltM < k.MinAltM || sg.B.AltM > k.MaxAltM {
		t.Fatalf("%+v (%v): want the higher to fly on and the lower to descend within %g-%g m", sg, ok, k.MinAltM, k.MaxAltM)
	}
	if lost := simulatePair(a.Aircraft, b.Aircraft, sg.A, sg.B, &sep, &k); lost >= 0 {
		t.Fatalf("%+v: the pair loses separation at %.1f s", sg, lost)
	}
}
