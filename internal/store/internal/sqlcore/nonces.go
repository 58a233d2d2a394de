package sqlcore

// This file implements the store.Nonces role: the nonces of signed
// requests until they expire.

import (
	"fmt"
	"time"
)

func (t *Tx) UseNonce(keyID, nonce string, now, expires time.Time) (bool, error) {
	if err := t.writable("UseNonce"); err != nil {
		return false, err
	}
	if err := checkText("nonce.KeyID", keyID, "nonce.Nonce", nonce); err != nil {
		return false, err
	}
	nowNs, err := encTime("nonce.now", now)
	if err != nil {
		return false, err
	}
	expNs, err := encTime("nonce.Expires", expires)
	if err != nil {
		return false, err
	}
	// A row still there but expired is taken over: the nonce may be used
	// again once forgotten. One statement decides, so two transactions
	// inserting the same nonce cannot both count it fresh (the second
	// waits for the first's unique key, then sees its row).
	n, err := t.q.Exec(t.ctx, `INSERT INTO nonces (keyid, nonce, expires_ns) VALUES (?, ?, ?)
		ON CONFLICT (keyid, nonce) DO UPDATE SET expires_ns = excluded.expires_ns WHERE nonces.expires_ns <= ?`,
		keyID, nonce, expNs, nowNs)
	if err != nil {
		return false, fmt.Errorf("store: use nonce: %w", err)
	}
	return n == 1, nil
}

func (t *Tx) ForgetNonces(now time.Time) (int64, error) {
	if err := t.writable("ForgetNonces"); err != nil {
		return 0, err
	}
	nowNs, err := encTime("now", now)
	if err != nil {
		return 0, err
	}
	n, err := t.q.Exec(t.ctx, `DELETE FROM nonces WHERE expires_ns <= ?`, nowNs)
	if err != nil {
		return 0, fmt.Errorf("store: forget nonces: %w", err)
	}
	return n, nil
}
