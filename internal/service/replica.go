package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/track"
)

// Peers connects the service to the other replicas on a shared database
// (package replica implements it over PostgreSQL; server wires it). With
// no Peers (the embedded store, one process) the service commits every
// alert transition itself and shares nothing.
type Peers interface {
	// PublishPositions hands reports this replica accepted to the other
	// replicas' engines. It must not keep the slice.
	PublishPositions(reports []track.Report)
	// LeadsDetection reports whether this replica holds the detection
	// lease: every replica runs the same engine on the same reports, and
	// only the holder commits the alert transitions, so that two replicas
	// seeing one conflict do not both write it. The holder also signs the
	// transparency log's checkpoints and pushes them to the witnesses.
	LeadsDetection() bool
	// DetectionTenure is the tenure of the detection lease this replica
	// holds: a count that grows each time it gains the lease (0 before
	// the first). The service commits alert transitions only in a tenure
	// it has reconciled (ReconcileDetection): until then the store may
	// hold what another leader wrote since this replica's engine last
	// committed, and a commit would write an alert twice.
	DetectionTenure() int64
	// FenceDetection returns, while this replica leads detection, the
	// check that the commit of alert transitions runs inside its
	// transaction: it fails with an error wrapping ErrNotLeading once the
	// lease has changed hands since, so that a leader paused (SIGSTOP, a
	// stalled connection) between its look at the lease and its commit
	// writes nothing after another replica took over and reconciled. It
	// returns nil when this replica does not lead.
	FenceDetection() func(store.Meta) error
	// OtherLeaderRenewedWithin returns how long ago, at the most,
	// another replica last renewed (or released) the detection lease as
	// its holder, as this replica saw it: that replica led until then at
	// least. ok is false when this replica saw no such renewal. A takeover
	// records late only the alerts open since (late.go).
	OtherLeaderRenewedWithin() (within time.Duration, ok bool)
}

// ErrNotLeading is what a detection fence fails with once this replica no
// longer leads detection.
var ErrNotLeading = errors.New("service: this replica no longer leads detection")

// leadsDetection reports whether this replica commits alert transitions:
// it holds the detection lease, and has reconciled the store with its
// engine in this tenure.
func (s *Service) leadsDetection() bool {
	p := s.cfg.Peers
	return p == nil || p.LeadsDetection() && p.DetectionTenure() == s.reconciledTenure.Load() && s.newerRules.Load() == nil
}

// DetectionStandDown returns, while the rules in force in the store are
// of a newer version of the program (they hold a field this one does not
// know, *NewerRulesError), why this replica must not lead detection: it
// would judge the alerts under the rules before them, no longer in force.
// The detection lease gives itself up and is not taken while it returns
// an error (replica.Lease.StandDown), so that a replica that can read the
// rules leads; nil otherwise. The embedded store has no replica of
// another version, and no lease.
func (s *Service) DetectionStandDown() error {
	if ne := s.newerRules.Load(); ne != nil {
		return ne
	}
	return nil
}

// noteRulesInForce keeps whether rec, the rules in force in the store, are
// of a newer version of the program than this one (DetectionStandDown),
// saying so in the log and the metrics when that changes.
func (s *Service) noteRulesInForce(rec store.RulesRecord) {
	if s.cfg.Peers == nil {
		return // one process, no lease: nobody else could lead
	}
	var ne *NewerRulesError
	if rec.Version > s.Rules().Version {
		_ = errors.As(knownFields("rules", rec.Version, rec.Body, &rules.Rules{}), &ne)
	}
	was := s.newerRules.Swap(ne)
	switch {
	case ne != nil && was == nil:
		s.m.DetectionStoodDown.Set(1)
		s.log.Error("the rules in force are of a newer version of deconflict, which this replica cannot read: it gives up the detection lease and leads no detection while they are in force, so that a replica of the newer version leads (replace this one by it)",
			"rules_version", ne.Version, "unknown_field", ne.Field, "running_rules_version", s.Rules().Version)
	case ne == nil && was != nil:
		s.m.DetectionStoodDown.Set(0)
		s.log.Info("the rules in force are readable by this replica again: it may lead detection", "rules_version", rec.Version)
	}
}

// detectionFence returns the check of commitGroup's transaction (nil:
// none, on the embedded store) and whether this replica leads detection.
func (s *Service) detectionFence() (func(store.Meta) error, bool) {
	if s.cfg.Peers == nil {
		return nil, true
	}
	if !s.leadsDetection() {
		return nil, false
	}
	peers := s.cfg.Peers
	fence := peers.FenceDetection()
	if fence == nil {
		return nil, false
	}
	// The tenure may have changed since leadsDetection (a renewal that
	// came back too late, the lease perhaps another's meanwhile): the
	// fence is of the tenure current when it was taken, so the commit
	// also checks, in its transaction, that this is the tenure reconciled
	// (which cannot change during the commit: both hold t.commitMu).
	reconciled := s.reconciledTenure.Load()
	return func(tx store.Meta) error {
		if err := fence(tx); err != nil {
			return err
		}
		if tenure := peers.DetectionTenure(); tenure != reconciled {
			return fmt.Errorf("%w: tenure %d of the detection lease is not reconciled yet (%d is)", ErrNotLeading, tenure, reconciled)
		}
		return nil
	}, true
}

// publishPositions relays accepted reports to the other replicas.
func (s *Service) publishPositions(reports []track.Report) {
	if s.cfg.Peers != nil {
		s.cfg.Peers.PublishPositions(reports)
	}
}

// IngestRelayed feeds reports that another replica accepted (and
// validated) to the tactical engine, so that every replica keeps the same
// live picture. When this replica leads detection it queues the
// transitions they cause and tries their commit once; a failed commit is
// retried by the periodic job, so that the relay never waits on the store.
//
// A report this engine refuses (one of a class its rules do not know yet,
// while a change of the rules reaches the replicas one after the other)
// is left out, logged, and the rest of its chunk applied: the engine
// refuses a chunk whole, and the others' positions were lost with it. Only
// what the engine applied goes to the disclosure picture, as at the
// replica that took the reports: a party was shown an aircraft that
// detection did not track.
func (s *Service) IngestRelayed(ctx context.Context, reports []track.Report) error {
	for lo := 0; lo < len(reports); lo += ingestChunk {
		chunk := reports[lo:min(lo+ingestChunk, len(reports))]
		for len(chunk) > 0 {
			applied, _, _, err := s.applyChunk(chunk, false, alert.EveryAircraft)
			if err == nil {
				s.disclosePositions(applied)
				break
			}
			var refused *detect.ReportError
			if !errors.As(err, &refused) || refused.Index < 0 || refused.Index >= len(chunk) {
				s.log.Warn("relayed position reports refused", "reports", len(chunk), "err", err)
				break
			}
			r := &chunk[refused.Index]
			s.log.Warn("a relayed position report refused", "party", r.Party, "aircraft", r.Aircraft, "err", refused.Err)
			chunk = slices.Delete(slices.Clone(chunk), refused.Index, refused.Index+1)
		}
	}
	return s.commitQueuedJob(ctx, s.now())
}

// StoredAlerts is what ReconcileDetection reads of the store's alerts.
type StoredAlerts struct {
	// Open maps the id of each alert open in the store to the JSON of its
	// last transition.
	Open map[string][]byte
	// Cleared holds the ids of the alerts the store has cleared, at
	// least those cleared in the last hour.
	Cleared map[string]bool
	// parts is, for each open alert, the last event of it each party
	// was sent (alertStory).
	parts map[string]map[string]alertPart
	// Spans are, by id, the pair and the times of the alerts of Open and
	// Cleared: a takeover records an alert raised and cleared while no
	// replica led only when the store has no alert of its pair open with
	// it long enough to be the same alert (sameAlert, late.go).
	Spans map[string]AlertSpan
	// RulesHistory is every version of the rules that came into force
	// (store.Rules.RulesHistory), for the alerts of Open to be judged
	// under the rules they were judged under (judgedOtherwise). Empty,
	// each is taken as judged under the engine's rules.
	RulesHistory []store.RulesRecord
	// ReportTimes is the time of the last report of each aircraft of
	// the alerts the last leader had open, as its engine had it when it
	// last recorded them (recordReportTimes): its picture was that
	// recent, though a report that changed nothing published committed
	// no transition. Empty, the store's transitions alone tell.
	ReportTimes map[track.Key]time.Time
	// reportTimesUnreadable, when not nil, says that the store had a
	// record of report times that could not be decoded
	// (errReportTimesUnreadable): ReportTimes is empty.
	reportTimesUnreadable error
}

// AlertSpan is when an alert of the store was open, as the times of its
// transitions say (not when they were committed: an alert recorded late
// has the times it happened), and what it is about.
type AlertSpan struct {
	// Pair is the alert's kind and aircraft (pairOf).
	Pair string
	// From is the time of its raise; zero when unknown (the store has no
	// raise of it: its events began after it).
	From time.Time
	// To is the time of its clear; zero while it is open.
	To time.Time
}

// openWith returns how long the span was open together with an alert
// open from from to to: zero or less when they were never open at once
// (one cleared when, or before, the other was raised). An unknown raise
// (zero From) is taken as early as can be, and a span still open (zero
// To) as open still.
func (sp AlertSpan) openWith(from, to time.Time) time.Duration {
	if !sp.From.IsZero() && sp.From.After(from) {
		from = sp.From
	}
	if !sp.To.IsZero() && sp.To.Before(to) {
		to = sp.To
	}
	return to.Sub(from)
}

// SpentIDsKept is how long a takeover remembers that the store cleared an
// alert: an engine that has it open still (another leader's judged it over
// from the same reports in another order) must not raise it again under
// that id. Engines fed the same reports differ for a few seconds (the
// hysteresis of a clear, the relay's delay), not hours.
const SpentIDsKept = time.Hour

// ReconcileDetection is called when this replica has just taken the
// detection lease. While another replica led, this engine's transitions
// were dropped, and the leader may have died before committing its last
// ones: this commits the difference between the engine's open alerts and
// those open in the store — raised for the alerts only the engine has,
// updated for those the engine changed since the store's last transition
// (another level, or a later prediction). openInStore returns the open
// and the cleared alerts of the store; it is read while no transition can
// commit, so that nothing is written twice.
//
// An alert the engine has open and the store has cleared (the old
// leader's engine, fed the same reports in another order, judged it over)
// is not raised again under its id, which the parties were told ended:
// it is dropped when the engine is waiting to clear it too, and raised
// under a new id when the engine still finds the conflict
// (alert.Engine.Reopen).
//
// An alert the engine waits to clear (its condition gone, the hysteresis
// not over) while the store has it open, by id or by pair, from a
// transition later than the engine's picture of its aircraft (or while
// the old leader's picture of them, as it recorded it, was later:
// StoredAlerts.ReportTimes, reporttimes.go), is dropped
// from the engine (alert.Engine.DropClearing) and the store's alert held
// as one only the store has (below): the old leader found the conflict
// from reports this engine has not had yet, and a clear now would be
// followed by a raise of the same conflict under another id when the
// relay brings them. One the engine still finds takes the store's alert
// up (by id, or renamed), but its clear is not committed before the
// engine's picture has caught up with the store's transition: until then
// the store's alert is held instead (tactical.behind, takeHeld); so is
// one of an alert queued already (a takeover whose commit failed, tried
// again). Nor is
// an update of it from that older picture, unless to a higher level: a
// lower level, or a prediction moved, is older news than what the parties
// were told (an alert downgraded, then upgraded again when the reports
// came); what the engine has of it once its picture has caught up is
// committed when it is news against the store's (clearHeldLocked).
//
// An alert only the store has is cleared at once when this engine's
// picture of its aircraft is as recent as the store's transition and the
// old leader's recorded picture (reason
// resolved: it tracks them and finds no conflict), or that transition and
// this process's start are older than the stale limit (reason stale,
// naming the aircraft it does not track: alert.Engine.EndedAt). Otherwise it is held: the reports that made the old leader
// raise it are relayed, and may reach this engine after the takeover (the
// relay does not wait for the store). Clearing it then would raise it
// again a moment later under the same id, and tell every party three
// things where nothing happened. A held alert the engine raises is
// committed as updated, or not at all when the store has it as it is
// (takeHeld); one it does not raise is cleared by the periodic job once
// the engine's picture has caught up, or its stale limit has passed
// (clearHeldLocked).
func (s *Service) ReconcileDetection(ctx context.Context, openInStore func(context.Context) (StoredAlerts, error)) error {
	t := s.tac
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	var tenure int64
	if s.cfg.Peers != nil {
		tenure = s.cfg.Peers.DetectionTenure()
	}
	stored, err := openInStore(ctx)
	if err != nil {
		return err
	}
	if stored.reportTimesUnreadable != nil {
		s.log.Warn("taking over detection: the alerts open in the store are judged from their transitions alone", "err", stored.reportTimesUnreadable)
	}
	// The record is another leader's now: written afresh in this
	// tenure, merged with it.
	t.reportTimesRecorded, t.reportTimesWritten = nil, nil
	if d := t.inDoubt; d != nil {
		// A commit of the lease this replica held before, which nobody
		// could tell committed: whatever it wrote is in the store just
		// read and what it did not is committed from the engine, so it
		// is settled by the reconciliation. Only once the store is read:
		// until then it holds the queue, so that no later transition of
		// its alerts commits before them.
		t.mu.Lock()
		t.inDoubt = nil
		release(d.qs)
		// An alert of it raised and cleared is open nowhere: recorded
		// late when the store does not have it (late.go).
		s.logUnledQueued(d.qs)
		t.mu.Unlock()
		for _, q := range d.qs {
			delete(t.posted, q.tr.ID)
		}
	}
	n, err := s.queueReconcile(stored, tenure)
	if err != nil || n == 0 {
		return err
	}
	if _, err := s.commitQueuedLocked(ctx, nil); err != nil {
		return err
	}
	s.log.Info("took over detection", "transitions", n)
	return nil
}

// queueReconcile queues, after what is queued, the transitions that
// bring the store's open alerts to the engine's, holds what it holds
// (ReconcileDetection), and returns how many it queued. It runs under t.mu
// throughout, so that no transition of the engine falls between its open
// alerts read here and the held alerts set.
func (s *Service) queueReconcile(inStore StoredAlerts, tenure int64) (int, error) {
	t := s.tac
	now := s.now()
	rl := s.Rules()
	stored := make(map[string]alert.Alert, len(inStore.Open))
	for _, id := range slices.Sorted(maps.Keys(inStore.Open)) {
		var a alert.Alert
		if err := json.Unmarshal(inStore.Open[id], &a); err != nil {
			// Passed over, not the takeover's failure: a takeover that
			// fails is tried again for ever, and no alert transition
			// of any party is committed meanwhile.
			s.log.Error("taking over detection: an alert open in the store cannot be read; it is left as it is, neither taken up nor ended", "alert", id, "err", err)
			continue
		}
		stored[id] = a
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	defer t.noteHeld()
	eng := t.eng.Load()
	// The alerts the store has open under rules this engine does not
	// judge as they were judged are ended first, as a change of the rules
	// ends them; from here on the store is taken to have them cleared:
	// nothing queued of them is kept, and this engine's alert of the same
	// id is raised under a new one.
	inStore, trs := s.endJudgedOtherwise(eng, inStore, stored, now)
	engine := eng.Alerts()
	t.pending = s.reconcileQueue(t.pending, inStore, stored, engine, now)
	// From here this replica commits in this tenure: what it queues from
	// now on follows what is queued here.
	s.reconciledTenure.Store(tenure)
	inQueue := map[string]bool{}
	lastQueued := map[string]alert.Transition{}
	for _, q := range t.pending {
		inQueue[q.tr.ID] = true
		lastQueued[q.tr.ID] = q.tr
	}
	// The alerts open in the store that no engine alert has by id, by
	// pair: an engine fed the same reports in another order may have
	// raised the same conflict under another id (derived from the report
	// that first showed it).
	byID := map[string]bool{}
	for _, a := range engine {
		byID[a.ID] = true
	}
	byPair := map[string]string{}
	for id, a := range stored {
		if !byID[id] && !inQueue[id] {
			byPair[pairOf(&a)] = id
		}
	}
	var renamed []alert.Transition // for the disclosure picture
	inEngine := map[string]bool{}
	t.behind = nil // a takeover judges afresh what the store has open
	for _, a := range engine {
		// The store's alert of the same id, or else of the same pair.
		storedID, matched := a.ID, false
		if _, ok := stored[a.ID]; ok {
			matched = !inQueue[a.ID]
		} else if !inQueue[a.ID] {
			storedID, matched = byPair[pairOf(&a)]
		}
		if matched {
			last := stored[storedID]
			until, hold := s.holdsStored(eng, &last, inStore.ReportTimes, rl, now)
			if hold && eng.DropClearing(&a) {
				// The engine waits out the clear of an alert the store
				// has open from reports it has not had all of yet:
				// another replica found the conflict after this
				// engine's picture. Cleared now, it would be raised
				// again under a new id when those reports come, a
				// moment later, and the parties would read an end
				// that never was. The store's alert is held instead,
				// as one the engine does not have (below), until the
				// engine raises the conflict again or its picture has
				// caught up with the store's.
				delete(byPair, pairOf(&a))
				if a.ID != storedID {
					// The store's alert, held, takes its place in
					// the disclosure picture (below).
					spent := a
					spent.State, spent.Reason, spent.Time = alert.StateCleared, alert.ReasonStale, now
					renamed = append(renamed, spent)
				}
				continue
			}
			if hold {
				// The conflict holds in the engine's picture: it
				// takes the store's alert up (renamed below), but
				// not its end before its picture has caught up
				// (takeHeld).
				t.keepBehind(storedID, newHeldAlert(last, until, inStore.ReportTimes))
			}
		} else if last, open := stored[a.ID]; open && inQueue[a.ID] && lastQueued[a.ID].State != alert.StateCleared {
			// Queued already (by a takeover whose commit failed and is
			// tried again, or while this replica led before): the
			// engine took it up as it is, and what is queued of it is
			// what the store will have; but from a picture older than
			// the store's last transition, its end is not committed
			// before that picture has caught up, as above.
			if until, hold := s.holdsStored(eng, &last, inStore.ReportTimes, rl, now); hold {
				b := newHeldAlert(last, until, inStore.ReportTimes)
				b.last = lastQueued[a.ID]
				t.keepBehind(a.ID, b)
			}
		}
		if _, ok := stored[a.ID]; !ok && !inQueue[a.ID] {
			if id, ok := byPair[pairOf(&a)]; ok && eng.Rename(&a, id) {
				delete(byPair, pairOf(&a))
				spent := a
				spent.State, spent.Reason, spent.Time = alert.StateCleared, alert.ReasonStale, now
				a.ID = id
				renamed = append(renamed, spent, a)
			}
		}
		inEngine[a.ID] = true
		if last, ok := stored[a.ID]; ok {
			// The old leader posted it to the hotline: only a higher
			// level than the stored one is posted again.
			if _, seen := t.posted[a.ID]; !seen {
				t.posted[a.ID] = rl.LevelRank(last.Level)
			}
			// The engine changed it after the store's last transition
			// (while nobody led, or the old leader died before its
			// commit): the update is committed now, when it is news
			// against what the parties were told.
			if !inQueue[a.ID] && (a.Level != last.Level || a.Time.After(last.Time) && eng.NewsAgainst(&last)) {
				if _, behind := t.behind[a.ID]; behind && rl.LevelRank(a.Level) <= rl.LevelRank(last.Level) {
					// Judged from a picture older than the store's
					// transition: a lower level, or a prediction
					// moved, is older news than what the parties were
					// told. It is judged once the picture has caught
					// up (clearHeldLocked).
					continue
				}
				a.State = alert.StateUpdated
				trs = append(trs, a)
				if b, ok := t.behind[a.ID]; ok {
					b.last = a // what the store has of it once committed
					t.behind[a.ID] = b
				}
			}
			continue
		}
		if inQueue[a.ID] {
			continue
		}
		if inStore.Cleared[a.ID] {
			spent := a
			spent.State, spent.Reason, spent.Time = alert.StateCleared, alert.ReasonStale, now
			renamed = append(renamed, spent)
			if reopened, ok := eng.Reopen(&a, now); ok {
				trs = append(trs, reopened)
				renamed = append(renamed, reopened)
			}
			continue
		}
		a.State = alert.StateRaised
		trs = append(trs, a)
	}
	// The disclosure picture follows the engine: a spent or renamed id
	// ends there too.
	if pic := s.picture(); pic != nil && len(renamed) > 0 {
		pic.Alerts(renamed, now)
	}
	wasHeld := t.held
	t.held = nil // a takeover judges afresh what the store has open
	// The ids the store cleared: the relay may bring this engine the
	// reports that raise one of them again after the takeover (takeHeld).
	t.spent = inStore.Cleared
	// Only reports older than the takeover raise a spent id, and the
	// engine refuses them once they are stale: the ids are let go then
	// (clearHeldLocked), so that each batch does not look them up for the
	// rest of the tenure.
	t.spentUntil = now.Add(2 * rl.StaleAfter())
	// The gap this takeover covers (late.go): what this engine saw end
	// before it began was the old leader's to judge.
	gapFrom := s.unledGapFrom(now)
	clears := &loggedClears{log: &t.unled, gapFrom: gapFrom, overlap: sameAlertOverlap(rl)}
	ended := false // inStore.Spans is a copy, changed by the alerts ended as logged
	for _, id := range slices.Sorted(maps.Keys(stored)) {
		if inEngine[id] || inQueue[id] {
			continue
		}
		a := stored[id]
		if until, hold := s.holdsStored(eng, &a, inStore.ReportTimes, rl, now); hold {
			if t.held == nil {
				t.held = map[string]heldAlert{}
			}
			t.held[id] = newHeldAlert(a, until, inStore.ReportTimes)
			if _, seen := t.posted[id]; !seen {
				t.posted[id] = rl.LevelRank(a.Level)
			}
			continue
		}
		if clear, ok := clears.loggedClear(&a, inStore.Spans[id]); ok {
			// This engine saw it end while nobody led: it ended then,
			// not at the takeover. The span ends there too, so that a
			// later alert of the pair in the log is not taken for it.
			trs = append(trs, endedAsLogged(a, clear))
			if !ended {
				inStore.Spans, ended = maps.Clone(inStore.Spans), true
			}
			sp := inStore.Spans[id]
			sp.To = clear.Time
			inStore.Spans[id] = sp
			continue
		}
		trs = append(trs, eng.EndedAt(a, a.Time, inStore.ReportTimes, now))
	}
	if len(t.held) > 0 {
		s.log.Info("taking over detection: alerts open in the store held until the engine has their aircraft", "alerts", len(t.held))
	}
	// A held alert is open: it discloses its aircraft to the parties it
	// concerns, as the engine's alerts do; one held before and no longer
	// ends there (unless the engine has it).
	var disclosed []alert.Transition
	for _, id := range slices.Sorted(maps.Keys(wasHeld)) {
		if _, still := t.held[id]; !still && !inEngine[id] {
			disclosed = append(disclosed, heldEnded(wasHeld[id].last, now))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(t.held)) {
		disclosed = append(disclosed, t.held[id].last)
	}
	if pic := s.picture(); pic != nil && len(disclosed) > 0 {
		pic.Alerts(disclosed, now)
	}
	// The alerts raised and cleared while nobody led, which the store
	// has no trace of: after the reconcile, which brings the store to
	// what is open now; they are history.
	trs = append(trs, s.recordLate(inStore, func(id string) bool {
		_, open := stored[id]
		return open || inStore.Cleared[id] || inQueue[id] || inEngine[id]
	}, gapFrom)...)
	// After what is queued (the history of the alerts this replica's
	// engine raised before, which reconcileQueue brought up to the engine:
	// an alert of that history may have ended before the engine raised its
	// pair again), and committed like the rest: retried until it succeeds.
	for _, tr := range trs {
		t.pending = append(t.pending, queued{tr: tr})
	}
	// What the hotline was told of alerts open nowhere any more is
	// forgotten: another leader cleared them, and its commits never reach
	// this replica's applyPosted.
	for id := range t.posted {
		if _, open := stored[id]; !open && !inEngine[id] && !inQueue[id] {
			delete(t.posted, id)
		}
	}
	return len(trs), nil
}

// holdsStored reports whether a takeover at now holds the alert a that
// the store has open, until when (ReconcileDetection): while it is not
// stale and the engine's picture of its aircraft is older than the
// store's last transition of it, or than the last leader's picture of
// them as it recorded it (seen: StoredAlerts.ReportTimes; the reports
// that changed nothing published committed nothing). Held from the latest
// of those times and this process's start: a process that has just
// started (a restart on the embedded store, a replica started as the
// lease's only candidate) has no track yet, and a steady alert's last
// transition may lie long before, its aircraft reporting all along; they
// get the stale time from the start to report again.
func (s *Service) holdsStored(eng *alert.Engine, a *alert.Alert, seen map[track.Key]time.Time, rl rules.Rules, now time.Time) (until time.Time, hold bool) {
	from := later(a.Time, s.started)
	for i := range a.Aircraft {
		from = later(from, seen[a.Aircraft[i].Key()])
	}
	until = from.Add(rl.StaleAfter())
	return until, now.Before(until) && !eng.TracksSince(a, a.Time, seen)
}

// reconcileQueue brings the queue (t.mu held) in line with the store and
// the engine at a takeover. It holds what this engine produced while this
// replica led before and could not commit (the store down), and the
// engine went on while it did not lead, its transitions then dropped;
// another leader may have written the same alerts since. So, per alert:
// nothing of an alert the store cleared is kept (its id is spent: the
// engine's alert is judged as any other), nor of one whose pair the store
// has open under another id (the same alert, as another leader named it),
// nor of an alert recorded late at an earlier takeover of which the store
// now has a trace (another leader recorded it, late.go: judged by that
// alone, an alert of its pair open now being a later conflict);
// a raise of an alert the store has open is no news; and what is kept
// ends where the engine is now: with
// a clear when the engine no longer has the alert (EndedAt), with an update
// when the engine's alert is news against the last queued (the releases
// of the dropped are the waiters' as if committed by another leader).
func (s *Service) reconcileQueue(pending []queued, inStore StoredAlerts, stored map[string]alert.Alert, engine []alert.Alert, now time.Time) []queued {
	if len(pending) == 0 {
		return pending
	}
	openPairs := make(map[string]string, len(stored))
	for id, a := range stored {
		openPairs[pairOf(&a)] = id
	}
	kept := make([]queued, 0, len(pending))
	var stale []queued
	last := map[string]alert.Transition{}
	lateTraced := s.lateTraced(pending, inStore)
	for _, q := range pending {
		_, open := stored[q.tr.ID]
		other, pairOpen := openPairs[pairOf(&q.tr)]
		if q.tr.RecordedLate {
			// An alert over: the same as one of the store only when the
			// store has one of its pair at the same time (lateTraced),
			// not when it has one of its pair open now, which may be a
			// later conflict of the same aircraft.
			pairOpen = false
		}
		if inStore.Cleared[q.tr.ID] || pairOpen && other != q.tr.ID || q.tr.State == alert.StateRaised && open || lateTraced[q.tr.ID] {
			stale = append(stale, q)
			continue
		}
		kept = append(kept, q)
		last[q.tr.ID] = q.tr
	}
	release(stale)
	inEngine := make(map[string]*alert.Alert, len(engine))
	for i := range engine {
		inEngine[engine[i].ID] = &engine[i]
	}
	eng := s.tac.eng.Load()
	for _, id := range slices.Sorted(maps.Keys(last)) {
		tr := last[id]
		if tr.State == alert.StateCleared {
			continue
		}
		a, open := inEngine[id]
		switch {
		case !open:
			kept = append(kept, queued{tr: eng.EndedAt(tr, tr.Time, nil, now)})
		case a.Level != tr.Level || a.Time.After(tr.Time) && eng.NewsAgainst(&tr):
			up := *a
			up.State = alert.StateUpdated
			kept = append(kept, queued{tr: up})
		}
	}
	return kept
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// pairOf names what an alert is about: its kind and its aircraft. Two
// alerts of one pair are one alert under two ids. It is the pair the
// store keeps of an alert (store.AlertPair).
func pairOf(a *alert.Alert) string {
	aircraft := make([]store.AlertAircraft, len(a.Aircraft))
	for i := range a.Aircraft {
		aircraft[i] = store.AlertAircraft{Party: a.Aircraft[i].Party, Aircraft: a.Aircraft[i].Aircraft}
	}
	return store.AlertPair(a.Kind, aircraft)
}

// heldEnded is the held alert last as ended at now in the disclosure
// picture, which needs only its id and state: what the store is told of
// it is another leader's, or the clearHeldLocked's.
func heldEnded(last alert.Alert, now time.Time) alert.Transition {
	last.State, last.Time = alert.StateCleared, now
	return last
}

// heldAlert is an alert open in the store, which this replica's engine did
// not have when it took the detection lease (ReconcileDetection), or had
// from a picture older than the store's (tactical.behind).
type heldAlert struct {
	last  alert.Alert // the store's last transition of it
	until time.Time   // when it is stale: see holdsStored
	// since is the time of the store's last transition at the takeover,
	// and seen the last leader's report times of its aircraft that are
	// later (StoredAlerts.ReportTimes): the alert is over once the
	// engine's picture of each aircraft is as recent as the later of
	// the two and it does not have it.
	since time.Time
	seen  map[track.Key]time.Time
}

// newHeldAlert is the store's alert last held until until, with the last
// leader's report times of its aircraft (StoredAlerts.ReportTimes).
func newHeldAlert(last alert.Alert, until time.Time, reportTimes map[track.Key]time.Time) heldAlert {
	h := heldAlert{last: last, until: until, since: last.Time}
	for i := range last.Aircraft {
		k := last.Aircraft[i].Key()
		if at, ok := reportTimes[k]; ok && at.After(last.Time) {
			if h.seen == nil {
				h.seen = map[track.Key]time.Time{}
			}
			h.seen[k] = at
		}
	}
	return h
}

// caughtUp reports whether eng's picture of the held alert's aircraft has
// caught up with what the store and the last leader had of them, or the
// alert is stale at now: the engine alone judges it from then on.
func (h *heldAlert) caughtUp(eng *alert.Engine, now time.Time) bool {
	return !now.Before(h.until) || eng.TracksSince(&h.last, h.since, h.seen)
}

// endedAt is the held alert cleared by eng at now (alert.Engine.EndedAt).
func (h *heldAlert) endedAt(eng *alert.Engine, now time.Time) alert.Alert {
	return eng.EndedAt(h.last, h.since, h.seen, now)
}

// takeHeld matches the engine's transitions with what the store has of
// their alerts (t.mu held) since the takeover: a raise of an id the store
// cleared is reissued (alert.Engine.Reopen). The engine's raise of a held alert, by id or by
// pair (an engine fed the reports in another order names the alert after
// another report: it is renamed to the store's id), is the alert the
// store has open: it is committed as updated when it is news against the
// store's (another level, a prediction moved: NewsAgainst), not at all
// otherwise. The engine's clear (resolved) of an alert it took up at the
// takeover from a picture older than the store's (tactical.behind),
// before that picture has caught up, holds the store's alert instead of
// being committed; so does that of a held alert the engine took up
// (raised) from a picture older than the store's. It returns the
// transitions as the engine now names them (for the disclosure picture)
// and those to commit, and lets go of the alerts matched.
func (t *tactical) takeHeld(trs []alert.Transition, rank func(level string) int, now time.Time) (all, toCommit []alert.Transition) {
	defer t.noteHeld()
	all = make([]alert.Transition, 0, len(trs))
	toCommit = make([]alert.Transition, 0, len(trs))
	// The engine produced the transitions after a raise renamed here under
	// the name it had then: they take the store's id too.
	var renamedTo map[string]string
	for _, tr := range trs {
		if to, ok := renamedTo[tr.ID]; ok {
			tr.ID = to
		}
		if b, ok := t.behind[tr.ID]; ok && tr.State == alert.StateCleared {
			delete(t.behind, tr.ID)
			if tr.Reason == alert.ReasonResolved && !b.caughtUp(t.eng.Load(), now) {
				// The engine judged the alert it took up at the
				// takeover over from a picture older than the store's
				// (tactical.behind): held as the store has it, as if
				// the engine had not had it, rather than cleared and
				// raised again when the reports behind the store's
				// reach it.
				// Open still: in the disclosure picture too (not
				// in all).
				if t.held == nil {
					t.held = map[string]heldAlert{}
				}
				t.held[tr.ID] = b
				continue
			}
		}
		if tr.State == alert.StateRaised && t.spent[tr.ID] {
			// An id the store cleared (another leader judged the alert
			// over before the reports that raise it here reached it):
			// the alert is raised under a new id, not again under one
			// the parties were told ended.
			spent := tr.ID
			reissued, ok := t.eng.Load().Reopen(&tr, now)
			if !ok {
				continue
			}
			if renamedTo == nil {
				renamedTo = map[string]string{}
			}
			renamedTo[spent] = reissued.ID
			tr = reissued
		}
		h, ok := t.held[tr.ID]
		if !ok && tr.State == alert.StateRaised {
			for id, other := range t.held {
				if pairOf(&other.last) == pairOf(&tr) && t.eng.Load().Rename(&tr, id) {
					if renamedTo == nil {
						renamedTo = map[string]string{}
					}
					// The name tr had before (a spent id reissued
					// just now) goes to the store's id too.
					for from, to := range renamedTo {
						if to == tr.ID {
							renamedTo[from] = id
						}
					}
					renamedTo[tr.ID] = id
					tr.ID, h, ok = id, other, true
					break
				}
			}
		}
		all = append(all, tr)
		if !ok {
			if b, behind := t.behind[tr.ID]; behind && tr.State == alert.StateUpdated {
				caughtUp := b.caughtUp(t.eng.Load(), now)
				if !caughtUp && rank(tr.Level) <= rank(b.last.Level) {
					// From a picture older than the store's, a lower
					// level or a prediction moved is older news than
					// what the parties were told: judged once the
					// picture has caught up (clearHeldLocked).
					continue
				}
				if tr.Level == b.last.Level && (!tr.Time.After(b.last.Time) || !t.eng.Load().NewsAgainst(&b.last)) {
					continue // what the store has: no news
				}
				b.last = tr // what the store has of it once committed
				t.behind[tr.ID] = b
			}
			toCommit = append(toCommit, tr)
			continue
		}
		delete(t.held, tr.ID)
		// Taken up from a picture still older than the store's
		// transition, the alert is behind as one taken up at the
		// takeover is: its clear before that picture has caught up
		// would be followed by a raise of the same conflict under a new
		// id when the reports behind the store's reach the engine.
		behind := tr.State == alert.StateRaised && !h.caughtUp(t.eng.Load(), now)
		if tr.State == alert.StateRaised {
			// Raised from a later report than the store's, it is news
			// only when it tells something the store's does not, as at a
			// takeover: two engines fed the same reports in another order
			// publish the same alert moments apart.
			noNews := tr.Level == h.last.Level && (!tr.Time.After(h.last.Time) || !t.eng.Load().NewsAgainst(&h.last))
			if noNews || behind && rank(tr.Level) <= rank(h.last.Level) {
				// From a picture older than the store's, a lower
				// level is older news: judged once it has caught up
				// (clearHeldLocked).
				if behind {
					t.keepBehind(tr.ID, h)
				}
				continue
			}
			tr.State = alert.StateUpdated
		}
		if behind {
			h.last = tr // what the store has of it once committed
			t.keepBehind(tr.ID, h)
		}
		toCommit = append(toCommit, tr)
	}
	return all, toCommit
}

// noteHeld stores how many alerts are held or behind (t.mu held), for
// the readers that look without the lock first (heldOrBehind).
func (t *tactical) noteHeld() {
	t.heldOrBehind.Store(int64(len(t.held) + len(t.behind)))
}

// keepBehind records the store's alert id, which the engine has taken
// up from a picture older than the store's last transition of it
// (tactical.behind; t.mu held).
func (t *tactical) keepBehind(id string, b heldAlert) {
	if t.behind == nil {
		t.behind = map[string]heldAlert{}
	}
	t.behind[id] = b
}

// clearHeldLocked queues the clear (EndedAt) of each held alert the engine has
// not raised by now although its picture of the alert's aircraft has
// caught up with the store's transition, or whose stale limit has passed
// (t.mu held). A replica that no longer leads lets go of them all: the
// new leader reconciles. The ids the store had cleared at the takeover are
// let go once no report that could raise one is fresh any more.
func (s *Service) clearHeldLocked(now time.Time) {
	defer s.tac.noteHeld()
	t := s.tac
	if t.spent != nil && now.After(t.spentUntil) {
		t.spent = nil
	}
	if len(t.held) == 0 && len(t.behind) == 0 {
		return
	}
	pic := s.picture()
	if !s.leadsDetection() {
		// The held alerts end in the disclosure picture, where the
		// engine does not have them: the new leader judges them.
		for _, id := range slices.Sorted(maps.Keys(t.held)) {
			if _, open := t.eng.Load().Alert(id); !open && pic != nil {
				pic.Alerts([]alert.Transition{heldEnded(t.held[id].last, now)}, now)
			}
		}
		t.held, t.behind = nil, nil
		return
	}
	eng := t.eng.Load()
	for _, id := range slices.Sorted(maps.Keys(t.behind)) {
		b := t.behind[id]
		if !b.caughtUp(eng, now) {
			continue
		}
		// Caught up: the engine judges it alone, and what it has of it
		// now, held back while its picture was older than the store's
		// (takeHeld), is committed when it is news against what the
		// store has.
		delete(t.behind, id)
		if a, ok := eng.Alert(id); ok && (a.Level != b.last.Level || a.Time.After(b.last.Time) && eng.NewsAgainst(&b.last)) {
			a.State = alert.StateUpdated
			s.enqueueLocked([]alert.Transition{a}, false)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(t.held)) {
		h := t.held[id]
		if !h.caughtUp(eng, now) {
			continue
		}
		delete(t.held, id)
		a := h.endedAt(eng, now)
		s.cleared.add(&a)
		if pic != nil {
			pic.Alerts([]alert.Transition{a}, now)
		}
		t.pending = append(t.pending, queued{tr: a})
	}
}

// publishCommitted hands the events of a transaction that has just
// committed (s.wmu held) to the live streams. The ids just before them may
// not be published here yet: committed by another replica on a shared
// database, or by a write of this process whose commit's acknowledgement
// was lost (it failed for its caller, and published nothing). They are read
// from the store first, so that a live stream never skips an id (nor a
// client resuming after the last id it got). If that read fails, nothing
// is published now; the periodic catch-up publishes everything in order
// later.
func (s *Service) publishCommitted(ctx context.Context, evs []store.Event) {
	if len(evs) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for after := s.hub.last(); after < evs[0].ID-1; after = s.hub.last() {
		var missed []store.Event
		err := s.st.View(ctx, func(tx store.Tx) error {
			var err error
			missed, err = tx.EventsAfter(after, int(min(evs[0].ID-1-after, 1000)))
			return err
		})
		if err != nil || len(missed) == 0 {
			if err != nil {
				s.log.Warn("reading the events committed before a write's", "err", err)
			}
			return
		}
		s.deliver(missed)
	}
	s.deliver(evs)
}

// SyncFromStore brings what this replica keeps in memory up to what the
// other replicas committed (or a write of its own whose commit's
// acknowledgement was lost, syncFromStore): the volume index (its reads and the
// conformance checks of the engine) and the rules. A rules version newer
// than this replica's is adopted (the engine retuned, the volume index
// rebuilt when the separation changed) only when it is at most adoptUpTo:
// the caller passes the version returned by its previous call, so that a
// version is adopted at the second look, by which time an activation by this
// replica has long applied its own version (adopting it again would retune
// twice). It returns the store's latest rules version.
func (s *Service) SyncFromStore(ctx context.Context, adoptUpTo int64) (int64, error) {
	var rec store.RulesRecord
	err := s.st.View(ctx, func(tx store.Tx) error {
		if err := s.volumes().Sync(tx); err != nil {
			return err
		}
		var err error
		rec, err = tx.LatestRules()
		return err
	})
	if err != nil {
		return 0, err
	}
	s.noteRulesInForce(rec)
	if rec.Version > adoptUpTo {
		return rec.Version, nil
	}
	return rec.Version, s.adoptRulesRecord(ctx, rec)
}

// adoptStoredRules adopts the rules the store holds when they are newer
// than this process's (a volume write found them so, writeVolumes).
func (s *Service) adoptStoredRules(ctx context.Context) error {
	var rec store.RulesRecord
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		rec, err = tx.LatestRules()
		return err
	})
	if err != nil {
		return fmt.Errorf("service: reading the rules in force: %w", err)
	}
	return s.adoptRulesRecord(ctx, rec)
}

// adoptRulesRecord adopts the stored rules rec, and applies them to the
// live engines, unless this process runs with them or newer already (its
// own activation adopted them, or another caller did meanwhile).
func (s *Service) adoptRulesRecord(ctx context.Context, rec store.RulesRecord) error {
	s.lockRulesApply()
	defer s.rulesApply.Unlock()
	cur := s.rules.Load()
	if rec.Version <= cur.inUse.Version {
		return nil
	}
	r, err := decodeRules(rec)
	if err != nil {
		return err
	}
	in := s.prepareRules(r)
	if !s.rules.CompareAndSwap(cur, in) {
		return nil // changed meanwhile: look again next time
	}
	s.log.Info("rules in force in the store adopted (changed through another replica, or by a write whose acknowledgement was lost, or not adopted yet as a volume write came)", "version", r.Version)
	return s.applyRules(ctx, cur.inUse, in.inUse)
}
