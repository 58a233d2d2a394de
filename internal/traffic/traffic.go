// Package traffic owns the seeded synthetic traffic the benchmarks and the
// property tests fly: "global" (world-like traffic around a few hundred
// hubs and along the streams between them, at cruise levels), "theatre"
// (aircraft packed into a 600 km x 600 km box at every altitude up to
// 12 km: the worst case for spatial pruning) and "metro" (a city of drones
// on delivery routes between depots and hospitals, with the airliners of
// its airport and helicopters among them). The same options give the same
// reports, on every machine.
package traffic

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/golang/geo/s2"
)

// Options of a generated picture.
type Options struct {
	Aircraft int
	// Parties the aircraft are spread over, round robin ("p1", "p2", ...);
	// 0 means 4.
	Parties int
	Seed    uint64
	// Time of every report.
	Time time.Time
	// Hubs of the global scenario; 0 means DefaultHubs. More aircraft
	// over the same hubs make every hub busier; more hubs with them keep
	// the busiest areas as busy as they are. For metro: the depots and
	// hospitals, 0 meaning MetroHubs.
	Hubs int
}

var generators = map[string]func(Options, *rand.Rand) []track.Report{
	"global":  global,
	"theatre": theatre,
	"metro":   metro,
}

// Scenarios lists the scenario names.
func Scenarios() []string {
	names := make([]string, 0, len(generators))
	for n := range generators {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Generate makes one report per aircraft for the named scenario.
func Generate(scenario string, o Options) ([]track.Report, error) {
	gen, ok := generators[scenario]
	if !ok {
		return nil, fmt.Errorf("scenario: unknown %q (want one of %v)", scenario, Scenarios())
	}
	if o.Aircraft < 0 || o.Aircraft > MaxAircraft {
		return nil, fmt.Errorf("aircraft: %d, must be within [0, %d]", o.Aircraft, MaxAircraft)
	}
	if o.Parties <= 0 {
		o.Parties = 4
	}
	if o.Hubs < 0 || o.Hubs == 1 || o.Hubs > MaxHubs {
		return nil, fmt.Errorf("hubs: %d, must be 0 (default) or within [2, %d]", o.Hubs, MaxHubs)
	}
	if o.Time.IsZero() {
		return nil, fmt.Errorf("time: must be set")
	}
	return gen(o, rand.New(rand.NewPCG(o.Seed, 0x7aff1c))), nil
}

// Bounds of a picture: the pictures are built whole in memory (some
// 200 bytes a report), so a count from a flag cannot ask for more than
// the machine holds (or more than a slice may, which panicked). A million
// aircraft is ten times the largest benchmark; a hub per ten of them.
const (
	MaxAircraft = 1_000_000
	MaxHubs     = 100_000
)

func partyOf(i, parties int) string { return fmt.Sprintf("p%d", i%parties+1) }

func aircraftID(i int) string { return fmt.Sprintf("%06x", 0x100000+i) }

// region is a part of the world with airports, weighted by its share of
// world traffic (roughly: North America, Europe and East Asia dominate).
type region struct {
	latDeg, lonDeg     float64
	sdLatDeg, sdLonDeg float64
	share              float64
}

var regions = []region{
	{40, -95, 9, 18, 0.30},
	{48, 10, 7, 14, 0.27},
	{32, 115, 9, 12, 0.18},
	{15, 95, 9, 12, 0.08},
	{27, 48, 6, 8, 0.05},
	{-15, -55, 12, 10, 0.05},
	{5, 20, 12, 15, 0.03},
	{-30, 145, 8, 10, 0.04},
}

// DefaultHubs is the number of hubs of the global scenario: about the
// world's busy airports at today's traffic (some 25,000 aircraft).
const DefaultHubs = 300

type hub struct {
	pos    geo.LLA
	weight float64
}

func makeHubs(rng *rand.Rand, hubs int) ([]hub, []float64) {
	hs := make([]hub, hubs)
	cum := make([]float64, hubs)
	total := 0.0
	for i := range hs {
		x := rng.Float64()
		reg := regions[len(regions)-1]
		for _, r := range regions {
			if x < r.share {
				reg = r
				break
			}
			x -= r.share
		}
		lat := math.Max(-55, math.Min(70, reg.latDeg+rng.NormFloat64()*reg.sdLatDeg))
		lon := math.Remainder(reg.lonDeg+rng.NormFloat64()*reg.sdLonDeg, 360)
		// A few busy hubs and a long tail (Zipf-like: the busiest has
		// about ten times the traffic of the 100th).
		w := 1 / math.Pow(float64(i+1), 0.5)
		hs[i] = hub{pos: geo.LLA{LatDeg: lat, LonDeg: lon}, weight: w}
		total += w
		cum[i] = total
	}
	for i := range cum {
		cum[i] /= total
	}
	return hs, cum
}

func pickHub(rng *rand.Rand, cum []float64) int {
	i, _ := slices.BinarySearch(cum, rng.Float64())
	return min(i, len(cum)-1)
}

// global: a quarter of the aircraft climb out of or descend into a hub
// (within 200 km, altitude growing with distance), the rest cruise along
// the great circle between two hubs at a semicircular flight level.
func global(o Options, rng *rand.Rand) []track.Report {
	hs, cum := makeHubs(rng, cmp.Or(o.Hubs, DefaultHubs))
	out := make([]track.Report, 0, o.Aircraft)
	for i := 0; i < o.Aircraft; i++ {
		var pos geo.LLA
		var speedMps, trackDeg, vsMps float64
		if rng.Float64() < 0.25 {
			h := hs[pickHub(rng, cum)]
			bearing := rng.Float64() * 360
			distM := 3_000 + rng.Float64()*197_000
			pos = geo.Destination(h.pos, bearing, distM)
			// Below the cruise levels: about 7 % climb gradient, capped.
			pos.AltM = math.Min(distM*0.07*(0.8+0.4*rng.Float64()), 8_500)
			speedMps = 70 + math.Min(distM/200_000, 1)*160 + rng.Float64()*20
			if rng.Float64() < 0.5 {
				trackDeg = bearing // departing
				vsMps = 5 + rng.Float64()*10
			} else {
				trackDeg = math.Mod(bearing+180, 360) // arriving
				vsMps = -(3 + rng.Float64()*7)
			}
			trackDeg = math.Mod(trackDeg+rng.NormFloat64()*15+360, 360)
		} else {
			a := pickHub(rng, cum)
			b := pickHub(rng, cum)
			for b == a {
				b = pickHub(rng, cum)
			}
			frac := 0.05 + 0.9*rng.Float64()
			pa := s2.PointFromLatLng(s2.LatLngFromDegrees(hs[a].pos.LatDeg, hs[a].pos.LonDeg))
			pb := s2.PointFromLatLng(s2.LatLngFromDegrees(hs[b].pos.LatDeg, hs[b].pos.LonDeg))
			here := s2.LatLngFromPoint(s2.Interpolate(frac, pa, pb))
			ahead := s2.LatLngFromPoint(s2.Interpolate(math.Min(frac+0.001, 1), pa, pb))
			pos = geo.LLA{LatDeg: here.Lat.Degrees(), LonDeg: here.Lng.Degrees()}
			next := geo.LLA{LatDeg: ahead.Lat.Degrees(), LonDeg: ahead.Lng.Degrees()}
			d := geo.NewFrame(pos).ToENU(next)
			trackDeg = math.Mod(math.Atan2(d.EastM, d.NorthM)*180/math.Pi+360, 360)
			// Routes between two hubs are several airways wide.
			pos = geo.Destination(pos, trackDeg+90, rng.NormFloat64()*15_000)
			// Semicircular rule: eastbound odd, westbound even levels,
			// FL290 to FL410.
			fl := 290 + 20*rng.IntN(7)
			if trackDeg >= 180 {
				fl = 300 + 20*rng.IntN(6)
			}
			pos.AltM = geo.FlightLevelToM(float64(fl))
			speedMps = 215 + rng.Float64()*45
			if rng.Float64() < 0.05 {
				vsMps = (rng.Float64() - 0.5) * 10 // step climb or descent
			}
		}
		rad := trackDeg * math.Pi / 180
		out = append(out, track.Report{
			Party:       partyOf(i, o.Parties),
			Aircraft:    aircraftID(i),
			Callsign:    fmt.Sprintf("GLB%d", i),
			Pos:         pos,
			VelEastMps:  speedMps * math.Sin(rad),
			VelNorthMps: speedMps * math.Cos(rad),
			VelUpMps:    vsMps,
			Time:        o.Time,
		})
	}
	return out
}

// TheatreCentre is the centre of the theatre box.
var TheatreCentre = geo.LLA{LatDeg: 35, LonDeg: 38.5}

// TheatreHalfSideM is half the side of the theatre box.
const TheatreHalfSideM = 300_000

// theatre: uniform in the box and over 0-12 km, a fifth fast jets (up to
// Mach 2), the rest transports and helicopters, headings at random.
func theatre(o Options, rng *rand.Rand) []track.Report {
	f := geo.NewFrame(TheatreCentre)
	out := make([]track.Report, 0, o.Aircraft)
	for i := 0; i < o.Aircraft; i++ {
		pos := f.FromENU(geo.ENU{
			EastM:  (rng.Float64()*2 - 1) * TheatreHalfSideM,
			NorthM: (rng.Float64()*2 - 1) * TheatreHalfSideM,
		})
		pos.AltM = rng.Float64() * 12_000
		speedMps := 40 + rng.Float64()*220
		if rng.Float64() < 0.2 {
			speedMps = 200 + rng.Float64()*490
		}
		rad := rng.Float64() * 2 * math.Pi
		out = append(out, track.Report{
			Party:       partyOf(i, o.Parties),
			Aircraft:    aircraftID(i),
			Callsign:    fmt.Sprintf("THR%d", i),
			Pos:         pos,
			VelEastMps:  speedMps * math.Sin(rad),
			VelNorthMps: speedMps * math.Cos(rad),
			VelUpMps:    (rng.Float64() - 0.5) * 30,
			Time:        o.Time,
		})
	}
	return out
}

// The metro scenario: a city MetroRadiusM around MetroCentre.
var MetroCentre = geo.LLA{LatDeg: 48.86, LonDeg: 2.35}

const (
	MetroRadiusM = 50_000
	// MetroManned is the number of manned aircraft flying among the drones:
	// arrivals and departures of one airport, and helicopters.
	MetroManned = 200
	// MetroHubs is the default number of drone depots and hospitals.
	MetroHubs = 150
	// metroRouteM bounds a delivery route.
	metroRouteM = 25_000
)

// metro: o.Aircraft drones (class uas) and MetroManned manned aircraft.
// Four drones in five fly delivery routes between two hubs (depots and
// hospitals, denser towards the centre, at most 25 km apart) at 5-50 m/s,
// keeping to a lane of the route (a few tens of meters wide) at 30-150 m
// above the ground, eastbound in the lower half and westbound in the upper,
// climbing out of their origin and descending into their destination; the
// fifth inspect something, slowly, anywhere. Of the manned aircraft, 60
// arrive at and 60 depart from an airport 20 km north-east of the centre
// (3° approach from the east, departures climbing west then turning), and
// 80 helicopters cross the city at 150-600 m. The first o.Aircraft reports
// are the drones.
func metro(o Options, rng *rand.Rand) []track.Report {
	f := geo.NewFrame(MetroCentre)
	type point struct{ e, n float64 }
	nh := cmp.Or(o.Hubs, MetroHubs)
	hubs := make([]point, nh)
	for i := range hubs {
		// Denser towards the centre: uniform in radius, not in area.
		r, a := 45_000*rng.Float64(), rng.Float64()*2*math.Pi
		hubs[i] = point{r * math.Sin(a), r * math.Cos(a)}
	}
	out := make([]track.Report, 0, o.Aircraft+MetroManned)
	add := func(i int, callsign, class string, e, n, altM, speedMps, trackDeg, vsMps float64) {
		pos := f.FromENU(geo.ENU{EastM: e, NorthM: n})
		pos.AltM = altM
		rad := trackDeg * math.Pi / 180
		out = append(out, track.Report{
			Party:       partyOf(i, o.Parties),
			Aircraft:    aircraftID(i),
			Callsign:    callsign,
			Class:       class,
			Pos:         pos,
			VelEastMps:  speedMps * math.Sin(rad),
			VelNorthMps: speedMps * math.Cos(rad),
			VelUpMps:    vsMps,
			Time:        o.Time,
		})
	}
	for i := 0; i < o.Aircraft; i++ {
		cs := fmt.Sprintf("UAS%d", i)
		if rng.Float64() < 0.2 {
			r, a := MetroRadiusM*math.Sqrt(rng.Float64()), rng.Float64()*2*math.Pi
			add(i, cs, "uas", r*math.Sin(a), r*math.Cos(a), 30+rng.Float64()*120, 5+rng.Float64()*10, rng.Float64()*360, (rng.Float64()-0.5)*2)
			continue
		}
		a := hubs[rng.IntN(nh)]
		var b point
		for range 20 {
			b = hubs[rng.IntN(nh)]
			if d := math.Hypot(b.e-a.e, b.n-a.n); d > 500 && d < metroRouteM {
				break
			}
		}
		de, dn := b.e-a.e, b.n-a.n
		length := math.Max(math.Hypot(de, dn), 1)
		along := rng.Float64() * length
		lateral := rng.NormFloat64() * 20
		e := a.e + de*along/length + dn/length*lateral
		n := a.n + dn*along/length - de/length*lateral
		trackDeg := math.Mod(math.Atan2(de, dn)*180/math.Pi+360, 360)
		alt := 30 + rng.Float64()*60
		if trackDeg >= 180 {
			alt += 60
		}
		vs := rng.NormFloat64() * 0.3
		switch {
		case along < 300:
			alt = 30 + along/300*(alt-30)
			vs = 2 + rng.Float64()*3
		case length-along < 300:
			alt = 30 + (length-along)/300*(alt-30)
			vs = -(2 + rng.Float64()*3)
		}
		add(i, cs, "uas", e, n, alt, 5+rng.Float64()*45, trackDeg, vs)
	}
	const glide = 0.0524 // tan 3°
	airport := point{18_000, 8_000}
	for j := 0; j < MetroManned; j++ {
		i := o.Aircraft + j
		switch {
		case j < 60:
			d := 2_000 + rng.Float64()*48_000
			speed := 65 + d/50_000*65
			add(i, fmt.Sprintf("ARR%d", j), "manned", airport.e+d, airport.n+rng.NormFloat64()*(50+d/100),
				d*glide, speed, 270+rng.NormFloat64()*2, -speed*glide)
		case j < 120:
			d := 1_000 + rng.Float64()*49_000
			hdg := 270.0
			if d > 8_000 {
				hdg = 200 + rng.Float64()*140
			}
			rad := hdg * math.Pi / 180
			add(i, fmt.Sprintf("DEP%d", j), "manned", airport.e-math.Min(d, 8_000)+(d-math.Min(d, 8_000))*math.Sin(rad),
				airport.n+(d-math.Min(d, 8_000))*math.Cos(rad), math.Min(d*0.07, 6_000), 80+d/50_000*120, hdg, 5+rng.Float64()*7)
		default:
			r, a := MetroRadiusM*math.Sqrt(rng.Float64()), rng.Float64()*2*math.Pi
			add(i, fmt.Sprintf("HEL%d", j), "manned", r*math.Sin(a), r*math.Cos(a), 150+rng.Float64()*450, 30+rng.Float64()*40, rng.Float64()*360, (rng.Float64()-0.5)*4)
		}
	}
	return out
}

// Advance dead-reckons a report dt later: straight on in ECEF, with the
// velocity re-expressed in the new position's east-north-up frame, so that
// the detector's own extrapolation of the old report agrees with it.
func Advance(r track.Report, dt time.Duration) track.Report {
	s := track.NewState(r)
	p := s.ECEFAt(dt.Seconds())
	next := r
	next.Pos = geo.FromECEF(geo.ECEF{XM: p[0], YM: p[1], ZM: p[2]})
	next.VelEastMps, next.VelNorthMps, next.VelUpMps = track.VelocityENU(next.Pos, s.VelECEF)
	next.Time = r.Time.Add(dt)
	return next
}
