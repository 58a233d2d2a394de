package service

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// TestNearAlertsAsFullPass: the tracks nearAlerts finds near each alert
// through the engine's index of track positions are exactly those the
// full pass over every live track finds (nearAlertsFullPass, the code
// before the index), in the same order, on random traffic of two
// classes from a few kilometres to a continent across: reports of
// different ages, aircraft moved far (across the index's cubes) or
// changing class by later reports, tracks expired, a fast aircraft
// reported after the expiry, and queries up to two minutes after the
// last report (every track stale, none expired). The alerts are the
// engine's own and others placed on random tracks and at random points,
// raised up to 10 s before the query.
func TestNearAlertsAsFullPass(t *testing.T) {
	compared, found, partial := 0, 0, 0
	for seed := range uint64(6) {
		s, _ := newFaultyService(t)
		rng := rand.New(rand.NewPCG(seed, 17))
		base := time.Now().Add(-5 * time.Second)
		centre := geo.LLA{LatDeg: -60 + rng.Float64()*120, LonDeg: -180 + rng.Float64()*360}
		f := geo.NewFrame(centre)
		report := func(i int, at time.Time, spreadM float64) PositionReport {
			class, speed, alt := rules.ClassUAS, rng.Float64()*50, 30+rng.Float64()*150
			if i%3 == 0 {
				class, speed, alt = rules.ClassManned, rng.Float64()*320, 100+rng.Float64()*12_000
			}
			heading := rng.Float64() * 2 * math.Pi
			p := f.FromENU(geo.ENU{EastM: (rng.Float64()*2 - 1) * spreadM, NorthM: (rng.Float64()*2 - 1) * spreadM})
			return PositionReport{
				Aircraft: fmt.Sprintf("A%03d", i), Callsign: fmt.Sprintf("CS%03d", i), Class: class,
				Time:   at,
				LatDeg: p.LatDeg, LonDeg: p.LonDeg, AltM: alt,
				VelEastMps: speed * math.Sin(heading), VelNorthMps: speed * math.Cos(heading), VelUpMps: (rng.Float64() - 0.5) * 10,
			}
		}
		spreads := []float64{3_000, 30_000, 300_000, 2_000_000}
		post := func(rs []PositionReport) {
			t.Helper()
			byParty := map[string][]PositionReport{}
			for i, r := range rs {
				p := []string{"coalition", "russia"}[i%2]
				byParty[p] = append(byParty[p], r)
			}
			for p, rs := range byParty {
				if err := ingest(s, p, 10*time.Second, rs...); err != nil {
					t.Fatal(err)
				}
			}
		}
		// 400 aircraft reported 0-24 s before base.
		var first []PositionReport
		for i := range 400 {
			first = append(first, report(i, base.Add(-time.Duration(rng.IntN(24_000))*time.Millisecond), spreads[rng.IntN(len(spreads))]))
		}
		post(first)
		// Half of them reported again later, elsewhere, one in five of
		// those in the other class.
		var moved []PositionReport
		for i := range 400 {
			if rng.IntN(2) == 0 {
				continue
			}
			r := report(i, base.Add(time.Duration(rng.IntN(4_000))*time.Millisecond), spreads[rng.IntN(len(spreads))])
			if rng.IntN(5) == 0 {
				if r.Class == rules.ClassUAS {
					r.Class, r.AltM = rules.ClassManned, 1_000+rng.Float64()*9_000
				} else {
					r.Class, r.AltM = rules.ClassUAS, 30+rng.Float64()*150
				}
			}
			moved = append(moved, r)
		}
		post(moved)
		eng := s.tac.eng.Load()
		check := func(now time.Time) {
			t.Helper()
			rv := s.resolverFor(s.Rules())
			live := eng.States()
			var as []*alert.Alert
			for _, a := range eng.Alerts() {
				as = append(as, &a)
			}
			for n := range 12 {
				a := &alert.Alert{ID: fmt.Sprintf("X%d", n), Kind: alert.KindConflict, Time: now.Add(-time.Duration(rng.IntN(10_000)) * time.Millisecond)}
				for range 2 {
					var ac alert.Aircraft
					if n%3 != 2 && len(live) > 0 {
						ac = alert.AircraftOf(&live[rng.IntN(len(live))])
					} else {
						p := f.FromENU(geo.ENU{EastM: (rng.Float64()*2 - 1) * 500_000, NorthM: (rng.Float64()*2 - 1) * 500_000})
						ac = alert.Aircraft{Party: "coalition", Aircraft: "NOWHERE", Class: []string{rules.ClassManned, rules.ClassUAS}[rng.IntN(2)],
							LatDeg: p.LatDeg, LonDeg: p.LonDeg, AltM: rng.Float64() * 10_000, VelEastMps: 100}
					}
					a.Aircraft = append(a.Aircraft, ac)
				}
				as = append(as, a)
			}
			for start := 0; start < len(as); start += resolveGroup {
				group := as[start:min(start+resolveGroup, len(as))]
				got, want := s.nearAlerts(rv, group, now), s.nearAlertsFullPass(rv, group, now)
				for i := range group {
					if !reflect.DeepEqual(states(got[i]), states(want[i])) {
						t.Fatalf("seed %d, alert %s at %v: the index finds %d tracks, the full pass %d", seed, group[i].ID, now, len(got[i]), len(want[i]))
					}
					compared++
					found += len(want[i])
					if len(want[i]) > 0 && len(want[i]) < len(live) {
						partial++
					}
				}
			}
		}
		for _, after := range []time.Duration{0, 10 * time.Second, 2 * time.Minute} {
			check(base.Add(after))
		}
		// Expire the tracks reported more than 30 s before base+10s,
		// then report fast aircraft: the index's bounds are made exact by
		// the expiry and loosened by the reports.
		eng.Expire(base.Add(10 * time.Second))
		var fast []PositionReport
		for i := range 20 {
			r := report(400+i, time.Now().Add(-time.Duration(rng.IntN(3_000))*time.Millisecond), spreads[rng.IntN(len(spreads))])
			r.VelEastMps *= 3
			fast = append(fast, r)
		}
		post(fast)
		for _, after := range []time.Duration{0, 20 * time.Second, time.Minute} {
			check(base.Add(after))
		}
	}
	if partial < compared/4 || found == 0 {
		t.Fatalf("%d alerts compared, %d with some but not all tracks near, %d tracks found: the traffic tests too little", compared, partial, found)
	}
	t.Logf("%d alerts compared, %d with some but not all tracks near, %d tracks found", compared, partial, found)
}

// states is the tracks' values.
func states(ps []*track.State) []track.State {
	out := make([]track.State, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out
}

// nearAlerts is nearAlertsMatter without what each track can matter to:
// for each alert, the live tracks that can matter to an aircraft of it,
// found through the engine's index of track positions.
func (s *Service) nearAlerts(rv *resolver, as []*alert.Alert, now time.Time) [][]*track.State {
	near, _ := s.nearAlertsMatter(rv, as, now)
	return near
}

// nearAlertsFullPass is nearAlerts reading every live track instead of
// the engine's index of track positions, with the same centres and the
// same test of each track: the oracle of the index. One copy of every
// live track (in id order, as the index hands them over) is the picture
// the alerts' own tracks are taken from too.
func (s *Service) nearAlertsFullPass(rv *resolver, as []*alert.Alert, now time.Time) [][]*track.State {
	near, _ := s.nearAlertsBy(rv, as, now, func(keys []track.Key, centresOf func([]*track.State) ([][3]float64, radiusFunc), keep func(*track.State)) {
		live := s.tac.eng.Load().States()
		byKey := make(map[track.Key]*track.State, len(live))
		for i := range live {
			byKey[live[i].Key()] = &live[i]
		}
		own := make([]*track.State, len(keys))
		for i, k := range keys {
			own[i] = byKey[k]
		}
		centresOf(own)
		for i := range live {
			keep(&live[i])
		}
	})
	return near
}
