package sqlcore

// This file implements the store.Meta role: the small key/value space.

import (
	"fmt"

	"github.com/deconflict/deconflict/internal/store"
)

func (t *Tx) GetMeta(key string) ([]byte, error) {
	if !validText(key) {
		return nil, fmt.Errorf("store: meta %q: %w", key, store.ErrNotFound)
	}
	var v []byte
	if err := t.queryOne(`SELECT value FROM meta WHERE name = ?`, []any{key}, &v); err != nil {
		return nil, fmt.Errorf("store: meta %q: %w", key, err)
	}
	return v, nil
}

func (t *Tx) PutMeta(key string, value []byte) error {
	if err := t.writable("PutMeta"); err != nil {
		return err
	}
	if err := checkText("meta key", key); err != nil {
		return err
	}
	_, err := t.q.Exec(t.ctx, `INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
		key, nz(value))
	if err != nil {
		return fmt.Errorf("store: put meta %q: %w", key, err)
	}
	return nil
}
