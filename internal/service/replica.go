package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/deconflict/deconflict/internal/alert"
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
	// seeing one conflict do not both write it.
	LeadsDetection() bool
	// FenceDetection returns, while this replica leads detection, the
	// check that the commit of alert transitions runs inside its
	// transaction: it fails with an error wrapping ErrNotLeading once the
	// lease has changed hands since, so that a leader paused (SIGSTOP, a
	// stalled connection) between its look at the lease and its commit
	// writes nothing after another replica took over and reconciled. It
	// returns nil when this replica does not lead.
	FenceDetection() func(store.Meta) error
}

// ErrNotLeading is what a detection fence fails with once this replica no
// longer leads detection.
var ErrNotLeading = errors.New("service: this replica no longer leads detection")

// leadsDetection reports whether this replica commits alert transitions.
func (s *Service) leadsDetection() bool {
	return s.cfg.Peers == nil || s.cfg.Peers.LeadsDetection()
}

// detectionFence returns the check of commitGroup's transaction (nil:
// none, on the embedded store) and whether this replica leads detection.
func (s *Service) detectionFence() (func(store.Meta) error, bool) {
	if s.cfg.Peers == nil {
		return nil, true
	}
	fence := s.cfg.Peers.FenceDetection()
	return fence, fence != nil
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
func (s *Service) IngestRelayed(ctx context.Context, reports []track.Report) error {
	for lo := 0; lo < len(reports); lo += ingestChunk {
		hi := min(lo+ingestChunk, len(reports))
		if _, _, _, err := s.applyChunk(reports[lo:hi], false, 0); err != nil {
			s.log.Warn("relayed position reports refused", "err", err)
		}
		s.disclosePositions(reports[lo:hi])
	}
	return s.commitQueuedJob(ctx, s.now())
}

// ReconcileDetection is called when this replica has just taken the
// detection lease. While another replica led, this engine's transitions
// were dropped, and the leader may have died before committing its last
// ones: this commits the difference between the engine's open alerts and
// those open in the store — raised for the alerts only the engine has,
// updated for those the engine changed since the store's last transition
// (another level, or a later prediction), cleared (reason stale: nobody
// tracks them any more) for those only the store has. openInStore returns the open alerts of the store (id -> the
// JSON of its last transition); it is read while no transition can
// commit, so that nothing is written twice.
func (s *Service) ReconcileDetection(ctx context.Context, openInStore func(context.Context) (map[string][]byte, error)) error {
	t := s.tac
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	stored, err := openInStore(ctx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	inQueue := map[string]bool{}
	for _, q := range t.pending {
		inQueue[q.tr.ID] = true
	}
	engine := t.eng.Load().Alerts()
	t.mu.Unlock()
	now := s.now()
	rl := s.Rules()
	var trs []alert.Transition
	inEngine := map[string]bool{}
	for _, a := range engine {
		inEngine[a.ID] = true
		if body, ok := stored[a.ID]; ok {
			// The old leader posted it to the hotline: only a higher
			// level than the stored one is posted again.
			var last alert.Alert
			if err := json.Unmarshal(body, &last); err != nil {
				return fmt.Errorf("service: stored alert %s: %w", a.ID, err)
			}
			if _, seen := t.posted[a.ID]; !seen {
				t.posted[a.ID] = rl.LevelRank(last.Level)
			}
			// The engine changed it after the store's last transition
			// (while nobody led, or the old leader died before its
			// commit): the update is committed now.
			if !inQueue[a.ID] && (a.Level != last.Level || a.Time.After(last.Time)) {
				a.State = alert.StateUpdated
				trs = append(trs, a)
			}
			continue
		}
		if inQueue[a.ID] {
			continue
		}
		a.State = alert.StateRaised
		trs = append(trs, a)
	}
	for id, body := range stored {
		if inEngine[id] || inQueue[id] {
			continue
		}
		var a alert.Alert
		if err := json.Unmarshal(body, &a); err != nil {
			return fmt.Errorf("service: stored alert %s: %w", id, err)
		}
		a.State = alert.StateCleared
		a.Reason = alert.ReasonStale
		a.Time = now
		trs = append(trs, a)
	}
	if len(trs) == 0 {
		return nil
	}
	// Ahead of everything queued, and committed like the rest: retried
	// until it succeeds.
	first := make([]queued, len(trs))
	for i, tr := range trs {
		first[i] = queued{tr: tr}
	}
	t.mu.Lock()
	t.pending = append(first, t.pending...)
	t.mu.Unlock()
	if _, err := s.commitQueuedLocked(ctx, nil); err != nil {
		return err
	}
	s.log.Info("took over detection", "transitions", len(trs))
	return nil
}

// publishCommitted hands the events of a transaction that has just
// committed (s.wmu held) to the live streams. On a shared database the ids
// just before them may have been committed by another replica and not be
// published here yet: they are read from the store first, so that a live
// stream never skips an id. If that read fails, nothing is published now;
// the periodic catch-up publishes everything in order later.
func (s *Service) publishCommitted(ctx context.Context, evs []store.Event) {
	if len(evs) == 0 {
		return
	}
	if s.cfg.Peers != nil {
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
					s.log.Warn("reading the events of other replicas", "err", err)
				}
				return
			}
			s.deliver(missed)
		}
	}
	s.deliver(evs)
}

// SyncFromStore brings what this replica keeps in memory up to what the
// other replicas committed: the volume index (its reads and the
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
	cur := s.rules.Load()
	if rec.Version <= cur.Version || rec.Version > adoptUpTo {
		return rec.Version, nil
	}
	r, err := rules.Decode(rec.Body)
	if err != nil {
		return rec.Version, fmt.Errorf("service: rules version %d: %w", rec.Version, err)
	}
	r.Version = rec.Version
	if !s.rules.CompareAndSwap(cur, &r) {
		return rec.Version, nil // changed meanwhile: look again next time
	}
	s.log.Info("rules changed through another replica", "version", r.Version)
	return rec.Version, s.applyRules(ctx, *cur, r)
}
