package alert

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func state(party, id string) track.State {
	return track.NewState(track.Report{Party: party, Aircraft: id, Pos: geo.LLA{LatDeg: 1, LonDeg: 2, AltM: 3}, Time: t0})
}

// mannedEntry is the manned-manned entry of the default rules.
var mannedEntry = detect.ParamsFrom(rules.Default()).Table.ForNames(rules.ClassManned, rules.ClassManned)

// predicted builds a detection event for the pair blue/1 ~ red/1 at time
// at, graded as the engine grades it by the manned-manned entry.
func predicted(at time.Time, tIn, tOut, missM float64) detect.Event {
	c := detect.Conflict{A: state("blue", "1"), B: state("red", "1"), Time: at, Sep: mannedEntry}
	c.Conflict = true
	c.TInS, c.TOutS, c.TCPAS, c.DHCPAM = tIn, tOut, (tIn+tOut)/2, missM
	c.Level, c.LevelWithMargin = mannedEntry.GradeLoss(c.Loss, DefaultHysteresis(rules.Default()).LevelMarginS)
	return detect.Event{Kind: detect.ConflictPredicted, Conflict: c}
}

func ended(reason string) detect.Event {
	c := detect.Conflict{A: state("blue", "1"), B: state("red", "1")}
	return detect.Event{Kind: detect.ConflictEnded, Reason: reason, Conflict: c}
}

func states(as []Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.State+"/"+a.Level+"/"+a.Reason)
	}
	return out
}

func TestLifecycleRaiseUpdateClearWithStableID(t *testing.T) {
	r := rules.Default()
	h := DefaultHysteresis(r)
	l := NewLifecycle(r, h)

	out := l.Apply(nil, []detect.Event{predicted(t0, 200, 230, 1000)}, t0)
	if len(out) != 1 || out[0].State != StateRaised || out[0].Level != "advisory" || out[0].ID == "" {
		t.Fatalf("first prediction: %v", states(out))
	}
	id := out[0].ID
	if got := out[0].Parties(); !slices.Equal(got, []string{"blue", "red"}) || out[0].ForEveryone() {
		t.Fatalf("audience %v", got)
	}

	// A steady encounter a second later: t_in counts down, the predicted
	// moment stays put, nothing to publish.
	at := t0.Add(time.Second)
	if out = l.Apply(nil, []detect.Event{predicted(at, 199, 229, 1000)}, at); len(out) != 0 {
		t.Fatalf("steady encounter published %v", states(out))
	}
	// Timing moves by more than the threshold (5 % of the 198 s ahead):
	// updated, same id.
	at = t0.Add(2 * time.Second)
	out = l.Apply(nil, []detect.Event{predicted(at, 198-max(h.TimingS, h.TimingShare*198)-1, 228, 1000)}, at)
	if len(out) != 1 || out[0].State != StateUpdated || out[0].ID != id {
		t.Fatalf("timing moved: %v (id %s, want %s)", states(out), out[0].ID, id)
	}
	// Level goes up at once.
	at = t0.Add(3 * time.Second)
	out = l.Apply(nil, []detect.Event{predicted(at, 100, 130, 1000)}, at)
	if len(out) != 1 || out[0].Level != "caution" || out[0].ID != id {
		t.Fatalf("into caution: %v", states(out))
	}
	// The conflict disappears: nothing until the clear wait is over.
	at = t0.Add(4 * time.Second)
	if out = l.Apply(nil, []detect.Event{ended(ReasonResolved)}, at); len(out) != 0 {
		t.Fatalf("cleared at once: %v", states(out))
	}
	clearAt := at.Add(time.Duration(h.ClearAfterS * float64(time.Second)))
	if out = l.Tick(nil, clearAt.Add(-time.Millisecond)); len(out) != 0 {
		t.Fatalf("cleared before the wait: %v", states(out))
	}
	out = l.Tick(nil, clearAt)
	if len(out) != 1 || out[0].State != StateCleared || out[0].Reason != ReasonResolved || out[0].ID != id {
		t.Fatalf("after the wait: %v", states(out))
	}
	if len(l.Open()) != 0 {
		t.Fatal("cleared alert still open")
	}
	// A new conflict of the same pair is a new alert.
	at = clearAt.Add(time.Second)
	out = l.Apply(nil, []detect.Event{predicted(at, 200, 230, 1000)}, at)
	if len(out) != 1 || out[0].State != StateRaised || out[0].ID == id {
		t.Fatalf("re-raise: %v, id %s (old %s)", states(out), out[0].ID, id)
	}
}

func TestLifecycleDoesNotFlap(t *testing.T) {
	r := rules.Default()
	l := NewLifecycle(r, DefaultHysteresis(r))
	out := l.Apply(nil, []detect.Event{predicted(t0, 100, 130, 9000)}, t0)
	id := out[0].ID
	// Noise flips the prediction on and off every second for a minute.
	for s := 1; s <= 60; s++ {
		at := t0.Add(time.Duration(s) * time.Second)
		ev := ended(ReasonResolved)
		if s%2 == 0 {
			ev = predicted(at, 100-float64(s), 130-float64(s), 9000)
		}
		out = l.Apply(nil, []detect.Event{ev}, at)
		for _, a := range out {
			if a.State != StateUpdated || a.ID != id {
				t.Fatalf("second %d: %v", s, states(out))
			}
		}
	}
	if open := l.Open(); len(open) != 1 || open[0].ID != id {
		t.Fatalf("open alerts %v", states(open))
	}
}

// TestTimingHysteresisScalesWithTimeAhead: a predicted moment must move
// by more than TimingS or TimingShare of how far ahead it is: seven
// seconds four minutes ahead are absorbed, the same seven seconds 40 s
// ahead are published. A loss predicted to last beyond the lookahead
// (t_out at the horizon) publishes nothing as the horizon moves on, and
// is updated once its end comes within the lookahead.
func TestTimingHysteresisScalesWithTimeAhead(t *testing.T) {
	r := rules.Default()
	h := DefaultHysteresis(r)
	if h.TimingS != 5 || h.TimingShare != 0.05 {
		t.Fatalf("hysteresis %+v", h)
	}
	far := NewLifecycle(r, h)
	far.Apply(nil, []detect.Event{predicted(t0, 240, 280, 1000)}, t0)
	at := t0.Add(time.Second)
	if out := far.Apply(nil, []detect.Event{predicted(at, 239+7, 279+7, 1000)}, at); len(out) != 0 {
		t.Fatalf("7 s four minutes ahead published %v", states(out))
	}
	at = t0.Add(2 * time.Second)
	if out := far.Apply(nil, []detect.Event{predicted(at, 238+13, 278, 1000)}, at); len(out) != 1 || out[0].State != StateUpdated {
		t.Fatalf("13 s four minutes ahead (threshold 12.55 s): %v", states(out))
	}
	// A loss predicted sooner is news at 5 s, however far ahead; then
	// the same noise back and forth publishes nothing more.
	at = t0.Add(3 * time.Second)
	if out := far.Apply(nil, []detect.Event{predicted(at, 237+13-7, 277, 1000)}, at); len(out) != 1 || out[0].State != StateUpdated {
		t.Fatalf("the loss 7 s sooner four minutes ahead: %v", states(out))
	}
	for s := 4; s <= 8; s++ {
		at = t0.Add(time.Duration(s) * time.Second)
		tIn := 240 + 13 - 7 - float64(s)
		if s%2 == 0 {
			tIn += 7
		}
		if out := far.Apply(nil, []detect.Event{predicted(at, tIn, 280-float64(s), 1000)}, at); len(out) != 0 {
			t.Fatalf("%d s on, the same 7 s back and forth: published %v", s, states(out))
		}
	}
	near := NewLifecycle(r, h)
	near.Apply(nil, []detect.Event{predicted(t0, 40, 80, 1000)}, t0)
	at = t0.Add(time.Second)
	if out := near.Apply(nil, []detect.Event{predicted(at, 39+7, 79, 1000)}, at); len(out) != 1 || out[0].State != StateUpdated {
		t.Fatalf("7 s 40 s ahead: %v", states(out))
	}
	look := mannedEntry.LookaheadS
	long := NewLifecycle(r, h)
	long.Apply(nil, []detect.Event{predicted(t0, 100, look, 1000)}, t0)
	for s := 1; s <= 30; s++ {
		at = t0.Add(time.Duration(s) * time.Second)
		if out := long.Apply(nil, []detect.Event{predicted(at, 100-float64(s), look, 1000)}, at); len(out) != 0 {
			t.Fatalf("%d s on, t_out still at the horizon: published %v", s, states(out))
		}
	}
	at = t0.Add(31 * time.Second)
	if out := long.Apply(nil, []detect.Event{predicted(at, 69, look-60, 1000)}, at); len(out) != 1 || out[0].State != StateUpdated {
		t.Fatalf("the end of the loss came within the lookahead: %v", states(out))
	}
}

// TestOngoingLossIsNoNews: a pair already closer than the minima (t_in 0)
// that stays so publishes nothing as time passes, whether its loss ends
// beyond the lookahead or within it as predicted; what does change is
// news: the end of the loss coming within the lookahead or moving, the
// loss ending and predicted again later, the miss distance.
func TestOngoingLossIsNoNews(t *testing.T) {
	r := rules.Default()
	h := DefaultHysteresis(r)
	look := mannedEntry.LookaheadS
	l := NewLifecycle(r, h)
	if out := l.Apply(nil, []detect.Event{predicted(t0, 0, look, 1000)}, t0); len(out) != 1 || out[0].State != StateRaised {
		t.Fatalf("raise: %v", states(out))
	}
	var at time.Time
	for s := 1; s <= 60; s++ {
		at = t0.Add(time.Duration(s) * time.Second)
		if out := l.Apply(nil, []detect.Event{predicted(at, 0, look, 1000)}, at); len(out) != 0 {
			t.Fatalf("%d s into a loss lasting beyond the lookahead: published %v", s, states(out))
		}
	}
	at = t0.Add(61 * time.Second)
	if out := l.Apply(nil, []detect.Event{predicted(at, 0, 100, 1000)}, at); len(out) != 1 || out[0].State != StateUpdated {
		t.Fatalf("the end of the loss came within the lookahead: %v", states(out))
	}
	for s := 62; s <= 90; s++ {
		at = t0.Add(time.Duration(s) * time.Second)
		if out := l.Apply(nil, []detect.Event{predicted(at, 0, 100-float64(s-61), 1000)}, at); len(out) != 0 {
			t.Fatalf("%d s into a loss ending as predicted: published %v", s, states(out))
		}
	}
	at = t0.Add(91 * time.Second)
	if out := l.Apply(nil, []detect.Event{predicted(at, 0, 70-20, 1000)}, at); len(out) != 1 || out[0].State != StateUpdated {
		t.Fatalf("the loss now ends 20 s sooner: %v", states(out))
	}
	at = t0.Add(92 * time.Second)
	if out := l.Apply(nil, []detect.Event{predicted(at, 0, 49, 1000+0.2*mannedEntry.HorizontalM())}, at); len(out) != 1 || out[0].State != StateUpdated {
		t.Fatalf("the miss distance moved by a fifth of the threshold: %v", states(out))
	}
	at = t0.Add(93 * time.Second)
	if out := l.Apply(nil, []detect.Event{predicted(at, 30, 60, 1000+0.2*mannedEntry.HorizontalM())}, at); len(out) != 1 || out[0].State != StateUpdated {
		t.Fatalf("the loss ended and is predicted again 30 s ahead: %v", states(out))
	}
}

// flown is the detection event of the pair blue/1 ~ red/1 s seconds
// after t0, red at relative position relM and velocity relMps from blue
// (east, north, up), blue still: graded, timed and its closest approach
// worked out by the manned-manned entry as the engine does.
func flown(s float64, relM, relMps detect.Vec3) detect.Event {
	at := t0.Add(time.Duration(s * float64(time.Second)))
	a := state("blue", "1")
	a.Time = at
	pos := geo.NewFrame(a.Pos).FromENU(geo.ENU{EastM: relM.X, NorthM: relM.Y, UpM: relM.Z})
	b := track.NewState(track.Report{Party: "red", Aircraft: "1", Pos: pos, VelEastMps: relMps.X, VelNorthMps: relMps.Y, VelUpMps: relMps.Z, Time: at})
	c := detect.Conflict{A: a, B: b, Time: at, Sep: mannedEntry}
	var loss detect.Loss
	c.Level, c.LevelWithMargin, loss = mannedEntry.Grade(relM, relMps, DefaultHysteresis(rules.Default()).LevelMarginS)
	cpa := detect.Pair(detect.Vec3{}, detect.Vec3{}, relM, relMps, detect.Cylinder{HorizontalM: 1, VerticalM: 1}, mannedEntry.LookaheadS)
	c.Loss = loss
	c.TCPAS, c.DHCPAM, c.DVCPAM = cpa.TCPAS, cpa.DHCPAM, cpa.DVCPAM
	return detect.Event{Kind: detect.ConflictPredicted, Conflict: c}
}

// TestMissDistanceAtAnEndMovesBeyondTheRelativeSpeed: a closest approach
// clamped to an end of the lookahead is the distance at that end, which
// a steady pair changes by its relative speed every second: a pair in
// loss drawing apart as predicted publishes nothing while its distance
// grows by five times the threshold; a follower closing on the aircraft
// ahead (the review's case: in loss, t_out beyond the lookahead, nothing
// else moves) and a pair drawing apart that steps aside do publish.
func TestMissDistanceAtAnEndMovesBeyondTheRelativeSpeed(t *testing.T) {
	r := rules.Default()
	h := DefaultHysteresis(r)
	apply := func(l *Lifecycle, ev detect.Event) []Alert { return l.Apply(nil, []detect.Event{ev}, ev.Conflict.Time) }

	apart := NewLifecycle(r, h)
	away := detect.Vec3{Y: 250}
	if out := apply(apart, flown(0, detect.Vec3{Y: 1000}, away)); len(out) != 1 {
		t.Fatalf("raise: %v", states(out))
	}
	for s := 1.0; s <= 20; s++ {
		if out := apply(apart, flown(s, detect.Vec3{Y: 1000 + 250*s}, away)); len(out) != 0 {
			t.Fatalf("%.0f s on, a pair drawing apart at 250 m/s as predicted: published %v", s, states(out))
		}
	}
	if out := apply(apart, flown(21, detect.Vec3{X: 3000, Y: 1000 + 250*21}, away)); len(out) != 1 || out[0].State != StateUpdated {
		t.Fatalf("the pair drawing apart stepped 3 km aside: %v", states(out))
	}

	trail := NewLifecycle(r, h)
	if out := apply(trail, flown(0, detect.Vec3{Y: 8000}, detect.Vec3{})); len(out) != 1 {
		t.Fatalf("raise: %v", states(out))
	}
	published := 0
	for s := 1.0; s <= 30; s++ {
		published += len(apply(trail, flown(s, detect.Vec3{Y: 8000 - 12*s}, detect.Vec3{Y: -12})))
	}
	if published == 0 {
		t.Fatal("the follower closes at 12 m/s on the aircraft 8 km ahead (in loss, t_out beyond the lookahead): nothing published")
	}
}

// TestApproachComingInsideTheLookaheadIsNews: a head-on pair raised
// while its closest approach lay beyond the horizon (published: the
// distance there, 5 km) publishes as soon as detection puts the approach
// inside the lookahead, a collision course (0 m), not 37 s later when its
// relative path has drifted from the published one.
func TestApproachComingInsideTheLookaheadIsNews(t *testing.T) {
	r := rules.Default()
	l := NewLifecycle(r, DefaultHysteresis(r))
	closing := detect.Vec3{Y: -250}
	out := l.Apply(nil, []detect.Event{flown(0, detect.Vec3{Y: 80_000}, closing)}, t0)
	if len(out) != 1 || out[0].State != StateRaised || out[0].TCPAS < mannedEntry.LookaheadS-1e-6 {
		t.Fatalf("raise with the approach beyond the horizon: %v %+v", states(out), out)
	}
	for s := 1.0; s <= 30; s++ {
		ev := flown(s, detect.Vec3{Y: 80_000 - 250*s}, closing)
		out := l.Apply(nil, []detect.Event{ev}, ev.Conflict.Time)
		inside := ev.Conflict.TCPAS < mannedEntry.LookaheadS-1e-6
		switch {
		case len(out) == 1 && inside && out[0].DHCPAM < 1:
			return
		case len(out) > 0:
			t.Fatalf("%.0f s on: published %v (miss %.0f m, approach inside %v)", s, states(out), out[0].DHCPAM, inside)
		case inside:
			t.Fatalf("%.0f s on, the approach inside the lookahead at %.0f m, nothing published", s, ev.Conflict.DHCPAM)
		}
	}
	t.Fatal("the approach never came inside the lookahead")
}

func TestLevelDowngradeNeedsMargin(t *testing.T) {
	r := rules.Default()
	h := DefaultHysteresis(r)
	l := NewLifecycle(r, h)
	warn := r.Levels[2].MaxTimeToLoSS // 60 s
	out := l.Apply(nil, []detect.Event{predicted(t0, warn-1, warn+30, 1000)}, t0)
	if out[0].Level != "warning" {
		t.Fatalf("start: %v", states(out))
	}
	// Just past the warning threshold, within the margin: stays warning.
	at := t0.Add(time.Second)
	out = l.Apply(nil, []detect.Event{predicted(at, warn+h.LevelMarginS/2, warn+30, 1000)}, at)
	for _, a := range out {
		if a.Level != "warning" {
			t.Fatalf("within margin: %v", states(out))
		}
	}
	at = t0.Add(2 * time.Second)
	out = l.Apply(nil, []detect.Event{predicted(at, warn+h.LevelMarginS+1, warn+30, 1000)}, at)
	if len(out) != 1 || out[0].Level != "caution" {
		t.Fatalf("past margin: %v", states(out))
	}
}

func TestStaleClearsAtOnce(t *testing.T) {
	r := rules.Default()
	l := NewLifecycle(r, DefaultHysteresis(r))
	id := l.Apply(nil, []detect.Event{predicted(t0, 100, 130, 1000)}, t0)[0].ID
	out := l.Apply(nil, []detect.Event{ended(ReasonStale)}, t0.Add(time.Second))
	if len(out) != 1 || out[0].State != StateCleared || out[0].Reason != ReasonStale || out[0].ID != id {
		t.Fatalf("stale: %v", states(out))
	}
}

func TestAlertJSONShape(t *testing.T) {
	r := rules.Default()
	l := NewLifecycle(r, DefaultHysteresis(r))
	a := l.Apply(nil, []detect.Event{predicted(t0, 100, 130, 1000)}, t0)[0]
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range strings.Fields("id kind level state time t_in_s t_out_s t_cpa_s d_h_cpa_m d_v_cpa_m aircraft separation") {
		if _, ok := m[k]; !ok {
			t.Errorf("alert JSON lacks %q: %s", k, b)
		}
	}
	ac := m["aircraft"].([]any)[0].(map[string]any)
	for _, k := range strings.Fields("party aircraft callsign class lat lon alt_m vel_east_mps vel_north_mps vel_up_mps") {
		if _, ok := ac[k]; !ok {
			t.Errorf("aircraft JSON lacks %q: %s", k, b)
		}
	}
}

// TestFindIsOpen: Find returns the open alert of an id as Open lists it,
// and nothing for an id never raised or cleared since.
func TestFindIsOpen(t *testing.T) {
	r := rules.Default()
	l := NewLifecycle(r, DefaultHysteresis(r))
	id := l.Apply(nil, []detect.Event{predicted(t0, 100, 130, 1000)}, t0)[0].ID
	got, ok := l.Find(id)
	if open := l.Open(); !ok || len(open) != 1 || got.ID != open[0].ID || got.Level != open[0].Level || got.Time != open[0].Time {
		t.Fatalf("Find(%s) = %+v, %v; open %v", id, got, ok, states(open))
	}
	if _, ok := l.Find("nope"); ok {
		t.Fatal("found an alert never raised")
	}
	l.Apply(nil, []detect.Event{ended(ReasonStale)}, t0.Add(time.Second))
	if _, ok := l.Find(id); ok {
		t.Fatal("found a cleared alert")
	}
}

// TestNoRaiseUnderAClearedID: an alert renamed to the id another
// replica's engine gave it (from a report this engine has not had yet)
// and cleared here is raised, when that report comes, under a fresh id,
// not again under the one cleared; the ids cleared are let go once no
// report could derive them any more.
func TestNoRaiseUnderAClearedID(t *testing.T) {
	r := rules.Default()
	l := NewLifecycle(r, DefaultHysteresis(r))
	own := l.Apply(nil, []detect.Event{predicted(t0, 100, 130, 1000)}, t0)[0]
	// The other engine raised the pair from a report 2 s later.
	later := predicted(t0.Add(2*time.Second), 100, 130, 1000)
	key := later.Conflict.Key()
	theirs := newID(KindConflict, []track.Key{key.A, key.B}, later.Conflict.Time)
	if !l.Rename(&own, theirs) {
		t.Fatal("the open alert was not renamed")
	}
	out := l.Apply(nil, []detect.Event{ended(ReasonStale)}, t0.Add(3*time.Second))
	if len(out) != 1 || out[0].State != StateCleared || out[0].ID != theirs {
		t.Fatalf("clear: %v %v", states(out), out)
	}
	// The report that raised it there reaches this engine.
	out = l.Apply(nil, []detect.Event{later}, t0.Add(3*time.Second))
	if len(out) != 1 || out[0].State != StateRaised {
		t.Fatalf("raise: %v", states(out))
	}
	if out[0].ID == theirs || out[0].ID == own.ID {
		t.Fatalf("raised again under %s (cleared %s, first %s)", out[0].ID, theirs, own.ID)
	}
	// Its own id is spent once it clears too.
	again := out[0].ID
	l.Apply(nil, []detect.Event{ended(ReasonStale)}, t0.Add(4*time.Second))
	if _, kept := l.cleared[again]; !kept {
		t.Fatalf("the clear of %s is not kept", again)
	}
	// Past the stale time and any report's lead, no report derives them:
	// let go.
	l.Apply(nil, nil, t0.Add(4*time.Second+l.clearedIDsKept()+time.Second))
	if len(l.cleared) != 0 || len(l.clearedOrder) != 0 {
		t.Fatalf("ids kept after their time: %v", l.cleared)
	}
}

// TestDropClearing: an alert waiting out its clear is dropped, with
// nothing published of it then or when its wait would have ended, and
// the condition found again is raised as a new alert under the id its
// report derives (the dropped id is not spent: it was never cleared); an
// alert whose condition holds is not dropped.
func TestDropClearing(t *testing.T) {
	r := rules.Default()
	l := NewLifecycle(r, DefaultHysteresis(r))
	a := l.Apply(nil, []detect.Event{predicted(t0, 100, 130, 1000)}, t0)[0]
	if l.DropClearing(&a) {
		t.Fatal("dropped an alert whose condition holds")
	}
	l.Apply(nil, []detect.Event{ended(ReasonResolved)}, t0.Add(time.Second))
	if !l.DropClearing(&a) {
		t.Fatal("the alert waiting out its clear was not dropped")
	}
	if open := l.Open(); len(open) != 0 {
		t.Fatalf("open after the drop: %v", states(open))
	}
	if out := l.Apply(nil, nil, t0.Add(time.Minute)); len(out) != 0 {
		t.Fatalf("published after the drop: %v", states(out))
	}
	if l.DropClearing(&a) {
		t.Fatal("dropped an alert no longer open")
	}
	out := l.Apply(nil, []detect.Event{predicted(t0, 100, 130, 1000)}, t0.Add(time.Minute))
	if len(out) != 1 || out[0].State != StateRaised || out[0].ID != a.ID {
		t.Fatalf("the condition found again: %v %v, want raised as %s", states(out), out, a.ID)
	}
}
