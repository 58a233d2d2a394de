package alert

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// Hysteresis holds the thresholds of the rule in the package comment.
type Hysteresis struct {
	ClearAfterS  float64
	LevelMarginS float64
	// A predicted moment moves materially by more than TimingS or
	// TimingShare of how far ahead it is, whichever is larger.
	TimingS, TimingShare float64
	// MissDistanceShare is the share of the pair's horizontal threshold
	// (detect.Entry.HorizontalM) by which the miss distance must move.
	MissDistanceShare float64
}

// DefaultHysteresis returns the documented defaults for the rules.
func DefaultHysteresis(rules.Rules) Hysteresis {
	return Hysteresis{ClearAfterS: 5, LevelMarginS: 10, TimingS: 5, TimingShare: 0.05, MissDistanceShare: 0.1}
}

type entry struct {
	pub      Alert // as last published
	sep      *detect.Entry
	levelIdx int
	// pubRel is the pair's relative motion as last published (for a
	// conflict): what its distance at an end of the lookahead is judged
	// against.
	pubRel relMotion
	// absentSince is when the condition was last found gone; zero while
	// it holds.
	absentSince time.Time
}

// Lifecycle turns detection events into alert transitions. It is not safe
// for concurrent use (Engine serialises it).
type Lifecycle struct {
	rules     rules.Rules
	h         Hysteresis
	conflicts map[detect.PairKey]*entry
	nonconf   map[track.Key]*entry
	// pending lists the entries whose condition is absent, waiting for
	// ClearAfterS: kept apart so that a tick does not scan every alert.
	pendingConf map[detect.PairKey]struct{}
	pendingNC   map[track.Key]struct{}
	// cleared holds the ids this lifecycle published cleared, until no
	// report could raise an alert under one any more (clearedIDsKept): a
	// raise under one gets a fresh id (raiseID). clearedOrder lists them
	// by when they were cleared, oldest first, so that a tick lets go of
	// those past their time without going through them all.
	cleared      map[string]time.Time
	clearedOrder []clearedID
}

// clearedID is an id published cleared, and when it may be let go.
type clearedID struct {
	id    string
	until time.Time
}

// clearedIDsLead is how far ahead of the clock a report's time can be and
// still be accepted: more than the service's bound (api.MaxFutureS, 10 s).
const clearedIDsLead = time.Minute

// clearedIDsKept is how long after its clear an id is kept: an id is
// derived from a report's time, at most clearedIDsLead ahead of the clear
// (an id taken from another replica, Rename, names a report that replica
// had, which this lifecycle may get later), and a report older than the
// stale time is refused (track.TooOld), so that none can derive it after
// that.
func (l *Lifecycle) clearedIDsKept() time.Duration {
	return l.rules.StaleAfter() + clearedIDsLead
}

// NewLifecycle makes an empty lifecycle.
func NewLifecycle(r rules.Rules, h Hysteresis) *Lifecycle {
	return &Lifecycle{
		rules:       r,
		h:           h,
		conflicts:   make(map[detect.PairKey]*entry),
		nonconf:     make(map[track.Key]*entry),
		pendingConf: make(map[detect.PairKey]struct{}),
		pendingNC:   make(map[track.Key]struct{}),
	}
}

// Apply appends to dst the transitions caused by the events at time now,
// followed by the clears whose wait ended.
func (l *Lifecycle) Apply(dst []Alert, events []detect.Event, now time.Time) []Alert {
	for i := range events {
		ev := &events[i]
		from := len(dst)
		switch ev.Kind {
		case detect.ConflictPredicted:
			dst = l.predicted(dst, &ev.Conflict, now)
		case detect.ConflictEnded:
			dst = gone(dst, l.conflicts, l.pendingConf, ev.Conflict.Key(), ev.Reason, ev.Stale, now)
		case detect.Nonconforming:
			dst = l.nonconforming(dst, &ev.Track, now)
		case detect.Conforming:
			dst = gone(dst, l.nonconf, l.pendingNC, ev.Track.Key(), ev.Reason, ev.Stale, now)
		}
		// At once: a later event of the batch may raise an alert of
		// the pair again.
		l.noteCleared(dst[from:], now)
	}
	return l.Tick(dst, now)
}

// raiseID is the id of an alert of kind about keys raised at now from a
// report at reported: derived from them (newID), unless this lifecycle
// published that id cleared, when it is reissued (as Reopen does). One
// engine derives an id only once from its own reports (a report as old as
// the last of a track is refused), but an alert renamed to the id another
// replica's engine gave it (Rename), and cleared here, is derived again
// when the report that raised it there reaches this engine: raised again
// under it, its story in the store would read raised, cleared, raised.
func (l *Lifecycle) raiseID(kind string, keys []track.Key, reported, now time.Time) string {
	id := newID(kind, keys, reported)
	for {
		until, spent := l.cleared[id]
		if !spent || now.After(until) {
			return id
		}
		id = reissuedID(kind, keys, id, now)
	}
}

// reissuedID is the new id of an alert whose id spent is spent, at now:
// derived from both, so that it is neither the spent id nor the id of an
// alert raised from a report at now.
func reissuedID(kind string, keys []track.Key, spent string, now time.Time) string {
	return newID(kind+"\x00reissued\x00"+spent, keys, now)
}

// letGoCleared lets go of the ids cleared that no report can derive any
// more at now (clearedIDsKept).
func (l *Lifecycle) letGoCleared(now time.Time) {
	for len(l.clearedOrder) > 0 && now.After(l.clearedOrder[0].until) {
		c := l.clearedOrder[0]
		l.clearedOrder = l.clearedOrder[1:]
		if l.cleared[c.id] == c.until {
			delete(l.cleared, c.id)
		}
	}
	if len(l.clearedOrder) == 0 {
		l.clearedOrder = nil // let go of the array the slicing kept
	}
}

// keepSpent makes the ids from published cleared, still kept, and those
// of spent, ended at now, spent in l too (Engine.KeepSpent).
func (l *Lifecycle) keepSpent(from *Lifecycle, spent []Alert, now time.Time) {
	from.letGoCleared(now)
	for _, c := range from.clearedOrder {
		if from.cleared[c.id] == c.until {
			l.spend(c.id, c.until)
		}
	}
	until := now.Add(l.clearedIDsKept())
	for i := range spent {
		l.spend(spent[i].ID, until)
	}
}

// spend keeps id from being raised under until then.
func (l *Lifecycle) spend(id string, until time.Time) {
	if l.cleared == nil {
		l.cleared = map[string]time.Time{}
	}
	if was, ok := l.cleared[id]; ok && !until.After(was) {
		return
	}
	l.cleared[id] = until
	l.clearedOrder = append(l.clearedOrder, clearedID{id: id, until: until})
}

// noteCleared keeps the ids of the clears in trs, published at now
// (raiseID).
func (l *Lifecycle) noteCleared(trs []Alert, now time.Time) {
	for i := range trs {
		if trs[i].State != StateCleared {
			continue
		}
		l.spend(trs[i].ID, now.Add(l.clearedIDsKept()))
	}
}

func (l *Lifecycle) predicted(dst []Alert, c *detect.Conflict, now time.Time) []Alert {
	key := c.Key()
	idx := c.Level - 1
	if idx < 0 || c.Sep == nil {
		// Beyond every level: not worth an alert, as if absent.
		return l.conflictGone(dst, key, ReasonResolved, now)
	}
	e, open := l.conflicts[key]
	if !open {
		a := l.conflictAlert(c, idx)
		a.ID = l.raiseID(KindConflict, []track.Key{key.A, key.B}, c.Time, now)
		a.State = StateRaised
		l.conflicts[key] = &entry{pub: a, sep: c.Sep, levelIdx: idx, pubRel: relMotionOf(c)}
		return append(dst, a)
	}
	if !e.absentSince.IsZero() {
		e.absentSince = time.Time{}
		delete(l.pendingConf, key)
	}
	if idx < e.levelIdx && e.sep == c.Sep {
		// Down-grade only past the margin (levels of another entry,
		// after a change of class, do not compare).
		idx = min(e.levelIdx, max(idx, c.LevelWithMargin-1))
	}
	if idx == e.levelIdx && e.sep == c.Sep && !l.movedMaterially(e, c) {
		return dst
	}
	a := l.conflictAlert(c, idx)
	a.ID = e.pub.ID
	a.State = StateUpdated
	e.pub, e.sep, e.levelIdx, e.pubRel = a, c.Sep, idx, relMotionOf(c)
	return append(dst, a)
}

// movedMaterially compares predicted absolute moments, which stay put for a
// steady encounter while t_in counts down, and the miss distance. A
// closest approach inside the lookahead then and now is a fixed point of
// a steady encounter and is compared as it is. One clamped to an end of
// the lookahead, then or now (already past, the pair drawing apart;
// beyond the horizon; or a pair with no relative motion across), is the
// distance at that end, which moves on with time however steady the
// encounter: it is news only when the pair no longer flies as published,
// its relative path over the lookahead now more than the same share of
// the threshold away from the published one (at now or at the horizon:
// the two straight paths are furthest apart at an end), so that a pair
// drawing apart as predicted publishes nothing, and a follower closing on
// the aircraft ahead, or a step aside, still does.
func (l *Lifecycle) movedMaterially(e *entry, c *detect.Conflict) bool {
	pub := &e.pub
	sinceS := c.Time.Sub(pub.Time).Seconds()
	look := c.Sep.LookaheadS
	if l.momentMoved(pub.TInS, c.TInS, sinceS, look, true) || l.momentMoved(pub.TOutS, c.TOutS, sinceS, look, false) {
		return true
	}
	allowedM := l.h.MissDistanceShare * c.Sep.HorizontalM()
	if math.Abs(c.DHCPAM-pub.DHCPAM) <= allowedM {
		return false
	}
	// A closest approach inside the lookahead now: news when it was
	// there too, or when it comes nearer than the distance published at
	// an end (a pair raised while its approach lay beyond the horizon,
	// now on course to meet within it, as a loss predicted sooner is).
	if !atAnEnd(c.TCPAS, look) && (!atAnEnd(pub.TCPAS, look) || c.DHCPAM < pub.DHCPAM) {
		return true
	}
	now := relMotionOf(c)
	for _, t := range [...]float64{0, look} {
		var d2 float64
		for k := range 3 {
			was := e.pubRel.posM[k] + e.pubRel.velMps[k]*(sinceS+t)
			is := now.posM[k] + now.velMps[k]*t
			d2 += (is - was) * (is - was)
		}
		if d2 > allowedM*allowedM {
			return true
		}
	}
	return false
}

// atAnEnd reports whether a time of closest approach is clamped to an end
// of the lookahead [0, lookS].
func atAnEnd(tcpaS, lookS float64) bool { return tcpaS <= 0 || tcpaS >= lookS }

// relMotion is a pair's relative position (B from A, at the conflict's
// time) and velocity, in earth-centred axes.
type relMotion struct {
	posM, velMps [3]float64
}

// relMotionOf is the relative motion of the pair of c at its time.
func relMotionOf(c *detect.Conflict) relMotion {
	a := c.A.ECEFAt(c.Time.Sub(c.A.Time).Seconds())
	b := c.B.ECEFAt(c.Time.Sub(c.B.Time).Seconds())
	var m relMotion
	for k := range 3 {
		m.posM[k] = b[k] - a[k]
		m.velMps[k] = c.B.VelECEF[k] - c.A.VelECEF[k]
	}
	return m
}

// momentMoved reports whether a predicted moment moved materially: pubS
// seconds ahead of the published alert, nowS ahead now, sinceS after it.
// It did when it moved by more than TimingS, or TimingShare of how far
// ahead it now is when that is more: a moment minutes ahead is predicted
// from velocities whose small errors grow with the time ahead, so that a
// few seconds of it are noise (two reports of one steady pair, one a
// second older than the other, can place it seconds apart), while the
// same seconds a minute ahead are news. A moment at the horizon then and
// now (a loss predicted to last beyond the lookahead) is not a prediction
// but the end of the lookahead, which moves on with time: it never moves
// materially. Nor does a moment at the start then and now (t_in 0: the
// pair was already closer than the minima then and still is): it is the
// time of the prediction moving on, not the loss starting later. A loss of separation predicted sooner (soonerIsNews, for
// t_in) is news at TimingS however far ahead: the share only absorbs
// moves that leave more time, and the noise that flips a moment back and
// forth then publishes at most once (the published figure stays at the
// sooner moment).
func (l *Lifecycle) momentMoved(pubS, nowS, sinceS, horizonS float64, soonerIsNews bool) bool {
	const atEdgeS = 1e-6
	if pubS >= horizonS-atEdgeS && nowS >= horizonS-atEdgeS || pubS <= atEdgeS && nowS <= atEdgeS {
		return false
	}
	movedS := sinceS + nowS - pubS // later when positive
	if soonerIsNews && movedS < 0 {
		return -movedS > l.h.TimingS
	}
	return math.Abs(movedS) > max(l.h.TimingS, l.h.TimingShare*max(nowS, 0))
}

// conflictAlert is the alert of a conflict at level idx of its entry.
func (l *Lifecycle) conflictAlert(c *detect.Conflict, idx int) Alert {
	return Alert{
		RulesVersion: l.rules.Version,
		Kind:         KindConflict,
		Level:        c.Sep.Levels[idx].Name,
		Time:         c.Time,
		TInS:         c.TInS,
		TOutS:        c.TOutS,
		TCPAS:        c.TCPAS,
		DHCPAM:       c.DHCPAM,
		DVCPAM:       c.DVCPAM,
		Aircraft:     []Aircraft{AircraftOf(&c.A), AircraftOf(&c.B)},
		Separation: &Separation{
			Classes:    c.Sep.Rule.Classes,
			Detector:   c.Sep.Rule.LevelDetector(idx),
			LookaheadS: c.Sep.LookaheadS,
		},
	}
}

func (l *Lifecycle) conflictGone(dst []Alert, key detect.PairKey, reason string, now time.Time) []Alert {
	return gone(dst, l.conflicts, l.pendingConf, key, reason, nil, now)
}

func (l *Lifecycle) nonconforming(dst []Alert, s *track.State, now time.Time) []Alert {
	key := s.Key()
	if e, open := l.nonconf[key]; open {
		// Still outside: the alert stands as raised; only a pending
		// clear is called off.
		if !e.absentSince.IsZero() {
			e.absentSince = time.Time{}
			delete(l.pendingNC, key)
		}
		return dst
	}
	a := Alert{
		ID:       l.raiseID(KindNonconforming, []track.Key{key}, s.Time, now),
		Kind:     KindNonconforming,
		Level:    l.rules.Levels[0].Name,
		State:    StateRaised,
		Time:     s.Time,
		Aircraft: []Aircraft{AircraftOf(s)},

		RulesVersion: l.rules.Version,
	}
	l.nonconf[key] = &entry{pub: a}
	return append(dst, a)
}

// gone handles the end of what raised the open alert under key in open: a
// stale track clears it at once, naming the aircraft whose tracks went
// stale; otherwise its clearing waits out the hysteresis, from the first
// time it was seen gone, in pending.
func gone[K comparable](dst []Alert, open map[K]*entry, pending map[K]struct{}, key K, reason string, stale []track.Key, now time.Time) []Alert {
	e, ok := open[key]
	if !ok {
		return dst
	}
	if reason == ReasonStale {
		delete(open, key)
		delete(pending, key)
		a := cleared(e.pub, ReasonStale, now)
		// A copy: the published alert's aircraft are shared with the
		// transitions before.
		a.Aircraft = slices.Clone(a.Aircraft)
		for i := range a.Aircraft {
			a.Aircraft[i].Stale = slices.Contains(stale, a.Aircraft[i].Key())
		}
		return append(dst, a)
	}
	if e.absentSince.IsZero() {
		e.absentSince = now
		pending[key] = struct{}{}
	}
	return dst
}

func cleared(a Alert, reason string, now time.Time) Alert {
	a.State = StateCleared
	a.Reason = reason
	a.Time = now
	return a
}

// Tick appends the clears whose wait ended by now, in id order.
func (l *Lifecycle) Tick(dst []Alert, now time.Time) []Alert {
	l.letGoCleared(now)
	if len(l.pendingConf) == 0 && len(l.pendingNC) == 0 {
		return dst
	}
	start := len(dst)
	for key := range l.pendingConf {
		e := l.conflicts[key]
		if now.Sub(e.absentSince).Seconds() >= l.h.ClearAfterS {
			dst = append(dst, cleared(e.pub, ReasonResolved, now))
			delete(l.conflicts, key)
			delete(l.pendingConf, key)
		}
	}
	for key := range l.pendingNC {
		e := l.nonconf[key]
		if now.Sub(e.absentSince).Seconds() >= l.h.ClearAfterS {
			dst = append(dst, cleared(e.pub, ReasonResolved, now))
			delete(l.nonconf, key)
			delete(l.pendingNC, key)
		}
	}
	slices.SortFunc(dst[start:], func(x, y Alert) int { return strings.Compare(x.ID, y.ID) })
	l.noteCleared(dst[start:], now)
	return dst
}

// Find returns the open alert of that id: a lookup that copies one alert,
// where Open copies and sorts them all.
func (l *Lifecycle) Find(id string) (Alert, bool) {
	for _, e := range l.conflicts {
		if e.pub.ID == id {
			return e.pub, true
		}
	}
	for _, e := range l.nonconf {
		if e.pub.ID == id {
			return e.pub, true
		}
	}
	return Alert{}, false
}

// lookUp finds the open entry of alert a (id a.ID) by its aircraft, in
// the map of its kind, so that a takeover comparing thousands of alerts
// does not go through them all for each: kind is KindConflict or
// KindNonconforming, keys its aircraft in the entry's order, and drop
// removes it. It returns nil when no alert is open under a.ID for them.
func (l *Lifecycle) lookUp(a *Alert) (e *entry, kind string, keys []track.Key, drop func()) {
	switch len(a.Aircraft) {
	case 2:
		k0, k1 := a.Aircraft[0].Key(), a.Aircraft[1].Key()
		for _, key := range [2]detect.PairKey{{A: k0, B: k1}, {A: k1, B: k0}} {
			if e, ok := l.conflicts[key]; ok && e.pub.ID == a.ID {
				return e, KindConflict, []track.Key{key.A, key.B}, func() {
					delete(l.conflicts, key)
					delete(l.pendingConf, key)
				}
			}
		}
	case 1:
		key := a.Aircraft[0].Key()
		if e, ok := l.nonconf[key]; ok && e.pub.ID == a.ID {
			return e, KindNonconforming, []track.Key{key}, func() {
				delete(l.nonconf, key)
				delete(l.pendingNC, key)
			}
		}
	}
	return nil, "", nil, nil
}

// NewsAgainst reports whether the open alert prev.ID, as this lifecycle
// last published it, tells something that prev (the same alert as another
// replica published it) does not: another level, or, for a conflict, a
// predicted start or end of the loss or a miss distance moved by more
// than the hysteresis allows (movedMaterially without the relative paths,
// which prev does not carry). A replica taking over detection commits an
// update only then: two engines fed the same reports in another order
// publish the same alert at moments a little apart, which is no news to
// the parties. It reports true for an alert not open.
func (l *Lifecycle) NewsAgainst(prev *Alert) bool {
	e, _, _, _ := l.lookUp(prev)
	if e == nil {
		return true
	}
	pub := &e.pub
	if pub.Level != prev.Level || e.sep == nil {
		return pub.Level != prev.Level
	}
	sinceS := pub.Time.Sub(prev.Time).Seconds()
	look := e.sep.LookaheadS
	if l.momentMoved(prev.TInS, pub.TInS, sinceS, look, true) || l.momentMoved(prev.TOutS, pub.TOutS, sinceS, look, false) {
		return true
	}
	return math.Abs(pub.DHCPAM-prev.DHCPAM) > l.h.MissDistanceShare*e.sep.HorizontalM()
}

// Rename gives the open alert a (id a.ID) the id to: the id under which
// another replica published the same alert. It reports whether a was
// open.
func (l *Lifecycle) Rename(a *Alert, to string) bool {
	e, _, _, _ := l.lookUp(a)
	if e == nil {
		return false
	}
	e.pub.ID = to
	return true
}

// DropClearing drops the open alert a (id a.ID) while its condition is
// gone and its clear waits out the hysteresis, and reports whether it
// did: a replica taking over detection whose engine judged the alert over
// from a picture older than what another replica published of it since
// leaves the alert to the store (the service holds it until its engine
// has caught up), rather than clear it, raise it again under a new id
// when the reports behind the store's reach it, and tell the parties of
// an end that never was. Nothing is published of the alert dropped, and
// its id is not spent: the engine raises the condition again, should the
// reports show it, as a new alert, which the service matches with the
// store's.
func (l *Lifecycle) DropClearing(a *Alert) bool {
	e, _, _, drop := l.lookUp(a)
	if e == nil || e.absentSince.IsZero() {
		return false
	}
	drop()
	return true
}

// Reopen handles an open alert a whose id is spent: the parties were told
// it cleared (a replica that led detection judged it over, and this
// lifecycle, fed the same reports in another order, did not yet, or
// raised it again since). While the condition is gone and its clear waits
// out the hysteresis, the alert is dropped: it was cleared. While the
// condition holds, the alert is still true but its id names one that
// ended: it gets a new id, derived from now, and is returned as raised. ok
// is false when a is not open or it was dropped.
func (l *Lifecycle) Reopen(a *Alert, now time.Time) (Alert, bool) {
	e, kind, keys, drop := l.lookUp(a)
	if e == nil {
		return Alert{}, false
	}
	if !e.absentSince.IsZero() {
		drop()
		return Alert{}, false
	}
	return e.reissue(kind, keys, now), true
}

// reissue gives the entry's published alert a new id, derived from the
// spent one and now, so that it is neither the spent id nor the id of an
// alert raised from a report at now, and returns it as raised.
func (e *entry) reissue(kind string, keys []track.Key, now time.Time) Alert {
	e.pub.ID = reissuedID(kind, keys, e.pub.ID, now)
	e.pub.State = StateRaised
	return e.pub
}

// Open returns every open alert as last published, in id order.
func (l *Lifecycle) Open() []Alert {
	out := make([]Alert, 0, len(l.conflicts)+len(l.nonconf))
	for _, e := range l.conflicts {
		out = append(out, e.pub)
	}
	for _, e := range l.nonconf {
		out = append(out, e.pub)
	}
	slices.SortFunc(out, func(x, y Alert) int { return strings.Compare(x.ID, y.ID) })
	return out
}
