package sqlcore

// This file implements the store.Meta role: the small key/value space.

import (
	"fmt"
	"unicode/utf8"

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

func (t *Tx) DeleteMeta(key string) error {
	if err := t.writable("DeleteMeta"); err != nil {
		return err
	}
	if !validText(key) {
		return nil // it cannot have been stored
	}
	if _, err := t.q.Exec(t.ctx, `DELETE FROM meta WHERE name = ?`, key); err != nil {
		return fmt.Errorf("store: delete meta %q: %w", key, err)
	}
	return nil
}

// MetaWithPrefix compares the keys' first characters with substr rather
// than LIKE, in which a key's own % and _ would be patterns, or a range of
// names, which PostgreSQL orders by the database's collation.
func (t *Tx) MetaWithPrefix(prefix string) (map[string][]byte, error) {
	out := map[string][]byte{}
	if !validText(prefix) {
		return out, nil
	}
	err := t.queryAll(`SELECT name, value FROM meta WHERE substr(name, 1, ?) = ?`, []any{utf8.RuneCountInString(prefix), prefix}, func(r Rows) error {
		var name string
		var value []byte
		if err := r.Scan(&name, &value); err != nil {
			return err
		}
		out[name] = value
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: meta with prefix %q: %w", prefix, err)
	}
	return out, nil
}
