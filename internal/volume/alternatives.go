package volume

import (
	"math"
	"slices"
	"time"

	"github.com/golang/geo/s2"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/wiretime"
)

// Strategic alternatives: for a write that conflicts, the nearest
// conflict-free variants of the same volume that change its altitude band
// (moved up or down, the same thickness), its window (moved later or
// earlier, the same duration), or both.
//
// Only the band and the window move, so whether a variant conflicts with
// another volume O turns on two intervals: the shift of the band δ
// conflicts exactly on the open interval (O.lower − vsep − U, O.upper +
// vsep − L), and the shift of the window τ on the open interval
// (O.start − E − 2·buffer, O.end − S + 2·buffer) (band [L, U], window
// [S, E]; the conflict test's strict inequalities), provided O is near
// horizontally, which no shift changes. The smallest shift upwards is then
// the band's own position or one starting exactly at an obstacle's upper
// limit plus the separation (no other value can be the first free one),
// and likewise downwards, later and earlier: a handful of candidates, each
// checked with the conflict test itself, the first free one being exact
// and minimal. Both at once: of the candidate pairs, the one with the
// smallest change counted in the rules' own units (vertical separations
// and time buffers), offered when it is smaller than each single change
// in its directions.
//
// Which volumes count: those of other parties that are live, near
// horizontally (the separation included) and either visible to the
// writer (the caller says, by the visibility rules) or conflicting with
// the write as asked, which the answer to the write names anyway. So an
// alternative reveals nothing the writer may not see; under need-to-know
// visibility it may still conflict with a volume the writer cannot see,
// and writing it then gets the 409 that names that volume, as any write.
// Windows are searched within AlternativesHorizon of the window asked.
// The work of one search is bounded (MaxAlternativesChecks).

// AlternativesHorizon bounds how far a window is moved in search of a
// free one.
const AlternativesHorizon = 7 * 24 * time.Hour

// MaxAlternativesChecks bounds the work of one search of alternatives, in
// tests of a variant against one obstacle. The search is exact, and with
// thousands of obstacles stacked over every altitude for the whole
// horizon (each edge a candidate, none free) it tries every pair of
// candidates against every obstacle: 2,720 volumes of one party at one
// place took 3 s, and the time grows with the cube of their number (a
// party may hold 50,000), in the request of any party that writes there
// or asks. At the bound (about a tenth of a second) the search stops and
// offers what it had found exact and nearest before it: the changes of a
// single direction found, none of the rest. Real airspace finds its
// alternatives with a small fraction of it.
const MaxAlternativesChecks = 20_000_000

// Kinds of Alternative.
const (
	ChangeAltitude     = "altitude"
	ChangeTime         = "time"
	ChangeAltitudeTime = "altitude_time"
)

// Alternative is one conflict-free variant of a volume write: the write
// itself (Input, without key or version) and what changed.
type Alternative struct {
	// Change is altitude, time or altitude_time.
	Change string `json:"change"`
	// ClimbM is how far the band moved (up positive), ShiftS how far the
	// window moved (later positive).
	ClimbM float64 `json:"climb_m"`
	ShiftS float64 `json:"shift_s"`
	Input
}

// Alternatives returns the nearest conflict-free variants of the write in
// by party (of volume id, "" for a new one), as described above, ordered
// by the size of their change in the rules' units; none when the write
// does not conflict. visible says whether the writer may see a volume.
// checks is the work the search made, in tests of a variant against an
// obstacle (at most MaxAlternativesChecks): what a budget of searches
// charges. An invalid input is refused with the same error as the write.
func (r *Registry) Alternatives(party, id string, in Input, rl rules.Rules, now time.Time, visible func(*Volume) bool) (alts []Alternative, checks int, err error) {
	return r.AlternativesPaid(party, id, in, rl, now, visible, nil)
}

// AlternativesPaid is Alternatives paid for by pay (when not nil): once
// the volumes the search is among are known, and before it makes a check,
// pay is given how many they are and the most checks it can make among
// them (AlternativesChecksBound); when pay refuses them, the search ends with
// pay's error, nothing searched. A write that conflicts with nothing, or
// is invalid, is answered without calling pay: no search is made.
func (r *Registry) AlternativesPaid(party, id string, in Input, rl rules.Rules, now time.Time, visible func(*Volume) bool, pay func(near, mostChecks int) error) (alts []Alternative, checks int, err error) {
	return r.AlternativesPaidListed(party, id, in, rl, now, visible, nil, pay)
}

// AlternativesListingChecks is what AlternativesPaidListed asks, in
// checks, for each listing of a volume that the index visits as it lists
// the volumes around a write over the horizon (a volume is listed in each
// cell and hour bucket of the index it meets, so that one of a day is
// visited some 20 times in each cell the write's footprint covers): about
// 11 ns each, duplicates removed (9.9 million listings of 50,000 volumes
// of 20 hours stacked around a write took 110 ms on two loaded cores),
// three checks of 4 ns. A listing among the few volumes of real airspace
// costs tens of checks (three a volume of an hour near a write of an
// hour).
const AlternativesListingChecks = 3

// AlternativesPaidListed is AlternativesPaid that also pays, with
// payListing (when not nil), for listing the volumes around the write
// over the horizon: once the write is known to conflict, and before the
// index lists them, payListing is given what the listing costs,
// AlternativesListingChecks a listing visited; when it refuses, the
// search ends with its error, nothing listed or searched. The listing,
// which costs whatever the search reserves after it, is the dearest part
// of a search among many volumes the writer may not see (need to know):
// 50,000 around the write took 110 ms, for a search among the one it
// counted that reserved 48 checks.
func (r *Registry) AlternativesPaidListed(party, id string, in Input, rl rules.Rules, now time.Time, visible func(*Volume) bool, payListing func(checks int) error, pay func(near, mostChecks int) error) (alts []Alternative, checks int, err error) {
	if party == "" {
		return nil, 0, fielderr.Errorf("party", "missing")
	}
	if id == "" {
		id = "(new)"
	}
	v, err := NewVolume(id, party, in, rl)
	if err != nil {
		return nil, 0, err
	}
	if err := checkPriority(in, party, rl); err != nil {
		return nil, 0, err
	}
	if !v.State.Live() {
		return nil, 0, nil
	}
	// The index under the lock; visible, which may read the registry
	// too, after it.
	r.mu.RLock()
	p := r.idx.p
	conflicting := r.idx.Conflicts(v)
	horizonNs := AlternativesHorizon.Nanoseconds()
	fromNs, toNs := grownWindowNs(v, p.bufNs+horizonNs)
	var cover []s2.CellID
	if len(conflicting) > 0 {
		cover = r.idx.covering(v.shape)
	}
	if payListing != nil && len(conflicting) > 0 {
		listings := r.idx.listings(cover, fromNs, toNs)
		// Paid without the lock: payListing may wait.
		r.mu.RUnlock()
		if err := payListing(listings * AlternativesListingChecks); err != nil {
			return nil, 0, err
		}
		r.mu.RLock()
		conflicting = r.idx.Conflicts(v)
	}
	var cands []*Volume
	if len(conflicting) > 0 {
		cands = r.idx.nearbyCandidates(v, cover, fromNs, toNs)
	}
	r.mu.RUnlock()
	if len(conflicting) == 0 {
		return nil, 0, nil
	}
	// A set, not a look through the list per volume near: both are
	// thousands when a party's volumes are stacked over the write.
	isConflicting := make(map[*Volume]bool, len(conflicting))
	for _, c := range conflicting {
		isConflicting[c] = true
	}
	// Whether a volume counts, then, for those that do, the exact test
	// of the footprints (microseconds each, the dearest part of the
	// search's choice): tested first, the footprints of every volume of
	// the cells around the write were, over the fortnight of the
	// horizon, counted or not, a quarter of a second among 50,000 that
	// the writer may not see (need to know), while the search reserved
	// what it may cost among the one it counted, a few thousand checks.
	var obstacles []*Volume
	for _, o := range cands {
		if !isConflicting[o] && !visible(o) {
			continue
		}
		if r.onGeometryTest != nil {
			r.onGeometryTest(o)
		}
		if v.shape.near(o.shape, p.lim) {
			obstacles = append(obstacles, o)
		}
	}
	sortByID(obstacles)
	bound := AlternativesChecksBound(len(obstacles))
	if pay != nil {
		if err := pay(len(obstacles), bound); err != nil {
			return nil, 0, err
		}
	}
	s := &shifter{v: v, p: p, obstacles: obstacles, rl: rl, now: now, in: in, checksLeft: bound}
	out := s.alternatives()
	return out, bound - s.checksLeft, nil
}

// settleTries is how many times settle checks one candidate at most (the
// candidate, then moved outwards by a unit in the last place each time).
const settleTries = 4

// AlternativesChecksBound is the most checks a search of alternatives
// among obstacles volumes can make, known before it searches: each of the
// four directions tries its candidates (the volume's own position and an
// edge of each obstacle, obstacles+1 at most), each of the four pairs of
// directions its pairs of candidates beyond the current position
// (obstacles² at most), every candidate settled in settleTries checks
// against every obstacle at most; and never above MaxAlternativesChecks.
// A budget of searches reserves it: a search among the few volumes of
// real airspace reserves a few thousand checks, not the bound of the
// worst search (a search among 108 or more reserves that bound).
func AlternativesChecksBound(obstacles int) int {
	n := obstacles
	// Past the bound well before n³ overflows.
	if n >= 1000 {
		return MaxAlternativesChecks
	}
	return min(MaxAlternativesChecks, settleTries*n*(4*(n+1)+4*n*n))
}

// nearbyCandidates returns the live volumes of other parties listed in
// cover, the cells that cover v's footprint grown by the separation, at any
// altitude, whose window grown by the buffer meets [fromNs, toNs]: those
// whose footprint may be within the separation of v's, which the caller
// tests (shape.near) for those it counts.
func (x *Index) nearbyCandidates(v *Volume, cover []s2.CellID, fromNs, toNs int64) []*Volume {
	party := x.parties[v.Party]
	cands := x.candidates(cover, fromNs, toNs, func(e *entry) bool {
		return e.party != party && e.startNs < toNs && fromNs < e.endNs
	})
	out := cands[:0]
	for _, o := range cands {
		if o.ID != v.ID && o.State.Live() {
			out = append(out, o)
		}
	}
	return out
}

// shifter searches the shifts of one volume.
type shifter struct {
	v         *Volume
	in        Input
	p         params
	rl        rules.Rules
	now       time.Time
	obstacles []*Volume
	// checksLeft is what remains of the search's bound
	// (AlternativesChecksBound); exhausted is
	// set once a variant could not be checked whole for want of it.
	checksLeft int
	exhausted  bool
	// unchecked counts the candidates settle turned away before it made
	// a check: work the bound does not count. Only the write's own
	// position can be one (the lists hold allowed candidates beyond
	// it), so that every other candidate the search looks at is paid
	// for by a check; with the disallowed ones listed, a search whose
	// directions were all closed (a band at the floor, a window starting
	// now) went through every pair of candidates, n² of them among n
	// volumes, without a check: minutes of a core for 20,000 volumes,
	// charged a few thousand checks, holding the turn of work on demand.
	unchecked int
}

// variant is a candidate: the band's lower limit and the window's start.
type variant struct {
	lowerM  float64
	startNs int64
}

func (s *shifter) thickness() float64 { return s.v.AltUpperM - s.v.AltLowerM }
func (s *shifter) durationNs() int64  { return s.v.End.UnixNano() - s.v.Start.UnixNano() }

// volume is v moved to the variant.
func (s *shifter) volume(c variant) *Volume {
	m := *s.v
	m.AltLowerM, m.AltUpperM = c.lowerM, c.lowerM+s.thickness()
	m.Start = time.Unix(0, c.startNs).UTC()
	m.End = time.Unix(0, c.startNs+s.durationNs()).UTC()
	return &m
}

// allowed reports whether the variant is a valid write: its band within
// the altitudes a volume may have (allowedLower), its window within the
// times accepted, not over yet, and within the horizon (allowedStart).
// The two halves turn on one coordinate each, so that the candidates of
// a direction that no variant may take are left out of its list
// (lowers, starts) rather than turned away one pair at a time.
func (s *shifter) allowed(c variant) bool {
	return s.allowedLower(c.lowerM) && s.allowedStart(c.startNs)
}

func (s *shifter) allowedLower(lowerM float64) bool {
	return lowerM >= MinAltitudeM && lowerM+s.thickness() <= MaxAltitudeM
}

func (s *shifter) allowedStart(startNs int64) bool {
	start := time.Unix(0, startNs).UTC()
	end := time.Unix(0, startNs+s.durationNs()).UTC()
	if wiretime.Check("start", start) != nil || wiretime.Check("end", end) != nil {
		return false
	}
	if !s.now.Before(end.Add(s.rl.TimeBuffer())) {
		return false
	}
	shift := startNs - s.v.Start.UnixNano()
	return shift <= AlternativesHorizon.Nanoseconds() && -shift <= AlternativesHorizon.Nanoseconds()
}

// free reports whether the variant conflicts with no obstacle: the
// conflict test's altitude and time half (the obstacles are near
// horizontally, whatever the shift).
//
// Past the bound of checks nothing is free: the search is exhausted.
func (s *shifter) free(c variant) bool {
	m := s.volume(c)
	for _, o := range s.obstacles {
		if s.checksLeft <= 0 {
			s.exhausted = true
			return false
		}
		s.checksLeft--
		if closeInAltAndTime(m, o, s.p) {
			return false
		}
	}
	return true
}

// settle returns the variant if it is allowed and free, or, when it
// starts exactly at an obstacle's edge and rounding in the sum of the
// lower limit and the thickness puts it a hair inside, the variant moved
// outwards by the few units in the last place that take it out.
func (s *shifter) settle(c variant) (variant, bool) {
	l := s.v.AltLowerM
	for try := range settleTries {
		if !s.allowed(c) {
			if try == 0 {
				s.unchecked++
			}
			return c, false
		}
		if s.free(c) {
			return c, true
		}
		if c.lowerM == l {
			return c, false
		}
		c.lowerM = math.Nextafter(c.lowerM, math.Copysign(math.Inf(1), c.lowerM-l))
	}
	return c, false
}

// candidates of each direction, nearest first: the current position and
// each obstacle's edge beyond it where a variant may be (allowedLower,
// allowedStart).
func (s *shifter) lowers(up bool) []float64 {
	l, h, sep := s.v.AltLowerM, s.thickness(), s.p.vsepM
	out := []float64{l}
	for _, o := range s.obstacles {
		if c := o.AltUpperM + sep; up && c > l && s.allowedLower(c) {
			out = append(out, c)
		}
		// Downwards, the band's upper limit goes to the obstacle's lower
		// limit less the separation.
		if c := o.AltLowerM - sep - h; !up && c < l && s.allowedLower(c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b float64) int {
		da, db := math.Abs(a-l), math.Abs(b-l)
		switch {
		case da < db:
			return -1
		case da > db:
			return 1
		}
		return 0
	})
	return slices.Compact(out)
}

func (s *shifter) starts(later bool) []int64 {
	st, dur, buf := s.v.Start.UnixNano(), s.durationNs(), s.p.bufNs
	out := []int64{st}
	for _, o := range s.obstacles {
		if c := o.End.UnixNano() + 2*buf; later && c > st && s.allowedStart(c) {
			out = append(out, c)
		}
		if c := o.Start.UnixNano() - 2*buf - dur; !later && c < st && s.allowedStart(c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b int64) int {
		da, db := a-st, b-st
		if da < 0 {
			da = -da
		}
		if db < 0 {
			db = -db
		}
		return int(sign64(da - db))
	})
	return slices.Compact(out)
}

func sign64(x int64) int64 {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

// cost is the size of a variant's change in the rules' units: vertical
// separations plus time buffers (a second when the rules have none).
func (s *shifter) cost(c variant) float64 {
	bufS := max(s.p.bufNs, int64(time.Second))
	return math.Abs(c.lowerM-s.v.AltLowerM)/s.p.vsepM + math.Abs(float64(c.startNs-s.v.Start.UnixNano()))/float64(bufS)
}

// alternatives computes the singles of each direction and the
// combinations of each pair of directions.
func (s *shifter) alternatives() []Alternative {
	st, l := s.v.Start.UnixNano(), s.v.AltLowerM
	var out []Alternative
	single := map[string]*variant{}
	first := func(cands []variant) *variant {
		for _, c := range cands {
			if c, ok := s.settle(c); ok {
				return &c
			}
			if s.exhausted {
				break
			}
		}
		return nil
	}
	for _, up := range []bool{true, false} {
		var cs []variant
		for _, lower := range s.lowers(up) {
			cs = append(cs, variant{lower, st})
		}
		single[dir("alt", up)] = first(cs)
	}
	for _, later := range []bool{true, false} {
		var cs []variant
		for _, start := range s.starts(later) {
			cs = append(cs, variant{l, start})
		}
		single[dir("time", later)] = first(cs)
	}
	for _, k := range []string{"alt+", "alt-", "time+", "time-"} {
		if c := single[k]; c != nil {
			out = append(out, s.alternative(*c))
		}
	}
	for _, up := range []bool{true, false} {
		for _, later := range []bool{true, false} {
			if s.exhausted {
				// What remains might be nearer than what the rest of
				// the search would have found: offer none of it.
				break
			}
			var best *variant
			bestCost := math.Inf(1)
			for _, c := range []*variant{single[dir("alt", up)], single[dir("time", later)]} {
				if c != nil {
					bestCost = min(bestCost, s.cost(*c))
				}
			}
			// Both lists go outwards, so the cost grows along each: stop
			// a list where it cannot beat the best.
			starts := s.starts(later)
			for _, lower := range s.lowers(up)[1:] {
				altCost := s.cost(variant{lower, st})
				if altCost >= bestCost {
					break
				}
				for _, start := range starts[1:] {
					c := variant{lower, start}
					cost := s.cost(c)
					if cost >= bestCost {
						break
					}
					if c, ok := s.settle(c); ok {
						best, bestCost = &c, cost
						break
					}
					if s.exhausted {
						break
					}
				}
				if s.exhausted {
					break
				}
			}
			if best != nil && !s.exhausted {
				out = append(out, s.alternative(*best))
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Alternative) int {
		ca := s.cost(variant{a.AltLowerM, a.Start.UnixNano()})
		cb := s.cost(variant{b.AltLowerM, b.Start.UnixNano()})
		switch {
		case ca < cb:
			return -1
		case ca > cb:
			return 1
		}
		return 0
	})
	return out
}

func dir(what string, positive bool) string {
	if positive {
		return what + "+"
	}
	return what + "-"
}

// alternative is the write of a variant.
func (s *shifter) alternative(c variant) Alternative {
	m := s.volume(c)
	in := s.in
	in.Key, in.Version = nil, ""
	in.AltLowerM, in.AltUpperM, in.Start, in.End = m.AltLowerM, m.AltUpperM, m.Start, m.End
	a := Alternative{
		ClimbM: c.lowerM - s.v.AltLowerM,
		ShiftS: float64(c.startNs-s.v.Start.UnixNano()) / 1e9,
		Input:  in,
	}
	switch {
	case a.ClimbM != 0 && a.ShiftS != 0:
		a.Change = ChangeAltitudeTime
	case a.ClimbM != 0:
		a.Change = ChangeAltitude
	default:
		a.Change = ChangeTime
	}
	return a
}
