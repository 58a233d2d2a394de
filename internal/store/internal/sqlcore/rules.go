package sqlcore

// This file implements the store.Rules role: the versions of the agreed
// rules.

import (
	"fmt"

	"github.com/deconflict/deconflict/internal/store"
)

func (t *Tx) PutRules(r store.RulesRecord) error {
	if err := t.writable("PutRules"); err != nil {
		return err
	}
	if err := checkText("rules.Actor", r.Actor); err != nil {
		return err
	}
	created, err := encTime("rules.Created", r.Created)
	if err != nil {
		return err
	}
	var latest int64
	if err := t.queryOne(`SELECT COALESCE(MAX(version), 0) FROM rules`, nil, &latest); err != nil {
		return fmt.Errorf("store: put rules: %w", err)
	}
	if r.Version != latest+1 {
		return fmt.Errorf("store: rules version %d is not %d: %w", r.Version, latest+1, store.ErrConflict)
	}
	n, err := t.q.Exec(t.ctx, `INSERT INTO rules (version, created_ns, actor, body) VALUES (?, ?, ?, ?) ON CONFLICT (version) DO NOTHING`,
		r.Version, created, r.Actor, nz(r.Body))
	if err != nil {
		return fmt.Errorf("store: put rules %d: %w", r.Version, err)
	}
	if n == 0 {
		return fmt.Errorf("store: rules version %d exists: %w", r.Version, store.ErrConflict)
	}
	return nil
}

func (t *Tx) LatestRules() (store.RulesRecord, error) {
	var r store.RulesRecord
	var created int64
	err := t.queryOne(`SELECT version, created_ns, actor, body FROM rules ORDER BY version DESC LIMIT 1`, nil,
		&r.Version, &created, &r.Actor, &r.Body)
	if err != nil {
		return store.RulesRecord{}, fmt.Errorf("store: latest rules: %w", err)
	}
	r.Created = decTime(created)
	return r, nil
}
