package sqlcore

// This file implements the store.Audit role: the audit record and its
// checkpoints.

import (
	"fmt"

	"github.com/deconflict/deconflict/internal/store"
)

const auditCols = `seq, time_ns, actor, kind, content, prev_hash, hash`

func scanAudit(r Rows) (store.AuditRecord, error) {
	var a store.AuditRecord
	var ts int64
	err := r.Scan(&a.Seq, &ts, &a.Actor, &a.Kind, &a.Content, &a.PrevHash, &a.Hash)
	a.Time = decTime(ts)
	return a, err
}

func (t *Tx) AppendAudit(r store.AuditRecord) error {
	if err := t.writable("AppendAudit"); err != nil {
		return err
	}
	if err := checkText("audit.Actor", r.Actor, "audit.Kind", r.Kind); err != nil {
		return err
	}
	ts, err := encTime("audit.Time", r.Time)
	if err != nil {
		return err
	}
	var last int64
	if err := t.queryOne(`SELECT COALESCE(MAX(seq), 0) FROM audit`, nil, &last); err != nil {
		return fmt.Errorf("store: append audit: %w", err)
	}
	if r.Seq != last+1 {
		return fmt.Errorf("store: audit seq %d is not %d: %w", r.Seq, last+1, store.ErrConflict)
	}
	n, err := t.q.Exec(t.ctx, `INSERT INTO audit (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING`,
		r.Seq, ts, r.Actor, r.Kind, nz(r.Content), nz(r.PrevHash), nz(r.Hash))
	if err != nil {
		return fmt.Errorf("store: append audit %d: %w", r.Seq, err)
	}
	if n == 0 {
		return fmt.Errorf("store: audit seq %d exists: %w", r.Seq, store.ErrConflict)
	}
	return nil
}

func (t *Tx) LastAudit() (store.AuditRecord, error) {
	var out store.AuditRecord
	found := false
	err := t.queryAll(`SELECT `+auditCols+` FROM audit ORDER BY seq DESC LIMIT 1`, nil, func(r Rows) error {
		a, err := scanAudit(r)
		out, found = a, true
		return err
	})
	if err != nil {
		return store.AuditRecord{}, fmt.Errorf("store: last audit: %w", err)
	}
	if !found {
		return store.AuditRecord{}, fmt.Errorf("store: audit log is empty: %w", store.ErrNotFound)
	}
	return out, nil
}

// AuditFrom returns records with Seq >= seq in order, at most limit.
func (t *Tx) AuditFrom(seq int64, limit int) ([]store.AuditRecord, error) {
	if limit <= 0 {
		return nil, nil
	}
	out := make([]store.AuditRecord, 0, min(limit, 1024))
	err := t.queryAll(`SELECT `+auditCols+` FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?`, []any{seq, int64(limit)}, func(r Rows) error {
		a, err := scanAudit(r)
		out = append(out, a)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: audit from %d: %w", seq, err)
	}
	return out, nil
}

// PutCheckpoint inserts or replaces the checkpoint at c.Seq.
func (t *Tx) PutCheckpoint(c store.Checkpoint) error {
	if err := t.writable("PutCheckpoint"); err != nil {
		return err
	}
	ts, err := encTime("checkpoint.Time", c.Time)
	if err != nil {
		return err
	}
	_, err = t.q.Exec(t.ctx, `INSERT INTO checkpoints (seq, hash, signature, time_ns) VALUES (?, ?, ?, ?)
		ON CONFLICT (seq) DO UPDATE SET hash = excluded.hash, signature = excluded.signature, time_ns = excluded.time_ns`,
		c.Seq, nz(c.Hash), nz(c.Signature), ts)
	if err != nil {
		return fmt.Errorf("store: put checkpoint %d: %w", c.Seq, err)
	}
	return nil
}

// CheckpointsFrom returns checkpoints with Seq >= seq in order.
func (t *Tx) CheckpointsFrom(seq int64) ([]store.Checkpoint, error) {
	var out []store.Checkpoint
	err := t.queryAll(`SELECT seq, hash, signature, time_ns FROM checkpoints WHERE seq >= ? ORDER BY seq`, []any{seq}, func(r Rows) error {
		var c store.Checkpoint
		var ts int64
		err := r.Scan(&c.Seq, &c.Hash, &c.Signature, &ts)
		c.Time = decTime(ts)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: checkpoints from %d: %w", seq, err)
	}
	return out, nil
}
