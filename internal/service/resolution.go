package service

import (
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/cputime"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/resolve"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// This file wires tactical resolution (package resolve) into the
// service: for an open alert, the bands of each of its aircraft and one
// coordinated suggestion per aircraft, computed from the live picture on
// request (Resolution) and for every raised or updated conflict alert
// into the events of each party (commit.go).
//
// Need to know: the bands and the suggestion of an aircraft are computed
// against the aircraft its party may see (its own others and those
// disclosed to it, package disclose), the alert's other aircraft among
// them, so that no band or suggestion encodes an aircraft the party may
// not see; a party gets the resolution of its own aircraft only, and the
// other party's aircraft appears only as the intruder. Detection, which
// sees everything, still raises an alert for any conflict a manoeuvre
// would lead into with an aircraft the party does not see (beyond the
// disclosure distances), and that alert discloses it. The two aircraft's
// suggestions are chosen together: a party's suggestion can depend on
// what constrains the other aircraft (its manoeuvre must also be clear of
// the traffic its party sees), which tells the party no more than that
// a smaller coordinated manoeuvre was not possible.

// Resolution is what the service tells a party about getting out of an
// alert: for each of the alert's aircraft that belongs to the party (all
// of them for the operator), its bands and its suggestion.
type Resolution struct {
	AlertID string `json:"alert_id"`
	// Time is the moment the bands and suggestions refer to: every track
	// is extrapolated to it.
	Time     time.Time            `json:"time"`
	Aircraft []AircraftResolution `json:"aircraft"`
}

// AircraftResolution is the resolution of one aircraft.
type AircraftResolution struct {
	Party    string `json:"party"`
	Aircraft string `json:"aircraft"`
	Callsign string `json:"callsign"`
	// Intruder is the other aircraft of a conflict alert.
	Intruder *ResolutionIntruder `json:"intruder,omitempty"`
	Bands    resolve.Bands       `json:"bands"`
	// Suggestion is the aircraft's part of the coordinated manoeuvre
	// (conflict alerts only); absent when none within the limits clears
	// the pair without a new conflict.
	Suggestion *resolve.Manoeuvre `json:"suggestion,omitempty"`
}

// ResolutionIntruder names the other aircraft of the alert, as the alert
// does.
type ResolutionIntruder struct {
	Party    string `json:"party"`
	Aircraft string `json:"aircraft"`
	Callsign string `json:"callsign"`
}

// AlertClearedError is the answer for an alert that is no longer open.
type AlertClearedError struct{ ClearedAt time.Time }

func (e *AlertClearedError) Error() string {
	return "service: the alert cleared at " + e.ClearedAt.UTC().Format(time.RFC3339)
}

// Resolution returns the resolution of the open alert id for p: the
// bands and suggestion of p's own aircraft in it. ErrNotFound when no
// alert of that id concerns one of p's aircraft (open or cleared); an
// *AlertClearedError when it concerned p and has cleared.
func (s *Service) Resolution(p party.Principal, id string) (Resolution, error) {
	res, _, err := s.ResolutionWork(p, id)
	return res, err
}

// ResolutionWork is Resolution with the work it made (none when it
// computed nothing: an error), what the API charges a party's budget of
// resolutions on demand.
func (s *Service) ResolutionWork(p party.Principal, id string) (Resolution, ResolutionWork, error) {
	a, open := s.openAlert(id)
	found := &a
	if !open {
		if c, ok := s.cleared.get(id); ok && (p.Operator || slices.Contains(c.parties, p.Party)) {
			return Resolution{}, ResolutionWork{}, &AlertClearedError{ClearedAt: c.at}
		}
		return Resolution{}, ResolutionWork{}, ErrNotFound
	}
	if !p.Operator && !slices.Contains(found.Parties(), p.Party) {
		return Resolution{}, ResolutionWork{}, ErrNotFound
	}
	var work ResolutionWork
	res := s.resolveWork(found, s.now(), &work)
	if !p.Operator {
		res = res.forParty(p.Party)
	}
	return res, work, nil
}

// ResolutionWork counts the work of a resolution, which its CPU time
// follows (Units): the tracks its search listed near the alert's
// aircraft (copied out of the engine's index, then tested against the
// reach of each aircraft), and the tracks its bands and its suggestion
// were computed against (each asked about by need to know first). In
// metro 25,000 two drones' alert lists some 5,900 tracks and tests 380; a
// manned aircraft's lists the whole city, 25,200, and tests 3,800.
type ResolutionWork struct {
	Listed int
	// Tested sums the intruders of the bands of each aircraft
	// (resolve.Compute) and the others of each party of the suggestion
	// (resolve.Suggest).
	Tested int
}

// ResolutionBaseUnits is what every resolution costs besides the tracks
// it goes through, in units of work (ResolutionWork.Units): what the
// least of them cost (0.1-0.15 ms of a core, the intercept of the fit
// below: the frames and tests of its aircraft, need to know's picture,
// its answer).
const ResolutionBaseUnits = 1000

// ResolutionUnitsPerTested is what a track a resolution's bands or
// suggestion are computed against costs, in units of work, beside a
// track its search lists (a unit). Fitted, with ResolutionBaseUnits, by
// least squares to the CPU time of the resolution of each open alert in
// metro 25,000 and 5,000 (8.3 and 8.6 a listed track's cost), which the
// units then follow within a sixth for two drones' alerts and a manned
// aircraft's (BenchmarkResolve's cpu-ns/unit): a drone's cost is mostly
// its search's listing (some 5,900 tracks in metro 25,000, 380 tested),
// a manned aircraft's both (the whole city, 25,200, listed and 3,800
// tested).
const ResolutionUnitsPerTested = 8

// Units is what the work costs, in units of work: a unit is about what a
// track the search lists costs, 140-190 ns of a core at a load average of
// 13 on 2 cores (BenchmarkResolve's cpu-ns/unit).
func (w ResolutionWork) Units() float64 {
	return ResolutionBaseUnits + float64(w.Listed) + ResolutionUnitsPerTested*float64(w.Tested)
}

// forParty keeps the aircraft of party.
func (r Resolution) forParty(party string) Resolution {
	out := r
	out.Aircraft = nil
	for _, a := range r.Aircraft {
		if a.Party == party {
			out.Aircraft = append(out.Aircraft, a)
		}
	}
	return out
}

// resolver holds what resolutions are computed with, for one version of
// the rules.
type resolver struct {
	version int64
	// table is the rules' separation table and seps[i] the resolution's
	// separation of its entry i: each pair is kept apart by the entry of
	// its classes.
	table *detect.Table
	seps  []resolve.Separation
	// cfgs[c] and kinematics[c] are the limits of class c of the table
	// (rules.Performance): the span of its bands and how its suggestions
	// are flown.
	cfgs       []resolve.Config
	kinematics []resolve.Kinematics
	// reachM[i] is how far an intruder can be from the ownship and
	// still conflict with one of its candidates under entry i, leaving
	// out the speeds: a conflict needs the two within reachM[i] plus the
	// distance both fly over lookaheadS[i] (the entry's lookahead, with
	// the time the modified tau of DO-365 looks further). By entry, so
	// that two drones 50 m apart are not looked for as far as two
	// airliners five miles apart.
	reachM, lookaheadS []float64
}

// resolverFor returns the resolver of the rules in force.
func (s *Service) resolverFor(r rules.Rules) *resolver {
	if rv := s.resolvers.Load(); rv != nil && rv.version == r.Version {
		return rv
	}
	rv := &resolver{
		version: r.Version,
		table:   detect.ParamsFrom(r).Table,
	}
	for _, c := range rv.table.Classes() {
		cfg, k := limitsOf(r.PerformanceFor(c))
		rv.cfgs, rv.kinematics = append(rv.cfgs, cfg), append(rv.kinematics, k)
	}
	for _, e := range rv.table.Entries() {
		rv.seps = append(rv.seps, resolve.SeparationOf(e))
		var reachM, lookaheadS float64
		for _, l := range e.Levels {
			reach := l.Detector.Reach()
			reachM = max(reachM, math.Hypot(reach.HorizontalM, reach.VerticalM))
			lookaheadS = max(lookaheadS, e.LookaheadS+max(reach.HorizontalS, reach.VerticalS))
		}
		rv.reachM = append(rv.reachM, reachM)
		rv.lookaheadS = append(rv.lookaheadS, lookaheadS)
	}
	s.resolvers.Store(rv)
	return rv
}

// limitsOf is the bands' configuration (resolve.ConfigOf) and the
// suggestions' kinematics of a class with these performance limits:
// DAIDALUS's (DefaultKinematics) with the class's rates and altitude step.
func limitsOf(p rules.Performance) (resolve.Config, resolve.Kinematics) {
	k := resolve.DefaultKinematics()
	k.TurnRateDegPerS, k.VerticalRateMps = p.TurnRateDegPerS, p.VerticalRateMps
	k.AltStepM, k.MaxClimbM = p.AltStepM, p.MaxClimbM
	k.MinAltM, k.MaxAltM = p.MinAltM, p.MaxAltM
	return resolve.ConfigOf(p), k
}

// limits returns the bands' configuration and the suggestions'
// kinematics of a track's class (nil for a class the rules no longer
// know).
func (rv *resolver) limits(class string) (*resolve.Config, *resolve.Kinematics) {
	c, ok := rv.table.Class(class)
	if !ok {
		return nil, nil
	}
	return &rv.cfgs[c], &rv.kinematics[c]
}

// separation is the separation of the pair of tracks a and b: the entry of
// their classes; nil for a class the rules no longer know (a track of the
// rules before a change, which detection pairs with nothing either).
func (rv *resolver) separation(a, b *track.State) *resolve.Separation {
	e := rv.table.ForNames(a.Class, b.Class)
	if e == nil {
		return nil
	}
	return &rv.seps[e.Index()]
}

// resolve computes the resolution of every aircraft of the alert at now.
func (s *Service) resolve(a *alert.Alert, now time.Time) Resolution {
	return s.resolveWork(a, now, nil)
}

// resolveWork is resolve adding the work it makes to work (nil: not
// counted).
func (s *Service) resolveWork(a *alert.Alert, now time.Time, work *ResolutionWork) Resolution {
	rv := s.resolverFor(s.Rules())
	near, matter, release := s.nearAlertsSearchWork(rv, []*alert.Alert{a}, now, s.readNear(now), work)
	defer release()
	return s.resolveSharedWork(rv, a, now, near[0], matter[0], nil, work)
}

// nearAlertsMatter returns, for each alert, the live tracks that can
// matter to an aircraft of it (within reach of its centre, nearCentres,
// and not ruled out by resolve.Matter, which tells the few that can
// matter from the city of drones a manned aircraft's reach covers) and,
// for each of them, what it can matter to (matterBits); the alert's
// aircraft are among them as their tracks were when the centres were
// placed on them, so that each aircraft is resolved from the very track
// its search was centred on. One read of the alerts' own tracks and one
// query of the engine's index of track positions (alert.Engine.NearOf,
// one hold of the engine's lock, which ingest takes too) serve all the
// alerts with one picture of the tracks: it copies the tracks listed
// near the alerts' aircraft, not every live track, and nothing more
// under the lock; after it is released, it rules out most of them by
// the reach of each centre and the first test of Matter (Matter.Reaches,
// a few multiplications), runs the full tests of Matter on the others,
// and hands out the copy of each that matters to all the alerts it is
// near (a manned aircraft's reach covers a whole city of drones: copied
// per alert, the copies cost more than the query).
func (s *Service) nearAlertsMatter(rv *resolver, as []*alert.Alert, now time.Time) ([][]*track.State, [][]matterBits) {
	return s.nearAlertsBy(rv, as, now, func(keys []track.Key, centresOf func([]*track.State) ([][3]float64, radiusFunc), keep func(*track.State)) {
		s.tac.eng.Load().NearOf(keys, now, centresOf, keep)
	})
}

// nearAlertsLent is nearAlertsMatter lending the tracks out of buffers
// kept from one search to the next (nearAlertsSearch), not copying
// them: they are valid until release is called, which gives the buffers
// to the next search. What the pool and the requests on demand use; a
// search whose buffers are never released leaves them to the collector,
// and the next search grows its own under the engine's lock.
func (s *Service) nearAlertsLent(rv *resolver, as []*alert.Alert, now time.Time) ([][]*track.State, [][]matterBits, func()) {
	return s.nearAlertsSearch(rv, as, now, s.readNear(now))
}

// readNear reads the tracks near the centres at now from the engine's
// index.
func (s *Service) readNear(now time.Time) nearReader {
	return func(keys []track.Key, centresOf func([]*track.State) ([][3]float64, radiusFunc), keep func(*track.State)) {
		s.tac.eng.Load().NearOf(keys, now, centresOf, keep)
	}
}

// matterBits tells what a track near an alert can matter to: bit 2n the
// bands of the alert's aircraft n, bit 2n+1 its part of the pair's
// suggestion (resolve.Matter), for its first four aircraft; every bit is
// set for a track that may matter to anything (the alert's own aircraft,
// added whatever they matter to, and a track that matters to a fifth
// aircraft, which every track near its alert is taken to matter to).
type matterBits uint8

const matterAll matterBits = 0xff

// bandsOf and suggestionOf are the bits of aircraft n (every bit from the
// fifth on).
func bandsOf(n int) matterBits {
	if n >= 4 {
		return matterAll
	}
	return 1 << (2 * n)
}

func suggestionOf(n int) matterBits {
	if n >= 4 {
		return matterAll
	}
	return 1 << (2*n + 1)
}

// has reports whether a track with bits m can matter to what bit stands
// for.
func (m matterBits) has(bit matterBits) bool { return m&bit != 0 }

// radiusFunc is the radius of centre i for the tracks of class, at the
// fastest and oldest of them (alert.Engine.NearOf).
type radiusFunc = func(i int, class string, maxSpeedMps, maxStaleS float64) float64

// nearReader reads, as of one moment (alert.Engine.NearOf, under the
// engine's lock throughout), the live track of each key (nil for a key
// with none), then calls keep with the tracks near the centres centresOf
// places from those tracks (within its radius of them, in id order, among
// others: the engine's index; the tests also read every track, as the
// oracle of the index). keep copies the tracks it wants itself.
type nearReader func(keys []track.Key, centresOf func(own []*track.State) ([][3]float64, radiusFunc), keep func(*track.State))

// nearAlertsBy is nearAlertsMatter reading the tracks with read: the
// alerts' own tracks and the tracks near them are of one moment, so that
// no report comes in between and every alert of a group (which share the
// bands of an aircraft in several of them) sees the same track of each
// aircraft, its own or near.
//
// The tracks are copies of their own, each once however many alerts it
// is near: the buffers of the search go back to the next at once.
func (s *Service) nearAlertsBy(rv *resolver, as []*alert.Alert, now time.Time, read nearReader) ([][]*track.State, [][]matterBits) {
	near, matter, release := s.nearAlertsSearch(rv, as, now, read)
	defer release()
	copies := map[*track.State]*track.State{}
	for _, tracks := range near {
		for i, st := range tracks {
			c, ok := copies[st]
			if !ok {
				c = new(track.State)
				*c = *st
				copies[st] = c
			}
			tracks[i] = c
		}
	}
	return near, matter
}

// nearAlertsSearch is nearAlertsBy lending the tracks out of the
// buffers they were copied into under the engine's lock, kept from one
// search to the next (nearScratches): they are valid until release is
// called, which gives the buffers to the next search. Handed out as
// they were copied, not copied again: a manned aircraft's resolution
// has some 6,000 drones near, and copying them again (into fresh
// memory, zeroed first) cost a tenth of its search.
func (s *Service) nearAlertsSearch(rv *resolver, as []*alert.Alert, now time.Time, read nearReader) (near [][]*track.State, matter [][]matterBits, release func()) {
	return s.nearAlertsSearchWork(rv, as, now, read, nil)
}

// nearAlertsSearchWork is nearAlertsSearch adding the tracks it listed
// to work (nil: not counted).
func (s *Service) nearAlertsSearchWork(rv *resolver, as []*alert.Alert, now time.Time, read nearReader, work *ResolutionWork) (near [][]*track.State, matter [][]matterBits, release func()) {
	var keys []track.Key
	for _, a := range as {
		for i := range a.Aircraft {
			keys = append(keys, a.Aircraft[i].Key())
		}
	}
	var centres []nearCentre
	nowNs := now.UnixNano()
	// The radius of a centre for a class: the widest a track of the
	// class can be near it, at the fastest and oldest such track.
	radiusM := func(i int, class string, maxSpeedMps, maxStaleS float64) float64 {
		c, ok := rv.table.Class(class)
		if !ok {
			return -1
		}
		ce := &centres[i]
		return ce.reachM[c] + maxSpeedMps*(ce.perMps[c]+maxStaleS)
	}
	var own [][]*track.State
	centresOf := func(tracks []*track.State) ([][3]float64, radiusFunc) {
		own = make([][]*track.State, len(as))
		for i, a := range as {
			own[i], tracks = tracks[:len(a.Aircraft):len(a.Aircraft)], tracks[len(a.Aircraft):]
		}
		centres = rv.nearCentres(own, now)
		points := make([][3]float64, len(centres))
		for i := range centres {
			points[i] = centres[i].ecef
		}
		return points, radiusM
	}
	// Under the engine's lock, only a copy of each track the index lists
	// near a centre, into a buffer kept from one group to the next
	// (NearOf copies nothing itself): a manned aircraft's reach covers a
	// whole city of drones, and testing each against every centre of
	// the group under the lock held ingest up longer than ingest itself
	// (BENCHMARKS.md); even the test of the distance to each centre
	// alone, under the lock, held it longer than the copies it spares.
	// The copies are of the same moment as the alerts' own tracks.
	var sc *nearScratch
	select {
	case sc = <-nearScratches:
	default:
		sc = new(nearScratch)
	}
	release = func() {
		if sc == nil {
			return
		}
		// The strings of the copies are not held on to.
		clear(sc.listed)
		sc.listed, sc.within, sc.found = sc.listed[:0], sc.within[:0], sc.found[:0]
		select {
		case nearScratches <- sc:
		default:
		}
		sc = nil
	}
	read(keys, centresOf, func(st *track.State) {
		sc.listed = append(sc.listed, *st)
	})
	if work != nil {
		work.Listed += len(sc.listed)
	}
	// After the lock is released, the tracks within reach of a centre
	// are found, with the centres that reach them
	// (within[found[i].from:found[i].to]); then what each can matter to
	// is worked out, and those that matter to something are handed out,
	// each once for all the alerts it is near (the copies, which stay
	// where they are until release).
	rv.withMatters(centres, own, now)
	reachOf := centreReaches(centres, len(rv.table.Classes()))
	within, found := sc.within, sc.found
	lastClass, lastC, lastOK := "", uint8(0), false
	for n := range sc.listed {
		st := &sc.listed[n]
		if st.Class != lastClass || !lastOK {
			lastClass = st.Class
			lastC, lastOK = rv.table.Class(st.Class)
		}
		if !lastOK {
			continue
		}
		c := lastC
		v := math.Sqrt(st.VelECEF[0]*st.VelECEF[0] + st.VelECEF[1]*st.VelECEF[1] + st.VelECEF[2]*st.VelECEF[2])
		ageS := float64(nowNs-st.Time.UnixNano()) / 1e9
		staleS := max(0, ageS)
		from := len(within)
		known := false
		var at [3]float64
		for i := range reachOf[c] {
			ce := &reachOf[c][i]
			r := ce.reachM + v*(ce.perMps+staleS)
			dx := st.ECEF[0] - ce.ecef[0]
			if dx > r || dx < -r {
				continue
			}
			dy, dz := st.ECEF[1]-ce.ecef[1], st.ECEF[2]-ce.ecef[2]
			if dx*dx+dy*dy+dz*dz > r*r {
				continue
			}
			if !known {
				at, known = st.ECEFAt(ageS), true
			}
			if centres[i].reaches(c, &at, &st.VelECEF) {
				within = append(within, int32(i))
			}
		}
		if len(within) > from {
			found = append(found, foundTrack{st: st, class: c, from: int32(from), to: int32(len(within)), at: at})
		}
	}
	sc.within, sc.found = within, found
	out := make([][]*track.State, len(as))
	matter = make([][]matterBits, len(as))
	// The alerts each track is near, and what it can matter to in each.
	var nearAlerts []int
	var bits []matterBits
	// Whether the track matters to the bands of the aircraft of centre
	// i, known for the track when bandsSeen[i] is its number: an
	// aircraft in several alerts of the group is asked once
	// (nearCentre.same).
	bandsSeen, bandsMatter := make([]uint32, len(centres)), make([]bool, len(centres))
	for n := range found {
		f := &found[n]
		st, c := f.st, f.class
		nearAlerts, bits = nearAlerts[:0], bits[:0]
		rel := relMotion{at: f.at, vel: geo.ECEF{XM: st.VelECEF[0], YM: st.VelECEF[1], ZM: st.VelECEF[2]}}
		seq := uint32(n + 1)
		for _, i := range within[f.from:f.to] {
			ce := &centres[i]
			if bandsSeen[ce.same] != seq {
				bandsSeen[ce.same], bandsMatter[ce.same] = seq, centres[ce.same].mattersToBands(c, &rel)
			}
			var m matterBits
			if bandsMatter[ce.same] {
				m |= bandsOf(ce.aircraft)
			}
			if ce.mattersToSuggestion(c, &rel) {
				m |= suggestionOf(ce.aircraft)
			}
			if m == 0 {
				continue
			}
			// The centres of an alert are one after the other.
			if k := len(nearAlerts); k > 0 && nearAlerts[k-1] == ce.alert {
				bits[k-1] |= m
				continue
			}
			nearAlerts, bits = append(nearAlerts, ce.alert), append(bits, m)
		}
		if len(nearAlerts) == 0 {
			continue
		}
		for k, a := range nearAlerts {
			out[a], matter[a] = append(out[a], st), append(matter[a], bits[k])
		}
	}
	for a := range out {
		// An aircraft without a track has none among the tracks near
		// either: they are of the same moment.
		out[a], matter[a] = withOwn(out[a], matter[a], own[a])
	}
	return out, matter, release
}

// foundTrack is a track listed within reach of the centres
// within[from:to], of class class, at at now (earth-centred).
type foundTrack struct {
	st       *track.State
	class    uint8
	from, to int32
	at       [3]float64
}

// centreReach is what the test of a track's distance to a centre
// (nearCentre) reads, for tracks of one class: where the centre is, and
// its reachM and perMps for the class. One slice per class
// (centreReaches), in the order of the centres, so that the test of a
// track against every centre of a group reads them one after the other.
type centreReach struct {
	ecef           [3]float64
	reachM, perMps float64
}

// centreReaches is the centreReach of each centre, by class.
func centreReaches(centres []nearCentre, classes int) [][]centreReach {
	out := make([][]centreReach, classes)
	for c := range out {
		out[c] = make([]centreReach, len(centres))
		for i := range centres {
			ce := &centres[i]
			out[c][i] = centreReach{ecef: ce.ecef, reachM: ce.reachM[c], perMps: ce.perMps[c]}
		}
	}
	return out
}

// nearScratch is the buffers of one search (nearAlertsBy), kept from
// one to the next: the copies of the tracks listed, made under the
// engine's lock, the centres each is within reach of and the tracks
// found within reach of one.
type nearScratch struct {
	listed []track.State
	within []int32
	found  []foundTrack
}

// nearScratches holds the buffers of the searches (nearScratch): the
// copies made under the engine's lock grow once to the traffic of a
// city, then are reused without growing under the lock. Not a
// sync.Pool, which drops its buffers at each collection: they would grow
// again under the lock. As many as searches run at once (the pool of
// resolutions and a few requests).
var nearScratches = make(chan *nearScratch, runtime.GOMAXPROCS(0)+2)

// relMotion is a track's position at the time of the resolutions and its
// velocity, in earth-centred axes.
type relMotion struct {
	at  [3]float64
	vel geo.ECEF
}

// nearCentre is where the tracks that can matter to one aircraft of an
// alert are looked for: a track of class c at speed v, reported staleS
// before now, matters when its report is within reachM[c] + v*(perMps[c]
// + staleS) of ecef.
type nearCentre struct {
	alert          int
	ecef           [3]float64
	reachM, perMps []float64
	// aircraft is the index of the aircraft in its alert.
	aircraft int
	// same is the first centre of the same aircraft (this one's index
	// when it is the first): an aircraft in several alerts of a group
	// has one track, one frame and one Matter for its bands.
	same int
	// frame is the frame the aircraft's bands are computed in
	// (resolveShared), pair the frame of its pair's suggestion (the
	// pair's midpoint) when the alert is a conflict of two aircraft with
	// live tracks; bands[c] and suggestion[c] test there whether a track
	// of class c can matter (matters). All of them are set by
	// withMatters, after the engine's lock is released.
	frame             geo.Frame
	pair              *geo.Frame
	bands, suggestion []resolve.Matter
	// vel is the aircraft's velocity in earth-centred axes, up and
	// pairUp the vertical of frame and pair there.
	vel, up, pairUp [3]float64
}

// upOf is the vertical of f in earth-centred axes: the last row of its
// rotation, as it turns a vector into the frame.
func upOf(f *geo.Frame) [3]float64 {
	return [3]float64{f.VelocityFromECEF(geo.ECEF{XM: 1}).UpM, f.VelocityFromECEF(geo.ECEF{YM: 1}).UpM, f.VelocityFromECEF(geo.ECEF{ZM: 1}).UpM}
}

// reaches is the first test of mattersToBands and mattersToSuggestion
// (resolve.Matter.Reaches), worked out from the track's position at and
// velocity vel in earth-centred axes without converting them into either
// frame: what it needs of each frame is its vertical (up), the
// triple product giving the cross product of the horizontal parts. A
// few multiplications rule out, before any frame is built, most of the
// drones of a city around a manned aircraft.
func (ce *nearCentre) reaches(c uint8, at, vel *[3]float64) bool {
	r := [3]float64{at[0] - ce.ecef[0], at[1] - ce.ecef[1], at[2] - ce.ecef[2]}
	w := [3]float64{vel[0] - ce.vel[0], vel[1] - ce.vel[1], vel[2] - ce.vel[2]}
	cross := [3]float64{r[1]*w[2] - r[2]*w[1], r[2]*w[0] - r[0]*w[2], r[0]*w[1] - r[1]*w[0]}
	ww := w[0]*w[0] + w[1]*w[1] + w[2]*w[2]
	dot := func(u, x *[3]float64) float64 { return u[0]*x[0] + u[1]*x[1] + u[2]*x[2] }
	z, vz := dot(&ce.up, &r), dot(&ce.up, &w)
	if ce.bands[c].Reaches(z, vz, dot(&ce.up, &cross), ww-vz*vz) {
		return true
	}
	if ce.pair == nil {
		return false
	}
	z, vz = dot(&ce.pairUp, &r), dot(&ce.pairUp, &w)
	return ce.suggestion[c].Reaches(z, vz, dot(&ce.pairUp, &cross), ww-vz*vz)
}

// mattersToBands reports whether a track of class c, moving as m, can
// matter to the bands of the aircraft of centre ce, in its own frame, and
// mattersToSuggestion whether it can matter to the suggestion of its
// pair, in the pair's frame (resolve.Matter). Exact for the resolution:
// a track they leave out changes nothing
// (TestResolutionConsidersEveryAircraftThatMatters compares with every
// track).
func (ce *nearCentre) mattersToBands(c uint8, m *relMotion) bool {
	rel := geo.ECEF{XM: m.at[0] - ce.ecef[0], YM: m.at[1] - ce.ecef[1], ZM: m.at[2] - ce.ecef[2]}
	// The relative position and the velocity rotated into the frame,
	// the aircraft at its origin (NewMatter).
	return ce.bands[c].Bands(resolve.Aircraft{Pos: enuVec(ce.frame.VelocityFromECEF(rel)), Vel: enuVec(ce.frame.VelocityFromECEF(m.vel))})
}

func (ce *nearCentre) mattersToSuggestion(c uint8, m *relMotion) bool {
	if ce.pair == nil {
		return false
	}
	rel := geo.ECEF{XM: m.at[0] - ce.ecef[0], YM: m.at[1] - ce.ecef[1], ZM: m.at[2] - ce.ecef[2]}
	return ce.suggestion[c].Suggestion(resolve.Aircraft{Pos: enuVec(ce.pair.VelocityFromECEF(rel)), Vel: enuVec(ce.pair.VelocityFromECEF(m.vel))})
}

// enuVec is an east-north-up vector as resolve has it.
func enuVec(v geo.ENU) detect.Vec3 { return detect.Vec3{X: v.EastM, Y: v.NorthM, Z: v.UpM} }

// nearCentres places a centre on each aircraft's own track (own, by
// alert), extrapolated to now: the tracks that can matter to its
// resolution are within reach, under the separation of their pair, of
// where any of its candidates takes it over the pair's lookahead. A
// candidate first moves the aircraft by at most jumpM (an altitude
// candidate puts it at once anywhere between its class's lowest and
// highest altitude: its altitude now is the reported one moved on at its
// vertical speed, which is exact in the east-north-up frame of the report
// the bands are computed in), then flies at most at ownMaxMps (the fastest
// candidate ground speed or its own, plus the fastest candidate vertical
// speed or its own). Centred on the track itself, not on the alert's copy
// of the aircraft: the two reports of a pair can be seconds apart, and the
// aircraft may have reported again since without moving the alert, faster
// than its class's limits.
//
// It places them only (where and how far: what the engine's index is
// asked, under its lock); withMatters adds what tells the tracks that
// can matter among those within reach, once the lock is released.
func (rv *resolver) nearCentres(own [][]*track.State, now time.Time) []nearCentre {
	classes := len(rv.table.Classes())
	var centres []nearCentre
	first := map[track.Key]int{}
	for ai, tracks := range own {
		for n, st := range tracks {
			if st == nil {
				continue
			}
			c, ok := rv.table.Class(st.Class)
			if !ok {
				continue
			}
			cfg := &rv.cfgs[c]
			sinceS := now.Sub(st.Time).Seconds()
			altM := st.Pos.AltM + st.VelUpMps*sinceS
			ownMaxMps := max(cfg.MaxGsMps, math.Hypot(st.VelEastMps, st.VelNorthMps)) +
				max(-cfg.MinVsMps, cfg.MaxVsMps, math.Abs(st.VelUpMps))
			jumpM := max(0, altM-cfg.MinAltM, cfg.MaxAltM-altM)
			ce := nearCentre{alert: ai, aircraft: n, ecef: st.ECEFAt(sinceS), reachM: make([]float64, classes), perMps: make([]float64, classes)}
			for oc := range classes {
				entry := rv.table.For(c, uint8(oc)).Index()
				look := rv.lookaheadS[entry]
				ce.reachM[oc] = rv.reachM[entry] + jumpM + ownMaxMps*look
				ce.perMps[oc] = look
			}
			ce.same = len(centres)
			if f, ok := first[st.Key()]; ok {
				ce.same = f
			} else {
				first[st.Key()] = ce.same
			}
			centres = append(centres, ce)
		}
	}
	return centres
}

// withMatters completes the centres nearCentres placed on the same own
// tracks (by alert) at now: each aircraft's frame, its pair's, and the
// resolve.Matter of each class in each.
func (rv *resolver) withMatters(centres []nearCentre, own [][]*track.State, now time.Time) {
	classes := len(rv.table.Classes())
	// The frame of each alert's pair's suggestion, as resolveShared has
	// it (nil: none).
	pairs := make(map[int]*geo.Frame)
	for i := range centres {
		ce := &centres[i]
		tracks := own[ce.alert]
		pair, ok := pairs[ce.alert]
		if !ok {
			if len(tracks) == 2 && tracks[0] != nil && tracks[1] != nil {
				f := geo.NewFrame(midpoint(tracks[0], tracks[1], now))
				pair = &f
			}
			pairs[ce.alert] = pair
		}
		st := tracks[ce.aircraft]
		c, _ := rv.table.Class(st.Class)
		cfg := &rv.cfgs[c]
		ce.frame, ce.pair = geo.NewFrame(geo.LLA{LatDeg: st.Pos.LatDeg, LonDeg: st.Pos.LonDeg}), pair
		ce.bands = make([]resolve.Matter, classes)
		ce.vel, ce.up = st.VelECEF, upOf(&ce.frame)
		if pair != nil {
			ce.pairUp = upOf(pair)
		}
		// The aircraft's velocity in each frame, at the origin.
		own := inFrame(ce.frame, st, now)
		own.Pos = detect.Vec3{}
		var ownInPair resolve.Aircraft
		if pair != nil {
			ownInPair = resolve.Aircraft{Vel: inFrame(*pair, st, now).Vel}
			ce.suggestion = make([]resolve.Matter, classes)
		}
		for oc := range classes {
			sep := &rv.seps[rv.table.For(c, uint8(oc)).Index()]
			ce.bands[oc] = resolve.NewMatter(own, sep, cfg, &rv.kinematics[c])
			if pair != nil {
				ce.suggestion[oc] = resolve.NewMatter(ownInPair, sep, cfg, &rv.kinematics[c])
			}
		}
	}
}

// withOwn puts the alert's own tracks in near in place of the copies of
// the same aircraft found there (of the same read), or adds them, each
// as a track that may matter to anything (matterAll): the aircraft of the
// alert are each other's intruder whatever the tests found.
func withOwn(near []*track.State, matter []matterBits, own []*track.State) ([]*track.State, []matterBits) {
	for _, st := range own {
		if st == nil {
			continue
		}
		i := slices.IndexFunc(near, func(n *track.State) bool { return n.Key() == st.Key() })
		if i < 0 {
			near, matter = append(near, st), append(matter, matterAll)
			continue
		}
		near[i], matter[i] = st, matterAll
	}
	return near, matter
}

// sharedBands are the bands of the aircraft already resolved among the
// alerts of one group (startResolutions): one aircraft in several alerts
// of the group (a manned aircraft is in several at once in a city) is
// resolved from one track read at one moment, at one time, against the
// aircraft its party may see among the tracks near each alert, which all
// hold every track that can matter to its bands (resolve.Matter): the
// same bands. TestResolutionInMetroTrafficConsidersEveryAircraftThatMatters
// compares them with those computed alone and against every aircraft.
type sharedBands map[track.Key]resolve.Bands

// resolveShared computes the resolution of every aircraft of the alert at
// now, each aircraft against the tracks of near (nearAlertsMatter) that
// can matter to it (matter, by track; nil: every track), taking the
// bands of an aircraft from shared when they are there, and putting
// there those it computes (shared nil: none shared).
func (s *Service) resolveShared(rv *resolver, a *alert.Alert, now time.Time, near []*track.State, matter []matterBits, shared sharedBands) Resolution {
	return s.resolveSharedWork(rv, a, now, near, matter, shared, nil)
}

// resolveSharedWork is resolveShared adding the tracks its bands and
// suggestion are computed against to work (nil: not counted).
func (s *Service) resolveSharedWork(rv *resolver, a *alert.Alert, now time.Time, near []*track.State, matter []matterBits, shared sharedBands, work *ResolutionWork) Resolution {
	res := Resolution{AlertID: a.ID, Time: now.UTC()}
	keys := make([]track.Key, len(a.Aircraft))
	for i := range a.Aircraft {
		keys[i] = a.Aircraft[i].Key()
	}
	own := make([]*track.State, len(keys))
	// Buffers as long as near, kept from one resolution to the next: a
	// manned aircraft's resolution goes through the thousands of drones
	// that can matter to it, and zeroing fresh ones of that size cost
	// more than filling them.
	sc := resolveScratches.Get().(*resolveScratch)
	defer resolveScratches.Put(sc)
	// The class of each track near (ok false for one the rules no longer
	// know, which nothing is separated from).
	classes := grown(sc.classes, len(near))
	known := grown(sc.known, len(near))
	sc.classes, sc.known = classes, known
	lastClass, lastC, lastOK := "", uint8(0), false
	for i, st := range near {
		// The alert's own tracks are among those that may matter to
		// anything (withOwn).
		for n, k := range keys {
			if (matter == nil || matter[i] == matterAll) && st.Party == k.Party && st.Aircraft == k.Aircraft {
				own[n] = st
			}
		}
		if st.Class != lastClass || i == 0 {
			lastClass = st.Class
			lastC, lastOK = rv.table.Class(st.Class)
		}
		classes[i], known[i] = lastC, lastOK
	}
	// separation is the separation of me, of class c, with near[i]
	// (rv.separation without looking the classes up by name).
	separation := func(c uint8, i int) *resolve.Separation {
		if !known[i] {
			return nil
		}
		return &rv.seps[rv.table.For(c, classes[i]).Index()]
	}
	classOf := func(st *track.State) (uint8, bool) { return rv.table.Class(st.Class) }
	visible := s.visibleWhereMattersIn(sc, near, matter, a, now)
	// The suggestion of a conflict, in the frame of the pair's midpoint:
	// each track converted once for both aircraft.
	var sugg resolve.Suggestion
	suggested := false
	if a.Kind == alert.KindConflict && len(own) == 2 && own[0] != nil && own[1] != nil {
		f := geo.NewFrame(midpoint(own[0], own[1], now))
		inPair := grown(sc.inPair, len(near))
		converted := grown(sc.converted, len(near))
		clear(converted)
		sc.inPair, sc.converted = inPair, converted
		parties := [2]resolve.Party{}
		for n := range 2 {
			me, other := own[n], own[1-n]
			parties[n].Aircraft = inFrame(f, me, now)
			parties[n].Others = sc.others[n][:0]
			c, ok := classOf(me)
			for i, st := range near {
				if st == me || st == other || matter != nil && !matter[i].has(suggestionOf(n)) || !visible(me.Party, i) {
					continue
				}
				if !converted[i] {
					inPair[i], converted[i] = inFrame(f, st, now), true
				}
				var sep *resolve.Separation
				if ok {
					sep = separation(c, i)
				}
				parties[n].Others = append(parties[n].Others, resolve.Intruder{Aircraft: inPair[i], Sep: sep})
			}
		}
		_, ka := rv.limits(own[0].Class)
		_, kb := rv.limits(own[1].Class)
		if sep := rv.separation(own[0], own[1]); sep != nil && ka != nil && kb != nil {
			sugg, suggested = resolve.Suggest(&parties[0], &parties[1], sep, ka, kb)
		}
		if work != nil {
			work.Tested += len(parties[0].Others) + len(parties[1].Others)
		}
		for n := range 2 {
			sc.others[n] = parties[n].Others[:0]
		}
	}
	for n, ac := range a.Aircraft {
		me := own[n]
		out := AircraftResolution{Party: ac.Party, Aircraft: ac.Aircraft, Callsign: ac.Callsign}
		if a.Kind == alert.KindConflict && len(a.Aircraft) == 2 {
			o := a.Aircraft[1-n]
			out.Intruder = &ResolutionIntruder{Party: o.Party, Aircraft: o.Aircraft, Callsign: o.Callsign}
		}
		if me == nil {
			// The track went stale since: nothing to resolve with.
			res.Aircraft = append(res.Aircraft, out)
			continue
		}
		cfg, _ := rv.limits(me.Class)
		if cfg == nil {
			// A class the rules no longer know (a track of the rules
			// before a change): nothing to resolve with.
			res.Aircraft = append(res.Aircraft, out)
			continue
		}
		// Bands in the aircraft's own east-north-up frame, its altitude
		// up: the frame's origin is on the ellipsoid below it.
		f := geo.NewFrame(geo.LLA{LatDeg: me.Pos.LatDeg, LonDeg: me.Pos.LonDeg})
		ownAc := inFrame(f, me, now)
		bands, done := shared[keys[n]]
		if !done {
			c, _ := classOf(me)
			intruders := sc.intruders[:0]
			for i, st := range near {
				if st == me || matter != nil && !matter[i].has(bandsOf(n)) || !visible(me.Party, i) {
					continue
				}
				intruders = append(intruders, resolve.Intruder{Aircraft: inFrame(f, st, now), Sep: separation(c, i)})
			}
			bands = resolve.Compute(ownAc, intruders, cfg)
			if work != nil {
				work.Tested += len(intruders)
			}
			sc.intruders = intruders[:0]
			if shared != nil {
				shared[keys[n]] = bands
			}
		}
		out.Bands = bands
		if suggested {
			m := sugg.A
			if n == 1 {
				m = sugg.B
			}
			// The new track and altitude from the aircraft's own track
			// and altitude (the pair's frame tilts away from each
			// aircraft's vertical and north).
			track := math.Mod(math.Atan2(ownAc.Vel.X, ownAc.Vel.Y)*180/math.Pi+360, 360)
			m.TrackDeg = math.Mod(track+m.TurnDeg+360, 360)
			m.AltM = ownAc.Pos.Z + m.ClimbM
			out.Suggestion = &m
		}
		res.Aircraft = append(res.Aircraft, out)
	}
	return res
}

// visibleWhereMatters returns whether the party of one of the alert's
// aircraft may see near[i] at now (need to know), asking the picture
// once per party, and only about the tracks that can matter to one of
// its aircraft (matter, by track; nil: every track): it answers false
// for the others, which are not to be asked about.
func (s *Service) visibleWhereMatters(near []*track.State, matter []matterBits, a *alert.Alert, now time.Time) func(party string, i int) bool {
	return s.visibleWhereMattersIn(&resolveScratch{}, near, matter, a, now)
}

// visibleWhereMattersIn is visibleWhereMatters asking with the buffers
// of sc (its answers are read from them: valid until sc is used again).
func (s *Service) visibleWhereMattersIn(sc *resolveScratch, near []*track.State, matter []matterBits, a *alert.Alert, now time.Time) func(party string, i int) bool {
	pic := s.picture()
	if pic == nil {
		return func(string, int) bool { return true }
	}
	byParty := map[string][]bool{}
	keys, asked := sc.keys[:0], sc.asked[:0]
	defer func() { sc.keys, sc.asked = keys[:0], asked[:0] }()
	for pi, ac := range a.Aircraft {
		if _, ok := byParty[ac.Party]; ok {
			continue
		}
		var bits matterBits // what the party's aircraft are
		for n, other := range a.Aircraft {
			if other.Party == ac.Party {
				bits |= bandsOf(n) | suggestionOf(n)
			}
		}
		keys, asked = keys[:0], asked[:0]
		for i := range near {
			if matter == nil || matter[i]&bits != 0 {
				keys, asked = append(keys, near[i].Key()), append(asked, i)
			}
		}
		sc.seen = pic.VisibleEach(sc.seen[:0], ac.Party, keys, now)
		for len(sc.visible) <= pi {
			sc.visible = append(sc.visible, nil)
		}
		visible := grown(sc.visible[pi], len(near))
		clear(visible)
		sc.visible[pi] = visible
		for k, i := range asked {
			visible[i] = sc.seen[k]
		}
		byParty[ac.Party] = visible
	}
	return func(party string, i int) bool { return byParty[party][i] }
}

// resolveScratch is the buffers of one resolution (resolveShared), kept
// from one to the next (resolveScratches).
type resolveScratch struct {
	classes   []uint8
	known     []bool
	inPair    []resolve.Aircraft
	converted []bool
	others    [2][]resolve.Intruder
	intruders []resolve.Intruder
	// Need to know's (visibleWhereMattersIn): the keys asked about,
	// their places in near, the answers, and the answers by place for
	// the party of each aircraft of the alert.
	keys    []track.Key
	asked   []int
	seen    []bool
	visible [][]bool
}

var resolveScratches = sync.Pool{New: func() any { return new(resolveScratch) }}

// grown is buf with length n, reallocated only when too short (its
// values are what they were: the caller sets or clears them).
func grown[T any](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	return buf[:n]
}

// midpoint is the point halfway between two tracks at now.
func midpoint(a, b *track.State, now time.Time) geo.LLA {
	pa, pb := a.ECEFAt(now.Sub(a.Time).Seconds()), b.ECEFAt(now.Sub(b.Time).Seconds())
	return geo.FromECEF(geo.ECEF{XM: (pa[0] + pb[0]) / 2, YM: (pa[1] + pb[1]) / 2, ZM: (pa[2] + pb[2]) / 2})
}

// inFrame is the track extrapolated to now in frame f: the straight line
// in earth-centred space the detection engine extrapolates along, which
// is a straight line in any east-north-up frame.
func inFrame(f geo.Frame, s *track.State, now time.Time) resolve.Aircraft {
	at := s.ECEFAt(now.Sub(s.Time).Seconds())
	p := f.FromECEF(geo.ECEF{XM: at[0], YM: at[1], ZM: at[2]})
	v := f.VelocityFromECEF(geo.ECEF{XM: s.VelECEF[0], YM: s.VelECEF[1], ZM: s.VelECEF[2]})
	return resolve.Aircraft{
		Pos: detect.Vec3{X: p.EastM, Y: p.NorthM, Z: p.UpM},
		Vel: detect.Vec3{X: v.EastM, Y: v.NorthM, Z: v.UpM},
	}
}

// clearedAlerts remembers, for a while, when recent alerts cleared and
// whom they concerned, so that a resolution asked for too late is
// answered 410 with the time rather than 404.
type clearedAlerts struct {
	mu    sync.Mutex
	byID  map[string]clearedAlert
	order []string // oldest first
}

type clearedAlert struct {
	at      time.Time
	parties []string
}

// clearedKept bounds the alerts remembered.
const clearedKept = 100_000

func (c *clearedAlerts) add(a *alert.Alert) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		c.byID = map[string]clearedAlert{}
	}
	if _, ok := c.byID[a.ID]; !ok {
		c.order = append(c.order, a.ID)
	}
	c.byID[a.ID] = clearedAlert{at: a.Time, parties: a.Parties()}
	for len(c.order) > clearedKept {
		delete(c.byID, c.order[0])
		c.order = c.order[1:]
	}
}

func (c *clearedAlerts) get(id string) (clearedAlert, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.byID[id]
	return a, ok
}

// resolutionWait bounds how long the events of a transition wait for its
// resolution, from the moment the transition is queued: however many
// commits it waits behind, an alert is not held back longer by its
// resolution.
const resolutionWait = 250 * time.Millisecond

// pendingResolution is the resolution of one transition being computed.
type pendingResolution struct {
	done chan struct{}
	res  *Resolution
	// deadline is resolutionWait after the transition was queued: no
	// commit waits for it later.
	deadline time.Time
	// late is set when the commit went on without it, superseded when a
	// newer transition of the alert was queued with a resolution of its
	// own: if not started yet, it is not computed at all.
	late, superseded atomic.Bool
}

// newPendingResolution is the resolution of a transition queued now.
func newPendingResolution() *pendingResolution {
	return &pendingResolution{done: make(chan struct{}), deadline: time.Now().Add(resolutionWait)}
}

// await returns once the resolution is computed (or skipped) or its
// deadline has passed, whichever comes first.
func (p *pendingResolution) await() {
	select {
	case <-p.done:
		return
	default:
	}
	timer := time.NewTimer(time.Until(p.deadline))
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
	}
}

// ready reports whether a commit would not wait for it: computed or
// skipped, superseded (never waited for), or past its deadline.
func (p *pendingResolution) ready() bool {
	select {
	case <-p.done:
		return true
	default:
	}
	return p.superseded.Load() || !time.Now().Before(p.deadline)
}

// wait returns the resolution, or nil when it is not ready by its
// deadline; first tells whether this wait is the one that gave up on it
// (a commit tried again after a store failure waits again for the same
// one, and returns at once).
func (p *pendingResolution) wait() (res *Resolution, first bool) {
	p.await()
	select {
	case <-p.done:
		return p.res, false
	default:
		return nil, !p.late.Swap(true)
	}
}

// resolveGroup is how many alerts one pass over the tracks serves.
const resolveGroup = 8

// startResolutions starts computing the resolutions of the raised or
// updated conflicts among trs (nil for any other transition, or with
// Config.WithoutResolution), by trs's index: one task on a pool as wide
// as the machine, so that they are computed while the commit's queue
// forms and the commit itself waits for them the least. The task finds
// the tracks near each group of resolveGroup alerts in one pass, then
// resolves them in order, skipping those superseded or given up on
// meanwhile.
func (s *Service) startResolutions(trs []alert.Transition) []*pendingResolution {
	if s.cfg.WithoutResolution {
		return make([]*pendingResolution, len(trs))
	}
	ps := make([]*pendingResolution, len(trs))
	var todo []int
	for i := range trs {
		if tr := &trs[i]; tr.Kind == alert.KindConflict && tr.State != alert.StateCleared {
			ps[i] = newPendingResolution()
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return ps
	}
	alerts := make([]alert.Alert, len(todo))
	pending := make([]*pendingResolution, len(todo))
	for n, i := range todo {
		alerts[n], pending[n] = trs[i], ps[i]
	}
	go func() {
		s.resolving <- struct{}{}
		defer func() { <-s.resolving }()
		// Each is released as soon as it is computed or skipped.
		var live []*alert.Alert
		var livePending []*pendingResolution
		skipped := s.m.Resolutions.WithLabelValues("skipped")
		for n, p := range pending {
			if p.late.Load() || p.superseded.Load() {
				skipped.Inc()
				close(p.done)
				continue
			}
			live, livePending = append(live, &alerts[n]), append(livePending, p)
		}
		if len(live) == 0 {
			return
		}
		live, livePending = sharingAircraftTogether(live, livePending)
		// The CPU time of the task is its thread's while it runs on one
		// (where the system tells it), counted before each resolution is
		// released: whoever sees one computed sees its time counted.
		// Locked before the first reading: a reading on another thread
		// is another thread's time.
		runtime.LockOSThread()
		cpuAt, measured := cputime.Thread()
		if measured {
			defer runtime.UnlockOSThread()
		} else {
			runtime.UnlockOSThread()
		}
		countCPU := func() {
			if !measured {
				return
			}
			// A counter must not decrease (it would panic): a thread's
			// time never does, but a failed reading counts nothing.
			if now, ok := cputime.Thread(); ok && now >= cpuAt {
				s.m.ResolutionCPUSeconds.Add(float64(now-cpuAt) / 1e9)
				cpuAt = now
			}
		}
		computed := s.m.Resolutions.WithLabelValues("computed")
		rv := s.resolverFor(s.Rules())
		for len(live) > 0 {
			// A pass holds the engine's lock while it copies the tracks
			// listed near the group's aircraft, and tests each against
			// every aircraft of the group after: groups of a few keep
			// both short.
			n := min(len(live), resolveGroup)
			now := s.now()
			near, matter, release := s.nearAlertsLent(rv, live[:n], now)
			shared := sharedBands{}
			for i, p := range livePending[:n] {
				if !p.late.Load() && !p.superseded.Load() {
					r := s.resolveShared(rv, live[i], now, near[i], matter[i], shared)
					p.res = &r
					computed.Inc()
				} else {
					skipped.Inc()
				}
				countCPU()
				close(p.done)
			}
			// The group's tracks go back to the next search only once
			// every resolution of the group is done with them.
			release()
			live, livePending = live[n:], livePending[n:]
		}
	}()
	return ps
}

// sharingAircraftTogether orders the alerts of one task (with their
// pending resolutions, pending[i] that of live[i]) so that the alerts
// sharing an aircraft are resolved one after the other, in as few groups
// (resolveGroup) as they fill: a group reads the tracks near its alerts
// once and computes the bands of an aircraft in several of its alerts
// once (sharedBands). A manned aircraft over a city of drones is in
// several alerts of one commit, which the engine hands over in its own
// order, spread over the groups among the drones' alerts: its bands,
// against the thousands of drones that can matter to them, were computed
// once per group it was in (BENCHMARKS.md). Each alert goes with the
// aircraft it shares with the most others (the first in key order among
// equals); those of one aircraft come in the order they came, the most
// shared aircraft first, then the alerts sharing none, in the order they
// came. The resolutions are the same in any order: each is computed from
// the tracks of its group's one read.
func sharingAircraftTogether(live []*alert.Alert, pending []*pendingResolution) ([]*alert.Alert, []*pendingResolution) {
	alertsOf := map[track.Key]int{}
	for _, a := range live {
		for i := range a.Aircraft {
			alertsOf[a.Aircraft[i].Key()]++
		}
	}
	type entry struct {
		key    track.Key
		shared int // alerts of key, 1 when the alert shares no aircraft
		at     int // its place in live
	}
	entries := make([]entry, len(live))
	for n, a := range live {
		e := entry{shared: 1, at: n}
		for i := range a.Aircraft {
			k := a.Aircraft[i].Key()
			if c := alertsOf[k]; c > e.shared || c == e.shared && c > 1 && k.Compare(e.key) < 0 {
				e.key, e.shared = k, c
			}
		}
		entries[n] = e
	}
	slices.SortStableFunc(entries, func(x, y entry) int {
		switch {
		case x.shared == 1 && y.shared == 1:
			return 0
		case x.shared != y.shared:
			return y.shared - x.shared
		}
		return x.key.Compare(y.key)
	})
	outLive, outPending := make([]*alert.Alert, len(live)), make([]*pendingResolution, len(live))
	for n, e := range entries {
		outLive[n], outPending[n] = live[e.at], pending[e.at]
	}
	return outLive, outPending
}
