package detect

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// offset places a point eastM/northM from center on its tangent plane, at
// altitude altM.
func offset(center geo.LLA, eastM, northM, altM float64) geo.LLA {
	p := geo.NewFrame(center).FromENU(geo.ENU{EastM: eastM, NorthM: northM})
	p.AltM = altM
	return p
}

// picture draws a random traffic layout: where it is (anywhere, near a pole,
// across the antimeridian) and how spread out (clustered so that pairs
// conflict, or uniform over a wide area).
type picture struct {
	center  geo.LLA
	spreadM float64
	altLoM  float64
	altHiM  float64
}

func drawPicture(t *rapid.T) picture {
	var c geo.LLA
	switch rapid.IntRange(0, 3).Draw(t, "where") {
	case 0:
		c = geo.LLA{LatDeg: rapid.Float64Range(-80, 80).Draw(t, "lat"), LonDeg: rapid.Float64Range(-180, 180).Draw(t, "lon")}
	case 1:
		c = geo.LLA{LatDeg: rapid.SampledFrom([]float64{-1, 1}).Draw(t, "pole") * rapid.Float64Range(88, 90).Draw(t, "lat"), LonDeg: rapid.Float64Range(-180, 180).Draw(t, "lon")}
	case 2:
		c = geo.LLA{LatDeg: rapid.Float64Range(-60, 60).Draw(t, "lat"), LonDeg: rapid.SampledFrom([]float64{-179.95, 179.95, 180}).Draw(t, "lon")}
	case 3:
		c = geo.LLA{LatDeg: rapid.Float64Range(-30, 30).Draw(t, "lat"), LonDeg: rapid.Float64Range(-30, 30).Draw(t, "lon")}
	}
	p := picture{center: c}
	if rapid.Bool().Draw(t, "clustered") {
		p.spreadM = rapid.Float64Range(1_000, 30_000).Draw(t, "spread")
		p.altLoM = rapid.Float64Range(0, 12_000).Draw(t, "alt")
		p.altHiM = p.altLoM + rapid.Float64Range(0, 1_500).Draw(t, "band")
	} else {
		p.spreadM = rapid.Float64Range(50_000, 2_000_000).Draw(t, "spread")
		p.altLoM, p.altHiM = 0, 20_000
	}
	return p
}

func (p picture) drawReport(t *rapid.T, party, id string, at time.Time) track.Report {
	e := rapid.Float64Range(-p.spreadM, p.spreadM).Draw(t, "east")
	n := rapid.Float64Range(-p.spreadM, p.spreadM).Draw(t, "north")
	alt := rapid.Float64Range(p.altLoM, p.altHiM).Draw(t, "alt")
	// Up to Mach 2 in any direction, vertical rates of a fighter.
	speed := rapid.Float64Range(0, 700).Draw(t, "speed")
	hdg := rapid.Float64Range(0, 2*math.Pi).Draw(t, "heading")
	return track.Report{
		Party: party, Aircraft: id, Callsign: "C" + id,
		Pos:        offset(p.center, e, n, alt),
		VelEastMps: speed * math.Sin(hdg), VelNorthMps: speed * math.Cos(hdg),
		VelUpMps: rapid.Float64Range(-60, 60).Draw(t, "vs"),
		Time:     at,
	}
}

func checkSame(t *rapid.T, step string, e *Engine) {
	inc := e.Conflicts()
	brute := BruteForce(e.States(), e.Params())
	if same, diff := SameConflicts(inc, brute); !same {
		t.Fatalf("%s: incremental (%d) vs brute force (%d): %s", step, len(inc), len(brute), diff)
	}
	if same, diff := SameConflicts(e.FullCycle(), brute); !same {
		t.Fatalf("%s: full cycle vs brute force (%d): %s", step, len(brute), diff)
	}
}

// TestIncrementalMatchesBruteForce is the exactness property: after every
// report and every expiry, the event-driven set, the full cycle and the
// brute force hold the same pairs with the same numbers.
func TestIncrementalMatchesBruteForce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := rules.Default()
		r.SamePartyAlerts = rapid.Bool().Draw(t, "same_party")
		g := Grid{
			CellM:  rapid.SampledFrom([]float64{10_000, 40_000, DefaultCellM, 1_000_000}).Draw(t, "cell"),
			SliceS: rapid.SampledFrom([]float64{7, DefaultSliceS, 400}).Draw(t, "slice"),
		}
		e := NewEngine(r, g, nil)
		pic := drawPicture(t)
		n := rapid.IntRange(2, 24).Draw(t, "aircraft")
		parties := []string{"blue", "red", "green"}
		now := t0
		last := make([]time.Time, n)
		for i := range n {
			rep := pic.drawReport(t, parties[i%len(parties)], fmt.Sprint(i), now)
			if _, err := e.Ingest(nil, []track.Report{rep}, now); err != nil {
				t.Fatal(err)
			}
			last[i] = now
		}
		checkSame(t, "initial", e)
		steps := rapid.IntRange(1, 40).Draw(t, "steps")
		for s := range steps {
			switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
			case op == 0:
				now = now.Add(time.Duration(rapid.IntRange(0, 40).Draw(t, "wait")) * time.Second)
				e.Expire(nil, now)
			default:
				i := rapid.IntRange(0, n-1).Draw(t, "who")
				// Mostly newer, sometimes a duplicate or an older report.
				at := last[i].Add(time.Duration(rapid.IntRange(-3, 8).Draw(t, "dt")) * time.Second)
				if at.After(now) {
					now = at
				}
				rep := pic.drawReport(t, parties[i%len(parties)], fmt.Sprint(i), at)
				if _, err := e.Ingest(nil, []track.Report{rep}, now); err != nil {
					t.Fatal(err)
				}
				if at.After(last[i]) {
					last[i] = at
				}
			}
			checkSame(t, fmt.Sprintf("step %d", s), e)
		}
	})
}

// TestPruneIsConservative checks the two prunes against the pair math with
// nothing pruned: whenever the full evaluation finds a conflict, the sphere
// test passes and the two index boxes overlap.
func TestPruneIsConservative(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := rules.Default()
		r.SamePartyAlerts = true
		p := ParamsFrom(r)
		pic := drawPicture(t)
		pic.spreadM = min(pic.spreadM, 200_000)
		a := track.NewState(pic.drawReport(t, "a", "1", t0))
		b := track.NewState(pic.drawReport(t, "b", "2", t0.Add(time.Duration(rapid.IntRange(0, 30).Draw(t, "gap"))*time.Second)))
		dt := b.Time.Sub(a.Time).Seconds()
		pa, pb := a.ECEFAt(dt), b.ECEF
		mid := geo.ECEF{XM: (pa[0] + pb[0]) / 2, YM: (pa[1] + pb[1]) / 2, ZM: (pa[2] + pb[2]) / 2}
		f := geo.NewFrame(geo.FromECEF(mid))
		op, ov := inFrame(f, &a, b.Time)
		ip, iv := inFrame(f, &b, b.Time)
		res := Pair(op, ov, ip, iv, p.Sep, p.LookaheadS)
		if !res.Conflict {
			return
		}
		if !mayConflict(pa, a.VelECEF, pb, b.VelECEF, p) {
			t.Fatalf("sphere test pruned a conflict: %+v", res)
		}
		g := newGrid(DefaultCellM, DefaultSliceS)
		g.set(0, a.ECEF, a.VelECEF, a.Time.UnixNano(), p.spanS(), p.growM())
		g.set(1, b.ECEF, b.VelECEF, b.Time.UnixNano(), p.spanS(), p.growM())
		found := false
		g.query(0, 0, make([]uint32, 2), 1, func(int32) { found = true })
		if !found {
			t.Fatalf("the index does not pair a conflicting pair: %+v", res)
		}
		if _, ok := Evaluate(&a, &b, p); !ok {
			t.Fatal("Evaluate lost a conflict")
		}
	})
}

func TestEvaluateIsSymmetric(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := ParamsFrom(rules.Default())
		pic := drawPicture(t)
		a := track.NewState(pic.drawReport(t, "a", "1", t0))
		b := track.NewState(pic.drawReport(t, "b", "2", t0.Add(time.Duration(rapid.IntRange(-10, 10).Draw(t, "gap"))*time.Second)))
		ab, okAB := Evaluate(&a, &b, p)
		ba, okBA := Evaluate(&b, &a, p)
		if okAB != okBA || ab.PairResult != ba.PairResult || ab.Key() != ba.Key() {
			t.Fatalf("a,b gives %v %+v; b,a gives %v %+v", okAB, ab, okBA, ba)
		}
	})
}

// headOn returns two reports of different parties flying at each other at
// the same level, startM apart, centred on c.
func headOn(c geo.LLA, startM float64, at time.Time) (track.Report, track.Report) {
	a := track.Report{Party: "blue", Aircraft: "b1", Pos: offset(c, -startM/2, 0, 9000), VelEastMps: 200, Time: at}
	b := track.Report{Party: "red", Aircraft: "r1", Pos: offset(c, startM/2, 0, 9000), VelEastMps: -200, Time: at}
	return a, b
}

func TestEngineEventsAndStaleness(t *testing.T) {
	r := rules.Default()
	e := NewEngine(r, Grid{}, nil)
	a, b := headOn(geo.LLA{LatDeg: 35, LonDeg: 38}, 60_000, t0)
	evs, err := e.Ingest(nil, []track.Report{a, b}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != ConflictPredicted {
		t.Fatalf("head-on pair: events %v, want one conflict", kinds(evs))
	}
	c := evs[0].Conflict
	// 60 km closing at 400 m/s, 9.26 km separation: loss at about 127 s.
	if want := (60_000 - r.HorizontalSepM) / 400; math.Abs(c.TInS-want) > 1 {
		t.Fatalf("t_in %v, want about %v", c.TInS, want)
	}

	// A duplicate is ignored: no event, counted.
	evs, _ = e.Ingest(nil, []track.Report{a}, t0)
	if len(evs) != 0 || e.Counters().Duplicate != 1 {
		t.Fatalf("duplicate gave events %v, counters %+v", kinds(evs), e.Counters())
	}
	// b turns away: the conflict ends, resolved.
	b2 := b
	b2.Time = t0.Add(time.Second)
	b2.VelEastMps, b2.VelNorthMps = 0, 200
	b2.Pos.AltM = 12000
	evs, _ = e.Ingest(nil, []track.Report{b2}, b2.Time)
	if len(evs) != 1 || evs[0].Kind != ConflictEnded || evs[0].Reason != ReasonResolved {
		t.Fatalf("turn away: events %v", kinds(evs))
	}
	// An out-of-order report of the old heading must not bring it back.
	evs, _ = e.Ingest(nil, []track.Report{b}, b2.Time)
	if len(evs) != 0 || e.NumConflicts() != 0 || e.Counters().OutOfOrder != 1 {
		t.Fatalf("out-of-order report: events %v, conflicts %d", kinds(evs), e.NumConflicts())
	}
	// Back on the collision course, then a goes silent.
	b3 := b
	b3.Time = t0.Add(2 * time.Second)
	if evs, _ = e.Ingest(nil, []track.Report{b3}, b3.Time); len(evs) != 1 || evs[0].Kind != ConflictPredicted {
		t.Fatalf("back on course: events %v", kinds(evs))
	}
	evs = e.Expire(nil, t0.Add(r.StaleAfter()))
	if len(evs) != 0 {
		t.Fatalf("expiry at exactly the stale time: %v", kinds(evs))
	}
	evs = e.Expire(nil, t0.Add(r.StaleAfter()+time.Second))
	if len(evs) != 1 || evs[0].Kind != ConflictEnded || evs[0].Reason != ReasonStale || evs[0].Conflict.Key() != c.Key() {
		t.Fatalf("a stale: events %v", kinds(evs))
	}
	if e.NumTracks() != 1 || e.NumConflicts() != 0 {
		t.Fatalf("after expiry: %d tracks, %d conflicts", e.NumTracks(), e.NumConflicts())
	}
}

func TestSamePartySwitch(t *testing.T) {
	a, b := headOn(geo.LLA{LatDeg: -33, LonDeg: 151}, 40_000, t0)
	b.Party = a.Party
	r := rules.Default()
	for _, same := range []bool{false, true} {
		r.SamePartyAlerts = same
		e := NewEngine(r, Grid{}, nil)
		if _, err := e.Ingest(nil, []track.Report{a, b}, t0); err != nil {
			t.Fatal(err)
		}
		if got := e.NumConflicts() == 1; got != same {
			t.Errorf("same_party_alerts=%v: conflict found %v", same, got)
		}
	}
}

func TestInvalidBatchChangesNothing(t *testing.T) {
	e := NewEngine(rules.Default(), Grid{}, nil)
	a, b := headOn(geo.LLA{LatDeg: 10, LonDeg: 10}, 40_000, t0)
	b.Pos.LatDeg = 91
	_, err := e.Ingest(nil, []track.Report{a, b}, t0)
	var re *ReportError
	var fe *fielderr.Error
	if !errors.As(err, &re) || re.Index != 1 || !errors.As(err, &fe) || fe.Field != "lat" {
		t.Fatalf("error %v, want reports[1].lat", err)
	}
	if err.Error() != "reports[1].lat: must be within [-90, 90] degrees" {
		t.Errorf("message %q", err.Error())
	}
	if e.NumTracks() != 0 {
		t.Fatal("a refused batch applied a report")
	}
}

type fakeConformance struct{ inside map[string]bool }

func (f fakeConformance) Conforms(party string, p geo.LLA, _ time.Time) (bool, bool) {
	in, has := f.inside[party]
	if !has {
		return false, false
	}
	// The party's one volume is everything north of the equator, or
	// nothing when inside is false.
	return in && p.LatDeg > 0, true
}

func TestConformanceHook(t *testing.T) {
	conf := fakeConformance{inside: map[string]bool{"blue": true}}
	e := NewEngine(rules.Default(), Grid{}, conf)
	north := track.Report{Party: "blue", Aircraft: "1", Pos: geo.LLA{LatDeg: 5, LonDeg: 0, AltM: 1000}, Time: t0}
	south := north
	south.Pos.LatDeg, south.Time = -5, t0.Add(time.Second)
	noVolumes := track.Report{Party: "red", Aircraft: "1", Pos: geo.LLA{LatDeg: -5, LonDeg: 90, AltM: 1000}, Time: t0}

	evs, _ := e.Ingest(nil, []track.Report{north, noVolumes}, t0)
	if len(evs) != 0 {
		t.Fatalf("conforming aircraft and a party without volumes: %v", kinds(evs))
	}
	evs, _ = e.Ingest(nil, []track.Report{south}, south.Time)
	if len(evs) != 1 || evs[0].Kind != Nonconforming || evs[0].Track.Key() != south.Key() {
		t.Fatalf("left its volume: %v", kinds(evs))
	}
	back := north
	back.Time = t0.Add(2 * time.Second)
	evs, _ = e.Ingest(nil, []track.Report{back}, back.Time)
	if len(evs) != 1 || evs[0].Kind != Conforming || evs[0].Reason != ReasonResolved {
		t.Fatalf("back inside: %v", kinds(evs))
	}
	gone := south
	gone.Time = t0.Add(3 * time.Second)
	e.Ingest(nil, []track.Report{gone}, gone.Time)
	evs = e.Expire(nil, gone.Time.Add(time.Minute))
	if len(evs) != 1 || evs[0].Kind != Conforming || evs[0].Reason != ReasonStale {
		t.Fatalf("stale nonconforming track: %v", kinds(evs))
	}
}

func TestTracksBBoxAcrossAntimeridian(t *testing.T) {
	e := NewEngine(rules.Default(), Grid{}, nil)
	var reps []track.Report
	for i, lon := range []float64{179.5, -179.5, 0, 170} {
		reps = append(reps, track.Report{Party: "p", Aircraft: fmt.Sprint(i), Pos: geo.LLA{LatDeg: 10, LonDeg: lon}, Time: t0})
	}
	if _, err := e.Ingest(nil, reps, t0); err != nil {
		t.Fatal(err)
	}
	got := e.Tracks(BBox{MinLatDeg: 0, MinLonDeg: 179, MaxLatDeg: 20, MaxLonDeg: -179})
	if len(got) != 2 || got[0].Aircraft != "0" || got[1].Aircraft != "1" {
		t.Fatalf("tracks across the antimeridian: %v", got)
	}
	if n := len(e.Tracks(World)); n != 4 {
		t.Fatalf("world box holds %d tracks", n)
	}
}

func kinds(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind.String()+"/"+e.Reason)
	}
	return out
}

// TestSameConflictsNamesTheMissingPair checks the ordering SortConflicts and
// SameConflicts share: with one pair dropped from either side, the message
// names that pair and the side that holds it.
func TestSameConflictsNamesTheMissingPair(t *testing.T) {
	pair := func(pa, a, pb, b string) Conflict {
		return Conflict{
			A: track.State{Report: track.Report{Party: pa, Aircraft: a}},
			B: track.State{Report: track.Report{Party: pb, Aircraft: b}},
		}
	}
	set := []Conflict{pair("b", "1", "c", "1"), pair("a", "2", "b", "1"), pair("a", "1", "b", "1"), pair("a", "1", "a", "2")}
	SortConflicts(set)
	// With one-letter ids the printed keys sort the same way as the keys.
	for i := 1; i < len(set); i++ {
		if set[i-1].Key().String() >= set[i].Key().String() {
			t.Fatalf("not sorted: %v before %v", set[i-1].Key(), set[i].Key())
		}
	}
	if same, diff := SameConflicts(set, slices.Clone(set)); !same {
		t.Fatalf("a set differs from its copy: %s", diff)
	}
	for i := range set {
		without := slices.Delete(slices.Clone(set), i, i+1)
		name := set[i].Key().String()
		if same, diff := SameConflicts(set, without); same || diff != "only in first: "+name {
			t.Errorf("dropping %s from the second: same=%v, %q", name, same, diff)
		}
		if same, diff := SameConflicts(without, set); same || diff != "only in second: "+name {
			t.Errorf("dropping %s from the first: same=%v, %q", name, same, diff)
		}
	}
}
