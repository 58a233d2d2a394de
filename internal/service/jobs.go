package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
)

// audit appends the audit record of a change inside the change's own
// transaction, readable in a party's export by readers: the parties that
// may see the change through the API.
func (s *Service) audit(tx store.Tx, actor, kind string, readers audit.Readers, content any) error {
	_, err := s.alog.Append(tx, actor, kind, readers, content, s.now())
	return err
}

// appendAudit records a change made outside a running service (the CLI on
// a bare store): the record joins the chain, the next checkpoint of the
// server signs it.
func appendAudit(tx store.Tx, actor, kind string, readers audit.Readers, content any, now time.Time) error {
	_, err := audit.Append(tx, actor, kind, readers, content, now)
	return err
}

// checkpointEvery is how often the periodic job signs the head of the
// audit chain when records were added since the last signature, so that
// the unsigned tail after a crash stays short.
const checkpointEvery = time.Minute

// checkpointAudit signs the head of the audit chain when it is unsigned
// and the last signature is older than checkpointEvery.
func (s *Service) checkpointAudit(ctx context.Context, now time.Time) error {
	if now.Sub(s.lastCheckpoint) < checkpointEvery {
		return nil
	}
	s.lastCheckpoint = now
	return s.signAudit(ctx, now)
}

// signAudit signs the head of the audit chain.
func (s *Service) signAudit(ctx context.Context, now time.Time) error {
	return s.write(ctx, func(tx store.Tx) error {
		_, _, err := s.alog.Checkpoint(tx, now)
		return err
	})
}

// sweep runs forget, the deletion of what expired, in a write of its own
// at most once per every: last is when it last ran (touched by the
// periodic job only).
func (s *Service) sweep(ctx context.Context, now time.Time, last *time.Time, every time.Duration, forget func(store.Tx) error) error {
	if now.Sub(*last) < every {
		return nil
	}
	*last = now
	return s.st.Update(ctx, forget)
}

// jobs are the periodic housekeeping jobs, run in this order at each tick.
func (s *Service) jobs() []job {
	return []job{
		{"expire tracks", s.expireTracks},
		{"record the report times of the alerts' aircraft", s.recordReportTimes},
		{"end expired volumes", s.endExpiredVolumes},
		{"announce the findings of new rules", s.announceFindingsJob},
		{"escalate hotline items", s.escalate},
		{"check the service's time against the parties' reports", s.checkReportClock},
		{"audit checkpoint", s.checkpointAudit},
		{"forget expired nonces", s.forgetNonces},
		{"forget expired idempotency keys", s.forgetIdempotent},
		{"transparency log checkpoint", s.publishLog},
		{"catch up events", func(ctx context.Context, _ time.Time) error { return s.CatchUpEvents(ctx) }},
		{"sync from the store", s.syncFromStore},
		// On the host's monotonic clock, not the service's (process.mono).
		{"process registration", func(ctx context.Context, _ time.Time) error { return s.beatProcess(ctx, s.process.mono()) }},
		{"delete the rows of ended processes", func(ctx context.Context, _ time.Time) error {
			return s.sweepEndedProcesses(ctx, s.process.mono())
		}},
	}
}

// syncFromStore is the periodic job that brings the volume index and the
// rules up to the embedded store. A write whose commit's acknowledgement
// was lost failed for its caller, so what it changes in memory once
// committed was never applied here: the volumes it declared or changed
// (the index the reads and the conformance checks go by) and the rules it
// brought into force, which everyone reading the store sees in force.
// With replicas the server syncs more often (SyncFromStore), and this job
// does nothing.
func (s *Service) syncFromStore(ctx context.Context, _ time.Time) error {
	if s.cfg.Peers != nil {
		return nil
	}
	v, err := s.SyncFromStore(ctx, s.rulesSeen.Load())
	s.rulesSeen.Store(v)
	return err
}

// applyRules hands new rules to the live engines. The volume index is
// built for one separation and time buffer: rebuild it when they change,
// so that what reads it between writes (need to know's conflicting
// volumes) follows the new rules at once. The volume writes wait for it
// (volumeWrites); the others, which do not touch the index, do not.
func (s *Service) applyRules(ctx context.Context, old, r rules.Rules) error {
	if old.HorizontalSepM != r.HorizontalSepM || old.VerticalSepM != r.VerticalSepM || old.TimeBufferS != r.TimeBufferS {
		s.volumeWrites.Lock()
		err := s.loadVolumes(ctx, r)
		s.volumeWrites.Unlock()
		if err != nil {
			return err
		}
	}
	if err := s.setWitnesses(r); err != nil {
		return err
	}
	return s.retuneTactical(ctx, r)
}

// shutdownJobs runs what must happen once at shutdown: the commit of the
// alert transitions still queued (retried until ctx ends), then the final
// audit checkpoint, so that the whole chain is signed.
func (s *Service) shutdownJobs(ctx context.Context) error {
	for s.tac.queuedTransitions() > 0 {
		wait, err := s.commitQueued(ctx, nil)
		if err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service: %d alert transitions not committed at shutdown: %w", s.tac.queuedTransitions(), err)
		case <-time.After(wait):
		}
	}
	// The lease is still held: the next leader takes over from this
	// engine's picture. A failure does not keep the audit's last
	// checkpoint from being signed.
	recorded := s.recordReportTimes(ctx, s.now())
	if err := s.signAudit(ctx, s.now()); err != nil {
		return errors.Join(recorded, err)
	}
	// The last records get a checkpoint too; the witnesses have until ctx
	// ends to cosign it.
	return errors.Join(recorded, s.PublishLog(ctx))
}
