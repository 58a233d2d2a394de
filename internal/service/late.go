package service

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
)

// Alerts raised and cleared while no replica led detection.
//
// Every replica runs the engine; only the one that holds the detection
// lease, and has reconciled in its tenure, commits what it produces. The
// others drop it: the leader commits the same alerts from the same reports.
// But for a while nobody leads: the lease of a leader that died lapses
// only after its TTL (10 s), a leader cut off from the store loses it and
// no replica can take it until the store is back, and a new leader commits
// nothing until it has reconciled. A takeover reconciles what is open
// (ReconcileDetection); an alert raised and cleared within such a gap is
// open nowhere any more, and was lost.
//
// So each replica keeps the transitions it dropped (unledLog: those of
// its engine while it did not lead, and those it had queued as the leader
// and left to the next one), and a replica that takes over commits, after
// its reconcile, each alert of its log that was raised and cleared there
// and of which the store has no trace: no alert of that id, and none of
// its pair that is the same alert seen by another engine (sameAlert).
// Its raise, the updates that changed its level, and its clear are
// committed as they happened, their times those of the alert, marked recorded_late, with
// their events to each party of the alert (everyone for a nonconforming
// one) and their audit records, but no hotline item: an item asks its
// recipients to acknowledge an alert in progress, with a deadline and
// escalations, and this one is over; the events and the audit record are
// the record that it happened.
//
// Only what was open in a gap. A follower's engine is not the leader's:
// it had the reports of its own clients first and the others' by the
// relay, it may have dropped one the leader kept, and it finds, at the
// margins, conflicts the leader's engine does not (or not as long). While
// a live leader commits, what its engine did not raise is its judgement,
// not a loss; a follower that took over later and recorded such an alert
// would publish a phantom, to both parties, claiming a gap that did not
// happen, at every takeover (every deploy). So a takeover records late
// only the alerts of its log open at some moment of the gap: cleared at
// or after the gap began (unledGapFrom). The gap begins when the last
// leader stopped committing, which no replica can see: a leader that
// died stops at its death, its lease looking valid until the TTL lapses.
// What a replica can see is the lease's record, which it reads at every
// try (every TTL/5): a record that changed between two of its reads,
// written by the holder of the first (a renewal, or its release at a
// clean shutdown), shows that holder alive and holding the lease after
// the start of the first read (replica.Lease.OthersRenewedWithin). The
// gap is taken to begin there, at the earliest the last such renewal can
// have been, not at the lapse: the leader may have died right after it.
// A take by a third replica is no such sign (it may have died before it
// reconciled), nor this replica's own renewals: with no renewal by
// another seen (this replica started after it, or the lease was only its
// own since), the gap is the whole log, as before this rule. Alerts this
// replica queued as the leader and did not commit (left to the next
// leader, a commit in doubt at the takeover) are recorded by the old rule
// too: nobody committed them, and no other leader judged them.
//
// Its limits. The leader judged an alert cleared before the gap began
// only if the relay brought it the reports that showed it: the clear
// comes at least ClearAfterS after the last report that found the
// conflict, and the relay takes well under a second, but a relay stalled
// for longer than that (or down) around a leader's death loses such an
// alert, which the old rule recorded. An alert open across the start of
// the gap that the leader did not find is recorded: after its death
// nobody judged it. The start of the gap is on the lease's (monotonic)
// clock, taken to the service's by how long ago it was: the two run at
// the same rate, but a host suspended since moves it later by the time
// suspended.
//
// The same alert under another id. The old leader committed what its own
// engine made of the same reports, in another order or later (the
// relay), and an engine names an alert after the report that first
// showed it: the ids differ when one engine had a report the other did
// not have yet. The times say which is which, on the service's clock.
// A raise carries the time of the report that showed the conflict (the
// feed's clock, behind the service's by the feed's latency: a second or
// two, more for a feed that lags), a clear the service's time when the
// engine cleared it: at the earliest the hysteresis of a clear
// (ClearAfterS, 5 s) after it first found the conflict gone. So the
// alert of the log is taken as open from when this replica's engine
// raised it (unledAlert.raisedAt, logged with the engine's batch), not
// from its report's time; the stored alert from its raise's time (the
// store keeps no other), at most its feed's latency before the old
// leader's engine raised it. Two engines that found a conflict in a
// common report had their alerts open together for at least ClearAfterS
// less the difference of the relay's delays: each had it open when that
// report reached it, and until ClearAfterS after a later one showed it
// gone. Two successive alerts of one pair are ClearAfterS of absence
// apart, and this engine raises the second only once its own first has
// cleared: it is open with the stored first alert only for as long as
// the old leader's engine cleared the first after this one did (the
// relay's delay, the replicas' clocks: well under a second), however late
// the feed that reported it. The alert of the log is taken for a stored
// alert of its pair when they were open together for at least half the
// hysteresis of a clear (sameAlertOverlap); one raised here after the
// stored one cleared, or cleared before it was raised, however close, is
// another alert, and recorded. What this leaves to chance: the two
// engines' ends of one conflict more than sameAlertOverlap apart (a relay
// stalled that long around it, or replicas' clocks that far apart) take a
// second conflict for the first (not recorded), or record one conflict
// that the two engines found in no common report beside the stored alert;
// and the stored raise, on its report's time: when the old leader, after
// this engine cleared an alert of the log, raised the pair's next
// conflict from a report whose time is sameAlertOverlap or more before
// that clear (its feed lagging that much more than the time from the
// clear to the raise), the alert of the log is taken for that one; it is
// lost only when the store has no alert of its own (the old leader, alive
// then, did not find it). An alert this replica queued as the leader and
// logged only at a takeover has no raisedAt: its report's time stands.
//
// What the log holds. A follower logs every alert of its engine, most of
// which the leader commits; it forgets those whose id it sees committed
// (the events of the store it delivers to its live streams, forgetStored),
// so that they do not crowd out those nobody committed. An alert of the
// log under another id than the leader's stays until unledKept has passed
// (a takeover judges it by sameAlert). Each transition kept is the alert
// as it happened (what the late record commits): measured on alerts of
// two aircraft with their separation (TestUnledLogBytes), about 540 bytes
// a transition and 1.2 KB an alert raised and cleared, up to 5.4 KB one
// with unledLevelsKept changes of level (108 MB had the count bound alone
// been reached with such alerts). The log is bounded by count and by
// bytes (unledMax, unledBytesMax).
//
// An alert raised in the gap and still open at the takeover is the
// reconcile's: the engine has it open, and it is raised as the engine
// has it now.
//
// An alert the store has open (the old leader raised it) that this
// engine saw end in the gap is ended by the reconcile at the time of the
// log's clear, not at the takeover's (loggedClear): the log's alert of its
// id (a follower keeps the clear of an alert whose raise it saw committed
// while the store has it open, add), or the same alert under another id
// (sameAlert); only when that clear is at or after both the store's last
// transition of it (nothing the parties were told came after) and the
// start of the gap (the old leader, alive then with the alert open,
// judged it open). Otherwise it ends at the takeover, as before. An alert
// the reconcile holds (this engine's picture of its aircraft is older
// than the store's last transition: the relay may still bring reports
// that show it) is ended when the periodic job judges it, at that time:
// the log's clear was made from a picture older than what the store said
// of it.

// unledKept is how long a replica keeps an alert of its log after its
// last transition was logged: far more than the lease's TTL and the
// reconcile (seconds), so that a store down for minutes, during which no
// replica can take the lease, loses nothing either. An alert still open
// is kept until it clears (or the log is full).
const unledKept = 5 * time.Minute

// unledMax bounds the alerts of the log, and unledBytesMax what they
// hold (unledAlert.bytes, about 1.2 KB an alert raised and cleared, 5.4 KB
// one with unledLevelsKept changes of level): past either the oldest are
// dropped, and counted (Metrics.UnledAlertsDropped). 20,000 is several
// times the alerts raised in unledKept in the benchmarks' busiest
// airspace (about 600 open at a time); 32 MiB holds 20,000 raised and
// cleared (24 MB), or 6,000 with every change of level kept.
const (
	unledMax      = 20_000
	unledBytesMax = 32 << 20
)

// unledStoredKept bounds the ids of alerts the store has that the log
// keeps (unledLog.stored), and those waiting for it (deliveredAlerts).
const unledStoredKept = 2 * unledMax

// unledLevelsKept bounds the updates of one alert kept: those that
// changed its level.
const unledLevelsKept = 8

// unledLog is what a replica's engine produced that nobody committed, by
// alert (tactical.mu held).
type unledLog struct {
	byID map[string]*unledAlert
	// order holds the alerts by their first logging, oldest first; an
	// entry whose alert was deleted from byID since is skipped, and so is
	// one whose id was logged again after that (forgetStored, then the
	// clear of an alert the store has open): by its seq, so that the
	// count bound does not drop the alert logged again at the place of
	// the one forgotten, ahead of older ones.
	order []unledOrder
	// seq numbers the alerts of byID as they are first logged.
	seq uint64
	// bytes is what the alerts of byID hold (unledAlert.bytes).
	bytes int
	// stored are the ids of the alerts of which this replica delivered an
	// event of the store (forgetStored), with when and whether one was
	// the clear: a transition of one is not logged, but for the clear of
	// one the store has not cleared (add). Let go with the time, like the
	// alerts.
	stored map[string]storedAlert
	// swept is when the alerts past unledKept were last dropped: at most
	// every unledKept/10, not at each batch of reports.
	swept time.Time
	// warned is when a drop for the bound was last logged.
	warned time.Time
}

// unledOrder is an alert's place in unledLog.order: its id and the seq
// of its first logging.
type unledOrder struct {
	id  string
	seq uint64
}

// storedAlert is what the log keeps of an alert of which the store has
// events: when it saw the last, and whether the store has it cleared.
type storedAlert struct {
	at      time.Time
	cleared bool
}

// unledAlert is what the log holds of one alert: the transitions in
// the order of their states, whatever the order in which they were
// logged (a transition a leader queued and left to the next one is
// logged after those its engine produced later).
type unledAlert struct {
	raise  *alert.Transition
	levels []alert.Transition // updates, by time once recorded
	clear  *alert.Transition
	at     time.Time // when its last transition was logged
	bytes  int       // what it holds (unledAlertBytes)
	seq    uint64    // its place in unledLog.order
	// raisedAt is when this replica's engine raised it, on the service's
	// clock, as its clear's time is: the logging of its raise, which
	// follows the engine's batch at once (enqueueLocked). Zero when its
	// raise was logged only as queued by this replica as the leader,
	// at a later takeover (logUnledQueued).
	raisedAt time.Time
	// own: a transition of it was this replica's as the leader, queued
	// and never committed (logUnledQueued), not only its engine's as a
	// follower.
	own bool
}

// complete reports whether the alert was raised and cleared in the log.
func (u *unledAlert) complete() bool { return u.raise != nil && u.clear != nil }

// openFrom is when the alert was open from, on the service's clock as its
// clear is (sameAlert): when the engine raised it (raisedAt), not the
// time of the report that raised it, which lags the service's clock by
// the feed's latency; the raise's time when raisedAt is unknown.
func (u *unledAlert) openFrom() time.Time {
	if u.raisedAt.IsZero() {
		return u.raise.Time
	}
	return u.raisedAt
}

// transitionBytes is what a transition kept in the log holds: the alert,
// its aircraft, its separation and its id (the other strings are the
// rules' and the tracks').
func transitionBytes(tr *alert.Transition) int {
	n := int(unsafe.Sizeof(*tr)) + len(tr.ID) + len(tr.Aircraft)*int(unsafe.Sizeof(alert.Aircraft{}))
	if tr.Separation != nil {
		n += int(unsafe.Sizeof(*tr.Separation))
	}
	return n
}

// unledAlertBytes is what an alert of the log holds: its transitions, its
// record, and its places in the map and in the order.
func unledAlertBytes(u *unledAlert) int {
	n := int(unsafe.Sizeof(*u)) + 64
	for _, tr := range []*alert.Transition{u.raise, u.clear} {
		if tr != nil {
			n += transitionBytes(tr)
		}
	}
	for i := range u.levels {
		n += transitionBytes(&u.levels[i])
	}
	return n
}

// add logs transitions nobody commits, at now (own: this replica's as
// the leader, queued); it returns how many alerts with a raise were
// dropped to keep the log bounded.
func (l *unledLog) add(trs []alert.Transition, now time.Time, own bool) int {
	if len(trs) == 0 {
		return 0
	}
	if l.byID == nil {
		l.byID = map[string]*unledAlert{}
	}
	for i := range trs {
		tr := trs[i]
		if st, ok := l.stored[tr.ID]; ok && (tr.State != alert.StateCleared || st.cleared) {
			// The store has it: a takeover skips it by its id. Its
			// clear, while the store has it open, is kept, alone: the
			// leader commits its own (and the log forgets this one when
			// it is delivered), unless it died first, when a takeover
			// ends the alert the store has open at the time of this
			// clear (loggedClear).
			continue
		}
		u := l.byID[tr.ID]
		if u == nil {
			l.seq++
			u = &unledAlert{seq: l.seq}
			l.byID[tr.ID] = u
			l.order = append(l.order, unledOrder{id: tr.ID, seq: u.seq})
		}
		u.at = now
		u.own = u.own || own
		switch tr.State {
		case alert.StateRaised:
			u.raise = &tr
			if !own && u.raisedAt.IsZero() {
				u.raisedAt = now
			}
		case alert.StateCleared:
			u.clear = &tr
		default:
			// Only what changes the level is kept: the rest of an
			// update is the figures of a moment of an alert over.
			last := u.raise
			if n := len(u.levels); n > 0 {
				last = &u.levels[n-1]
			}
			if len(u.levels) < unledLevelsKept && (last == nil || last.Level != tr.Level) {
				u.levels = append(u.levels, tr)
			}
		}
		was := u.bytes
		u.bytes = unledAlertBytes(u)
		l.bytes += u.bytes - was
	}
	return l.prune(now)
}

// forget drops the alert id from the log.
func (l *unledLog) forget(id string) {
	if u, ok := l.byID[id]; ok {
		l.bytes -= u.bytes
		delete(l.byID, id)
	}
}

// forgetStored drops from the log the alerts of evs, of which the store
// has events, and keeps their ids so that their later transitions are not
// logged either (but a clear of one the store has open), at now: a
// takeover skips them by their ids (the store keeps the alerts it cleared
// for SpentIDsKept, far more than unledKept).
func (l *unledLog) forgetStored(evs []deliveredAlert, now time.Time) {
	if len(evs) == 0 {
		return
	}
	if l.stored == nil || len(l.stored) > unledStoredKept {
		// Past its bound between two sweeps: what is forgotten of it
		// is logged again, and skipped by the takeover.
		l.stored = map[string]storedAlert{}
	}
	for _, e := range evs {
		l.forget(e.id)
		l.stored[e.id] = storedAlert{at: now, cleared: e.cleared || l.stored[e.id].cleared}
	}
}

// prune drops the alerts whose last transition was logged more than
// unledKept ago, unless they are open, and the oldest beyond unledMax
// alerts or unledBytesMax; it returns how many alerts with a raise it
// dropped for the bounds.
func (l *unledLog) prune(now time.Time) int {
	dropped := 0
	if now.Sub(l.swept) >= unledKept/10 || len(l.order) > 2*unledMax {
		l.swept = now
		keep := l.order[:0]
		for _, o := range l.order {
			u, ok := l.byID[o.id]
			if !ok || u.seq != o.seq {
				continue
			}
			open := u.raise != nil && u.clear == nil
			if !open && now.Sub(u.at) > unledKept {
				l.forget(o.id)
				continue
			}
			keep = append(keep, o)
		}
		clear(l.order[len(keep):])
		l.order = keep
		for id, st := range l.stored {
			if now.Sub(st.at) > unledKept {
				delete(l.stored, id)
			}
		}
	}
	for (len(l.byID) > unledMax || l.bytes > unledBytesMax) && len(l.order) > 0 {
		o := l.order[0]
		l.order = l.order[1:]
		if u, ok := l.byID[o.id]; ok && u.seq == o.seq {
			l.forget(o.id)
			if u.raise != nil {
				dropped++
			}
		}
	}
	return dropped
}

// logUnled logs transitions of the engine that nobody will commit
// (tactical.mu held).
func (s *Service) logUnled(trs []alert.Transition) { s.logUnledAs(trs, false) }

// logUnledAs logs transitions nobody will commit, own when this replica
// queued them as the leader (tactical.mu held).
func (s *Service) logUnledAs(trs []alert.Transition, own bool) {
	if s.cfg.Peers == nil || len(trs) == 0 {
		return // the embedded store: a single process commits everything
	}
	l := &s.tac.unled
	now := s.now()
	l.forgetStored(s.tac.delivered.take(), now)
	s.unledDropped(l.add(trs, now, own), now)
}

// forgetStoredLocked drops from the log the alerts whose events this
// replica delivered since, and those past unledKept (tactical.mu held):
// the periodic job's, so that neither piles up while nothing is logged.
func (s *Service) forgetStoredLocked(now time.Time) {
	ids := s.tac.delivered.take()
	if s.cfg.Peers == nil {
		return
	}
	l := &s.tac.unled
	l.forgetStored(ids, now)
	s.unledDropped(l.prune(now), now)
}

// unledDropped counts and logs the n alerts with a raise that the log
// dropped for its bounds (tactical.mu held).
func (s *Service) unledDropped(n int, now time.Time) {
	if n == 0 {
		return
	}
	l := &s.tac.unled
	s.m.UnledAlertsDropped.Add(float64(n))
	if now.Sub(l.warned) >= time.Minute {
		l.warned = now
		s.log.Warn("this replica's log of the alerts its engine raised while it did not lead is full: the oldest are dropped, and a takeover cannot record them if the leader did not",
			"dropped", n, "kept", len(l.byID), "kept_bytes", l.bytes, "max", unledMax, "max_bytes", unledBytesMax)
	}
}

// logUnledQueued logs the transitions of queued, this replica's as the
// leader, which it did not commit.
func (s *Service) logUnledQueued(qs []queued) {
	trs := make([]alert.Transition, len(qs))
	for i := range qs {
		trs[i] = qs[i].tr
	}
	s.logUnledAs(trs, true)
}

// deliveredAlerts are the ids of the alerts of which this replica
// delivered events of the store to its live streams (deliver, s.wmu held),
// until the log forgets them (tactical.mu held): a lock of its own, so
// that deliver takes none of the tactical state's.
type deliveredAlerts struct {
	mu  sync.Mutex
	ids []deliveredAlert
}

// deliveredAlert is an alert of which an event of the store was
// delivered, and whether that event was its clear.
type deliveredAlert struct {
	id      string
	cleared bool
}

// note keeps the ids of the alerts of evs, committed events of the store.
func (d *deliveredAlerts) note(evs []store.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range evs {
		if !strings.HasPrefix(e.Kind, "alert_") {
			continue
		}
		id, ok := alertIDOf(e.Body)
		if !ok {
			continue
		}
		cleared := e.Kind == alertEventKind(alert.StateCleared)
		if n := len(d.ids); n > 0 && d.ids[n-1].id == id {
			d.ids[n-1].cleared = d.ids[n-1].cleared || cleared
			continue
		}
		d.ids = append(d.ids, deliveredAlert{id: id, cleared: cleared})
	}
	if len(d.ids) > unledStoredKept {
		// Nobody took them for long (the periodic job takes them
		// every tick): the oldest are let go, and their alerts kept in
		// the log, which a takeover skips by their ids.
		d.ids = slices.Delete(d.ids, 0, len(d.ids)-unledStoredKept)
	}
}

// take returns the alerts noted since the last take.
func (d *deliveredAlerts) take() []deliveredAlert {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := d.ids
	d.ids = nil
	return ids
}

// recordLate returns the transitions that record, as they happened, the
// alerts of the log raised and cleared while nobody led, of which the
// store has no trace (the doc comment above), and empties the log: what
// is still open is the reconcile's (tactical.mu held). skip holds the ids
// that the reconcile commits or the store has. gapFrom is when the gap
// began (unledGapFrom): an alert of the engine's cleared before it was
// the leader's to judge.
func (s *Service) recordLate(inStore StoredAlerts, skip func(id string) bool, gapFrom time.Time) []alert.Transition {
	t := s.tac
	log := t.unled
	t.unled = unledLog{}
	if len(log.byID) == 0 {
		return nil
	}
	traced := s.tracedIn(inStore)
	var out []alert.Transition
	var late []*unledAlert
	judged := 0
	for _, id := range slices.Sorted(maps.Keys(log.byID)) {
		u := log.byID[id]
		if !u.complete() || skip(id) || traced(id, pairOf(u.raise), u.openFrom(), u.clear.Time) {
			continue
		}
		if !u.own && u.clear.Time.Before(gapFrom) {
			judged++
			continue
		}
		late = append(late, u)
	}
	if judged > 0 {
		s.log.Info("taking over detection: alerts of this replica's engine over before the last leader's last renewal seen are that leader's to have judged, not recorded",
			"alerts", judged, "gap_from", gapFrom)
	}
	// In the order they were raised.
	slices.SortStableFunc(late, func(x, y *unledAlert) int { return x.raise.Time.Compare(y.raise.Time) })
	rl := s.Rules()
	for _, u := range late {
		trs := []alert.Transition{*u.raise}
		slices.SortStableFunc(u.levels, func(x, y alert.Transition) int { return x.Time.Compare(y.Time) })
		for _, up := range u.levels {
			if rl.LevelRank(up.Level) != rl.LevelRank(trs[len(trs)-1].Level) {
				trs = append(trs, up)
			}
		}
		trs = append(trs, *u.clear)
		for i := range trs {
			trs[i].RecordedLate = true
		}
		out = append(out, trs...)
	}
	if len(late) > 0 {
		s.m.AlertsRecordedLate.Add(float64(len(late)))
		s.log.Warn("taking over detection: alerts raised and cleared while no replica led, not in the store, recorded late", "alerts", len(late))
	}
	return out
}

// unledGapFrom returns when the gap a takeover at now covers began, on
// the service's clock: the earliest time at which the last renewal of
// the lease by another replica that this one saw can have been written
// (Peers.OtherLeaderRenewedWithin); zero, before anything of the log,
// when it saw none.
func (s *Service) unledGapFrom(now time.Time) time.Time {
	if s.cfg.Peers == nil {
		return time.Time{}
	}
	within, ok := s.cfg.Peers.OtherLeaderRenewedWithin()
	if !ok {
		return time.Time{}
	}
	return now.Add(-within)
}

// loggedClears finds, in the log, the clear of an alert the store has
// open and the engine does not (tactical.mu held; loggedClear).
type loggedClears struct {
	log     *unledLog
	gapFrom time.Time
	overlap time.Duration
	byPair  map[string][]*unledAlert // the complete alerts, built at the first look
}

// loggedClear returns the clear of a, open in the store as span, as this
// replica's engine made it while nobody led: the log's clear of a's id,
// or else that of the alert of its pair in the log raised first among
// those that are a as another engine had it (sameAlert); when that clear
// is at or after both the store's last transition of a (nothing the
// parties were told of it came later) and gapFrom (the old leader, alive
// at it with a open, judged it open then).
func (c *loggedClears) loggedClear(a *alert.Alert, span AlertSpan) (alert.Transition, bool) {
	usable := func(tr *alert.Transition) bool {
		return tr != nil && !tr.Time.Before(a.Time) && !tr.Time.Before(c.gapFrom)
	}
	if u, ok := c.log.byID[a.ID]; ok {
		if usable(u.clear) {
			return *u.clear, true
		}
		return alert.Transition{}, false
	}
	if c.byPair == nil {
		c.byPair = map[string][]*unledAlert{}
		for _, id := range slices.Sorted(maps.Keys(c.log.byID)) {
			if u := c.log.byID[id]; u.complete() {
				c.byPair[pairOf(u.raise)] = append(c.byPair[pairOf(u.raise)], u)
			}
		}
	}
	var first *unledAlert
	for _, u := range c.byPair[pairOf(a)] {
		if sameAlert(span, u.openFrom(), u.clear.Time, c.overlap) && (first == nil || u.openFrom().Before(first.openFrom())) {
			first = u
		}
	}
	if first != nil && usable(first.clear) {
		return *first.clear, true
	}
	return alert.Transition{}, false
}

// endedAsLogged returns a, the store's last transition of an alert, as
// cleared by clear, the log's (loggedClear): at its time, for its reason,
// the aircraft stale as it found them.
func endedAsLogged(a alert.Alert, clear alert.Transition) alert.Transition {
	a.State, a.Time, a.Reason = alert.StateCleared, clear.Time, clear.Reason
	a.Aircraft = slices.Clone(a.Aircraft)
	for i := range a.Aircraft {
		a.Aircraft[i].Stale = false
		for j := range clear.Aircraft {
			if clear.Aircraft[j].Key() == a.Aircraft[i].Key() {
				a.Aircraft[i].Stale = clear.Aircraft[j].Stale
			}
		}
	}
	return a
}

// tracedIn returns the test of whether the store has a trace of an alert
// of pair open from from to to, id if it recorded it: an alert of that id,
// or the same alert under another id (sameAlert).
func (s *Service) tracedIn(inStore StoredAlerts) func(id, pair string, from, to time.Time) bool {
	overlap := sameAlertOverlap(s.Rules())
	byPair := map[string][]AlertSpan{}
	for _, sp := range inStore.Spans {
		byPair[sp.Pair] = append(byPair[sp.Pair], sp)
	}
	return func(id, pair string, from, to time.Time) bool {
		if _, ok := inStore.Spans[id]; ok {
			return true
		}
		for _, sp := range byPair[pair] {
			if sameAlert(sp, from, to, overlap) {
				return true
			}
		}
		return false
	}
}

// sameAlertOverlap is how long an alert of the log and a stored alert of
// its pair must have been open together to be one alert under two ids:
// half the hysteresis of a clear (the doc comment above).
func sameAlertOverlap(rl rules.Rules) time.Duration {
	return time.Duration(alert.DefaultHysteresis(rl).ClearAfterS * float64(time.Second) / 2)
}

// sameAlert reports whether the stored alert sp of a pair is the alert of
// that pair open from from to to (on the service's clock: openFrom) as
// another engine had it: they were open together for at least overlap
// (sameAlertOverlap).
func sameAlert(sp AlertSpan, from, to time.Time, overlap time.Duration) bool {
	return sp.openWith(from, to) >= overlap
}

// lateTraced returns the ids of the alerts recorded late in pending (at
// an earlier takeover, their commit not done yet) of which the store now
// has a trace (tracedIn): another leader recorded them meanwhile, under
// the id its engine gave them.
func (s *Service) lateTraced(pending []queued, inStore StoredAlerts) map[string]bool {
	type span struct {
		pair     string
		from, to time.Time
	}
	var late map[string]*span
	for _, q := range pending {
		if !q.tr.RecordedLate {
			continue
		}
		if late == nil {
			late = map[string]*span{}
		}
		sp := late[q.tr.ID]
		if sp == nil {
			sp = &span{pair: pairOf(&q.tr), from: q.tr.Time, to: q.tr.Time}
			late[q.tr.ID] = sp
		}
		if q.tr.Time.Before(sp.from) {
			sp.from = q.tr.Time
		}
		if q.tr.Time.After(sp.to) {
			sp.to = q.tr.Time
		}
	}
	if late == nil {
		return nil
	}
	traced := s.tracedIn(inStore)
	out := map[string]bool{}
	for id, sp := range late {
		if traced(id, sp.pair, sp.from, sp.to) {
			out[id] = true
		}
	}
	return out
}
