package traffic

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/track"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func TestGenerateIsSeededAndValid(t *testing.T) {
	for _, sc := range Scenarios() {
		a, err := Generate(sc, Options{Aircraft: 500, Seed: 7, Time: t0})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Generate(sc, Options{Aircraft: 500, Seed: 7, Time: t0})
		c, _ := Generate(sc, Options{Aircraft: 500, Seed: 8, Time: t0})
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: same seed, different traffic", sc)
		}
		if reflect.DeepEqual(a, c) {
			t.Errorf("%s: different seeds, same traffic", sc)
		}
		keys := map[track.Key]bool{}
		parties := map[string]bool{}
		for i, r := range a {
			if err := r.Validate(); err != nil {
				t.Fatalf("%s: report %d invalid: %v", sc, i, err)
			}
			if keys[r.Key()] {
				t.Fatalf("%s: aircraft %v twice", sc, r.Key())
			}
			keys[r.Key()] = true
			parties[r.Party] = true
		}
		if len(parties) != 4 {
			t.Errorf("%s: %d parties, want the default 4", sc, len(parties))
		}
	}
}

func TestTheatreStaysInItsBox(t *testing.T) {
	reps, _ := Generate("theatre", Options{Aircraft: 2000, Seed: 1, Time: t0})
	f := geo.NewFrame(TheatreCentre)
	fast := 0
	for _, r := range reps {
		e := f.ToENU(geo.LLA{LatDeg: r.Pos.LatDeg, LonDeg: r.Pos.LonDeg})
		if math.Abs(e.EastM) > TheatreHalfSideM+1 || math.Abs(e.NorthM) > TheatreHalfSideM+1 {
			t.Fatalf("aircraft at %+v is outside the box", e)
		}
		if r.Pos.AltM < 0 || r.Pos.AltM > 12_000 {
			t.Fatalf("altitude %v outside 0-12 km", r.Pos.AltM)
		}
		speed := math.Hypot(r.VelEastMps, r.VelNorthMps)
		if speed > 700 {
			t.Fatalf("speed %v m/s above Mach 2", speed)
		}
		if speed > 400 {
			fast++
		}
	}
	if fast == 0 {
		t.Error("no fast jets in the theatre")
	}
}

// TestGlobalLooksLikeWorldTraffic checks the shape the benchmark relies
// on: most aircraft at cruise levels at airliner speeds, the rest lower
// near hubs, and the traffic concentrated (many aircraft share a
// 1-degree square with others) rather than uniform.
func TestGlobalLooksLikeWorldTraffic(t *testing.T) {
	reps, _ := Generate("global", Options{Aircraft: 5000, Seed: 1, Time: t0})
	cruise := 0
	squares := map[[2]int]int{}
	for _, r := range reps {
		if r.Pos.AltM >= geo.FlightLevelToM(290)-1 {
			cruise++
			if v := math.Hypot(r.VelEastMps, r.VelNorthMps); v < 200 || v > 270 {
				t.Fatalf("cruising at %v m/s", v)
			}
		}
		squares[[2]int{int(math.Floor(r.Pos.LatDeg)), int(math.Floor(r.Pos.LonDeg))}]++
	}
	if frac := float64(cruise) / float64(len(reps)); frac < 0.6 || frac > 0.85 {
		t.Errorf("%.0f%% at cruise levels, want about three quarters", frac*100)
	}
	// Spread uniformly over the Earth (about 41,000 one-degree squares
	// of equal area near the equator, fewer towards the poles), about one
	// aircraft in nine would share its square with another.
	shared := 0
	for _, r := range reps {
		if squares[[2]int{int(math.Floor(r.Pos.LatDeg)), int(math.Floor(r.Pos.LonDeg))}] > 1 {
			shared++
		}
	}
	if frac := float64(shared) / float64(len(reps)); frac < 0.3 {
		t.Errorf("only %.0f%% of aircraft share their square: not concentrated", frac*100)
	} else {
		t.Logf("%.0f%% of aircraft share their one-degree square", frac*100)
	}
}

func TestAdvanceAgreesWithTheDetectorsExtrapolation(t *testing.T) {
	reps, _ := Generate("global", Options{Aircraft: 50, Seed: 3, Time: t0})
	for _, r := range reps {
		next := Advance(r, 5*time.Second)
		if !next.Time.Equal(r.Time.Add(5 * time.Second)) {
			t.Fatalf("time %v", next.Time)
		}
		before := track.NewState(r)
		want := before.ECEFAt(5)
		got := track.NewState(next)
		for k := 0; k < 3; k++ {
			if math.Abs(got.ECEF[k]-want[k]) > 1e-3 {
				t.Fatalf("advanced position %v, extrapolation %v", got.ECEF, want)
			}
			if math.Abs(got.VelECEF[k]-before.VelECEF[k]) > 1e-6 {
				t.Fatalf("velocity changed in ECEF: %v", got.VelECEF)
			}
		}
	}
}

func TestGenerateRefusesBadOptions(t *testing.T) {
	if _, err := Generate("moon", Options{Aircraft: 1, Time: t0}); err == nil {
		t.Error("unknown scenario accepted")
	}
	if _, err := Generate("global", Options{Aircraft: -1, Time: t0}); err == nil {
		t.Error("negative aircraft accepted")
	}
	if _, err := Generate("global", Options{Aircraft: 1}); err == nil {
		t.Error("zero time accepted")
	}
}

// TestMetroLooksLikeACity checks the shape the metro benchmark relies on:
// the drones first, of class uas, 5-50 m/s at 30-150 m within the city;
// then MetroManned manned aircraft, arrivals and departures of the airport
// and helicopters low over the city.
func TestMetroLooksLikeACity(t *testing.T) {
	const n = 5000
	reps, _ := Generate("metro", Options{Aircraft: n, Seed: 1, Time: t0})
	if len(reps) != n+MetroManned {
		t.Fatalf("%d reports, want %d drones and %d manned", len(reps), n, MetroManned)
	}
	f := geo.NewFrame(MetroCentre)
	for i, r := range reps {
		e := f.ToENU(geo.LLA{LatDeg: r.Pos.LatDeg, LonDeg: r.Pos.LonDeg})
		speed := math.Hypot(r.VelEastMps, r.VelNorthMps)
		if i < n {
			if r.Class != "uas" || math.Hypot(e.EastM, e.NorthM) > MetroRadiusM+1 || r.Pos.AltM < 30 || r.Pos.AltM > 150 || speed < 5 || speed > 50 {
				t.Fatalf("drone %d: %+v at %.0f m from the centre, %.1f m/s", i, r, math.Hypot(e.EastM, e.NorthM), speed)
			}
			continue
		}
		if r.Class != "manned" || r.Pos.AltM < 0 || r.Pos.AltM > 6_000 || speed < 30 || speed > 250 {
			t.Fatalf("manned %d: %+v, %.1f m/s", i, r, speed)
		}
	}
	// Drones keep to the lanes of their routes: with few hubs, many share
	// a 100 m square with another.
	reps, _ = Generate("metro", Options{Aircraft: n, Seed: 1, Time: t0, Hubs: 10})
	squares := map[[2]int]int{}
	for _, r := range reps[:n] {
		e := f.ToENU(geo.LLA{LatDeg: r.Pos.LatDeg, LonDeg: r.Pos.LonDeg})
		squares[[2]int{int(math.Floor(e.EastM / 100)), int(math.Floor(e.NorthM / 100))}]++
	}
	shared := 0
	for _, c := range squares {
		if c > 1 {
			shared += c
		}
	}
	if shared < n/10 {
		t.Errorf("only %d of %d drones share a 100 m square: not route-like", shared, n)
	}
}

// TestGenerateBoundsThePicture: a count of aircraft or hubs beyond what a
// picture built in memory may hold is refused naming the option; it
// panicked allocating the slice (or took all memory below that).
func TestGenerateBoundsThePicture(t *testing.T) {
	for _, sc := range Scenarios() {
		for _, o := range []Options{
			{Aircraft: math.MaxInt, Time: t0},
			{Aircraft: MaxAircraft + 1, Time: t0},
			{Aircraft: 1, Hubs: math.MaxInt, Time: t0},
		} {
			field := "aircraft"
			if o.Hubs != 0 {
				field = "hubs"
			}
			if _, err := Generate(sc, o); err == nil || !strings.HasPrefix(err.Error(), field+": ") {
				t.Errorf("%s with %d aircraft and %d hubs: %v, want an error naming %s", sc, o.Aircraft, o.Hubs, err, field)
			}
		}
	}
}
