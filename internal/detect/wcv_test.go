package detect

import (
	"math"
	"strconv"
	"testing"

	"github.com/deconflict/deconflict/internal/testutil/reference"
)

// daidalusRow is one encounter of the DAIDALUS reference with DAIDALUS's
// answers.
type daidalusRow struct {
	id, kind          string
	own, ownV         Vec3
	intr, intV        Vec3
	corrective        Loss
	preventive        Loss
	level             int
	boundarySensitive bool
}

func readDAIDALUS(t *testing.T) []daidalusRow {
	inPath, wantPath := reference.DAIDALUSDO365(t)
	in, want := readCSV(t, inPath), readCSV(t, wantPath)
	if len(in) != 400 || len(want) != len(in) {
		t.Fatalf("%d encounters, %d expected rows; the README says 400", len(in), len(want))
	}
	loss := func(row map[string]string, prefix string) Loss {
		if row[prefix+"_conflict"] == "0" {
			if row[prefix+"_t_in_s"] != "" || row[prefix+"_t_out_s"] != "" {
				t.Fatalf("id %s: %s times without a conflict", row["id"], prefix)
			}
			return Loss{}
		}
		return Loss{Conflict: true, TInS: num(t, row, prefix+"_t_in_s"), TOutS: num(t, row, prefix+"_t_out_s")}
	}
	rows := make([]daidalusRow, len(in))
	for i, r := range in {
		w := want[i]
		if r["id"] != w["id"] {
			t.Fatalf("row %d: id %s, expected id %s", i, r["id"], w["id"])
		}
		v := func(c string) float64 { return num(t, r, c) }
		level, err := strconv.Atoi(w["alert_level"])
		if err != nil {
			t.Fatal(err)
		}
		rows[i] = daidalusRow{
			id: r["id"], kind: r["kind"],
			own: Vec3{v("own_x_m"), v("own_y_m"), v("own_z_m")}, ownV: Vec3{v("own_vx_mps"), v("own_vy_mps"), v("own_vz_mps")},
			intr: Vec3{v("int_x_m"), v("int_y_m"), v("int_z_m")}, intV: Vec3{v("int_vx_mps"), v("int_vy_mps"), v("int_vz_mps")},
			corrective: loss(w, "corrective"), preventive: loss(w, "preventive"),
			level:             level,
			boundarySensitive: w["boundary_sensitive"] == "1",
		}
	}
	return rows
}

// TestWCVMatchesDAIDALUS checks do365_wcv against NASA DAIDALUS on every
// row of the reference: the corrective and preventive verdicts, their
// times within 1e-3 s, and the alert level.
func TestWCVMatchesDAIDALUS(t *testing.T) {
	rows := readDAIDALUS(t)
	corrective, preventive := DO365PhaseICorrective(), DO365PhaseIPreventive()
	alerter := DO365BPhaseI()
	const tolS = 1e-3
	var sensitive, sensitiveDiffer int
	for _, row := range rows {
		r, v := row.intr.Sub(row.own), row.intV.Sub(row.ownV)
		gotC, gotP := corrective.Loss(r, v, 0, 180), preventive.Loss(r, v, 0, 180)
		gotLevel := alerter.Level(r, v)
		var faults []string
		same := func(name string, got, want Loss) {
			switch {
			case got.Conflict != want.Conflict:
				faults = append(faults, name+" conflict differs")
			case math.Abs(got.TInS-want.TInS) > tolS || math.Abs(got.TOutS-want.TOutS) > tolS:
				faults = append(faults, name+" times differ")
			}
		}
		same("corrective", gotC, row.corrective)
		same("preventive", gotP, row.preventive)
		if gotLevel != row.level {
			faults = append(faults, "alert level differs")
		}
		if row.boundarySensitive {
			sensitive++
		}
		if len(faults) == 0 {
			continue
		}
		if row.boundarySensitive {
			sensitiveDiffer++
			t.Logf("id %s (%s, boundary sensitive, either answer is right): %v: corrective %+v preventive %+v level %d; DAIDALUS %+v %+v %d",
				row.id, row.kind, faults, gotC, gotP, gotLevel, row.corrective, row.preventive, row.level)
			continue
		}
		t.Errorf("id %s (%s): %v: corrective %+v preventive %+v level %d; DAIDALUS %+v %+v %d",
			row.id, row.kind, faults, gotC, gotP, gotLevel, row.corrective, row.preventive, row.level)
	}
	t.Logf("%d rows, %d boundary sensitive, %d of those answered the other way", len(rows), sensitive, sensitiveDiffer)
}

// TestWCVHeadOn checks the closed form against a case solved by hand: head
// on at closure V from range r0, the modified tau (r² − D²)/(r·V) reaches
// TTHR at r = (TTHR·V + √(TTHR²·V² + 4·D²))/2, and the pair leaves the DTHR
// circle at r = −D, so t_in = (r0 − r)/V and t_out = (r0 + D)/V.
func TestWCVHeadOn(t *testing.T) {
	w := DO365PhaseICorrective()
	const r0, speed = 20_000.0, 100.0
	closure := 2 * speed
	got := w.Detect(Vec3{}, Vec3{X: speed}, Vec3{X: r0, Z: 100}, Vec3{X: -speed}, 180)
	r := (w.TTHRS*closure + math.Sqrt(w.TTHRS*w.TTHRS*closure*closure+4*w.DTHRM*w.DTHRM)) / 2
	if !got.Conflict || math.Abs(got.TInS-(r0-r)/closure) > 1e-9 || math.Abs(got.TOutS-(r0+w.DTHRM)/closure) > 1e-9 {
		t.Fatalf("%+v, want t_in %v t_out %v", got, (r0-r)/closure, (r0+w.DTHRM)/closure)
	}
	// The closest approach is the horizontal one, as Pair reports it.
	if got.TCPAS != r0/closure || got.DHCPAM != 0 || got.DVCPAM != 100 {
		t.Fatalf("closest approach %+v", got)
	}
	// 150 m apart vertically: outside the corrective ZTHR (137.16 m),
	// inside the preventive one (213.36 m).
	above := Vec3{X: r0, Z: 150}
	if c := w.Detect(Vec3{}, Vec3{X: speed}, above, Vec3{X: -speed}, 180); c.Conflict {
		t.Fatalf("corrective at 150 m: %+v", c)
	}
	if p := DO365PhaseIPreventive().Detect(Vec3{}, Vec3{X: speed}, above, Vec3{X: -speed}, 180); !p.Conflict {
		t.Fatalf("preventive at 150 m: %+v", p)
	}
}

// TestWCVTooSlowToSquare: a pair 20 km apart horizontally, within ZTHR
// vertically, whose relative speed is so small that its square underflows
// (8.6e-165 m/s, found by TestClassifyPruneIsExact in package resolve:
// the detector called it a loss from now on, the reach test and
// Violation did not), is no loss over the lookahead, as with no relative
// motion at all or a slow one.
func TestWCVTooSlowToSquare(t *testing.T) {
	w := DO365PhaseICorrective()
	rel := Vec3{X: 156.25, Y: -20_000, Z: 125}
	for _, v := range []Vec3{
		{X: -5.17030011754937e-167, Y: 8.6276094591493435e-165},
		{Y: 1e-160},
		{},
		{X: 1e-3, Y: 2e-3},
	} {
		if l := w.Loss(rel, v, 0, 180); l.Conflict {
			t.Errorf("relative velocity %v: %+v, want no loss", v, l)
		}
		if w.Violation(rel, v) {
			t.Errorf("relative velocity %v: a violation now", v)
		}
	}
	// Every direction of speeds around the one whose square underflows,
	// closing head on or passing, for the well clear and the cylinder.
	cyl := Cylinder{HorizontalM: 1852, VerticalM: 150}
	for _, speed := range []float64{1e-150, 1e-154, 1e-155, 1e-158, 1e-160, 1e-162, 1e-164, 1e-166, 1e-170, 1e-300} {
		for k := range 64 {
			a := float64(k) * math.Pi / 32
			v := Vec3{X: speed * math.Sin(a), Y: speed * math.Cos(a)}
			if l := w.Loss(rel, v, 0, 180); l.Conflict {
				t.Errorf("well clear, relative velocity %v: %+v, want no loss", v, l)
			}
			if l := cyl.Loss(rel, v, 0, 180); l.Conflict {
				t.Errorf("cylinder, relative velocity %v: %+v, want no loss", v, l)
			}
		}
	}
	// Inside DTHR the same speeds are a loss throughout.
	inside := Vec3{X: 156.25, Y: -200, Z: 125}
	if l := w.Loss(inside, Vec3{Y: 1e-160}, 0, 180); !l.Conflict || l.TInS != 0 || l.TOutS != 180 {
		t.Errorf("inside DTHR: %+v, want a loss over [0, 180]", l)
	}
}

// TestDO365Thresholds pins the thresholds to DAIDALUS's float64 values
// (README of the reference, section 3.1): 0.66 NM is 0.66*1852.0 rounded
// once at run time, 1 ULP above 1222.32.
func TestDO365Thresholds(t *testing.T) {
	c, p := DO365PhaseICorrective(), DO365PhaseIPreventive()
	if c != (WCV{DTHRM: 1222.3200000000002, ZTHRM: 137.16, TTHRS: 35, TCOAS: 0}) {
		t.Fatalf("corrective %+v", c)
	}
	if p != (WCV{DTHRM: 1222.3200000000002, ZTHRM: 213.36000000000001, TTHRS: 35, TCOAS: 0}) {
		t.Fatalf("preventive %+v", p)
	}
	a := DO365BPhaseI()
	if a.LookaheadS != 180 || len(a.Levels) != 3 ||
		a.Levels[0].Detector != Detector(p) || a.Levels[0].AlertingTimeS != 55 ||
		a.Levels[1].Detector != Detector(c) || a.Levels[1].AlertingTimeS != 55 ||
		a.Levels[2].Detector != Detector(c) || a.Levels[2].AlertingTimeS != 25 {
		t.Fatalf("alerter %+v", a)
	}
}

func TestAlmostEquals(t *testing.T) {
	up := func(x float64, n int) float64 {
		for range n {
			x = math.Nextafter(x, math.Inf(1))
		}
		return x
	}
	cases := []struct {
		a, b float64
		want bool
	}{
		{1, 1, true},
		{1, up(1, almostULPs), true},
		{1, up(1, almostULPs+1), false},
		{-1, -up(1, almostULPs), true},
		{-1, -up(1, almostULPs+1), false},
		{0, 9e-14, true},
		{0, 1e-13, false},
		{-5e-14, 0, true},
		// Across zero, neither being zero: the ordered integers of the
		// two smallest subnormals of opposite sign are 2 apart.
		{math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64, true},
		{1, -1, false},
		{math.MaxFloat64, -math.MaxFloat64, false},
		{math.NaN(), math.NaN(), false},
		{math.Inf(1), math.Inf(1), true},
		{math.Inf(1), math.MaxFloat64, false},
	}
	for _, c := range cases {
		if got := almostEquals(c.a, c.b); got != c.want {
			t.Errorf("almostEquals(%v, %v) = %v", c.a, c.b, got)
		}
		if got := almostEquals(c.b, c.a); got != c.want {
			t.Errorf("almostEquals(%v, %v) = %v", c.b, c.a, got)
		}
	}
	if almostLess(1, up(1, 10)) || !almostLess(1, up(1, almostULPs+1)) || almostLess(2, 1) {
		t.Fatal("almostLess")
	}
}
