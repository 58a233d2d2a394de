package detect

import (
	"encoding/csv"
	"math"
	"os"
	"strconv"
	"testing"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/testutil/reference"
	"pgregory.net/rapid"
)

// readCSV reads a whole small CSV into maps keyed by header name.
func readCSV(t testing.TB, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	for _, rec := range recs[1:] {
		m := make(map[string]string, len(rec))
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		rows = append(rows, m)
	}
	return rows
}

func num(t testing.TB, row map[string]string, col string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(row[col], 64)
	if err != nil {
		t.Fatalf("id %s column %s: %v", row["id"], col, err)
	}
	return v
}

func TestPairMatchesReference(t *testing.T) {
	inPath, wantPath := reference.Encounters(t)
	in := readCSV(t, inPath)
	want := readCSV(t, wantPath)
	if len(in) != len(want) || len(in) == 0 {
		t.Fatalf("%d encounters but %d expected rows", len(in), len(want))
	}
	const tol = 1e-3
	for i, row := range in {
		exp := want[i]
		if row["id"] != exp["id"] {
			t.Fatalf("row %d: id %s vs expected id %s", i, row["id"], exp["id"])
		}
		v := func(c string) float64 { return num(t, row, c) }
		got := Pair(
			Vec3{v("own_x_m"), v("own_y_m"), v("own_z_m")},
			Vec3{v("own_vx_mps"), v("own_vy_mps"), v("own_vz_mps")},
			Vec3{v("int_x_m"), v("int_y_m"), v("int_z_m")},
			Vec3{v("int_vx_mps"), v("int_vy_mps"), v("int_vz_mps")},
			Cylinder{v("D_m"), v("H_m")}, v("T_s"))
		wantConflict := exp["conflict"] == "1"
		if got.Conflict != wantConflict {
			t.Errorf("id %s (%s): conflict %v, want %v (%+v)", row["id"], row["kind"], got.Conflict, wantConflict, got)
			continue
		}
		check := func(name string, g float64) {
			w := num(t, exp, name)
			if math.Abs(g-w) > tol {
				t.Errorf("id %s (%s): %s = %.6f, want %.6f", row["id"], row["kind"], name, g, w)
			}
		}
		if wantConflict {
			check("t_in_s", got.TInS)
			check("t_out_s", got.TOutS)
		} else if exp["t_in_s"] != "" || exp["t_out_s"] != "" {
			t.Errorf("id %s: expected file has an interval without a conflict", row["id"])
		}
		check("t_cpa_s", got.TCPAS)
		check("d_h_cpa_m", got.DHCPAM)
		check("d_v_cpa_m", got.DVCPAM)
	}
}

// hDist and vDist evaluate the straight-line trajectories directly: the
// oracle the closed form is checked against.
func hDist(op, ov, ip, iv Vec3, t float64) float64 {
	return math.Hypot(ip.X+iv.X*t-op.X-ov.X*t, ip.Y+iv.Y*t-op.Y-ov.Y*t)
}

func vDist(op, ov, ip, iv Vec3, t float64) float64 {
	return math.Abs(ip.Z + iv.Z*t - op.Z - ov.Z*t)
}

func drawVec(t *rapid.T, name string, maxAbs int) Vec3 {
	g := rapid.IntRange(-maxAbs, maxAbs)
	return Vec3{float64(g.Draw(t, name+"x")), float64(g.Draw(t, name+"y")), float64(g.Draw(t, name+"z"))}
}

func add(a, b Vec3, k float64) Vec3 { return Vec3{a.X + b.X*k, a.Y + b.Y*k, a.Z + b.Z*k} }

// drawEncounter draws integer geometry: every sum and product in the
// closed form stays an exactly representable integer below 2^53, so exact
// tangencies and touching intervals stay exact after a shift in time or
// space and the properties below can demand exact agreement of the verdict.
func drawEncounter(t *rapid.T) (op, ov, ip, iv Vec3, sep Cylinder, lookaheadS float64) {
	op, ov = drawVec(t, "own", 20_000), drawVec(t, "ownVel", 300)
	ip, iv = drawVec(t, "int", 20_000), drawVec(t, "intVel", 300)
	sep = Cylinder{float64(rapid.IntRange(0, 10_000).Draw(t, "D")), float64(rapid.IntRange(0, 1_000).Draw(t, "H"))}
	lookaheadS = float64(rapid.IntRange(0, 300).Draw(t, "T"))
	return
}

func TestPairSwapIsSymmetric(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		op, ov, ip, iv, sep, la := drawEncounter(t)
		ab := Pair(op, ov, ip, iv, sep, la)
		ba := Pair(ip, iv, op, ov, sep, la)
		// Only the relative motion enters and negation is exact, so the
		// results must be identical, not merely close.
		if ab != ba {
			t.Fatalf("own/intruder %+v, intruder/own %+v", ab, ba)
		}
	})
}

func TestPairShiftInTimeAndSpace(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		op, ov, ip, iv, sep, la := drawEncounter(t)
		dt := float64(rapid.IntRange(0, 100).Draw(t, "dt"))
		shift := drawVec(t, "shift", 50_000)
		// The original over [0, dt+T]; the shifted pair starts dt later,
		// displaced by shift, and looks T ahead: it sees [dt, dt+T] of
		// the original.
		orig := Pair(op, ov, ip, iv, sep, dt+la)
		sh := Pair(add(add(op, ov, dt), shift, 1), ov, add(add(ip, iv, dt), shift, 1), iv, sep, la)

		const tolS, tolM = 1e-6, 1e-5
		wantConflict := orig.Conflict && orig.TOutS > dt
		if sh.Conflict != wantConflict {
			// An interval of (nearly) zero length at an edge of the window
			// is within rounding of either verdict.
			if sh.Conflict && sh.TOutS-sh.TInS < tolS {
				return
			}
			if wantConflict && orig.TOutS-math.Max(orig.TInS, dt) < tolS {
				return
			}
		}
		if sh.Conflict != wantConflict {
			t.Fatalf("shifted conflict %v, original over [%v, %v] gives %+v", sh.Conflict, dt, dt+la, orig)
		}
		if wantConflict {
			if math.Abs(sh.TInS-math.Max(orig.TInS-dt, 0)) > tolS || math.Abs(sh.TOutS-(orig.TOutS-dt)) > tolS {
				t.Fatalf("shifted interval [%v, %v], original [%v, %v] shifted by %v", sh.TInS, sh.TOutS, orig.TInS, orig.TOutS, dt)
			}
		}
		// Clamping to [0, dt+T] then shifting equals clamping the shifted
		// closest approach to [0, T].
		if want := math.Max(orig.TCPAS-dt, 0); math.Abs(sh.TCPAS-want) > tolS {
			t.Fatalf("shifted t_cpa %v, want %v (original %v)", sh.TCPAS, want, orig.TCPAS)
		}
		if d := hDist(op, ov, ip, iv, sh.TCPAS+dt); math.Abs(sh.DHCPAM-d) > tolM {
			t.Fatalf("shifted horizontal distance at cpa %v, original trajectory gives %v", sh.DHCPAM, d)
		}
		if d := vDist(op, ov, ip, iv, sh.TCPAS+dt); math.Abs(sh.DVCPAM-d) > tolM {
			t.Fatalf("shifted vertical distance at cpa %v, original trajectory gives %v", sh.DVCPAM, d)
		}
	})
}

// TestPairAgreesWithSampling checks the closed form against the definition:
// at each of many sample times the pair is in conflict exactly when the
// time lies inside [TInS, TOutS]. Samples within tolS of an endpoint are
// not judged: there a rounding of the root decides, not the geometry. The
// closest approach is checked against the sampled minimum, with the slack
// that the horizontal distance changes by at most |v_rel| per second.
func TestPairAgreesWithSampling(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// Altitudes and vertical rates are drawn narrower than the horizontal
		// so that about half the pairs are in conflict.
		op, ov, ip, iv := drawFloatVec(t, "own", 3e4, 1500), drawFloatVec(t, "ownVel", 400, 20), drawFloatVec(t, "int", 3e4, 1500), drawFloatVec(t, "intVel", 400, 20)
		sep := Cylinder{rapid.Float64Range(100, 1e4).Draw(t, "D"), rapid.Float64Range(10, 1e3).Draw(t, "H")}
		la := rapid.Float64Range(1, 600).Draw(t, "T")
		got := Pair(op, ov, ip, iv, sep, la)

		const samples = 4000
		const tolS = 1e-6
		step := la / samples
		minH := math.Inf(1)
		for k := 0; k <= samples; k++ {
			ts := float64(k) * step
			h, v := hDist(op, ov, ip, iv, ts), vDist(op, ov, ip, iv, ts)
			minH = math.Min(minH, h)
			in := h < sep.HorizontalM && v < sep.VerticalM
			if !got.Conflict {
				if in {
					t.Fatalf("no conflict reported, but at t=%v h=%v v=%v", ts, h, v)
				}
				continue
			}
			if math.Abs(ts-got.TInS) < tolS || math.Abs(ts-got.TOutS) < tolS {
				continue
			}
			inside := ts > got.TInS && ts < got.TOutS
			// An interval starting at 0 or ending at T includes that end.
			inside = inside || (got.TInS == 0 && ts == 0) || (got.TOutS == la && ts == la)
			if in != inside {
				t.Fatalf("t=%v: sampled conflict %v (h=%v v=%v) but interval [%v, %v]", ts, in, h, v, got.TInS, got.TOutS)
			}
		}
		if got.Conflict {
			mid := (got.TInS + got.TOutS) / 2
			if hDist(op, ov, ip, iv, mid) >= sep.HorizontalM || vDist(op, ov, ip, iv, mid) >= sep.VerticalM {
				t.Fatalf("middle of the reported interval [%v, %v] is not in conflict", got.TInS, got.TOutS)
			}
		}
		vRel := math.Hypot(iv.X-ov.X, iv.Y-ov.Y)
		if got.DHCPAM > minH+1e-6 || got.DHCPAM < minH-vRel*step/2-1e-6 {
			t.Fatalf("closest approach %v m, sampled minimum %v m (step %v s, closure %v m/s)", got.DHCPAM, minH, step, vRel)
		}
		if d := hDist(op, ov, ip, iv, got.TCPAS); math.Abs(d-got.DHCPAM) > 1e-6 {
			t.Fatalf("horizontal distance at t_cpa %v is %v, reported %v", got.TCPAS, d, got.DHCPAM)
		}
	})
}

func drawFloatVec(t *rapid.T, name string, maxAbs, maxAbsZ float64) Vec3 {
	return Vec3{
		rapid.Float64Range(-maxAbs, maxAbs).Draw(t, name+"x"),
		rapid.Float64Range(-maxAbs, maxAbs).Draw(t, name+"y"),
		rapid.Float64Range(-maxAbsZ, maxAbsZ).Draw(t, name+"z"),
	}
}

// TestPairBoundaries covers the degenerate cases one by one; expected
// values follow from the geometry stated in each case.
func TestPairBoundaries(t *testing.T) {
	sep := Cylinder{HorizontalM: 5000, VerticalM: 300}
	const la = 300.0
	t.Run("head on", func(t *testing.T) {
		const gap, closure = 20_000.0, 200.0
		r := Pair(Vec3{}, Vec3{X: 100}, Vec3{X: gap}, Vec3{X: -100}, sep, la)
		if !r.Conflict || math.Abs(r.TInS-(gap-sep.HorizontalM)/closure) > 1e-9 || math.Abs(r.TOutS-(gap+sep.HorizontalM)/closure) > 1e-9 {
			t.Fatalf("%+v", r)
		}
		if math.Abs(r.TCPAS-gap/closure) > 1e-9 || r.DHCPAM > 1e-9 || r.DVCPAM != 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("already in conflict and still at the end", func(t *testing.T) {
		r := Pair(Vec3{}, Vec3{X: 200}, Vec3{X: 1000, Z: 100}, Vec3{X: 200}, sep, la)
		if !r.Conflict || r.TInS != 0 || r.TOutS != la || r.TCPAS != 0 || r.DHCPAM != 1000 || r.DVCPAM != 100 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("zero relative velocity outside", func(t *testing.T) {
		r := Pair(Vec3{}, Vec3{X: 200}, Vec3{X: 6000}, Vec3{X: 200}, sep, la)
		if r.Conflict || r.TCPAS != 0 || r.DHCPAM != 6000 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("horizontal tangency is not a conflict", func(t *testing.T) {
		// Passing at exactly D: the distance touches D, never below.
		r := Pair(Vec3{}, Vec3{}, Vec3{X: -10_000, Y: sep.HorizontalM}, Vec3{X: 100}, sep, la)
		if r.Conflict || r.TCPAS != 100 || r.DHCPAM != sep.HorizontalM {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("vertical gap exactly H is not a conflict", func(t *testing.T) {
		r := Pair(Vec3{}, Vec3{}, Vec3{Z: sep.VerticalM}, Vec3{X: 10}, sep, la)
		if r.Conflict {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("climb through the level inside the horizontal minimum", func(t *testing.T) {
		// Intruder 1000 m below climbing at 10 m/s: vertical loss from
		// (1000-300)/10 to (1000+300)/10.
		r := Pair(Vec3{}, Vec3{}, Vec3{X: 1000, Z: -1000}, Vec3{Z: 10}, sep, la)
		if !r.Conflict || math.Abs(r.TInS-70) > 1e-9 || math.Abs(r.TOutS-130) > 1e-9 || r.TCPAS != 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("intervals that only touch", func(t *testing.T) {
		// Horizontal loss over (0, 100) only (intruder leaves at 50 m/s
		// from 0 m); vertical loss only after 100 s: no common instant.
		r := Pair(Vec3{}, Vec3{}, Vec3{Z: -1300}, Vec3{X: 50, Z: 10}, sep, la)
		if r.Conflict {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("zero lookahead", func(t *testing.T) {
		in := Pair(Vec3{}, Vec3{}, Vec3{X: 10}, Vec3{X: 10}, sep, 0)
		out := Pair(Vec3{}, Vec3{}, Vec3{X: 6000}, Vec3{X: -10}, sep, 0)
		if !in.Conflict || in.TInS != 0 || in.TOutS != 0 || out.Conflict {
			t.Fatalf("in %+v out %+v", in, out)
		}
	})
}

func TestPairGeodeticHeadOn(t *testing.T) {
	sep := Cylinder{HorizontalM: 9260, VerticalM: 304.8}
	for _, own := range []geo.LLA{{LatDeg: 35, LonDeg: 38, AltM: 9000}, {LatDeg: 0.2, LonDeg: 179.95, AltM: 9000}, {LatDeg: 89.9, LonDeg: 10, AltM: 9000}} {
		const gapM, speed = 40_000.0, 220.0
		for _, bearing := range []float64{0, 90, 225} {
			intr := geo.Destination(own, bearing, gapM)
			f := geo.NewFrame(own)
			toward := f.ToENU(intr)
			n := math.Hypot(toward.EastM, toward.NorthM)
			ownVel := geo.ENU{EastM: speed * toward.EastM / n, NorthM: speed * toward.NorthM / n}
			// The intruder flies back along the same line: its velocity in
			// its own frame is minus ownship's, rotated.
			back := geo.NewFrame(intr).VelocityFrom(own, geo.ENU{EastM: -ownVel.EastM, NorthM: -ownVel.NorthM})
			r := PairGeodetic(own, ownVel, intr, back, sep, 300)
			// Closure 2*speed along the horizontal gap n seen from the
			// ownship; the intruder's velocity, level in its own frame,
			// tilts by the 0.4° between the two verticals, which changes
			// the closure by less than 1e-4: 0.05 s over 90 s.
			if !r.Conflict || math.Abs(r.TInS-(n-sep.HorizontalM)/(2*speed)) > 0.05 || math.Abs(r.TCPAS-n/(2*speed)) > 0.05 {
				t.Fatalf("own %+v bearing %v: %+v", own, bearing, r)
			}
		}
	}
}
