package resolve

import (
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/rules"
)

// TestBeyondReachIsConservative: whenever beyondReach leaves an intruder
// out of a dimension, no candidate of the dimension, sampled densely,
// conflicts with it, for both kinds of detector, near and far traffic,
// over windows from now and from later (the recovery's), over the whole
// domain and over a range of it.
func TestBeyondReachIsConservative(t *testing.T) {
	cfg := DefaultConfig()
	dets := []detect.Detector{
		detect.Cylinder{HorizontalM: 1852, VerticalM: 150},
		detect.Cylinder{HorizontalM: 50, VerticalM: 15},
		DO365().Alerter.Levels[1].Detector,
	}
	pruned := 0
	check := func(t *rapid.T) {
		vel := func(name string) detect.Vec3 {
			speed := rapid.Float64Range(0, 300).Draw(t, name+"_speed")
			track := rapid.Float64Range(0, 2*math.Pi).Draw(t, name+"_track")
			return detect.Vec3{X: speed * math.Sin(track), Y: speed * math.Cos(track), Z: rapid.Float64Range(-20, 20).Draw(t, name+"_vz")}
		}
		own := newOwnship(detect.Vec3{Z: rapid.Float64Range(30, 8000).Draw(t, "own_z")}, vel("own"), cfg.MinAirspeedMps)
		intVel := vel("int")
		horizon := rapid.SampledFrom([]float64{15, 60, 180}).Draw(t, "horizon")
		// Around the distances the bounds decide at: up to a little
		// beyond what the fastest candidate and the intruder close over
		// the horizon, plus the detectors' reach.
		far := (math.Hypot(intVel.X, intVel.Y)+cfg.MaxGsMps)*horizon + 2000
		dist := far * rapid.Float64Range(0, 1.2).Draw(t, "far")
		bearing := rapid.Float64Range(0, 2*math.Pi).Draw(t, "bearing")
		pos := detect.Vec3{
			X: dist * math.Sin(bearing),
			Y: dist * math.Cos(bearing),
			Z: own.pos.Z + (40*horizon+500)*rapid.Float64Range(-1.2, 1.2).Draw(t, "dz"),
		}
		tt := test{det: rapid.SampledFrom(dets).Draw(t, "detector"), pos: pos, vel: intVel, toS: horizon}
		// The recovery's windows start later, or test the start only.
		if from := rapid.SampledFrom([]float64{0, 0, 0, 5, 30}).Draw(t, "from"); from > 0 {
			tt.fromS, tt.toS = from, from+horizon
			tt.atStart = rapid.Bool().Draw(t, "at_start")
		}
		c := computation{cfg: &cfg, own: own}
		// The whole domain, or a range of it (the ranges a region or
		// the recovery has left).
		part := rapid.SampledFrom([]bool{false, false, true}).Draw(t, "part")
		a, b := rapid.Float64Range(0, 1).Draw(t, "part_a"), rapid.Float64Range(0, 1).Draw(t, "part_b")
		for d := dimTrack; d < numDims; d++ {
			lo, hi := c.domain(d)
			if part {
				lo, hi = lo+(hi-lo)*min(a, b), lo+(hi-lo)*max(a, b)
			}
			if !own.beyondReach(d, lo, hi, &tt) {
				continue
			}
			pruned++
			const samples = 2000
			for k := 0; k <= samples; k++ {
				x := lo + (hi-lo)*float64(k)/samples
				p, v := own.state(d, x)
				if tt.conflicts(p, v) {
					t.Fatalf("dimension %d: candidate %g conflicts with an intruder called beyond reach (%+v)", d, x, tt)
				}
			}
		}
	}
	for range 10 {
		rapid.Check(t, check)
	}
	t.Logf("%d dimensions of intruders beyond reach", pruned)
	if pruned == 0 {
		t.Fatal("no intruder was ever beyond reach: the test tested nothing")
	}
}

// TestReachMasksMatchPerDimension: the intruders reachMasks keeps for each
// dimension are those the test of each level and dimension one by one
// (reachableOracle) keeps, on traffic around the distances the bounds
// decide at, with separations whose levels share detectors and not.
func TestReachMasksMatchPerDimension(t *testing.T) {
	cfg := DefaultConfig()
	do365 := DO365()
	cyl := CylinderSeparation(detect.Cylinder{HorizontalM: 9260, VerticalM: 304.8}, 300, 300, 120, 60)
	drones := CylinderSeparation(detect.Cylinder{HorizontalM: 50, VerticalM: 15}, 60, 60, 30, 15)
	mixed := CylinderSeparation(detect.Cylinder{HorizontalM: 1852, VerticalM: 150}, 120, 120, 60)
	mixed.Alerter.Levels[1].Detector = detect.Cylinder{HorizontalM: 900, VerticalM: 250}
	seps := []*Separation{&do365, &cyl, &drones, &mixed, nil}
	var kept, left int
	rapid.Check(t, func(t *rapid.T) {
		vel := func(name string) detect.Vec3 {
			speed := rapid.Float64Range(0, 300).Draw(t, name+"_speed")
			track := rapid.Float64Range(0, 2*math.Pi).Draw(t, name+"_track")
			return detect.Vec3{X: speed * math.Sin(track), Y: speed * math.Cos(track), Z: rapid.Float64Range(-20, 20).Draw(t, name+"_vz")}
		}
		own := Aircraft{Pos: detect.Vec3{Z: rapid.Float64Range(30, 8000).Draw(t, "own_z")}, Vel: vel("own")}
		var traffic []Intruder
		for range rapid.IntRange(1, 30).Draw(t, "n") {
			v := vel("int")
			sep := rapid.SampledFrom(seps).Draw(t, "sep")
			horizon := 300.0
			if sep != nil {
				horizon = sep.Alerter.LookaheadS
			}
			far := (math.Hypot(v.X, v.Y)+cfg.MaxGsMps)*horizon + 10000
			dist := far * rapid.Float64Range(0, 1.2).Draw(t, "far")
			bearing := rapid.Float64Range(0, 2*math.Pi).Draw(t, "bearing")
			traffic = append(traffic, Intruder{Aircraft: Aircraft{
				Pos: detect.Vec3{X: dist * math.Sin(bearing), Y: dist * math.Cos(bearing), Z: own.Pos.Z + (40*horizon+500)*rapid.Float64Range(-1.2, 1.2).Draw(t, "dz")},
				Vel: v,
			}, Sep: sep})
		}
		c := &computation{cfg: &cfg, own: newOwnship(own.Pos, own.Vel, cfg.MinAirspeedMps), traffic: traffic}
		c.classify()
		c.reachMasks()
		for d := dimTrack; d < numDims; d++ {
			lo, hi := c.domain(d)
			want := c.reachableOracle(d, lo, hi)
			c.reachableIn(d)
			if !slices.Equal(c.reachable, want) {
				t.Fatalf("dimension %d: kept %v, one by one %v", d, c.reachable, want)
			}
			kept += len(want)
			left += len(traffic) - len(want)
		}
	})
	t.Logf("%d intruders kept in a dimension, %d left out", kept, left)
	if kept == 0 || left == 0 {
		t.Fatal("vacuous: every intruder kept, or none")
	}
}

// TestClassifyPruneIsExact: classify leaving out the intruders beyond
// reach of the ownship's current state (beyondReachNow) finds the same
// conflict aircraft, regions and corrective-volume state as running every
// intruder's detection, on traffic from inside the volumes to beyond the
// reach.
func TestClassifyPruneIsExact(t *testing.T) {
	cfg := DefaultConfig()
	do365 := DO365()
	cyl := CylinderSeparation(detect.Cylinder{HorizontalM: 1852, VerticalM: 150}, 120, 120, 60, 30)
	drones := CylinderSeparation(detect.Cylinder{HorizontalM: 50, VerticalM: 15}, 60, 60, 30, 15)
	seps := []*Separation{&do365, &cyl, &drones, nil}
	var conflicting, left int
	rapid.Check(t, func(t *rapid.T) {
		vel := func(name string) detect.Vec3 {
			speed := rapid.Float64Range(0, 250).Draw(t, name+"_speed")
			track := rapid.Float64Range(0, 2*math.Pi).Draw(t, name+"_track")
			return detect.Vec3{X: speed * math.Sin(track), Y: speed * math.Cos(track), Z: rapid.Float64Range(-20, 20).Draw(t, name+"_vz")}
		}
		own := Aircraft{Pos: detect.Vec3{Z: 5000}, Vel: vel("own")}
		var traffic []Intruder
		for range rapid.IntRange(1, 30).Draw(t, "n") {
			scale := rapid.SampledFrom([]float64{100, 2000, 20000, 80000}).Draw(t, "scale")
			traffic = append(traffic, Intruder{Aircraft: Aircraft{
				Pos: detect.Vec3{X: scale * rapid.Float64Range(-1, 1).Draw(t, "x"), Y: scale * rapid.Float64Range(-1, 1).Draw(t, "y"), Z: 5000 + scale/20*rapid.Float64Range(-1, 1).Draw(t, "dz")},
				Vel: vel("int"),
			}, Sep: rapid.SampledFrom(seps).Draw(t, "sep")})
		}
		run := func(unpruned bool) *computation {
			c := &computation{cfg: &cfg, own: newOwnship(own.Pos, own.Vel, cfg.MinAirspeedMps), traffic: traffic, unpruned: unpruned}
			c.classify()
			return c
		}
		got, want := run(false), run(true)
		if got.inside != want.inside || !slices.Equal(got.regions, want.regions) {
			t.Fatalf("inside %v regions %v, unpruned inside %v regions %v", got.inside, got.regions, want.inside, want.regions)
		}
		for r := RegionFar; r < RegionRecovery; r++ {
			if !slices.Equal(got.conflict[r], want.conflict[r]) {
				t.Fatalf("region %v: conflict aircraft %v, unpruned %v", r, got.conflict[r], want.conflict[r])
			}
			for i, in := range traffic {
				if want.conflict[r][i] {
					conflicting++
				} else if in.Sep != nil && beyondReachNow(in.Pos.Sub(own.Pos), in.Vel.Sub(own.Vel), in.Sep.Alerter.LookaheadS, in.Sep.Alerter.Levels[0].Detector.Reach()) {
					left++
				}
			}
		}
	})
	t.Logf("%d conflict aircraft, %d intruders left out", conflicting, left)
	if conflicting == 0 || left == 0 {
		t.Fatal("vacuous: no conflict aircraft, or none left out")
	}
}

// TestGsBeyondReachIsConservative: the ground-speed test of beyondReach
// (gsBeyond, the quadrilateral the candidates' relative positions sweep)
// leaves out no intruder some candidate conflicts with, densely sampled,
// on intruders drawn around that quadrilateral: a fast ownship (an
// airliner's speeds) and slow ones, from inside it to a little beyond the
// reach, over windows from 0 and from later (the recovery's), with
// cylinders and DO-365 well clear.
func TestGsBeyondReachIsConservative(t *testing.T) {
	cfgs := []Config{DefaultConfig(), ConfigOf(rules.DefaultPerformance(rules.ClassUAS))}
	dets := []detect.Detector{
		detect.Cylinder{HorizontalM: 1852, VerticalM: 150},
		detect.Cylinder{HorizontalM: 50, VerticalM: 15},
		DO365().Alerter.Levels[1].Detector,
	}
	var pruned, kept int
	check := func(t *rapid.T) {
		cfg := rapid.SampledFrom(cfgs).Draw(t, "cfg")
		vel := func(name string, maxSpeed float64) detect.Vec3 {
			speed := rapid.Float64Range(0, maxSpeed).Draw(t, name+"_speed")
			track := rapid.Float64Range(0, 2*math.Pi).Draw(t, name+"_track")
			return detect.Vec3{X: speed * math.Sin(track), Y: speed * math.Cos(track), Z: rapid.Float64Range(-5, 5).Draw(t, name+"_vz")}
		}
		own := newOwnship(detect.Vec3{Z: 100}, vel("own", cfg.MaxGsMps), cfg.MinAirspeedMps)
		c := computation{cfg: &cfg, own: own}
		lo, hi := c.domain(dimGs)
		det := rapid.SampledFrom(dets).Draw(t, "detector")
		from := rapid.SampledFrom([]float64{0, 0, 10, 40}).Draw(t, "from")
		tt := test{det: det, vel: vel("int", 60), fromS: from, toS: from + rapid.SampledFrom([]float64{1, 25, 55, 180}).Draw(t, "window")}
		tt.atStart = rapid.IntRange(0, 4).Draw(t, "at_start") == 0
		to := tt.toS
		if tt.atStart {
			to = from + 1
		}
		// A point of the quadrilateral, moved by up to twice the reach.
		g := lo + (hi-lo)*rapid.Float64Range(0, 1).Draw(t, "g")
		at := from + (to-from)*rapid.Float64Range(0, 1).Draw(t, "t")
		reach := det.Reach()
		off := (reach.HorizontalM + 2*(math.Hypot(tt.vel.X, tt.vel.Y)+hi)*reach.HorizontalS + 200) * rapid.Float64Range(0, 2).Draw(t, "off")
		bearing := rapid.Float64Range(0, 2*math.Pi).Draw(t, "bearing")
		tt.pos = detect.Vec3{
			X: off*math.Sin(bearing) - at*(tt.vel.X-g*own.ux),
			Y: off*math.Cos(bearing) - at*(tt.vel.Y-g*own.uy),
			Z: own.pos.Z + rapid.Float64Range(-20, 20).Draw(t, "dz") - at*(tt.vel.Z-own.vel.Z),
		}
		if !own.beyondReach(dimGs, lo, hi, &tt) {
			kept++
			return
		}
		pruned++
		const samples = 4000
		for k := 0; k <= samples; k++ {
			x := lo + (hi-lo)*float64(k)/samples
			p, v := own.state(dimGs, x)
			if tt.conflicts(p, v) {
				t.Fatalf("ground speed %g conflicts with an intruder called beyond reach (%+v)", x, tt)
			}
		}
	}
	for range 20 {
		rapid.Check(t, check)
	}
	t.Logf("%d intruders beyond reach of every ground speed, %d not", pruned, kept)
	if pruned == 0 || kept == 0 {
		t.Fatal("vacuous: every intruder pruned, or none")
	}
}
