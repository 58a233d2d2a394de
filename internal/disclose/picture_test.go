package disclose

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/volume"
)

// oracle evaluates the rule of the package doc by brute force: every pair
// of live tracks at every report, every volume, every alert, with its own
// bookkeeping of reports, expiry and linger.
type oracle struct {
	rule   Rule
	tracks map[track.Key]track.Report
	// until[key][party]: disclosed by proximity, volumes or linger.
	until   map[track.Key]map[string]time.Time
	volumes map[string]*volume.Volume
	seen    map[string]map[string]time.Time // volume id -> party -> until
	open    map[string]alert.Alert
	// allUntil: disclosed to every party after an alert that concerned
	// everyone cleared.
	allUntil map[track.Key]time.Time
}

func newOracle(r Rule) *oracle {
	return &oracle{rule: r, tracks: map[track.Key]track.Report{}, until: map[track.Key]map[string]time.Time{},
		volumes: map[string]*volume.Volume{}, seen: map[string]map[string]time.Time{}, open: map[string]alert.Alert{}, allUntil: map[track.Key]time.Time{}}
}

func (o *oracle) disclose(k track.Key, party string, until time.Time) {
	if o.until[k] == nil {
		o.until[k] = map[string]time.Time{}
	}
	if until.After(o.until[k][party]) {
		o.until[k][party] = until
	}
}

func (o *oracle) report(r track.Report, now time.Time) {
	k := r.Key()
	if now.Sub(r.Time) > o.rule.StaleAfter {
		return
	}
	if old, ok := o.tracks[k]; ok && !r.Time.After(old.Time) {
		return
	}
	o.tracks[k] = r
	o.assess(r, now)
}

// assess evaluates the rule at a report r of a live track.
func (o *oracle) assess(r track.Report, now time.Time) {
	k := r.Key()
	until := now.Add(o.rule.Linger)
	pr := PointOf(r.Pos)
	for _, other := range o.tracks {
		if other.Party != r.Party && o.rule.Near(pr, PointOf(other.Pos)) {
			o.disclose(k, other.Party, until)
		}
	}
	for _, v := range o.volumes {
		if v.Party != r.Party && o.rule.NearVolume(v, r.Pos, now) {
			o.disclose(k, v.Party, until)
			if o.seen[v.ID] == nil {
				o.seen[v.ID] = map[string]time.Time{}
			}
			if until.After(o.seen[v.ID][r.Party]) {
				o.seen[v.ID][r.Party] = until
			}
		}
	}
}

// rebuild is a rules change to r at now: the tracks too old for r's stale
// time are gone, every other is assessed as if it had just reported (all
// in place first), and what was disclosed stays until its time.
func (o *oracle) rebuild(r Rule, now time.Time) {
	o.rule = r
	o.expire(now)
	for _, tr := range o.tracks {
		o.assess(tr, now)
	}
}

func (o *oracle) expire(now time.Time) {
	for k, r := range o.tracks {
		if now.Sub(r.Time) > o.rule.StaleAfter {
			delete(o.tracks, k)
			delete(o.until, k)
			delete(o.allUntil, k)
		}
	}
}

func (o *oracle) alerts(trs []alert.Transition, now time.Time) {
	for _, a := range trs {
		_, isOpen := o.open[a.ID]
		if a.State == alert.StateCleared && isOpen {
			old := o.open[a.ID]
			delete(o.open, a.ID)
			for _, ac := range old.Aircraft {
				k := track.Key{Party: ac.Party, Aircraft: ac.Aircraft}
				if _, live := o.tracks[k]; !live {
					continue
				}
				if old.ForEveryone() {
					if u := now.Add(o.rule.Linger); u.After(o.allUntil[k]) {
						o.allUntil[k] = u
					}
					continue
				}
				for _, q := range old.Parties() {
					if q != k.Party {
						o.disclose(k, q, now.Add(o.rule.Linger))
					}
				}
			}
		}
		if a.State != alert.StateCleared && !isOpen {
			o.open[a.ID] = a
		}
	}
}

func (o *oracle) putVolume(v *volume.Volume) {
	if v.State != volume.Accepted && v.State != volume.Activated {
		delete(o.volumes, v.ID)
		delete(o.seen, v.ID)
		return
	}
	o.volumes[v.ID] = v
}

func (o *oracle) visible(party string, k track.Key, now time.Time) bool {
	if k.Party == party {
		return true
	}
	for _, a := range o.open {
		if !a.ForEveryone() && !slices.Contains(a.Parties(), party) {
			continue
		}
		for _, ac := range a.Aircraft {
			if ac.Party == k.Party && ac.Aircraft == k.Aircraft {
				return true
			}
		}
	}
	if u, ok := o.allUntil[k]; ok && !u.Before(now) {
		return true
	}
	u, ok := o.until[k][party]
	return ok && !u.Before(now)
}

func (o *oracle) volumeNear(party, id string, now time.Time) bool {
	u, ok := o.seen[id][party]
	return ok && !u.Before(now)
}

// scenes are the places the random traffic is drawn around: the middle
// latitudes, the antimeridian, and next to both poles, where the grid's
// cubes and the unit vectors are most likely to go wrong.
var scenes = []geo.LLA{{LatDeg: 35, LonDeg: 38}, {LatDeg: 10, LonDeg: 179.9}, {LatDeg: 89.7, LonDeg: 0}, {LatDeg: -89.9, LonDeg: 100}}

func TestPictureMatchesBruteForce(t *testing.T) {
	parties := []string{"a", "b", "c"}
	rapid.Check(t, func(rt *rapid.T) {
		withinM := rapid.Float64Range(1000, 120_000).Draw(rt, "within_m")
		withinAltM := rapid.Float64Range(100, 4000).Draw(rt, "within_alt_m")
		linger := time.Duration(rapid.IntRange(0, 90).Draw(rt, "linger_s")) * time.Second
		rule := NewRule(withinM, withinAltM, linger, 300*time.Second, 60*time.Second, 30*time.Second)
		scene := scenes[rapid.IntRange(0, len(scenes)-1).Draw(rt, "scene")]
		spreadM := rapid.Float64Range(withinM/4, withinM*4).Draw(rt, "spread_m")
		pic := New(rule)
		or := newOracle(rule)
		now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		lastTime := map[track.Key]time.Time{}
		place := func(rt *rapid.T, label string) geo.LLA {
			bearing := rapid.Float64Range(0, 360).Draw(rt, label+"_bearing")
			dist := rapid.Float64Range(0, spreadM).Draw(rt, label+"_dist")
			p := geo.Destination(scene, bearing, dist)
			p.AltM = rapid.Float64Range(0, 3*withinAltM).Draw(rt, label+"_alt")
			return p
		}
		var volSeq int64
		alertN := 0
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for step := 0; step < steps; step++ {
			switch op := rapid.IntRange(0, 10).Draw(rt, "op"); {
			case op <= 4: // a batch of reports
				n := rapid.IntRange(1, 6).Draw(rt, "batch")
				var batch []track.Report
				for range n {
					k := track.Key{Party: rapid.SampledFrom(parties).Draw(rt, "party"), Aircraft: fmt.Sprint(rapid.IntRange(0, 7).Draw(rt, "aircraft"))}
					// Mostly newer than the last report, sometimes a
					// duplicate, out of order or too old.
					at := now.Add(-time.Duration(rapid.IntRange(0, 40).Draw(rt, "age_s")) * time.Second)
					if last, ok := lastTime[k]; ok && rapid.IntRange(0, 4).Draw(rt, "newer") > 0 && !at.After(last) {
						at = last.Add(time.Second)
						if at.After(now) {
							at = now
						}
					}
					r := track.Report{Party: k.Party, Aircraft: k.Aircraft, Pos: place(rt, "pos"), Time: at,
						VelEastMps: rapid.Float64Range(-300, 300).Draw(rt, "ve")}
					batch = append(batch, r)
				}
				pic.Ingest(batch, now)
				for _, r := range batch {
					or.report(r, now)
					if last, ok := lastTime[r.Key()]; !ok || r.Time.After(last) {
						lastTime[r.Key()] = r.Time
					}
				}
			case op == 5:
				now = now.Add(time.Duration(rapid.IntRange(1, 45).Draw(rt, "advance_s")) * time.Second)
			case op == 6:
				pic.Expire(now)
				or.expire(now)
			case op == 7: // an alert raised, or an open one cleared
				if len(or.open) > 0 && rapid.Bool().Draw(rt, "clear") {
					ids := make([]string, 0, len(or.open))
					for id := range or.open {
						ids = append(ids, id)
					}
					slices.Sort(ids)
					a := or.open[rapid.SampledFrom(ids).Draw(rt, "alert")]
					a.State = alert.StateCleared
					pic.Alerts([]alert.Transition{a}, now)
					or.alerts([]alert.Transition{a}, now)
					break
				}
				alertN++
				acs := func(label string) alert.Aircraft {
					return alert.Aircraft{Party: rapid.SampledFrom(parties).Draw(rt, label+"_party"), Aircraft: fmt.Sprint(rapid.IntRange(0, 7).Draw(rt, label))}
				}
				a := alert.Alert{ID: fmt.Sprint("al", alertN), State: alert.StateRaised, Kind: alert.KindConflict}
				if rapid.IntRange(0, 3).Draw(rt, "nonconforming") == 0 {
					a.Kind = alert.KindNonconforming
					a.Aircraft = []alert.Aircraft{acs("x")}
				} else {
					a.Aircraft = []alert.Aircraft{acs("x"), acs("y")}
				}
				pic.Alerts([]alert.Transition{a}, now)
				or.alerts([]alert.Transition{a}, now)
			case op == 8: // a volume written
				volSeq++
				id := fmt.Sprint("v", rapid.IntRange(0, 4).Draw(rt, "volume"))
				c := place(rt, "vol")
				in := volume.Input{
					Footprint: volume.Footprint{Type: "Circle", Center: []float64{c.LonDeg, c.LatDeg}, RadiusM: rapid.Float64Range(100, withinM).Draw(rt, "radius_m")},
					AltLowerM: c.AltM, AltUpperM: c.AltM + rapid.Float64Range(1, 2*withinAltM).Draw(rt, "band_m"),
					Start: now.Add(time.Duration(rapid.IntRange(-3600, 900).Draw(rt, "start_s")) * time.Second),
					State: rapid.SampledFrom([]volume.State{volume.Proposed, volume.Accepted, volume.Activated, volume.Ended}).Draw(rt, "state"),
				}
				if rapid.Bool().Draw(rt, "polygon") {
					d := in.Footprint.RadiusM / 111_000
					lat, lon := c.LatDeg, c.LonDeg
					if math.Abs(lat) < 80 && math.Abs(lon)+d < 180 {
						in.Footprint = volume.Footprint{Type: "Polygon", Coordinates: [][][]float64{{
							{lon - d, lat - d}, {lon + d, lat - d}, {lon + d, lat + d}, {lon - d, lat + d}, {lon - d, lat - d}}}}
					}
				}
				in.End = in.Start.Add(time.Duration(rapid.IntRange(1, 7200).Draw(rt, "window_s")) * time.Second)
				v, err := volume.NewVolume(id, rapid.SampledFrom(parties).Draw(rt, "owner"), in, rules.Default())
				if err != nil {
					rt.Fatalf("volume: %v", err)
				}
				v.ChangeSeq = volSeq
				if old, ok := or.volumes[id]; ok && old.Party != v.Party {
					// A volume keeps its party.
					v.Party = old.Party
				}
				pic.PutVolume(v)
				or.putVolume(v)
			case op == 9:
				check(rt, pic, or, parties, now)
			case op == 10: // a rules change: the picture rebuilt
				rule = NewRule(rapid.Float64Range(1000, 120_000).Draw(rt, "new_within_m"), rapid.Float64Range(100, 4000).Draw(rt, "new_within_alt_m"),
					time.Duration(rapid.IntRange(0, 90).Draw(rt, "new_linger_s"))*time.Second, 300*time.Second, 60*time.Second, 30*time.Second)
				var states []track.State
				for _, r := range or.tracks {
					states = append(states, track.State{Report: r})
				}
				var open []alert.Transition
				for _, a := range or.open {
					open = append(open, a)
				}
				var vols []*volume.Volume
				for _, v := range or.volumes {
					vols = append(vols, v)
				}
				pic = Rebuild(rule, pic, states, open, vols, now)
				or.rebuild(rule, now)
			}
		}
		check(rt, pic, or, parties, now)
	})
}

func check(rt *rapid.T, pic *Picture, or *oracle, parties []string, now time.Time) {
	for _, party := range append(parties, "newcomer") {
		want := map[track.Key]bool{}
		var keys []track.Key
		for k := range or.tracks {
			if or.visible(party, k, now) {
				want[k] = true
			}
			if got := pic.Visible(party, k, now); got != want[k] {
				rt.Fatalf("Visible(%s, %v) = %v, the brute force says %v", party, k, got, want[k])
			}
			keys = append(keys, k)
		}
		for i, got := range pic.VisibleEach(nil, party, keys, now) {
			if got != want[keys[i]] {
				rt.Fatalf("VisibleEach(%s)[%v] = %v, the brute force says %v", party, keys[i], got, want[keys[i]])
			}
		}
		got := map[track.Key]bool{}
		for _, s := range pic.Tracks(party, detect.World, now) {
			if got[s.Key()] {
				rt.Fatalf("Tracks(%s) lists %v twice", party, s.Key())
			}
			got[s.Key()] = true
			if r := or.tracks[s.Key()]; !r.Time.Equal(s.Time) || r.Pos != s.Pos {
				rt.Fatalf("Tracks(%s): %v at %v %v, the last report is at %v %v", party, s.Key(), s.Time, s.Pos, r.Time, r.Pos)
			}
		}
		for k := range want {
			if !got[k] {
				rt.Fatalf("Tracks(%s) misses %v", party, k)
			}
		}
		for k := range got {
			if !want[k] {
				rt.Fatalf("Tracks(%s) shows %v, which the brute force hides", party, k)
			}
		}
		for id := range or.volumes {
			if got, want := pic.VolumeNear(party, id, now), or.volumeNear(party, id, now); got != want {
				rt.Fatalf("VolumeNear(%s, %s) = %v, the brute force says %v", party, id, got, want)
			}
		}
	}
}

// The chord test is the great-circle distance of geo: away from the limit
// (where rounding may fall either way) the two agree.
func TestNearIsTheGreatCircleDistance(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		withinM := rapid.Float64Range(1, 1_000_000).Draw(rt, "within_m")
		r := NewRule(withinM, 1000, 0, 0, 0, time.Second)
		a := geo.LLA{LatDeg: rapid.Float64Range(-90, 90).Draw(rt, "lat"), LonDeg: rapid.Float64Range(-180, 180).Draw(rt, "lon")}
		b := geo.Destination(a, rapid.Float64Range(0, 360).Draw(rt, "bearing"), rapid.Float64Range(0, 2*withinM).Draw(rt, "dist"))
		b.AltM = rapid.Float64Range(-1100, 1100).Draw(rt, "alt")
		d := geo.GreatCircleM(a, b)
		if math.Abs(d-withinM) < 1e-6*withinM+1e-6 {
			return
		}
		want := d <= withinM && math.Abs(b.AltM) <= 1000
		if got := r.Near(PointOf(a), PointOf(b)); got != want {
			rt.Fatalf("Near = %v; great circle %.3f m against %.3f m, altitude %.1f m", got, d, withinM, b.AltM)
		}
	})
}

// Table of the rule's cases on two parties (docs/WIRE.md "Need to know").
func TestDisclosureCases(t *testing.T) {
	r := RuleFrom(rules.Default())
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	base := geo.LLA{LatDeg: 35, LonDeg: 38, AltM: 6000}
	at := func(bearing, distM, altM float64) geo.LLA {
		p := geo.Destination(base, bearing, distM)
		p.AltM = altM
		return p
	}
	a := track.Key{Party: "a", Aircraft: "A1"}
	b := track.Key{Party: "b", Aircraft: "B1"}
	rep := func(k track.Key, p geo.LLA, t time.Time) track.Report {
		return track.Report{Party: k.Party, Aircraft: k.Aircraft, Pos: p, Time: t}
	}
	cases := []struct {
		name   string
		pos    geo.LLA // of B1; A1 is at base
		alert  bool
		leave  time.Duration // B1 moves far away after this long (0: stays)
		lookAt time.Duration
		want   bool
	}{
		{"far apart", at(90, 200_000, 6000), false, 0, 0, false},
		{"within both distances", at(90, 80_000, 7000), false, 0, 0, true},
		{"within distance, above the altitude limit", at(90, 80_000, 9500), false, 0, 0, false},
		{"far apart in an alert", at(90, 200_000, 6000), true, 0, 0, true},
		{"left, within the linger", at(90, 80_000, 6000), false, 5 * time.Second, 60 * time.Second, true},
		{"left, after the linger", at(90, 80_000, 6000), false, 5 * time.Second, 66 * time.Second, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := New(r)
			// Each aircraft's disclosure is decided at its own reports:
			// both report twice, as feeds do every few seconds.
			p.Ingest([]track.Report{rep(a, base, t0.Add(-time.Second)), rep(b, c.pos, t0.Add(-time.Second))}, t0.Add(-time.Second))
			p.Ingest([]track.Report{rep(a, base, t0), rep(b, c.pos, t0)}, t0)
			now := t0
			if c.leave > 0 {
				now = t0.Add(c.leave)
				p.Ingest([]track.Report{rep(a, base, now), rep(b, at(90, 400_000, 6000), now)}, now)
			}
			if c.alert {
				p.Alerts([]alert.Transition{{ID: "x", Kind: alert.KindConflict, State: alert.StateRaised,
					Aircraft: []alert.Aircraft{{Party: "a", Aircraft: "A1"}, {Party: "b", Aircraft: "B1"}}}}, now)
			}
			if c.lookAt > 0 {
				now = t0.Add(c.lookAt)
				// Both keep reporting where they are (far apart).
				p.Ingest([]track.Report{rep(a, base, now), rep(b, at(90, 400_000, 6000), now)}, now)
			}
			for _, pair := range [][2]any{{"a", b}, {"b", a}} {
				viewer, k := pair[0].(string), pair[1].(track.Key)
				if got := p.Visible(viewer, k, now); got != c.want {
					t.Errorf("%s sees %v: %v, want %v", viewer, k, got, c.want)
				}
				if got := len(p.Tracks(viewer, detect.World, now)); got != 1+btoi(c.want) {
					t.Errorf("%s's tracks: %d, want %d", viewer, got, 1+btoi(c.want))
				}
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
