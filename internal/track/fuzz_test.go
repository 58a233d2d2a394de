package track

import (
	"math"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
)

// FuzzReportValidate: whatever the fields, Validate does not panic, and a
// report it accepts has a finite ECEF position and velocity and is applied
// by a table exactly once.
func FuzzReportValidate(f *testing.F) {
	f.Add("blue", "4ca1f2", "EIN12", 53.4, -6.2, 10000.0, 200.0, -10.0, 0.0, int64(0))
	f.Add("", "x", "", 91.0, 0.0, 0.0, 0.0, 0.0, 0.0, int64(0))
	f.Add("red", "1", "R", -90.0, 180.0, -1000.0, 2000.0, 2000.0, 1.0, int64(-5e9))
	f.Add("p", "a", "c", math.NaN(), math.Inf(1), 1e9, 1e308, -1e308, 5.0, int64(1))
	f.Fuzz(func(t *testing.T, party, aircraft, callsign string, lat, lon, alt, ve, vn, vu float64, dtNs int64) {
		r := Report{Party: party, Aircraft: aircraft, Callsign: callsign, Pos: geo.LLA{LatDeg: lat, LonDeg: lon, AltM: alt},
			VelEastMps: ve, VelNorthMps: vn, VelUpMps: vu, Time: time.Unix(1_767_225_600, dtNs)}
		if err := r.Validate(); err != nil {
			if _, ok := err.(*fielderr.Error); !ok {
				t.Fatalf("error %T %v is not a *fielderr.Error", err, err)
			}
			return
		}
		s := NewState(r)
		for k := 0; k < 3; k++ {
			if !finite(s.ECEF[k]) || !finite(s.VelECEF[k]) {
				t.Fatalf("accepted report gives ECEF %v velocity %v", s.ECEF, s.VelECEF)
			}
		}
		tab := NewTable(30 * time.Second)
		if _, o := tab.Apply(r, r.Time); o != Created {
			t.Fatalf("first apply: %v", o)
		}
		if _, o := tab.Apply(r, r.Time); o != Duplicate {
			t.Fatalf("second apply: %v", o)
		}
	})
}
