package detect

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
	"pgregory.net/rapid"
)

// Select returns a copy of the live tracks for which keep returns true,
// in id order: the scan of every track SelectNear's index stands in for,
// as the oracle of its tests.
func (e *Engine) Select(keep func(*track.State) bool) []track.State {
	var out []track.State
	e.tracks.Each(func(_ track.ID, s *track.State) {
		if keep(s) {
			out = append(out, *s)
		}
	})
	return out
}

// TestSelectNearAsSelect: SelectNear returns exactly what Select returns
// with the same keep, when keep accepts only tracks within the radius
// the query gives for their own speed and age: the index misses no
// track, whatever the reports did before (aircraft moved across cubes,
// changing class, reported out of order, expired, reported again) and
// lists no track that is gone, and
// however stale the tracks are at the query. The cubes are small
// (100 m to 5 km, drawn for each class apart, so that a track changing
// class moves to cubes of another edge) against the traffic (10 km
// across) and the radii, so that a radius short by a track's speed or
// age would miss tracks.
func TestSelectNearAsSelect(t *testing.T) {
	var queries, partial int
	rapid.Check(t, func(t *rapid.T) {
		r := rules.Default()
		e := NewEngine(r, Grid{}, nil)
		cells := make([]float64, len(e.params.Table.classes))
		for c := range cells {
			cells[c] = rapid.SampledFrom([]float64{100, 1_000, 5_000}).Draw(t, "cell")
		}
		e.near = newNearIndex(cells)
		f := geo.NewFrame(geo.LLA{LatDeg: rapid.Float64Range(-80, 80).Draw(t, "lat"), LonDeg: rapid.Float64Range(-180, 180).Draw(t, "lon")})
		point := func(label string) geo.LLA {
			return f.FromENU(geo.ENU{
				EastM:  rapid.Float64Range(-5_000, 5_000).Draw(t, label+" east"),
				NorthM: rapid.Float64Range(-5_000, 5_000).Draw(t, label+" north"),
				UpM:    rapid.Float64Range(0, 3_000).Draw(t, label+" up"),
			})
		}
		n := rapid.IntRange(1, 30).Draw(t, "aircraft")
		now := t0
		last := make([]time.Time, n)
		report := func(i int, at time.Time) {
			speed := rapid.SampledFrom([]float64{0, 5, 50, 250, 900}).Draw(t, "speed")
			heading := rapid.Float64Range(0, 2*math.Pi).Draw(t, "heading")
			rep := track.Report{Party: []string{"blue", "red"}[i%2], Aircraft: fmt.Sprint(i), Class: drawClass(t),
				Pos: point("report"), Time: at,
				VelEastMps: speed * math.Sin(heading), VelNorthMps: speed * math.Cos(heading), VelUpMps: rapid.Float64Range(-20, 20).Draw(t, "vs")}
			if _, err := e.Ingest(nil, []track.Report{rep}, now); err != nil {
				t.Fatal(err)
			}
			if at.After(last[i]) {
				last[i] = at
			}
		}
		for i := range n {
			report(i, now.Add(-time.Duration(rapid.IntRange(0, 20).Draw(t, "age"))*time.Second))
		}
		steps := rapid.IntRange(1, 30).Draw(t, "steps")
		for range steps {
			switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
			case op == 0:
				now = now.Add(time.Duration(rapid.IntRange(0, 40).Draw(t, "wait")) * time.Second)
				e.Expire(nil, now)
			case op <= 3:
				// A query, up to two minutes after the latest report.
				at := now.Add(time.Duration(rapid.IntRange(-5, 120).Draw(t, "query after")) * time.Second)
				m := rapid.IntRange(1, 4).Draw(t, "centres")
				centres := make([][3]float64, m)
				reachM, perS := make([]float64, m), make([]float64, m)
				for i := range centres {
					p := geo.ToECEF(point("centre"))
					centres[i] = [3]float64{p.XM, p.YM, p.ZM}
					reachM[i] = rapid.Float64Range(0, 3_000).Draw(t, "reach")
					perS[i] = rapid.Float64Range(0, 20).Draw(t, "per")
				}
				skip := rules.ClassUAS
				if rapid.Bool().Draw(t, "skip manned") {
					skip = rules.ClassManned
				}
				radiusM := func(i int, class string, maxSpeedMps, maxStaleS float64) float64 {
					if class == skip {
						return -1
					}
					return reachM[i] + maxSpeedMps*(perS[i]+maxStaleS)
				}
				keep := func(s *track.State) bool {
					if s.Class == skip {
						return false
					}
					staleS := max(0, at.Sub(s.Time).Seconds())
					for i, c := range centres {
						r := reachM[i] + speedOf(s)*(perS[i]+staleS)
						dx, dy, dz := s.ECEF[0]-c[0], s.ECEF[1]-c[1], s.ECEF[2]-c[2]
						if dx*dx+dy*dy+dz*dz <= r*r {
							return true
						}
					}
					return false
				}
				got, want := e.SelectNear(centres, at, radiusM, keep), e.Select(keep)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("SelectNear found %d tracks, Select %d", len(got), len(want))
				}
				queries++
				if len(want) > 0 && len(want) < e.NumTracks() {
					partial++
				}
			default:
				i := rapid.IntRange(0, n-1).Draw(t, "who")
				// Mostly newer, sometimes a duplicate or an older report.
				at := last[i].Add(time.Duration(rapid.IntRange(-3, 8).Draw(t, "dt")) * time.Second)
				if at.After(now) {
					now = at
				}
				report(i, at)
			}
			listed := 0
			for _, c := range e.near.count {
				listed += c
			}
			if listed != e.NumTracks() {
				t.Fatalf("the index lists %d tracks of %d live", listed, e.NumTracks())
			}
		}
	})
	if partial < queries/5 {
		t.Fatalf("%d queries, %d with some but not all tracks near: the property was hardly exercised", queries, partial)
	}
	t.Logf("%d queries, %d with some but not all tracks near", queries, partial)
}

// TestSelectNearBoundlessRadius: a radius that is infinite, not a number
// or beyond the earth reads every track of the class (an infinite one
// once overflowed the cube numbers and read one cube).
func TestSelectNearBoundlessRadius(t *testing.T) {
	e := NewEngine(rules.Default(), Grid{}, nil)
	var reps []track.Report
	for i, lat := range []float64{-60, -10, 0, 35, 70} {
		reps = append(reps, track.Report{Party: "p", Aircraft: fmt.Sprint(i), Class: rules.ClassManned, Time: t0,
			Pos: geo.LLA{LatDeg: lat, LonDeg: float64(i)*70 - 140, AltM: 3000}})
	}
	if _, err := e.Ingest(nil, reps, t0); err != nil {
		t.Fatal(err)
	}
	centre := [][3]float64{e.States()[0].ECEF}
	for _, r := range []float64{math.Inf(1), math.NaN(), 1e12} {
		got := e.SelectNear(centre, t0, func(int, string, float64, float64) float64 { return r }, func(*track.State) bool { return true })
		if len(got) != len(reps) {
			t.Fatalf("radius %g: %d tracks of %d", r, len(got), len(reps))
		}
	}
}

// TestNearCellsFollowTheClasses: each class gets cubes about the reach
// of one of its aircraft for the others of its class over their
// lookahead, within the bounds: with the default rules a drone's (50 m/s
// over 60 s) 6 km, an airliner's the largest edge; a glider's (40 m/s
// over 90 s) 7.2 km, and a balloon's (2 m/s) the smallest.
func TestNearCellsFollowTheClasses(t *testing.T) {
	r := rules.Default()
	e := NewEngine(r, Grid{}, nil)
	want := map[string]float64{rules.ClassManned: nearCellM, rules.ClassUAS: 2 * 50 * 60}
	for c, class := range e.params.Table.classes {
		if got := e.near.cellM[c]; got != want[class] {
			t.Errorf("default rules, %s: cubes of %g m, want %g", class, got, want[class])
		}
	}

	r.Classes = append(slices.Clone(r.Classes), "glider", "balloon")
	for _, pair := range [][2]string{{"glider", "glider"}, {"balloon", "balloon"}, {"glider", "balloon"},
		{"glider", rules.ClassManned}, {"glider", rules.ClassUAS}, {"balloon", rules.ClassManned}, {"balloon", rules.ClassUAS}} {
		lookS := 120.0
		if pair[0] == pair[1] && pair[0] == "glider" {
			lookS = 90
		}
		r.Separation = append(r.Separation, rules.Separation{Classes: pair[:], Detector: rules.Cylinder(1000, 100), LookaheadS: lookS,
			Levels: []rules.SeparationLevel{{Name: "advisory", MaxTimeToLoSS: 60}}})
	}
	glider, balloon := rules.DefaultPerformance(rules.ClassUAS), rules.DefaultPerformance(rules.ClassUAS)
	glider.Class, glider.MaxGroundSpeedMps = "glider", 40
	balloon.Class, balloon.MaxGroundSpeedMps = "balloon", 2
	r.Performance = append(r.Performance, glider, balloon)
	tbl, err := NewTable(r)
	if err != nil {
		t.Fatal(err)
	}
	cells := nearCellsM(r, tbl)
	want["glider"], want["balloon"] = 2*40*90, nearMinCellM
	for c, class := range tbl.classes {
		if cells[c] != want[class] {
			t.Errorf("%s: cubes of %g m, want %g", class, cells[c], want[class])
		}
	}
}
