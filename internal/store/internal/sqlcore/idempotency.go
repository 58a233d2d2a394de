package sqlcore

// This file implements the store.Idempotency role: the answers of writes
// sent with an Idempotency-Key, until they expire.

import (
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
	// One statement decides, as for nonces: of two transactions putting
	// the same key, the second waits for the first's unique key and then
	// finds its row live.
	n, err := t.q.Exec(t.ctx, `INSERT INTO idempotency (party, idem_key, fingerprint, status, body, created_ns, expires_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (party, idem_key) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status,
			body = excluded.body, created_ns = excluded.created_ns, expires_ns = excluded.expires_ns
		WHERE idempotency.expires_ns <= ?`,
		a.Party, a.Key, nz(a.Fingerprint), int64(a.Status), nz(a.Body), createdNs, expiresNs, nowNs)
	if err != nil {
		return fmt.Errorf("store: put idempotency key %q of %q: %w", a.Key, a.Party, err)
	}
	if n != 1 {
		return fmt.Errorf("store: idempotency key %q of %q is kept already: %w", a.Key, a.Party, store.ErrConflict)
	}
	return nil
}

func (t *Tx) IdempotentUsage(party string, now time.Time) (int, int64, error) {
	nowNs, err := encTime("now", now)
	if err != nil {
		return 0, 0, err
	}
	var count, size int64
	err = t.queryOne(`SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM idempotency WHERE party = ? AND expires_ns > ?`,
		[]any{party, nowNs}, &count, &size)
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
	n, err := t.q.Exec(t.ctx, `DELETE FROM idempotency WHERE expires_ns <= ?`, nowNs)
	if err != nil {
		return 0, fmt.Errorf("store: forget idempotency keys: %w", err)
	}
	return n, nil
}
