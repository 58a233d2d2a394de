package geo

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The reference values in testdata/reference come from implementations
// independent of this package: GeographicLib's own JavaScript port
// (geographiclib-geodesic, exact to round-off) and proj4js, pinned in
// testdata/reference/package-lock.json and run by generate.mjs beside the
// data (each file names its generator and versions in its header).

// readReference reads a reference CSV: comment lines, a header, rows of
// numbers.
func readReference(t *testing.T, name string, cols int) [][]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "reference", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]float64
	sc := bufio.NewScanner(f)
	header := true
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		if header {
			header = false
			if n := len(strings.Split(line, ",")); n != cols {
				t.Fatalf("%s: header %q has %d columns, want %d", name, line, n, cols)
			}
			continue
		}
		var row []float64
		for _, s := range strings.Split(line, ",") {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", name, line, err)
			}
			row = append(row, v)
		}
		if len(row) != cols {
			t.Fatalf("%s: %q has %d columns, want %d", name, line, len(row), cols)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 100 {
		t.Fatalf("%s: only %d rows", name, len(rows))
	}
	return rows
}

// GeodesicM agrees with GeographicLib on WGS84 to 0.5 mm (Vincenty's
// accuracy; 0.08 mm measured), including the nearly antipodal pairs where
// Vincenty's iteration fails and the separator takes over.
func TestGeodesicAgainstGeographicLib(t *testing.T) {
	const tolM = 0.5e-3
	separator := 0
	for _, r := range readReference(t, "geodesic_inverse.csv", 5) {
		a, b := LLA{LatDeg: r[0], LonDeg: r[1]}, LLA{LatDeg: r[2], LonDeg: r[3]}
		if _, ok := vincentyInverse(a, b); !ok {
			separator++
		}
		if got := GeodesicM(a, b); math.Abs(got-r[4]) > tolM {
			t.Errorf("GeodesicM(%v, %v) = %.6f m, GeographicLib %.6f m", a, b, got, r[4])
		}
	}
	if separator < 10 {
		t.Errorf("only %d reference pairs need the separator: the hard cases are not covered", separator)
	}
}

// Destination agrees with GeographicLib's direct problem to 0.5 mm of
// position (0.03 mm measured), for distances from 1 m to 20,000 km.
func TestDestinationAgainstGeographicLib(t *testing.T) {
	const tolM = 0.5e-3
	for _, r := range readReference(t, "geodesic_direct.csv", 6) {
		want := LLA{LatDeg: r[4], LonDeg: r[5]}
		got := Destination(LLA{LatDeg: r[0], LonDeg: r[1]}, r[2], r[3])
		if e := NewFrame(want).ToENU(got); math.Hypot(e.EastM, e.NorthM) > tolM {
			t.Errorf("Destination(%v, %v, %v, %v m) = %v, GeographicLib %v (%.6f m apart)",
				r[0], r[1], r[2], r[3], got, want, math.Hypot(e.EastM, e.NorthM))
		}
	}
}

// GreatCircleM agrees with GeographicLib on a sphere of the mean radius to
// a micrometre.
func TestGreatCircleAgainstGeographicLib(t *testing.T) {
	const tolM = 1e-6
	for _, r := range readReference(t, "greatcircle.csv", 5) {
		a, b := LLA{LatDeg: r[0], LonDeg: r[1]}, LLA{LatDeg: r[2], LonDeg: r[3]}
		if got := GreatCircleM(a, b); math.Abs(got-r[4]) > tolM {
			t.Errorf("GreatCircleM(%v, %v) = %.9f m, GeographicLib %.9f m", a, b, got, r[4])
		}
	}
}

// ToECEF and FromECEF agree with proj4js to a micrometre, from 500 m below
// the ellipsoid to 30 km above it, poles included.
func TestECEFAgainstProj4(t *testing.T) {
	const tolM = 1e-6
	for _, r := range readReference(t, "ecef.csv", 6) {
		p, want := LLA{LatDeg: r[0], LonDeg: r[1], AltM: r[2]}, ECEF{XM: r[3], YM: r[4], ZM: r[5]}
		e := ToECEF(p)
		if d := math.Sqrt((e.XM-want.XM)*(e.XM-want.XM) + (e.YM-want.YM)*(e.YM-want.YM) + (e.ZM-want.ZM)*(e.ZM-want.ZM)); d > tolM {
			t.Errorf("ToECEF(%v) = %v, proj4 %v (%.9f m apart)", p, e, want, d)
		}
		back := FromECEF(want)
		if d := NewFrame(p).ToENU(back); math.Sqrt(d.EastM*d.EastM+d.NorthM*d.NorthM+d.UpM*d.UpM) > tolM {
			t.Errorf("FromECEF(%v) = %v, proj4's point is %v", want, back, p)
		}
	}
}
