package track

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func report(party, id string, at time.Time, latDeg float64) Report {
	return Report{Party: party, Aircraft: id, Callsign: "CS" + id, Pos: geo.LLA{LatDeg: latDeg, LonDeg: 10, AltM: 9000}, VelEastMps: 200, Time: at}
}

func TestApplyIgnoresDuplicateAndOutOfOrder(t *testing.T) {
	tab := NewTable(30 * time.Second)
	id, o := tab.Apply(report("a", "1", t0, 50), t0)
	if o != Created {
		t.Fatalf("first report: %v, want created", o)
	}
	if _, o := tab.Apply(report("a", "1", t0.Add(2*time.Second), 51), t0.Add(2*time.Second)); o != Updated {
		t.Fatalf("newer report: %v, want updated", o)
	}
	// Same time, different content: a duplicate must not overwrite.
	if _, o := tab.Apply(report("a", "1", t0.Add(2*time.Second), 70), t0.Add(2*time.Second)); o != Duplicate {
		t.Fatalf("same-time report: %v, want duplicate", o)
	}
	if _, o := tab.Apply(report("a", "1", t0.Add(time.Second), 60), t0.Add(3*time.Second)); o != OutOfOrder {
		t.Fatalf("older report: %v, want out_of_order", o)
	}
	s, ok := tab.Get(id)
	if !ok {
		t.Fatal("track gone")
	}
	if s.Pos.LatDeg != 51 || !s.Time.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("track holds lat %v at %v; want the newest applied report (51 at +2s)", s.Pos.LatDeg, s.Time)
	}
	c := tab.Counters()
	if c.Created != 1 || c.Updated != 1 || c.Duplicate != 1 || c.OutOfOrder != 1 {
		t.Fatalf("counters %+v", c)
	}
}

func TestSameIDInTwoPartiesAreTwoTracks(t *testing.T) {
	tab := NewTable(30 * time.Second)
	a, _ := tab.Apply(report("a", "1", t0, 50), t0)
	b, o := tab.Apply(report("b", "1", t0, 50), t0)
	if o != Created || a == b || tab.Len() != 2 {
		t.Fatalf("second party's aircraft 1: %v id %d vs %d, len %d", o, b, a, tab.Len())
	}
}

func TestStaleTracksExpireAndTooOldReportsAreIgnored(t *testing.T) {
	stale := 30 * time.Second
	tab := NewTable(stale)
	old, _ := tab.Apply(report("a", "old", t0, 50), t0)
	fresh, _ := tab.Apply(report("a", "fresh", t0.Add(10*time.Second), 50), t0.Add(10*time.Second))

	var dropped []Key
	tab.Expire(t0.Add(stale), func(_ ID, s *State) { dropped = append(dropped, s.Key()) })
	if len(dropped) != 0 {
		t.Fatalf("expired %v exactly at the stale time; a track lives through it", dropped)
	}
	tab.Expire(t0.Add(stale+time.Millisecond), func(_ ID, s *State) { dropped = append(dropped, s.Key()) })
	if len(dropped) != 1 || dropped[0] != (Key{"a", "old"}) {
		t.Fatalf("expired %v, want only a/old", dropped)
	}
	if _, ok := tab.Get(old); ok {
		t.Fatal("expired track still readable")
	}
	if _, ok := tab.Get(fresh); !ok {
		t.Fatal("fresh track dropped")
	}
	if _, ok := tab.Lookup(Key{"a", "old"}); ok {
		t.Fatal("expired track still looked up")
	}

	now := t0.Add(time.Hour)
	if _, o := tab.Apply(report("a", "late", now.Add(-stale-time.Second), 50), now); o != TooOld {
		t.Fatalf("report older than the stale time: %v, want too_old", o)
	}
	if _, ok := tab.Lookup(Key{"a", "late"}); ok {
		t.Fatal("too-old report created a track")
	}
	// The freed slot is reused by a new track.
	id, o := tab.Apply(report("a", "new", now, 50), now)
	if o != Created || id != old {
		t.Fatalf("new track got id %d (%v), want the freed slot %d", id, o, old)
	}
	if c := tab.Counters(); c.Expired != 1 || c.TooOld != 1 {
		t.Fatalf("counters %+v", c)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	good := report("a", "1", t0, 50)
	if err := good.Validate(); err != nil {
		t.Fatalf("good report refused: %v", err)
	}
	cases := map[string]func(*Report){
		"party":         func(r *Report) { r.Party = "" },
		"aircraft":      func(r *Report) { r.Aircraft = "" },
		"lat":           func(r *Report) { r.Pos.LatDeg = 90.5 },
		"lon":           func(r *Report) { r.Pos.LonDeg = math.NaN() },
		"alt_m":         func(r *Report) { r.Pos.AltM = math.Inf(1) },
		"vel_north_mps": func(r *Report) { r.VelNorthMps = math.NaN() },
		"vel_east_mps":  func(r *Report) { r.VelEastMps = 5000 },
		"time":          func(r *Report) { r.Time = time.Time{} },
	}
	for field, spoil := range cases {
		r := good
		spoil(&r)
		err := r.Validate()
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("spoiled %s: error %v, want a *fielderr.Error on %s", field, err, field)
		}
	}
}

func TestFromGroundTrackConvertsAtTheEdge(t *testing.T) {
	r := FromGroundTrack("a", "4ca1f2", "EIN1", geo.LLA{LatDeg: 53, LonDeg: -6, AltM: 10000}, 480, 90, -1000, t0)
	wantSpeed := geo.KnotsToMps(480)
	if math.Abs(r.VelEastMps-wantSpeed) > 1e-9 || math.Abs(r.VelNorthMps) > 1e-9 {
		t.Fatalf("track 090 at 480 kt: east %v north %v, want east %v", r.VelEastMps, r.VelNorthMps, wantSpeed)
	}
	if math.Abs(r.VelUpMps-geo.FeetPerMinToMps(-1000)) > 1e-12 || r.VelUpMps >= 0 {
		t.Fatalf("descending 1000 ft/min: up %v", r.VelUpMps)
	}
	r = FromGroundTrack("a", "x", "", geo.LLA{}, 100, 180, 0, t0)
	if r.VelNorthMps >= 0 || math.Abs(r.VelEastMps) > 1e-9 {
		t.Fatalf("track 180: east %v north %v, want due south", r.VelEastMps, r.VelNorthMps)
	}
}

func TestECEFVelocityMatchesMotion(t *testing.T) {
	// Fly one second along the reported velocity with the geodesy and
	// compare with the ECEF extrapolation the detector uses.
	for _, p := range []geo.LLA{{LatDeg: 0, LonDeg: 0, AltM: 0}, {LatDeg: 89.9, LonDeg: 179.9, AltM: 10000}, {LatDeg: -45, LonDeg: -120, AltM: 3000}} {
		r := Report{Party: "a", Aircraft: "1", Pos: p, VelEastMps: 120, VelNorthMps: -80, VelUpMps: 10, Time: t0}
		s := NewState(r)
		f := geo.NewFrame(p)
		moved := s.ECEFAt(1)
		enu := f.ToENU(geo.FromECEF(geo.ECEF{XM: moved[0], YM: moved[1], ZM: moved[2]}))
		if math.Abs(enu.EastM-120) > 0.01 || math.Abs(enu.NorthM+80) > 0.01 || math.Abs(enu.UpM-10) > 0.01 {
			t.Errorf("at %+v one second of ECEF velocity lands at %+v, want (120, -80, 10)", p, enu)
		}
	}
}

// Admit refuses the reports that would start a track of a party beyond
// its limit, counting the tracks the batch itself starts, and never one
// of a live track or of another party; a track that goes stale makes room.
func TestAdmitBoundsThePartysTracks(t *testing.T) {
	tab := NewTable(30 * time.Second)
	for _, id := range []string{"1", "2"} {
		tab.Apply(report("a", id, t0, 50), t0)
	}
	at := t0.Add(20 * time.Second)
	batch := []Report{
		report("a", "1", at, 51), // live
		report("a", "3", at, 50), // the third and last
		report("a", "3", at.Add(time.Second), 50),
		report("a", "4", at, 50), // beyond
		report("b", "4", at, 50), // another party
		report("a", "2", at, 51), // live
		report("a", "5", at, 50), // beyond
	}
	refused := tab.Admit(batch, 3)
	if len(refused) != 2 || refused[0] != 3 || refused[1] != 6 {
		t.Fatalf("refused %v, want [3 6]", refused)
	}
	for i, r := range batch {
		if i != 3 && i != 6 {
			tab.Apply(r, at)
		}
	}
	if tab.PartyLen("a") != 3 || tab.PartyLen("b") != 1 {
		t.Fatalf("party a holds %d tracks, b %d; want 3 and 1", tab.PartyLen("a"), tab.PartyLen("b"))
	}
	// Aircraft 1 and 2 report again; 3 goes stale, which makes room for one.
	later := t0.Add(45 * time.Second)
	tab.Apply(report("a", "1", later, 52), later)
	tab.Apply(report("a", "2", later, 52), later)
	tab.Expire(at.Add(31*time.Second).Add(time.Second), nil)
	if tab.PartyLen("a") != 2 {
		t.Fatalf("party a holds %d tracks after one went stale, want 2", tab.PartyLen("a"))
	}
	if refused := tab.Admit([]Report{report("a", "6", later, 50), report("a", "7", later, 50)}, 3); len(refused) != 1 || refused[0] != 1 {
		t.Fatalf("refused %v after one went stale, want [1]", refused)
	}
}
