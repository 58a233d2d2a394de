package sim

import (
	"context"
	"errors"
	"math"
	"sort"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
)

// Resolutions in a run (Options.Resolve). Planners and pilots act on what
// the service tells them, and the flights fly it:
//
//   - Planners: a declaration refused for a conflict (409 missing key or
//     higher priority) is replaced by its first alternative that changes
//     the altitude alone (a flight can fly one piece of its route higher or
//     lower without re-planning the rest; a new time would shift the whole
//     flight), within the aircraft type's ceiling. The flight then flies
//     that piece at the new altitude: the whole offset while it is in the
//     piece (its window less the lead and trail), climbing or descending
//     at its type's rate before and after. When no such alternative
//     declares without conflict, the planner falls back to naming the
//     conflicting volumes in the key, as without resolutions.
//   - Pilots: when an alert about one of their aircraft reaches caution (or
//     any more severe level) with a suggestion, the pilot starts flying it
//     after the scenario's reaction time: a turn at the standard rate to
//     the new track, or a climb or descent at the standard vertical rate to
//     the new altitude, the rest of the flight as planned; a later
//     suggestion of the same alert that asks for more is followed at once.
//     Once the alert has cleared and the closest approach it predicted has
//     passed (and at least a minute later), the aircraft rejoins its plan,
//     blending back over two minutes.
//
// Losses of separation are what really happened: at every report, every
// pair of airborne aircraft of different parties closer than the minima of
// the rules' separation entry for their classes, horizontally and
// vertically at once: the cylinder of a cylinder entry, the well clear
// thresholds of the most severe level (DTHR, ZTHR) of a DO-365 entry
// (Stats LossesOfSeparation counts the pairs, each once).

// Pilots fly a suggestion at the standard rates of their aircraft's class
// that the service's suggestions are checked with: the rules'
// performance limits (rules.Performance), by default a rate-one turn and
// 1,500 fpm for manned aircraft. pilotVerticalMps is the rate of an
// altitude shift of a type that gives no climb rate.
const (
	pilotVerticalMps = 1500 * 0.3048 / 60
	rejoinS          = 120
	holdAfterCPAS    = 60
	defaultReactionS = 10
)

// followLevels are the alert levels at which pilots follow suggestions:
// caution and above in the default rules, corrective and above in DO-365.
var followLevels = map[string]bool{"caution": true, "warning": true, "corrective": true}

// altShift is a piece of a flight flown higher or lower than planned.
type altShift struct {
	fromS, toS float64 // the whole offset within
	climbM     float64
	rateMps    float64
}

// at is the offset and its rate of change at tS: climbM inside, ramped
// linearly at rateMps before and after.
func (a altShift) at(tS float64) (offM, rateMps float64) {
	ramp := math.Abs(a.climbM) / a.rateMps
	switch {
	case tS >= a.fromS && tS <= a.toS:
		return a.climbM, 0
	case tS < a.fromS && tS > a.fromS-ramp:
		return a.climbM * (1 - (a.fromS-tS)/ramp), math.Copysign(a.rateMps, a.climbM)
	case tS > a.toS && tS < a.toS+ramp:
		return a.climbM * (1 - (tS-a.toS)/ramp), -math.Copysign(a.rateMps, a.climbM)
	}
	return 0, 0
}

// manoeuvre is a pilot flying a suggestion, from a state at startS.
type manoeuvre struct {
	alertID string
	kind    string // client manoeuvre kinds: turn, climb, descend
	startS  float64
	start   State
	turnDeg float64 // turn, to the right
	altM    float64 // climb or descend: the altitude to reach
	// turnRateDegPerS and verticalMps are the rates it is flown at.
	turnRateDegPerS, verticalMps float64
	cpaS                         float64 // the closest approach the alert last predicted
	endS                         float64 // when to rejoin the plan; +Inf while the alert is open
}

// heading is the direction of flight in degrees clockwise from north.
func heading(s State) float64 { return math.Atan2(s.VelEastMps, s.VelNorthMps) * 180 / math.Pi }

// apply flies the manoeuvre: planned is the flight's planned state (with
// its altitude shifts) at tS, tS at or after startS.
func (m *manoeuvre) apply(planned State, tS float64) State {
	st := planned
	tau := tS - m.startS
	switch m.kind {
	case client.ManoeuvreTurn:
		v := math.Hypot(m.start.VelEastMps, m.start.VelNorthMps)
		h0 := heading(m.start) * math.Pi / 180
		w := m.turnRateDegPerS * math.Pi / 180
		total := m.turnDeg * math.Pi / 180
		turnT := total / w
		var x, y, h float64
		if tau <= turnT {
			h = h0 + w*tau
			x, y = v/w*(math.Cos(h0)-math.Cos(h)), v/w*(math.Sin(h)-math.Sin(h0))
		} else {
			h = h0 + total
			x, y = v/w*(math.Cos(h0)-math.Cos(h)), v/w*(math.Sin(h)-math.Sin(h0))
			x += v * math.Sin(h) * (tau - turnT)
			y += v * math.Cos(h) * (tau - turnT)
		}
		pos := geo.NewFrame(m.start.Pos).FromENU(geo.ENU{EastM: x, NorthM: y})
		st.Pos.LatDeg, st.Pos.LonDeg = pos.LatDeg, pos.LonDeg
		st.VelEastMps, st.VelNorthMps = v*math.Sin(h), v*math.Cos(h)
	case client.ManoeuvreClimb, client.ManoeuvreDescend:
		dz := m.altM - m.start.Pos.AltM
		t := math.Abs(dz) / m.verticalMps
		if tau < t {
			st.Pos.AltM = m.start.Pos.AltM + math.Copysign(m.verticalMps*tau, dz)
			st.VelUpMps = math.Copysign(m.verticalMps, dz)
		} else {
			st.Pos.AltM, st.VelUpMps = m.altM, 0
		}
	}
	return st
}

// stateAt is what flight f really does at tS: its plan, its altitude
// shifts, and the manoeuvre its pilot flies; false when not airborne.
func (r *Runner) stateAt(f *Flight, tS float64) (State, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stateAtLocked(f, tS)
}

func (r *Runner) stateAtLocked(f *Flight, tS float64) (State, bool) {
	st, ok := f.At(tS)
	if !ok {
		return st, false
	}
	for _, a := range r.shifts[f.ID] {
		off, rate := a.at(tS)
		st.Pos.AltM += off
		st.VelUpMps += rate
	}
	m := r.manoeuvres[f.ID]
	if m == nil || tS < m.startS {
		return st, true
	}
	flown := m.apply(st, tS)
	if tS <= m.endS {
		return flown, true
	}
	// Rejoining: from the manoeuvre back to the plan.
	w := min(1, (tS-m.endS)/rejoinS)
	if w >= 1 {
		delete(r.manoeuvres, f.ID)
		return st, true
	}
	blend := func(a, b float64) float64 { return a + (b-a)*w }
	return State{
		Pos: geo.LLA{
			LatDeg: blend(flown.Pos.LatDeg, st.Pos.LatDeg),
			LonDeg: blend(flown.Pos.LonDeg, st.Pos.LonDeg),
			AltM:   blend(flown.Pos.AltM, st.Pos.AltM),
		},
		VelEastMps: blend(flown.VelEastMps, st.VelEastMps), VelNorthMps: blend(flown.VelNorthMps, st.VelNorthMps),
		VelUpMps: blend(flown.VelUpMps, st.VelUpMps),
	}, true
}

// pilot acts on an alert event of its party: a suggestion for one of its
// aircraft at a level it follows starts (or extends) a manoeuvre; a clear
// ends the manoeuvres flown for the alert.
func (r *Runner) pilot(party, kind string, a *client.Alert) {
	if !r.opt.Resolve {
		return
	}
	now := r.Stats.SimTimeS()
	r.mu.Lock()
	defer r.mu.Unlock()
	if kind == "alert_cleared" {
		for _, m := range r.manoeuvres {
			if m.alertID == a.ID && math.IsInf(m.endS, 1) {
				m.endS = max(now+holdAfterCPAS, m.cpaS+holdAfterCPAS)
			}
		}
		return
	}
	if a.Resolution == nil || !followLevels[a.Level] {
		return
	}
	reaction := r.plan.Scenario.PilotReactionS
	if reaction == 0 {
		reaction = defaultReactionS
	}
	for _, ar := range a.Resolution.Aircraft {
		s := ar.Suggestion
		f := r.plan.Flight(ar.Aircraft)
		if ar.Party != party || f == nil || s == nil || s.Kind == client.ManoeuvreMaintain {
			continue
		}
		cur := r.manoeuvres[f.ID]
		if cur != nil && cur.alertID == a.ID {
			cur.cpaS = now + a.TCPAS
			// The same alert again: follow at once what asks for more in
			// the same sense, from where the aircraft is now.
			st, ok := r.stateAtLocked(f, now)
			if !ok || s.Kind != cur.kind {
				continue
			}
			switch s.Kind {
			case client.ManoeuvreTurn:
				further := math.Mod(heading(st)+s.TurnDeg-(heading(cur.start)+cur.turnDeg)+720, 360)
				if s.TurnDeg > 0 && further > 0 && further < 180 {
					r.manoeuvres[f.ID] = r.flying(f, &manoeuvre{alertID: a.ID, kind: s.Kind, startS: now, start: st, turnDeg: s.TurnDeg, cpaS: cur.cpaS, endS: math.Inf(1)})
				}
			default:
				if math.Abs(s.AltM-cur.start.Pos.AltM) > math.Abs(cur.altM-cur.start.Pos.AltM) {
					r.manoeuvres[f.ID] = r.flying(f, &manoeuvre{alertID: a.ID, kind: s.Kind, startS: now, start: st, altM: s.AltM, cpaS: cur.cpaS, endS: math.Inf(1)})
				}
			}
			continue
		}
		startS := now + reaction
		st, ok := r.stateAtLocked(f, startS)
		if !ok {
			continue
		}
		r.manoeuvres[f.ID] = r.flying(f, &manoeuvre{alertID: a.ID, kind: s.Kind, startS: startS, start: st, turnDeg: s.TurnDeg, altM: s.AltM, cpaS: now + a.TCPAS, endS: math.Inf(1)})
		r.Stats.Manoeuvres.Add(1)
	}
}

// flying gives m the rates the pilot of f flies it at: those of its
// class in the server's rules (the defaults of the class when they could
// not be read).
func (r *Runner) flying(f *Flight, m *manoeuvre) *manoeuvre {
	p := r.rules.PerformanceFor(classOf(f))
	m.turnRateDegPerS, m.verticalMps = p.TurnRateDegPerS, p.VerticalRateMps
	return m
}

// createResolving declares one volume of a flight: on a refusal for a
// conflict it takes the first alternative that changes the altitude alone
// and that the aircraft can fly, and on success records the altitude
// shift of that piece of the flight; without such an alternative it names
// the conflicting volumes in the key as a run without resolutions does.
func (r *Runner) createResolving(ctx context.Context, c *client.Client, in client.VolumeInput, f *Flight, v VolumeDecl) (client.Volume, error) {
	if !r.opt.Resolve {
		return r.createWithKey(ctx, c, in)
	}
	vol, err := c.CreateVolume(ctx, in)
	var p *client.Problem
	if err == nil || !errors.As(err, &p) || p.Status != 409 {
		return vol, err
	}
	r.Stats.StrategicConflicts.Add(1)
	ceiling := math.Inf(1)
	if t, ok := r.types[f.Type]; ok && t.CeilingM > 0 {
		ceiling = t.CeilingM
	}
	altMargin := orDefault(f.Volume.AltMarginM, defaultAltMarginM)
	climb := 0.0
	for attempt := 0; attempt < 4 && p != nil; attempt++ {
		var next *client.Alternative
		for i := range p.Alternatives {
			a := &p.Alternatives[i]
			// The band's margin above what is flown stays within the
			// type's ceiling, the band's bottom above the ground.
			if a.Change == "altitude" && a.AltUpperM-altMargin <= ceiling && a.AltLowerM >= 0 {
				next = a
				break
			}
		}
		if next == nil {
			break
		}
		alt := next.VolumeInput
		alt.Key = []client.KeyEntry{}
		climb += next.ClimbM
		vol, err = c.CreateVolume(ctx, alt)
		if err == nil {
			r.Stats.StrategicResolved.Add(1)
			lead := orDefault(f.Volume.LeadS, defaultLeadS)
			trail := orDefault(f.Volume.TrailS, defaultTrailS)
			rate := pilotVerticalMps
			if t, ok := r.types[f.Type]; ok && t.ClimbMps > 0 {
				rate = t.ClimbMps
			}
			r.mu.Lock()
			r.shifts[f.ID] = append(r.shifts[f.ID], altShift{fromS: v.FromS + lead, toS: v.ToS - trail, climbM: climb, rateMps: rate})
			r.mu.Unlock()
			return vol, nil
		}
		p = nil
		if !errors.As(err, &p) || p.Status != 409 {
			return vol, err
		}
	}
	return r.createWithKey(ctx, c, in)
}

// minimaOf is the horizontal and vertical minima of each pair of classes
// of the rules (both orders), as losses of separation are counted.
func minimaOf(rl rules.Rules) map[[2]string][2]float64 {
	rl.FillTable()
	out := map[[2]string][2]float64{}
	for i := range rl.Separation {
		s := &rl.Separation[i]
		if len(s.Classes) != 2 || len(s.Levels) == 0 {
			continue
		}
		d := s.LevelDetector(len(s.Levels) - 1)
		m := [2]float64{rules.Param(d.HorizontalM), rules.Param(d.VerticalM)}
		if d.Kind == rules.DetectorDO365WCV {
			m = [2]float64{rules.Param(d.DTHRM), rules.Param(d.ZTHRM)}
		}
		out[[2]string{s.Classes[0], s.Classes[1]}] = m
		out[[2]string{s.Classes[1], s.Classes[0]}] = m
	}
	return out
}

// classOf is a flight's class as the rules name it.
func classOf(f *Flight) string {
	if f.Class == "" {
		return rules.ClassManned
	}
	return f.Class
}

// separationWatch counts the pairs of airborne aircraft of different
// parties that are closer than the separation minima at tS.
func (r *Runner) separationWatch(states map[string]State) {
	if r.minima == nil {
		return
	}
	ids := make([]string, 0, len(states))
	for id := range states {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for i, a := range ids {
		fa := r.plan.Flight(a)
		sa := states[a]
		for _, b := range ids[i+1:] {
			fb := r.plan.Flight(b)
			if fa.Party == fb.Party {
				continue
			}
			sb := states[b]
			m, ok := r.minima[[2]string{classOf(fa), classOf(fb)}]
			if !ok || math.Abs(sa.Pos.AltM-sb.Pos.AltM) >= m[1] || geo.GreatCircleM(sa.Pos, sb.Pos) >= m[0] {
				continue
			}
			key := a + " x " + b
			r.mu.Lock()
			if !r.losses[key] {
				r.losses[key] = true
				r.Stats.LossesOfSeparation.Add(1)
				r.logf("sim: loss of separation %s (%s x %s): %.1f NM, %.0f ft", key, fa.Callsign, fb.Callsign,
					geo.MToNM(geo.GreatCircleM(sa.Pos, sb.Pos)), geo.MToFeet(math.Abs(sa.Pos.AltM-sb.Pos.AltM)))
			}
			r.mu.Unlock()
		}
	}
}
