package feed

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/fielderr"
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
	// DefaultMaxAircraft is far more aircraft than any airspace holds
	// (about 30 MB of state).
	DefaultMaxAircraft = 100_000
)

// Assembler turns a stream of messages, each about one part of an
// aircraft's state, into complete position reports, per aircraft. It is
// fed Updates (Add converts a BaseStation message into one; the ASTERIX
// feed maps each record to one).
//
// What each BaseStation message contributes: type 1 the callsign; type 3
// position (and altitude); type 4 ground speed, track and vertical rate;
// types 2, 5, 6, 7 altitude; type 8 nothing but liveness.
//
// When a report is emitted: on every update with a position, if the
// aircraft is not flagged on the ground (ground traffic is not deconflicted),
// its altitude is known (in the update, or from another at most
// MaxAltitudeAge older or newer: messages may come out of the order of
// their times), and a velocity is known:
//   - the latest velocity, if it is at most MaxVelocityAge older or newer than the
//     position; otherwise
//   - a velocity derived from the previous position, if that one is at most
//     MaxDeriveGap older (and not older than a stale velocity would be);
//     otherwise no report: an aircraft with no velocity cannot be predicted,
//     and pretending it hovers would hide conflicts;
//
// and the server would take the report (CheckReport): one beyond its
// limits is not made but counted by the field named (BeyondLimitsStatus).
//
// Times are whatever the caller passes (the message's own time for a
// recorded file, the time of receipt for a live source); only differences
// between them are used. Units are converted by the caller, at the edge of
// its format: an Update is in meters and m/s.
type Assembler struct {
	MaxVelocityAge time.Duration
	MaxAltitudeAge time.Duration
	MaxDeriveGap   time.Duration
	// MaxAircraft bounds the aircraft kept (DefaultMaxAircraft when 0): a
	// message of a new aircraft beyond it is refused, counted in Full.
	MaxAircraft int
	// Full counts the messages of new aircraft refused for MaxAircraft.
	// Safe to read while the assembler runs.
	Full atomic.Int64
	// beyond counts the reports assembled but not made, the server
	// refusing them (CheckReport), by the field it would name.
	beyond fieldCounts

	aircraft map[string]*aircraftState
	adds     int
}

// Update is one message's contribution to an aircraft's state, in SI
// units. The Has flags say which parts it carries.
type Update struct {
	Aircraft string
	Callsign string

	HasAlt bool
	AltM   float64
	// AltSource says what AltM is ("geometric" or "barometric"), when the
	// format tells.
	AltSource string

	HasVelocity             bool
	VelEastMps, VelNorthMps float64
	HasVerticalRate         bool
	VelUpMps                float64

	HasPosition    bool
	LatDeg, LonDeg float64

	OnGround bool
}

type aircraftState struct {
	callsign string
	lastSeen time.Time

	altM      float64
	altSource string
	altAt     time.Time

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
		aircraft:       map[string]*aircraftState{},
	}
}

// Add folds one BaseStation message received at time at into its
// aircraft's state and returns a report when the message completes one (see
// the type's doc). Feet, knots and feet per minute become meters and m/s
// here.
func (a *Assembler) Add(m SBSMessage, at time.Time) (client.Report, bool) {
	u := Update{Aircraft: m.ICAO, Callsign: m.Callsign, OnGround: m.OnGround,
		HasPosition: m.HasPosition && m.Type == 3, LatDeg: m.LatDeg, LonDeg: m.LonDeg}
	if m.HasAlt {
		u.HasAlt, u.AltM = true, geo.FeetToM(m.AltFt)
	}
	if m.HasVelocity {
		gs := geo.KnotsToMps(m.GroundSpeedKt)
		rad := m.TrackDeg * math.Pi / 180
		u.HasVelocity, u.VelEastMps, u.VelNorthMps = true, gs*math.Sin(rad), gs*math.Cos(rad)
		if m.HasVerticalRate {
			u.HasVerticalRate, u.VelUpMps = true, geo.FeetPerMinToMps(m.VerticalRateFpm)
		}
	}
	return a.Update(u, at)
}

// Update folds u, heard at time at, into its aircraft's state and returns a
// report when it completes one (see the type's doc).
func (a *Assembler) Update(u Update, at time.Time) (client.Report, bool) {
	a.adds++
	if a.adds%4096 == 0 {
		a.forget(at)
	}
	s := a.aircraft[u.Aircraft]
	if s == nil {
		maxAircraft := a.MaxAircraft
		if maxAircraft <= 0 {
			maxAircraft = DefaultMaxAircraft
		}
		if len(a.aircraft) >= maxAircraft {
			// Those kept are still assembled; room is made as they are
			// forgotten.
			a.Full.Add(1)
			return client.Report{}, false
		}
		s = &aircraftState{}
		a.aircraft[u.Aircraft] = s
	}
	s.lastSeen = at
	if u.Callsign != "" {
		s.callsign = u.Callsign
	}
	if u.HasAlt {
		s.altM, s.altSource, s.altAt = u.AltM, u.AltSource, at
	}
	if u.HasVelocity {
		s.velEastMps, s.velNorthMps, s.velUpMps = u.VelEastMps, u.VelNorthMps, 0
		if u.HasVerticalRate {
			s.velUpMps = u.VelUpMps
		}
		s.velAt = at
	}
	if !u.HasPosition {
		return client.Report{}, false
	}
	prevLat, prevLon, prevAlt, prevAt := s.latDeg, s.lonDeg, s.posAltM, s.posAt
	altKnown := !s.altAt.IsZero() && at.Sub(s.altAt).Abs() <= a.MaxAltitudeAge
	s.latDeg, s.lonDeg = u.LatDeg, u.LonDeg
	if altKnown {
		s.posAltM, s.posAt = s.altM, at
	} else {
		s.posAt = time.Time{} // a position without altitude cannot seed a derived velocity
	}
	if u.OnGround || !altKnown {
		return client.Report{}, false
	}
	r := client.Report{
		Aircraft:  u.Aircraft,
		Callsign:  s.callsign,
		Time:      at,
		LatDeg:    u.LatDeg,
		LonDeg:    u.LonDeg,
		AltM:      s.altM,
		AltSource: s.altSource,
	}
	switch {
	case !s.velAt.IsZero() && at.Sub(s.velAt) <= a.MaxVelocityAge && at.Sub(s.velAt) >= -a.MaxVelocityAge:
		r.VelEastMps, r.VelNorthMps, r.VelUpMps = s.velEastMps, s.velNorthMps, s.velUpMps
	case !prevAt.IsZero() && at.After(prevAt) && at.Sub(prevAt) <= a.MaxDeriveGap:
		// The displacement in the local frame of the earlier position.
		dt := at.Sub(prevAt).Seconds()
		from := geo.LLA{LatDeg: prevLat, LonDeg: prevLon, AltM: prevAlt}
		d := geo.NewFrame(from).ToENU(geo.LLA{LatDeg: u.LatDeg, LonDeg: u.LonDeg, AltM: s.altM})
		r.VelEastMps, r.VelNorthMps = d.EastM/dt, d.NorthM/dt
		r.VelUpMps = (s.altM - prevAlt) / dt
	default:
		return client.Report{}, false
	}
	// Items that reach beyond what the server takes (an ASTERIX altitude
	// of 62 km, a velocity derived from a position decoded wrong): sent,
	// the report would be refused, counted undeliverable with no reason.
	if err := CheckReport(r); err != nil {
		field := "report"
		var fe *fielderr.Error
		if errors.As(err, &fe) {
			field = fe.Field
		}
		a.beyond.add(field)
		return client.Report{}, false
	}
	return r, true
}

// BeyondLimitsStatus is the part of a status line that counts the
// reports not made because the server refuses them, one
// beyond_limits_<field>=N per field it names; "" when there were none.
// Safe to call while the assembler runs.
func (a *Assembler) BeyondLimitsStatus() string { return a.beyond.status("beyond_limits_") }

// fieldCounts counts by field name. Safe for concurrent use.
type fieldCounts struct {
	mu      sync.Mutex
	byField map[string]int64
}

func (c *fieldCounts) add(field string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byField == nil {
		c.byField = map[string]int64{}
	}
	c.byField[field]++
}

// status is " <prefix><field>=N" for each field, in the order of their
// names.
func (c *fieldCounts) status(prefix string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, f := range slices.Sorted(maps.Keys(c.byField)) {
		fmt.Fprintf(&b, " %s%s=%d", prefix, f, c.byField[f])
	}
	return b.String()
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
