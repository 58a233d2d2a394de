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
// The same alert under another id. The old leader committed what its own
// engine made of the same reports, in another order or later (the
// relay), and an engine names an alert after the report that first
// showed it: the ids differ when one engine had a report the other did
// not have yet. The times say which is which. An engine raises an alert
// at the time of the report that showed it and clears it, at the
// earliest, the hysteresis of a clear (ClearAfterS, 5 s) after it last
// found the conflict, on its own clock, which is never behind the reports'.
// So two engines that found a conflict in a common report had their
// alerts open together for at least ClearAfterS around it; whereas two
// successive alerts of one pair are ClearAfterS of absence apart, and the
// second can be open with the first (as the other engine had it) only for
// as long as the report that raised it came late: the relay, a tick, the
// feed's latency, a second or two at most. The alert of the log is
// taken for a stored alert of its pair when they were open together for
// at least half the hysteresis of a clear (sameAlertOverlap); one that
// was raised after the stored one cleared, or cleared before it was
// raised, however close, is another alert, and recorded. What this leaves
// to chance: a second conflict raised by a report more than
// sameAlertOverlap late is taken for the first (not recorded), and one
// conflict that the two engines found in no common report, less than
// sameAlertOverlap together, is recorded beside the stored alert.
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
	// order holds the ids by their first logging, oldest first; an id
	// deleted from byID since is skipped.
	order []string
	// bytes is what the alerts of byID hold (unledAlert.bytes).
	bytes int
	// stored are the ids of the alerts of which this replica delivered an
	// event of the store (forgetStored), with when: a transition of one is
	// not logged. Let go with the time, like the alerts.
	stored map[string]time.Time
	// swept is when the alerts past unledKept were last dropped: at most
	// every unledKept/10, not at each batch of reports.
	swept time.Time
	// warned is when a drop for the bound was last logged.
	warned time.Time
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
}

// complete reports whether the alert was raised and cleared in the log.
func (u *unledAlert) complete() bool { return u.raise != nil && u.clear != nil }

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

// add logs transitions nobody commits, at now; it returns how many
// alerts with a raise were dropped to keep the log bounded.
func (l *unledLog) add(trs []alert.Transition, now time.Time) int {
	if len(trs) == 0 {
		return 0
	}
	if l.byID == nil {
		l.byID = map[string]*unledAlert{}
	}
	for i := range trs {
		tr := trs[i]
		if _, ok := l.stored[tr.ID]; ok {
			continue // the store has it: a takeover skips it by its id
		}
		u := l.byID[tr.ID]
		if u == nil {
			u = &unledAlert{}
			l.byID[tr.ID] = u
			l.order = append(l.order, tr.ID)
		}
		u.at = now
		switch tr.State {
		case alert.StateRaised:
			u.raise = &tr
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

// forgetStored drops from the log the alerts of ids, of which the store
// has events, and keeps their ids so that their later transitions are not
// logged either, at now: a takeover skips them by their ids (the store
// keeps the alerts it cleared for SpentIDsKept, far more than unledKept).
func (l *unledLog) forgetStored(ids []string, now time.Time) {
	if len(ids) == 0 {
		return
	}
	if l.stored == nil || len(l.stored) > unledStoredKept {
		// Past its bound between two sweeps: what is forgotten of it
		// is logged again, and skipped by the takeover.
		l.stored = map[string]time.Time{}
	}
	for _, id := range ids {
		l.forget(id)
		l.stored[id] = now
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
		for _, id := range l.order {
			u, ok := l.byID[id]
			if !ok {
				continue
			}
			open := u.raise != nil && u.clear == nil
			if !open && now.Sub(u.at) > unledKept {
				l.forget(id)
				continue
			}
			keep = append(keep, id)
		}
		clear(l.order[len(keep):])
		l.order = keep
		for id, at := range l.stored {
			if now.Sub(at) > unledKept {
				delete(l.stored, id)
			}
		}
	}
	for (len(l.byID) > unledMax || l.bytes > unledBytesMax) && len(l.order) > 0 {
		id := l.order[0]
		l.order = l.order[1:]
		if u, ok := l.byID[id]; ok {
			l.forget(id)
			if u.raise != nil {
				dropped++
			}
		}
	}
	return dropped
}

// logUnled logs transitions nobody will commit (tactical.mu held).
func (s *Service) logUnled(trs []alert.Transition) {
	if s.cfg.Peers == nil || len(trs) == 0 {
		return // the embedded store: a single process commits everything
	}
	l := &s.tac.unled
	now := s.now()
	l.forgetStored(s.tac.delivered.take(), now)
	s.unledDropped(l.add(trs, now), now)
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

// logUnledQueued logs the transitions of queued.
func (s *Service) logUnledQueued(qs []queued) {
	trs := make([]alert.Transition, len(qs))
	for i := range qs {
		trs[i] = qs[i].tr
	}
	s.logUnled(trs)
}

// deliveredAlerts are the ids of the alerts of which this replica
// delivered events of the store to its live streams (deliver, s.wmu held),
// until the log forgets them (tactical.mu held): a lock of its own, so
// that deliver takes none of the tactical state's.
type deliveredAlerts struct {
	mu  sync.Mutex
	ids []string
}

// note keeps the ids of the alerts of evs, committed events of the store.
func (d *deliveredAlerts) note(evs []store.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range evs {
		if !strings.HasPrefix(e.Kind, "alert_") {
			continue
		}
		if id, ok := alertIDOf(e.Body); ok && (len(d.ids) == 0 || d.ids[len(d.ids)-1] != id) {
			d.ids = append(d.ids, id)
		}
	}
	if len(d.ids) > unledStoredKept {
		// Nobody took them for long (the periodic job takes them
		// every tick): the oldest are let go, and their alerts kept in
		// the log, which a takeover skips by their ids.
		d.ids = slices.Delete(d.ids, 0, len(d.ids)-unledStoredKept)
	}
}

// take returns the ids noted since the last take.
func (d *deliveredAlerts) take() []string {
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
// that the reconcile commits or the store has.
func (s *Service) recordLate(inStore StoredAlerts, skip func(id string) bool) []alert.Transition {
	t := s.tac
	log := t.unled
	t.unled = unledLog{}
	if len(log.byID) == 0 {
		return nil
	}
	traced := s.tracedIn(inStore)
	var out []alert.Transition
	var late []*unledAlert
	for _, id := range slices.Sorted(maps.Keys(log.byID)) {
		u := log.byID[id]
		if u.complete() && !skip(id) && !traced(id, pairOf(u.raise), u.raise.Time, u.clear.Time) {
			late = append(late, u)
		}
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
// that pair open from from to to as another engine had it: they were open
// together for at least overlap (sameAlertOverlap).
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
