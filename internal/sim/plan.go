package sim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
)

// Plan is a scenario expanded into flights with their kinematics, for one
// seed. Everything a run needs is computed here, so that the same scenario
// and seed give the same flights, reports and volumes.
type Plan struct {
	Scenario *Scenario
	Seed     uint64
	Flights  []*Flight
	// EndS is when the last flight lands.
	EndS float64
}

// Flight is one aircraft's sortie, planned.
type Flight struct {
	// ID is the aircraft id on the wire: the sortie id, with -N for
	// repeated sorties.
	ID       string
	Sortie   string // the scenario sortie it comes from
	Callsign string
	Party    string
	Type     string
	// Class is the aircraft type's class ("" for manned).
	Class  string
	StartS float64 // take-off
	EndS   float64 // landing
	Volume VolumeSpec

	legs []leg
	alt  []knot // altitude profile, piecewise linear in time
}

// State is where an aircraft is and how it moves, in meters and m/s.
type State struct {
	Pos         geo.LLA
	VelEastMps  float64
	VelNorthMps float64
	VelUpMps    float64
}

// leg is one piece of the horizontal path: a great-circle leg from one
// point to another at constant speed, or time spent on a racetrack.
type leg struct {
	t0, t1   float64
	from, to geo.LLA // great-circle legs
	distM    float64
	brgDeg   float64 // initial azimuth that lands on to
	orbit    *Orbit  // racetrack legs
	s0       float64
	speedMps float64
}

type knot struct{ tS, altM float64 }

// Speed limits of a timed leg, as fractions of the type's cruise speed
// (unless the type says its maximum).
const (
	minSpeedFactor = 0.55
	maxSpeedFactor = 1.6
	// minCruiseJitter and maxCruiseJitter bound the factor the seed
	// gives an untimed sortie's cruise speed.
	minCruiseJitter = 0.97
	maxCruiseJitter = 1.03
	// sampleEveryS is the step used to cover a path with volumes.
	sampleEveryS = 20.0
)

// Plan expands the scenario for a seed. The seed jitters what is not fixed
// (take-off times by up to 5 minutes, cruise speed by +-3%, the phase of
// orbits); fixed sorties (the designed encounters), and sorties with a
// timed waypoint, fly exactly as written.
func (s *Scenario) Plan(seed uint64) (*Plan, error) {
	bases := map[string]Base{}
	for _, b := range s.Bases {
		bases[b.Name] = b
	}
	types := map[string]AircraftType{}
	for _, t := range s.AircraftTypes {
		types[t.Name] = t
	}
	p := &Plan{Scenario: s, Seed: seed}
	for i, so := range s.Sorties {
		n := 1
		var every float64
		if so.Repeat != nil {
			n, every = so.Repeat.Count, so.Repeat.EveryS
		}
		for k := 0; k < n; k++ {
			id, cs := so.ID, so.Callsign
			if so.Repeat != nil {
				id = fmt.Sprintf("%s-%d", so.ID, k+1)
				cs = fmt.Sprintf("%s%d", so.Callsign, k+1)
			}
			rng := rand.New(rand.NewPCG(seed, hashID(id)))
			f, err := planFlight(so, id, cs, float64(k)*every, types[so.Type], bases, rng)
			if err != nil {
				var fe *fielderr.Error
				if errors.As(err, &fe) {
					return nil, fieldErr(fmt.Sprintf("sorties[%d].%s", i, fe.Field), "%s (flight %s)", fe.Msg, id)
				}
				return nil, fmt.Errorf("sorties[%d] (%s): %w", i, id, err)
			}
			p.Flights = append(p.Flights, f)
			p.EndS = max(p.EndS, f.EndS)
		}
	}
	sort.SliceStable(p.Flights, func(i, j int) bool { return p.Flights[i].StartS < p.Flights[j].StartS })
	return p, nil
}

// Flight returns the flight with the given id, or nil.
func (p *Plan) Flight(id string) *Flight {
	for _, f := range p.Flights {
		if f.ID == id {
			return f
		}
	}
	return nil
}

func hashID(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// topSpeedMps is the fastest a timed leg of the type may be flown: its
// max_mps, or maxSpeedFactor times its cruise.
func (t AircraftType) topSpeedMps() float64 {
	if t.MaxSpeedMps > 0 {
		return t.MaxSpeedMps
	}
	return maxSpeedFactor * t.CruiseMps
}

func planFlight(so Sortie, id, callsign string, offsetS float64, t AircraftType, bases map[string]Base, rng *rand.Rand) (*Flight, error) {
	home := bases[so.Base]
	land := home
	if so.LandAt != "" {
		land = bases[so.LandAt]
	}
	cruise := t.CruiseMps
	start := so.StartS + offsetS
	phase := 0.0
	// A time over a waypoint is a promise: a sortie that makes one is not
	// jittered, or the seed could make it unreachable.
	timed := false
	for _, w := range so.Waypoints {
		timed = timed || w.AtS != nil
	}
	if !so.Fixed && !timed {
		start += rng.Float64() * 300
		cruise *= minCruiseJitter + (maxCruiseJitter-minCruiseJitter)*rng.Float64()
		phase = rng.Float64()
	}
	maxSpeed := t.topSpeedMps()
	f := &Flight{ID: id, Sortie: so.ID, Callsign: callsign, Party: so.Party, Type: so.Type, Class: t.Class, StartS: start, Volume: so.Volume}
	if f.Callsign == "" {
		f.Callsign = id
	}
	pos := geo.LLA{LatDeg: home.LatDeg, LonDeg: home.LonDeg, AltM: home.ElevM}
	now := start
	alt := home.ElevM
	f.alt = []knot{{now, alt}}
	// climbTo adds the knots of a climb or descent toward target that starts
	// at t0 and must be over by t1 (if it cannot, it stops where it got).
	climbTo := func(t0, t1, target float64) {
		if target == alt {
			return
		}
		dt := math.Abs(target-alt) / t.ClimbMps
		if t0+dt > t1 {
			dt = t1 - t0
			target = alt + math.Copysign(t.ClimbMps*dt, target-alt)
		}
		if f.alt[len(f.alt)-1].tS < t0 {
			f.alt = append(f.alt, knot{t0, alt})
		}
		f.alt = append(f.alt, knot{t0 + dt, target})
		alt = target
	}
	for j, w := range so.Waypoints {
		to := geo.LLA{LatDeg: w.LatDeg, LonDeg: w.LonDeg}
		d := geo.GeodesicM(pos, to)
		speed := cruise
		if w.AtS != nil {
			at := *w.AtS + offsetS
			if at <= now {
				return nil, fieldErr(fmt.Sprintf("waypoints[%d].at_s", j), "the aircraft is only there at %.0f s", now)
			}
			speed = d / (at - now)
			if speed < minSpeedFactor*t.CruiseMps || speed > maxSpeed {
				return nil, fieldErr(fmt.Sprintf("waypoints[%d].at_s", j),
					"needs %.0f m/s on the leg, outside what a %s flies (%.0f..%.0f m/s)", speed, t.Name, minSpeedFactor*t.CruiseMps, maxSpeed)
			}
		}
		if d < 1 {
			continue
		}
		end := now + d/speed
		target := so.AltM
		if w.AltM != nil {
			target = *w.AltM
		}
		climbTo(now, end, target)
		f.legs = append(f.legs, greatCircle(now, end, pos, to, d, speed))
		pos, now = to, end
	}
	if o := so.Orbit; o != nil {
		// The seed picks where on the racetrack the aircraft joins it.
		s0 := phase * racetrackLength(*o)
		entry := racetrack(*o, s0)
		d := geo.GeodesicM(pos, entry.Pos)
		end := now + d/cruise
		climbTo(now, end, so.AltM)
		f.legs = append(f.legs, greatCircle(now, end, pos, entry.Pos, d, cruise))
		now = end
		// Leave the orbit in time to fly home within the duration; the
		// distance home is taken from the orbit centre (good to the size
		// of the orbit).
		centre := geo.LLA{LatDeg: o.LatDeg, LonDeg: o.LonDeg}
		home := geo.GeodesicM(centre, geo.LLA{LatDeg: land.LatDeg, LonDeg: land.LonDeg})
		leave := start + so.DurationS - home/cruise
		if leave <= now {
			return nil, fieldErr("duration_s", "too short to reach the orbit and come back")
		}
		climbTo(now, leave, so.AltM)
		f.legs = append(f.legs, leg{t0: now, t1: leave, orbit: o, s0: s0, speedMps: cruise})
		pos = racetrack(*o, s0+cruise*(leave-now)).Pos
		now = leave
	}
	// Home: cruise back, then descend so as to touch down on arrival, at
	// the type's rate: begun before the flight home when that is too
	// short for it (after the last climb or descent ended), and refused
	// when even that is too short. The descent was squeezed into the
	// flight home: down thousands of meters a second after a last
	// waypoint near the base, every report of it refused by the server.
	to := geo.LLA{LatDeg: land.LatDeg, LonDeg: land.LonDeg}
	d := geo.GeodesicM(pos, to)
	end := now + d/cruise
	descentS := math.Abs(alt-land.ElevM) / t.ClimbMps
	topOfDescent := max(end-descentS, f.alt[len(f.alt)-1].tS)
	if end-topOfDescent < descentS*(1-1e-9) {
		field := "orbit"
		if so.Orbit == nil {
			field = fmt.Sprintf("waypoints[%d]", len(so.Waypoints)-1)
		}
		return nil, fieldErr(field, "too near the landing base: the last climb or descent ends %.0f s before landing, and the %.0f m down to the base take %.0f s at climb_mps",
			end-topOfDescent, math.Abs(alt-land.ElevM), descentS)
	}
	f.alt = append(f.alt, knot{topOfDescent, alt}, knot{end, land.ElevM})
	f.legs = append(f.legs, greatCircle(now, end, pos, to, d, cruise))
	f.EndS = end
	if so.DurationS > 0 && so.Orbit == nil && end-start > so.DurationS*1.5 {
		return nil, fieldErr("duration_s", "the route takes %.0f s, far beyond %.0f s", end-start, so.DurationS)
	}
	return f, nil
}

// At returns the aircraft's state at scenario time tS, and false when it is
// not airborne then.
func (f *Flight) At(tS float64) (State, bool) {
	if tS < f.StartS || tS > f.EndS {
		return State{}, false
	}
	i := sort.Search(len(f.legs), func(i int) bool { return f.legs[i].t1 >= tS })
	if i == len(f.legs) {
		i = len(f.legs) - 1
	}
	l := f.legs[i]
	var st State
	if l.orbit != nil {
		st = racetrack(*l.orbit, l.s0+l.speedMps*(tS-l.t0))
		st.VelEastMps *= l.speedMps
		st.VelNorthMps *= l.speedMps
	} else {
		frac := 0.0
		if l.t1 > l.t0 {
			frac = (tS - l.t0) / (l.t1 - l.t0)
		}
		st.Pos = geo.Destination(l.from, l.brgDeg, l.distM*frac)
		// The direction of flight here: toward the end of the leg, or, near
		// the end where that is ill-defined, away from its start.
		dir := l.brgDeg
		switch {
		case l.distM*(1-frac) > 1000:
			dir = bearingDeg(st.Pos, l.to)
		case l.distM*frac > 1000:
			dir = bearingDeg(st.Pos, l.from) + 180
		}
		rad := dir * math.Pi / 180
		st.VelEastMps = l.speedMps * math.Sin(rad)
		st.VelNorthMps = l.speedMps * math.Cos(rad)
	}
	st.Pos.AltM, st.VelUpMps = f.altAt(tS)
	return st, true
}

// greatCircle plans a leg along the geodesic from one point to another. The
// spherical bearing misses the end by up to a few hundred meters on the
// ellipsoid over long legs; two corrections bring it within a meter, so
// that timed waypoints (the designed encounters) are flown through.
func greatCircle(t0, t1 float64, from, to geo.LLA, distM, speedMps float64) leg {
	brg := bearingDeg(from, to)
	for range 2 {
		landed := geo.Destination(from, brg, distM)
		brg += bearingDeg(from, to) - bearingDeg(from, landed)
	}
	return leg{t0: t0, t1: t1, from: from, to: to, distM: distM, brgDeg: brg, speedMps: speedMps}
}

func (f *Flight) altAt(tS float64) (altM, upMps float64) {
	k := f.alt
	i := sort.Search(len(k), func(i int) bool { return k[i].tS > tS })
	switch {
	case i == 0:
		return k[0].altM, 0
	case i == len(k):
		return k[len(k)-1].altM, 0
	}
	a, b := k[i-1], k[i]
	if b.tS == a.tS {
		return b.altM, 0
	}
	rate := (b.altM - a.altM) / (b.tS - a.tS)
	return a.altM + rate*(tS-a.tS), rate
}

func racetrackLength(o Orbit) float64 {
	return 2*o.LengthM + math.Pi*o.WidthM
}

// racetrack returns the position at arc length s along the racetrack and
// the unit direction of flight (in VelEastMps/VelNorthMps, to be scaled by
// the speed). The racetrack is laid out in a flat local plane around its
// centre, which is accurate to well under a meter over an orbit's size.
func racetrack(o Orbit, s float64) State {
	L, r := o.LengthM, o.WidthM/2
	perim := racetrackLength(o)
	s = math.Mod(s, perim)
	if s < 0 {
		s += perim
	}
	var u, v, du, dv float64 // along the axis, to its right
	switch {
	case s < L:
		u, v, du, dv = -L/2+s, -r, 1, 0
	case s < L+math.Pi*r:
		th := (s - L) / r
		u, v, du, dv = L/2+r*math.Sin(th), -r*math.Cos(th), math.Cos(th), math.Sin(th)
	case s < 2*L+math.Pi*r:
		u, v, du, dv = L/2-(s-L-math.Pi*r), r, -1, 0
	default:
		th := (s - 2*L - math.Pi*r) / r
		u, v, du, dv = -L/2-r*math.Sin(th), r*math.Cos(th), -math.Cos(th), -math.Sin(th)
	}
	a := o.AxisDeg * math.Pi / 180
	// u points along the axis bearing, v 90 degrees clockwise from it.
	east := u*math.Sin(a) + v*math.Cos(a)
	north := u*math.Cos(a) - v*math.Sin(a)
	centre := geo.LLA{LatDeg: o.LatDeg, LonDeg: o.LonDeg}
	pos := centre
	if d := math.Hypot(east, north); d > 0 {
		pos = geo.Destination(centre, math.Atan2(east, north)*180/math.Pi, d)
	}
	return State{
		Pos:         pos,
		VelEastMps:  du*math.Sin(a) + dv*math.Cos(a),
		VelNorthMps: du*math.Cos(a) - dv*math.Sin(a),
	}
}

// bearingDeg is the initial great-circle bearing from a to b. The sphere is
// close enough to steer by: the distance flown comes from the ellipsoid.
func bearingDeg(a, b geo.LLA) float64 {
	φ1, φ2 := a.LatDeg*math.Pi/180, b.LatDeg*math.Pi/180
	Δλ := (b.LonDeg - a.LonDeg) * math.Pi / 180
	y := math.Sin(Δλ) * math.Cos(φ2)
	x := math.Cos(φ1)*math.Sin(φ2) - math.Sin(φ1)*math.Cos(φ2)*math.Cos(Δλ)
	return math.Atan2(y, x) * 180 / math.Pi
}
