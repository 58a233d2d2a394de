package sqlcore

// This file implements the store.Idempotency role: the answers of writes
// sent with an Idempotency-Key, until they expire, and what each party
// keeps (idempotency_usage, kept in step with the answers).

import (
	"errors"
	"fmt"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

func (t *Tx) GetIdempotent(party, key string, now time.Time) (store.IdempotentAnswer, error) {
	a := store.IdempotentAnswer{Party: party, Key: key}
	if !validText(party) || !validText(key) {
		return a, fmt.Errorf("store: idempotency key %q of %q: %w", key, party, store.ErrNotFound)
	}
	nowNs, err := encTime("now", now)
	if err != nil {
		return a, err
	}
	var status, createdNs, expiresNs int64
	err = t.queryOne(`SELECT fingerprint, status, body, created_ns, expires_ns FROM idempotency
		WHERE party = ? AND idem_key = ? AND expires_ns > ?`, []any{party, key, nowNs},
		&a.Fingerprint, &status, &a.Body, &createdNs, &expiresNs)
	if err != nil {
		return a, fmt.Errorf("store: idempotency key %q of %q: %w", key, party, err)
	}
	a.Status = int(status)
	a.Created, a.Expires = decTime(createdNs), decTime(expiresNs)
	return a, nil
}

func (t *Tx) PutIdempotent(a store.IdempotentAnswer, now time.Time) error {
	if err := t.writable("PutIdempotent"); err != nil {
		return err
	}
	if err := checkText("idempotency.Party", a.Party, "idempotency.Key", a.Key); err != nil {
		return err
	}
	nowNs, err := encTime("now", now)
	if err != nil {
		return err
	}
	createdNs, err := encTime("idempotency.Created", a.Created)
	if err != nil {
		return err
	}
	expiresNs, err := encTime("idempotency.Expires", a.Expires)
	if err != nil {
		return err
	}
	// An expired answer under the key is taken over: forgotten first.
	var oldBytes int64
	err = t.queryOne(`DELETE FROM idempotency WHERE party = ? AND idem_key = ? AND expires_ns <= ? RETURNING LENGTH(body)`,
		[]any{a.Party, a.Key, nowNs}, &oldBytes)
	switch {
	case err == nil:
		if err := t.countIdempotent(a.Party, -1, -oldBytes); err != nil {
			return err
		}
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("store: put idempotency key %q of %q: %w", a.Key, a.Party, err)
	}
	// One statement decides, as for nonces: of two transactions putting
	// the same key, the second waits for the first's unique key and then
	// finds its row.
	n, err := t.q.Exec(t.ctx, `INSERT INTO idempotency (party, idem_key, fingerprint, status, body, created_ns, expires_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (party, idem_key) DO NOTHING`,
		a.Party, a.Key, nz(a.Fingerprint), int64(a.Status), nz(a.Body), createdNs, expiresNs)
	if err != nil {
		return fmt.Errorf("store: put idempotency key %q of %q: %w", a.Key, a.Party, err)
	}
	if n != 1 {
		return fmt.Errorf("store: idempotency key %q of %q is kept already: %w", a.Key, a.Party, store.ErrConflict)
	}
	return t.countIdempotent(a.Party, 1, int64(len(a.Body)))
}

// countIdempotent adds to what party keeps.
func (t *Tx) countIdempotent(party string, answers, bodyBytes int64) error {
	_, err := t.q.Exec(t.ctx, `INSERT INTO idempotency_usage (party, answers, body_bytes) VALUES (?, ?, ?)
		ON CONFLICT (party) DO UPDATE SET answers = idempotency_usage.answers + excluded.answers,
			body_bytes = idempotency_usage.body_bytes + excluded.body_bytes`,
		party, answers, bodyBytes)
	if err != nil {
		return fmt.Errorf("store: idempotency usage of %q: %w", party, err)
	}
	return nil
}

func (t *Tx) IdempotentUsage(party string) (int, int64, error) {
	var count, size int64
	err := t.queryOne(`SELECT answers, body_bytes FROM idempotency_usage WHERE party = ?`, []any{party}, &count, &size)
	if errors.Is(err, store.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: idempotency usage of %q: %w", party, err)
	}
	return int(count), size, nil
}

func (t *Tx) ForgetIdempotent(now time.Time) (int64, error) {
	if err := t.writable("ForgetIdempotent"); err != nil {
		return 0, err
	}
	nowNs, err := encTime("now", now)
	if err != nil {
		return 0, err
	}
	type usage struct{ answers, bodyBytes int64 }
	forgot := map[string]usage{}
	var n int64
	err = t.queryAll(`DELETE FROM idempotency WHERE expires_ns <= ? RETURNING party, LENGTH(body)`, []any{nowNs}, func(r Rows) error {
		var party string
		var size int64
		if err := r.Scan(&party, &size); err != nil {
			return err
		}
		u := forgot[party]
		forgot[party] = usage{u.answers + 1, u.bodyBytes + size}
		n++
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: forget idempotency keys: %w", err)
	}
	for party, u := range forgot {
		if err := t.countIdempotent(party, -u.answers, -u.bodyBytes); err != nil {
			return 0, err
		}
	}
	return n, nil
}
