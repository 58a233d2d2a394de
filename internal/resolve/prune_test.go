package resolve

import (
	"math"
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/rules"
)

// cityTraffic draws an aircraft of a city like the metro scenario's, with
// the default rules' separations and limits: a manned aircraft (an
// arrival, a departure, a helicopter) among drones at 30-150 m within
// 15 km, some of them along its track, and a few manned aircraft, some in
// trail close enough to conflict; or a drone among drones, some 50 m
// away, with a manned aircraft or two.
func cityTraffic(t *rapid.T) (Aircraft, []Intruder, *Config) {
	r := rules.Default()
	table, err := detect.NewTable(r)
	if err != nil {
		t.Fatal(err)
	}
	sep := func(a, b string) *Separation {
		s := SeparationOf(table.ForNames(a, b))
		return &s
	}
	vel := func(name string, lo, hi, vz float64) detect.Vec3 {
		speed := rapid.Float64Range(lo, hi).Draw(t, name+"_speed")
		track := rapid.Float64Range(0, 2*math.Pi).Draw(t, name+"_track")
		return detect.Vec3{X: speed * math.Sin(track), Y: speed * math.Cos(track), Z: rapid.Float64Range(-vz, vz).Draw(t, name+"_vz")}
	}
	manned := rapid.IntRange(0, 3).Draw(t, "drone_ownship") != 0
	ownClass := rules.ClassUAS
	own := Aircraft{Pos: detect.Vec3{Z: rapid.Float64Range(30, 150).Draw(t, "own_z")}, Vel: vel("own", 5, 50, 5)}
	radius := 3000.0
	if manned {
		ownClass = rules.ClassManned
		own = Aircraft{Pos: detect.Vec3{Z: rapid.Float64Range(150, 3000).Draw(t, "own_z")}, Vel: vel("own", 30, 250, 10)}
		radius = 15000
	}
	cfg := ConfigOf(r.PerformanceFor(ownClass))
	uas, man := sep(ownClass, rules.ClassUAS), sep(ownClass, rules.ClassManned)
	var traffic []Intruder
	for range rapid.IntRange(0, 4).Draw(t, "manned") {
		p := detect.Vec3{X: rapid.Float64Range(-radius, radius).Draw(t, "m_x"), Y: rapid.Float64Range(-radius, radius).Draw(t, "m_y"), Z: rapid.Float64Range(100, 3000).Draw(t, "m_z")}
		if rapid.Bool().Draw(t, "in_trail") {
			// Behind or ahead on the ownship's track, at its level.
			along := rapid.Float64Range(-12000, 12000).Draw(t, "along")
			gs := math.Hypot(own.Vel.X, own.Vel.Y)
			p = detect.Vec3{X: own.Vel.X / gs * along, Y: own.Vel.Y / gs * along, Z: own.Pos.Z + rapid.Float64Range(-300, 300).Draw(t, "m_dz")}
		}
		traffic = append(traffic, Intruder{Aircraft: Aircraft{Pos: p, Vel: vel("m", 30, 250, 10)}, Sep: man})
	}
	for range rapid.IntRange(1, 120).Draw(t, "drones") {
		p := detect.Vec3{X: rapid.Float64Range(-radius, radius).Draw(t, "x"), Y: rapid.Float64Range(-radius, radius).Draw(t, "y"), Z: rapid.Float64Range(30, 150).Draw(t, "z")}
		switch rapid.IntRange(0, 3).Draw(t, "where") {
		case 0:
			// Along the ownship's track, ahead or behind.
			gs := math.Hypot(own.Vel.X, own.Vel.Y)
			along := rapid.Float64Range(-radius, radius).Draw(t, "along")
			p.X, p.Y = own.Vel.X/gs*along+rapid.Float64Range(-300, 300).Draw(t, "off_x"), own.Vel.Y/gs*along+rapid.Float64Range(-300, 300).Draw(t, "off_y")
		case 1:
			// Close.
			p.X, p.Y = rapid.Float64Range(-400, 400).Draw(t, "near_x"), rapid.Float64Range(-400, 400).Draw(t, "near_y")
		}
		traffic = append(traffic, Intruder{Aircraft: Aircraft{Pos: p, Vel: vel("d", 5, 50, 5)}, Sep: uas})
	}
	return own, traffic, &cfg
}

// TestComputePrunesAreExact: the bands with every prune (classify's,
// reachMasks', the regions' and the recovery's tests of reach, the
// recovery's stop at the first member that leaves no range) are the bands
// of the computation that runs every test of every intruder, to the bit,
// in city traffic: manned aircraft among hundreds of drones, drones among
// drones; many of them in recovery.
func TestComputePrunesAreExact(t *testing.T) {
	var recovering, pruned int
	check := func(t *rapid.T) {
		own, traffic, cfg := cityTraffic(t)
		got, want := compute(own, traffic, cfg, false), compute(own, traffic, cfg, true)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("bands\n%+v\nunpruned\n%+v", got, want)
		}
		if got.RecoveryTimeS > 0 {
			recovering++
		}
		c := &computation{cfg: cfg, own: newOwnship(own.Pos, own.Vel, cfg.MinAirspeedMps), traffic: traffic}
		c.classify()
		c.reachMasks()
		for _, k := range c.keep {
			if k != 1<<numDims-1 {
				pruned++
			}
		}
	}
	for range 5 {
		rapid.Check(t, check)
	}
	t.Logf("%d computations in recovery, %d intruders pruned from a dimension", recovering, pruned)
	if recovering == 0 || pruned == 0 {
		t.Fatal("vacuous: no recovery, or nothing pruned")
	}
}

// TestCylinderUsableMatchesUnion: whether the recovery's cylinders leave a
// range a width wide, found by cylinderUsable (which leaves out the
// members out of reach, stops at the first member after which no such
// range is left and moves it to the front), is what the union of every
// member's conflicts says, for widths at and around the widest range the
// union leaves; and so are whether some candidate recovers from a time
// (recoveryUsable) and the ranges that do (recoveryWide, which tests only
// the pieces that meet the ranges the members before leave), against the
// unpruned green set (recoveryGreen).
func TestCylinderUsableMatchesUnion(t *testing.T) {
	var usable, unusable int
	check := func(t *rapid.T) {
		own, traffic, cfg := cityTraffic(t)
		c := &computation{cfg: cfg, own: newOwnship(own.Pos, own.Vel, cfg.MinAirspeedMps), traffic: traffic}
		ms := make([]member, len(traffic))
		for i := range traffic {
			ms[i] = member{in: &traffic[i], det: traffic[i].Sep.Alerter.Levels[len(traffic[i].Sep.Alerter.Levels)-1].Detector, horizonS: rapid.SampledFrom([]float64{25, 55, 180, 300}).Draw(t, "horizon")}
		}
		factor := rapid.Float64Range(0, 1).Draw(t, "factor")
		d := dim(rapid.IntRange(0, int(numDims)-1).Draw(t, "dim"))
		lo, hi := c.domain(d)
		var red []span
		for i := range ms {
			tt := test{det: cylinder(&ms[i], factor), pos: ms[i].in.Pos, vel: ms[i].in.Vel, toS: ms[i].horizonS}
			red = c.own.red(red, &c.sc, d, lo, hi, &tt, cfg.Samples)
		}
		widest := 0.0
		for _, g := range unite(red).complement(lo, hi) {
			widest = max(widest, g.hi-g.lo)
		}
		for _, w := range []float64{widest, widest * (1 - 1e-9), widest * (1 + 1e-9), widest / 2, c.cfg.step(d)} {
			if w <= 0 {
				continue
			}
			want := widest >= w
			if got := c.cylinderUsable(d, ms, lo, hi, factor, w); got != want {
				t.Fatalf("dimension %d factor %g width %g: usable %v, the union of every member's conflicts says %v (widest free %g)", d, factor, w, got, want, widest)
			}
			if want {
				usable++
			} else {
				unusable++
			}
		}
		// The recovery from a time b: recoveryUsable against the green
		// set of every member, unpruned.
		b := rapid.Float64Range(0, 200).Draw(t, "b")
		c.unpruned = true
		green := c.recoveryGreen(d, ms, lo, hi, factor, b)
		c.unpruned = false
		widest = 0
		for _, g := range green {
			widest = max(widest, g.hi-g.lo)
		}
		for _, w := range []float64{widest, widest * (1 - 1e-9), widest * (1 + 1e-9), widest / 2, c.cfg.step(d)} {
			if w <= 0 {
				continue
			}
			want := green.usable(w)
			if got := c.recoveryUsable(d, ms, lo, hi, factor, b, w); got != want {
				t.Fatalf("dimension %d factor %g from %g s width %g: usable %v, the unpruned green set says %v (widest %g)", d, factor, b, w, got, want, widest)
			}
			if got, want := c.recoveryWide(d, ms, lo, hi, factor, b, w, false), green.wide(w); !reflect.DeepEqual(got, want) {
				t.Fatalf("dimension %d factor %g from %g s width %g: ranges %v, the unpruned green set's %v", d, factor, b, w, got, want)
			}
			if want {
				usable++
			} else {
				unusable++
			}
		}
	}
	for range 3 {
		rapid.Check(t, check)
	}
	if usable == 0 || unusable == 0 {
		t.Fatalf("vacuous: %d usable, %d not", usable, unusable)
	}
}

// TestMemberListMatchesMembers: the members of a region found without
// their conflicts (memberList: conflict aircraft untested, the others by
// their first conflicting candidate) are those members finds with every
// conflict, in the same order, for every dimension and region of city
// traffic.
func TestMemberListMatchesMembers(t *testing.T) {
	var found, left int
	check := func(t *rapid.T) {
		own, traffic, cfg := cityTraffic(t)
		c := &computation{cfg: cfg, own: newOwnship(own.Pos, own.Vel, cfg.MinAirspeedMps), traffic: traffic}
		c.classify()
		c.reachMasks()
		for d := dimTrack; d < numDims; d++ {
			lo, hi := c.domain(d)
			c.reachableIn(d)
			for _, r := range c.regions {
				want, _ := c.members(d, r, lo, hi)
				got := c.memberList(d, r, lo, hi)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("dimension %d region %v: members %v, with every conflict %v", d, r, got, want)
				}
				found += len(want)
				left += len(c.reachable) - len(want)
			}
		}
	}
	for range 3 {
		rapid.Check(t, check)
	}
	if found == 0 || left == 0 {
		t.Fatalf("vacuous: %d members, %d intruders reached but no member", found, left)
	}
}

// TestGreenMatchesMembers: a region's free ranges found member by member
// on the ranges a step wide left so far (green) are those of the union
// of every member's conflicts (members), to the bit, for every dimension
// and region of city traffic, with the configured steps and with steps at
// and around the widest range the union leaves.
func TestGreenMatchesMembers(t *testing.T) {
	var free, saturated int
	check := func(t *rapid.T) {
		own, traffic, cfg := cityTraffic(t)
		d := dim(rapid.IntRange(0, int(numDims)-1).Draw(t, "dim"))
		run := func(cfg *Config, f func(c *computation, lo, hi float64)) {
			c := &computation{cfg: cfg, own: newOwnship(own.Pos, own.Vel, cfg.MinAirspeedMps), traffic: traffic}
			c.classify()
			c.reachMasks()
			c.reachableIn(d)
			lo, hi := c.domain(d)
			f(c, lo, hi)
		}
		var widest []float64
		run(cfg, func(c *computation, lo, hi float64) {
			for _, r := range c.regions {
				_, red := c.members(d, r, lo, hi)
				w := 0.0
				for _, g := range red.complement(lo, hi) {
					w = max(w, g.hi-g.lo)
				}
				widest = append(widest, w)
			}
		})
		steps := []float64{cfg.Steps[d]}
		for _, w := range widest {
			if d == dimTrack {
				w *= 180 / math.Pi // Steps has degrees
			}
			steps = append(steps, w, w*(1-1e-9), w*(1+1e-9), w/2)
		}
		for _, step := range steps {
			if step <= 0 {
				continue
			}
			stepped := *cfg
			stepped.Steps[d] = step
			run(&stepped, func(c *computation, lo, hi float64) {
				for _, r := range c.regions {
					_, red := c.members(d, r, lo, hi)
					want := red.complement(lo, hi).wide(c.cfg.step(d))
					if got := c.green(d, r, lo, hi); !reflect.DeepEqual(got, want) {
						t.Fatalf("dimension %d region %v step %g: free %v, the union of every member's conflicts leaves %v", d, r, step, got, want)
					}
					if len(want) > 0 {
						free++
					} else {
						saturated++
					}
				}
			})
		}
	}
	for range 3 {
		rapid.Check(t, check)
	}
	if free == 0 || saturated == 0 {
		t.Fatalf("vacuous: %d regions with free ranges, %d saturated", free, saturated)
	}
}

// TestHullHoldsEverySpan: the range a test's reach is judged on (hull)
// holds every span of the ranges left, so that no piece tested is out of
// it, and is the smallest that does (a wider one would let the reach
// test keep intruders that cannot meet any piece).
func TestHullHoldsEverySpan(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lo := rapid.Float64Range(-100, 100).Draw(t, "lo")
		var s spans
		at := lo
		for range rapid.IntRange(0, 5).Draw(t, "n") {
			a := at + rapid.Float64Range(0.1, 10).Draw(t, "gap")
			b := a + rapid.Float64Range(0.1, 10).Draw(t, "width")
			s = append(s, span{a, b})
			at = b
		}
		hi := at + rapid.Float64Range(0.1, 10).Draw(t, "end")
		hlo, hhi := s.hull(lo, hi)
		if hlo < lo || hhi > hi {
			t.Fatalf("hull [%g, %g] out of [%g, %g]", hlo, hhi, lo, hi)
		}
		// The smallest such range: its ends are a span's ends.
		minLo, maxHi := math.Inf(1), math.Inf(-1)
		for _, x := range s {
			if x.lo < hlo || x.hi > hhi {
				t.Fatalf("span %v out of the hull [%g, %g] of %v", x, hlo, hhi, s)
			}
			minLo, maxHi = min(minLo, x.lo), max(maxHi, x.hi)
		}
		if len(s) > 0 && (hlo != minLo || hhi != maxHi) {
			t.Fatalf("hull [%g, %g] of %v, want the smallest [%g, %g]", hlo, hhi, s, minLo, maxHi)
		}
		if len(s) == 0 && (hlo != lo || hhi != hi) {
			t.Fatalf("hull of none [%g, %g], want [%g, %g]", hlo, hhi, lo, hi)
		}
	})
}
