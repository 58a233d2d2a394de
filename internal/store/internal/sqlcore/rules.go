package sqlcore

// This file implements the store.Rules role: the versions of the agreed
// rules in force, and the proposed ones.

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
	if r.Version <= latest {
		return fmt.Errorf("store: rules version %d is not above %d: %w", r.Version, latest, store.ErrConflict)
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

func (t *Tx) RulesHistory() ([]store.RulesRecord, error) {
	var out []store.RulesRecord
	err := t.queryAll(`SELECT version, created_ns, actor, body FROM rules ORDER BY version`, nil, func(r Rows) error {
		var rec store.RulesRecord
		var created int64
		if err := r.Scan(&rec.Version, &created, &rec.Actor, &rec.Body); err != nil {
			return err
		}
		rec.Created = decTime(created)
		out = append(out, rec)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: rules history: %w", err)
	}
	return out, nil
}

func (t *Tx) PutRulesProposal(p store.RulesProposal) error {
	if err := t.writable("PutRulesProposal"); err != nil {
		return err
	}
	if err := checkText("rules proposal.Actor", p.Actor); err != nil {
		return err
	}
	if err := checkText("rules proposal.State", p.State); err != nil {
		return err
	}
	if p.Version < 1 {
		return fmt.Errorf("store: rules proposal version %d: %w", p.Version, store.ErrInvalid)
	}
	created, err := encTime("rules proposal.Created", p.Created)
	if err != nil {
		return err
	}
	_, err = t.q.Exec(t.ctx, `INSERT INTO rules_proposals (version, created_ns, actor, state, body) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (version) DO UPDATE SET created_ns = excluded.created_ns, actor = excluded.actor, state = excluded.state, body = excluded.body`,
		p.Version, created, p.Actor, p.State, nz(p.Body))
	if err != nil {
		return fmt.Errorf("store: put rules proposal %d: %w", p.Version, err)
	}
	return nil
}

func (t *Tx) GetRulesProposal(version int64) (store.RulesProposal, error) {
	var p store.RulesProposal
	var created int64
	err := t.queryOne(`SELECT version, created_ns, actor, state, body FROM rules_proposals WHERE version = ?`, []any{version},
		&p.Version, &created, &p.Actor, &p.State, &p.Body)
	if err != nil {
		return store.RulesProposal{}, fmt.Errorf("store: rules proposal %d: %w", version, err)
	}
	p.Created = decTime(created)
	return p, nil
}

func (t *Tx) RulesProposals(state string) ([]store.RulesProposal, error) {
	q := `SELECT version, created_ns, actor, state, body FROM rules_proposals`
	var args []any
	if state != "" {
		if !validText(state) {
			return nil, nil
		}
		q += ` WHERE state = ?`
		args = append(args, state)
	}
	var out []store.RulesProposal
	err := t.queryAll(q+` ORDER BY version`, args, func(r Rows) error {
		var p store.RulesProposal
		var created int64
		if err := r.Scan(&p.Version, &created, &p.Actor, &p.State, &p.Body); err != nil {
			return err
		}
		p.Created = decTime(created)
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: rules proposals: %w", err)
	}
	return out, nil
}
