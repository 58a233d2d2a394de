package resolve_test

import (
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/resolve"
)

// regions of a separation's levels, the oracle's view of bands: for each
// region, the detector and alerting time of the level painting it.
var allRegions = []resolve.Region{resolve.RegionNear, resolve.RegionMid, resolve.RegionFar}

// oracle evaluates one candidate by brute force, pair by pair, with
// nothing of the bands computation: the most severe region some intruder
// puts it in. An intruder puts a candidate in region R when its level for
// R conflicts over the alerting time, or over the whole lookahead when
// the intruder's current state already holds that level.
func oracleRegion(own resolve.Aircraft, traffic []resolve.Intruder, ownPos, ownVel detect.Vec3) resolve.Region {
	for _, r := range allRegions {
		if oracleRed(own, traffic, ownPos, ownVel, r) {
			return r
		}
	}
	return resolve.RegionNone
}

func oracleRed(own resolve.Aircraft, traffic []resolve.Intruder, ownPos, ownVel detect.Vec3, r resolve.Region) bool {
	for _, in := range traffic {
		li := -1
		for i, lr := range in.Sep.Regions {
			if lr == r {
				li = i
				break
			}
		}
		if li < 0 {
			continue
		}
		lvl := &in.Sep.Alerter.Levels[li]
		look := in.Sep.Alerter.LookaheadS
		horizon := min(look, lvl.AlertingTimeS)
		if lvl.Holds(lvl.Detector.Loss(in.Pos.Sub(own.Pos), in.Vel.Sub(own.Vel), 0, look)) {
			horizon = look
		}
		if lvl.Detector.Loss(in.Pos.Sub(ownPos), in.Vel.Sub(ownVel), 0, horizon).Conflict {
			return true
		}
	}
	return false
}

// candidate is the ownship state for value x of dimension d (track in
// degrees), as the bands define their candidates.
func candidate(own resolve.Aircraft, cfg *resolve.Config, d int, x float64) (pos, vel detect.Vec3) {
	pos, vel = own.Pos, own.Vel
	switch d {
	case 0:
		g := max(math.Hypot(vel.X, vel.Y), cfg.MinAirspeedMps)
		s, c := math.Sincos(x * math.Pi / 180)
		vel.X, vel.Y = g*s, g*c
	case 1:
		gs := math.Hypot(vel.X, vel.Y)
		ux, uy := 0.0, 1.0
		if gs > 0 {
			ux, uy = vel.X/gs, vel.Y/gs
		}
		vel.X, vel.Y = x*ux, x*uy
	case 2:
		vel.Z = x
	case 3:
		pos.Z, vel.Z = x, 0
	}
	return pos, vel
}

// genTraffic draws an ownship and up to maxIntruders intruders around it,
// each separated either by DO-365 well clear or by a cylinder with three
// levels, close enough that many candidates conflict.
func genTraffic(t *rapid.T, maxIntruders int) (resolve.Aircraft, []resolve.Intruder) {
	do365 := resolve.DO365()
	cyl := resolve.CylinderSeparation(detect.Cylinder{HorizontalM: 1852, VerticalM: 150}, 120, 120, 60, 30)
	vel := func(name string) detect.Vec3 {
		speed := rapid.Float64Range(5, 250).Draw(t, name+"_speed")
		track := rapid.Float64Range(0, 2*math.Pi).Draw(t, name+"_track")
		vz := rapid.Float64Range(-15, 15).Draw(t, name+"_vz")
		return detect.Vec3{X: speed * math.Sin(track), Y: speed * math.Cos(track), Z: vz}
	}
	own := resolve.Aircraft{Pos: detect.Vec3{Z: rapid.Float64Range(500, 8000).Draw(t, "own_z")}, Vel: vel("own")}
	n := rapid.IntRange(1, maxIntruders).Draw(t, "intruders")
	traffic := make([]resolve.Intruder, n)
	for i := range traffic {
		p := detect.Vec3{
			X: rapid.Float64Range(-15000, 15000).Draw(t, "x"),
			Y: rapid.Float64Range(-15000, 15000).Draw(t, "y"),
			Z: own.Pos.Z + rapid.Float64Range(-1500, 1500).Draw(t, "dz"),
		}
		sep := &do365
		if rapid.Bool().Draw(t, "cylinder") {
			sep = &cyl
		}
		traffic[i] = resolve.Intruder{Aircraft: resolve.Aircraft{Pos: p, Vel: vel("int")}, Sep: sep}
	}
	return own, traffic
}

// droneConfig is the bands' configuration of a small drone (the default
// rules' uas class): ground speed 5-50 m/s, vertical speed ±5 m/s,
// altitude 30-150 m in steps of 5 m.
func droneConfig() resolve.Config {
	c := resolve.DefaultConfig()
	c.MinGsMps, c.MaxGsMps, c.MinAirspeedMps = 5, 50, 5
	c.MinVsMps, c.MaxVsMps = -5, 5
	c.MinAltM, c.MaxAltM = 30, 150
	c.Steps[3] = 5
	return c
}

// genDroneTraffic draws a drone and up to maxIntruders intruders around
// it: drones kept 50 m and 15 m apart over 60 s, and manned aircraft
// (helicopters, arrivals) by DO-365 well clear.
func genDroneTraffic(t *rapid.T, maxIntruders int) (resolve.Aircraft, []resolve.Intruder) {
	do365 := resolve.DO365()
	drones := resolve.CylinderSeparation(detect.Cylinder{HorizontalM: 50, VerticalM: 15}, 60, 60, 30, 15)
	vel := func(name string, lo, hi, vz float64) detect.Vec3 {
		speed := rapid.Float64Range(lo, hi).Draw(t, name+"_speed")
		track := rapid.Float64Range(0, 2*math.Pi).Draw(t, name+"_track")
		return detect.Vec3{X: speed * math.Sin(track), Y: speed * math.Cos(track), Z: rapid.Float64Range(-vz, vz).Draw(t, name+"_vz")}
	}
	own := resolve.Aircraft{Pos: detect.Vec3{Z: rapid.Float64Range(30, 150).Draw(t, "own_z")}, Vel: vel("own", 2, 55, 4)}
	traffic := make([]resolve.Intruder, rapid.IntRange(1, maxIntruders).Draw(t, "intruders"))
	for i := range traffic {
		if rapid.IntRange(0, 4).Draw(t, "manned") == 0 {
			p := detect.Vec3{X: rapid.Float64Range(-6000, 6000).Draw(t, "x"), Y: rapid.Float64Range(-6000, 6000).Draw(t, "y"), Z: rapid.Float64Range(100, 600).Draw(t, "z")}
			traffic[i] = resolve.Intruder{Aircraft: resolve.Aircraft{Pos: p, Vel: vel("man", 30, 120, 4)}, Sep: &do365}
			continue
		}
		p := detect.Vec3{X: rapid.Float64Range(-1500, 1500).Draw(t, "x"), Y: rapid.Float64Range(-1500, 1500).Draw(t, "y"), Z: rapid.Float64Range(20, 160).Draw(t, "z")}
		traffic[i] = resolve.Intruder{Aircraft: resolve.Aircraft{Pos: p, Vel: vel("int", 2, 55, 4)}, Sep: &drones}
	}
	return own, traffic
}

// TestBandsAgainstBruteForce checks bands of many aircraft against the
// pair-by-pair evaluation of densely sampled candidates: every value
// called free (NONE) conflicts with no intruder at any region, and every
// value in a region's band conflicts in that region, unless it lies in a
// free range narrower than one step (not offered, as by DAIDALUS). Points
// within a hair of an edge may go either way. The ownship is an aircraft
// with DAIDALUS's configuration, or a drone with a drone's.
func TestBandsAgainstBruteForce(t *testing.T) {
	daidalus, drone := resolve.DefaultConfig(), droneConfig()
	// Drawn drones whose bands hold some conflict: the check is not of
	// free bands only.
	var dronesInConflict int
	defer func() {
		if dronesInConflict < 10 {
			t.Errorf("only %d drawn drones had a band in conflict", dronesInConflict)
		}
	}()
	rapid.Check(t, func(t *rapid.T) {
		cfg := daidalus
		own, traffic := resolve.Aircraft{}, []resolve.Intruder(nil)
		if rapid.Bool().Draw(t, "drone") {
			cfg = drone
			own, traffic = genDroneTraffic(t, 8)
		} else {
			own, traffic = genTraffic(t, 8)
		}
		b := resolve.Compute(own, traffic, &cfg)
		dims := [4][]resolve.Range{b.TrackDeg, b.GsMps, b.VsMps, b.AltM}
		if cfg.MaxGsMps == drone.MaxGsMps && (len(b.TrackDeg) > 1 || len(b.GsMps) > 1 || len(b.VsMps) > 1 || len(b.AltM) > 1) {
			dronesInConflict++
		}
		for d, rs := range dims {
			checkCover(t, d, rs, &cfg)
			lo, hi := rs[0].Low, rs[len(rs)-1].High
			const samples = 1500
			for k := 0; k <= samples; k++ {
				x := lo + (hi-lo)*(float64(k)+0.37)/samples
				if x > hi || nearEdge(rs, x, hi-lo) {
					continue
				}
				got := regionOf(rs, x)
				pos, vel := candidate(own, &cfg, d, x)
				switch got {
				case resolve.RegionNone:
					if r := oracleRegion(own, traffic, pos, vel); r != resolve.RegionNone {
						t.Fatalf("%s %f called free, conflicts in %s (bands %s)", dimNames[d], x, r, resolve.AppendDAIDALUS(nil, rs))
					}
				case resolve.RegionRecovery:
					// Recovery is checked by the reference rows.
				default:
					if !oracleRed(own, traffic, pos, vel, got) && !narrowFree(own, traffic, &cfg, d, x, got) {
						t.Fatalf("%s %f called %s, free of it in a range a step wide or more (bands %s)", dimNames[d], x, got, resolve.AppendDAIDALUS(nil, rs))
					}
				}
			}
		}
	})
}

// checkCover checks that ranges cover their dimension without gaps.
func checkCover(t *rapid.T, d int, rs []resolve.Range, cfg *resolve.Config) {
	spans := [4][2]float64{{0, 360}, {cfg.MinGsMps, cfg.MaxGsMps}, {cfg.MinVsMps, cfg.MaxVsMps}, {cfg.MinAltM, cfg.MaxAltM}}
	if len(rs) == 0 || rs[0].Low != spans[d][0] || rs[len(rs)-1].High != spans[d][1] {
		t.Fatalf("%s bands %v do not span %v", dimNames[d], rs, spans[d])
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].Low != rs[i-1].High || rs[i].Region == rs[i-1].Region || !(rs[i].Low < rs[i].High) {
			t.Fatalf("%s bands %v: gap, overlap or repeat at %d", dimNames[d], rs, i)
		}
	}
}

// regionOf is the region of the range holding x (x not on an edge).
func regionOf(rs []resolve.Range, x float64) resolve.Region {
	for _, r := range rs {
		if r.Low <= x && x <= r.High {
			return r.Region
		}
	}
	return 255
}

// nearEdge reports whether x is within a hair of an edge between ranges.
func nearEdge(rs []resolve.Range, x, width float64) bool {
	for _, r := range rs[1:] {
		if math.Abs(x-r.Low) <= 1e-7*width {
			return true
		}
	}
	return false
}

// narrowFree reports whether x lies in a range free of region r narrower
// than one step, found by walking from x in hundredths of a step within
// the extent of DAIDALUS's candidates (README section 6.1: from the
// current value by whole steps to the first step at or beyond each limit;
// altitudes from the lowest by whole steps): like DAIDALUS, the bands
// offer a range cut narrower by a limit when it is a step wide beyond it.
func narrowFree(own resolve.Aircraft, traffic []resolve.Intruder, cfg *resolve.Config, d int, x float64, r resolve.Region) bool {
	step := cfg.Steps[d]
	lo, hi := math.Inf(-1), math.Inf(1)
	extent := func(val, min, max float64) (float64, float64) {
		return val - math.Ceil((val-min)/step)*step, val + math.Ceil((max-val)/step)*step
	}
	switch d {
	case 1:
		lo, hi = extent(math.Hypot(own.Vel.X, own.Vel.Y), cfg.MinGsMps, cfg.MaxGsMps)
	case 2:
		lo, hi = extent(own.Vel.Z, cfg.MinVsMps, cfg.MaxVsMps)
	case 3:
		lo, hi = extent(cfg.MinAltM, cfg.MinAltM, cfg.MaxAltM)
	}
	free := func(y float64) bool {
		pos, vel := candidate(own, cfg, d, y)
		return !oracleRed(own, traffic, pos, vel, r)
	}
	width := 0.0
	for _, dir := range []float64{-1, 1} {
		for y := x; width < step; y += dir * step / 100 {
			if y < lo || y > hi || !free(y) {
				break
			}
			width += step / 100
		}
	}
	// The walk measures to a sample at each end, so a range within two
	// samples of a step wide may be either.
	return width < step*1.02
}
