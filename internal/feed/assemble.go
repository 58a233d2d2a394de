package feed

import (
	"math"
	"time"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/geo"
)

// Default freshness limits of the Assembler. ADS-B transponders send
// airborne position and velocity about twice a second, so a few seconds
// already means several messages were lost.
const (
	DefaultMaxVelocityAge = 10 * time.Second
	DefaultMaxAltitudeAge = 10 * time.Second
	// DefaultMaxDeriveGap bounds the gap between two positions from which a
	// velocity may be derived when no fresh velocity message exists.
	DefaultMaxDeriveGap = 30 * time.Second
	// forgetAfter drops an aircraft's state when nothing was heard from it.
	forgetAfter = 5 * time.Minute
)

// Assembler turns the stream of BaseStation messages, each about one part of
// an aircraft's state, into complete position reports, per ICAO address.
//
// What each message contributes: type 1 the callsign; type 3 position (and
// altitude); type 4 ground speed, track and vertical rate; types 2, 5, 6, 7
// altitude; type 8 nothing but liveness.
//
// When a report is emitted: on every type 3 message with a position, if the
// aircraft is not flagged on the ground (ground traffic is not deconflicted),
// its altitude is known (in the message, or from another message at most
// MaxAltitudeAge older), and a velocity is known:
//   - the latest type 4 velocity, if it is at most MaxVelocityAge older than
//     the position; otherwise
//   - a velocity derived from the previous position, if that one is at most
//     MaxDeriveGap older (and not older than a stale velocity would be);
//     otherwise no report: an aircraft with no velocity cannot be predicted,
//     and pretending it hovers would hide conflicts.
//
// Times are whatever the caller passes to Add (the message's own time for a
// recorded file, the time of receipt for a live source); only differences
// between them are used. Units are converted here and nowhere else: feet to
// meters, knots to m/s, feet per minute to m/s, with the converters of geo.
type Assembler struct {
	MaxVelocityAge time.Duration
	MaxAltitudeAge time.Duration
	MaxDeriveGap   time.Duration

	aircraft map[string]*sbsState
	adds     int
}

type sbsState struct {
	callsign string
	lastSeen time.Time

	altM  float64
	altAt time.Time

	velEastMps, velNorthMps, velUpMps float64
	velAt                             time.Time

	latDeg, lonDeg float64
	posAltM        float64
	posAt          time.Time
}

// NewAssembler returns an assembler with the default freshness limits.
func NewAssembler() *Assembler {
	return &Assembler{
		MaxVelocityAge: DefaultMaxVelocityAge,
		MaxAltitudeAge: DefaultMaxAltitudeAge,
		MaxDeriveGap:   DefaultMaxDeriveGap,
		aircraft:       map[string]*sbsState{},
	}
}

// Add folds one message received at time at into its aircraft's state and
// returns a report when the message completes one (see the type's doc).
func (a *Assembler) Add(m SBSMessage, at time.Time) (client.Report, bool) {
	a.adds++
	if a.adds%4096 == 0 {
		a.forget(at)
	}
	s := a.aircraft[m.ICAO]
	if s == nil {
		s = &sbsState{}
		a.aircraft[m.ICAO] = s
	}
	s.lastSeen = at
	if m.Callsign != "" {
		s.callsign = m.Callsign
	}
	if m.HasAlt {
		s.altM = geo.FeetToM(m.AltFt)
		s.altAt = at
	}
	if m.HasVelocity {
		gs := geo.KnotsToMps(m.GroundSpeedKt)
		rad := m.TrackDeg * math.Pi / 180
		s.velEastMps = gs * math.Sin(rad)
		s.velNorthMps = gs * math.Cos(rad)
		s.velUpMps = 0
		if m.HasVerticalRate {
			s.velUpMps = geo.FeetPerMinToMps(m.VerticalRateFpm)
		}
		s.velAt = at
	}
	if !m.HasPosition || m.Type != 3 {
		return client.Report{}, false
	}
	prevLat, prevLon, prevAlt, prevAt := s.latDeg, s.lonDeg, s.posAltM, s.posAt
	altKnown := !s.altAt.IsZero() && at.Sub(s.altAt) <= a.MaxAltitudeAge
	s.latDeg, s.lonDeg = m.LatDeg, m.LonDeg
	if altKnown {
		s.posAltM, s.posAt = s.altM, at
	} else {
		s.posAt = time.Time{} // a position without altitude cannot seed a derived velocity
	}
	if m.OnGround || !altKnown {
		return client.Report{}, false
	}
	r := client.Report{
		Aircraft: m.ICAO,
		Callsign: s.callsign,
		Time:     at,
		LatDeg:   m.LatDeg,
		LonDeg:   m.LonDeg,
		AltM:     s.altM,
	}
	switch {
	case !s.velAt.IsZero() && at.Sub(s.velAt) <= a.MaxVelocityAge && at.Sub(s.velAt) >= -a.MaxVelocityAge:
		r.VelEastMps, r.VelNorthMps, r.VelUpMps = s.velEastMps, s.velNorthMps, s.velUpMps
	case !prevAt.IsZero() && at.After(prevAt) && at.Sub(prevAt) <= a.MaxDeriveGap:
		// The displacement in the local frame of the earlier position.
		dt := at.Sub(prevAt).Seconds()
		from := geo.LLA{LatDeg: prevLat, LonDeg: prevLon, AltM: prevAlt}
		d := geo.NewFrame(from).ToENU(geo.LLA{LatDeg: m.LatDeg, LonDeg: m.LonDeg, AltM: s.altM})
		r.VelEastMps, r.VelNorthMps = d.EastM/dt, d.NorthM/dt
		r.VelUpMps = (s.altM - prevAlt) / dt
	default:
		return client.Report{}, false
	}
	return r, true
}

// Aircraft returns how many aircraft the assembler currently tracks.
func (a *Assembler) Aircraft() int { return len(a.aircraft) }

func (a *Assembler) forget(now time.Time) {
	for id, s := range a.aircraft {
		if now.Sub(s.lastSeen) > forgetAfter {
			delete(a.aircraft, id)
		}
	}
}
