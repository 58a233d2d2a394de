package sqlcore

// This file implements the store.Parties role: parties and their credentials
// (token hashes).

import (
	"errors"
	"fmt"

	"github.com/deconflict/deconflict/internal/store"
)

const partyCols = `name, operator, created_ns, disabled`

func scanParty(r Rows) (store.Party, error) {
	var p store.Party
	var created int64
	err := r.Scan(&p.Name, &p.Operator, &created, &p.Disabled)
	p.Created = decTime(created)
	return p, err
}

func (t *Tx) CreateParty(p store.Party) error {
	if err := t.writable("CreateParty"); err != nil {
		return err
	}
	if err := checkText("party.Name", p.Name); err != nil {
		return err
	}
	created, err := encTime("party.Created", p.Created)
	if err != nil {
		return err
	}
	n, err := t.q.Exec(t.ctx, `INSERT INTO parties (`+partyCols+`) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		p.Name, p.Operator, created, p.Disabled)
	if err != nil {
		return fmt.Errorf("store: create party %q: %w", p.Name, err)
	}
	if n == 0 {
		return fmt.Errorf("store: party %q exists: %w", p.Name, store.ErrConflict)
	}
	return nil
}

func (t *Tx) UpdateParty(p store.Party) error {
	if err := t.writable("UpdateParty"); err != nil {
		return err
	}
	if !validText(p.Name) {
		return fmt.Errorf("store: party %q: %w", p.Name, store.ErrNotFound)
	}
	created, err := encTime("party.Created", p.Created)
	if err != nil {
		return err
	}
	n, err := t.q.Exec(t.ctx, `UPDATE parties SET operator = ?, created_ns = ?, disabled = ? WHERE name = ?`,
		p.Operator, created, p.Disabled, p.Name)
	if err != nil {
		return fmt.Errorf("store: update party %q: %w", p.Name, err)
	}
	if n == 0 {
		return fmt.Errorf("store: party %q: %w", p.Name, store.ErrNotFound)
	}
	return nil
}

func (t *Tx) PartyByName(name string) (store.Party, error) {
	if !validText(name) {
		return store.Party{}, fmt.Errorf("store: party %q: %w", name, store.ErrNotFound)
	}
	var out store.Party
	found := false
	err := t.queryAll(`SELECT `+partyCols+` FROM parties WHERE name = ?`, []any{name}, func(r Rows) error {
		p, err := scanParty(r)
		out, found = p, true
		return err
	})
	if err != nil {
		return store.Party{}, fmt.Errorf("store: party %q: %w", name, err)
	}
	if !found {
		return store.Party{}, fmt.Errorf("store: party %q: %w", name, store.ErrNotFound)
	}
	return out, nil
}

func (t *Tx) ListParties() ([]store.Party, error) {
	var out []store.Party
	err := t.queryAll(`SELECT `+partyCols+` FROM parties ORDER BY name`, nil, func(r Rows) error {
		p, err := scanParty(r)
		out = append(out, p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list parties: %w", err)
	}
	return out, nil
}

const credCols = `token_hash, party, created_ns, revoked, revoked_at_ns`

func scanCred(r Rows) (store.Credential, error) {
	var c store.Credential
	var created, revokedAt int64
	err := r.Scan(&c.TokenHash, &c.Party, &created, &c.Revoked, &revokedAt)
	c.Created, c.RevokedAt = decTime(created), decTime(revokedAt)
	return c, err
}

// PutCredential inserts or replaces the credential with c.TokenHash (a
// revocation is a replace with Revoked set).
func (t *Tx) PutCredential(c store.Credential) error {
	if err := t.writable("PutCredential"); err != nil {
		return err
	}
	if len(c.TokenHash) == 0 {
		return errors.New("store: credential.TokenHash is empty")
	}
	if err := checkText("credential.Party", c.Party); err != nil {
		return err
	}
	created, err := encTime("credential.Created", c.Created)
	if err != nil {
		return err
	}
	revokedAt, err := encTime("credential.RevokedAt", c.RevokedAt)
	if err != nil {
		return err
	}
	_, err = t.q.Exec(t.ctx, `INSERT INTO credentials (`+credCols+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (token_hash) DO UPDATE SET party = excluded.party, created_ns = excluded.created_ns,
		revoked = excluded.revoked, revoked_at_ns = excluded.revoked_at_ns`,
		c.TokenHash, c.Party, created, c.Revoked, revokedAt)
	if err != nil {
		return fmt.Errorf("store: put credential of %q: %w", c.Party, err)
	}
	return nil
}

func (t *Tx) CredentialByHash(tokenHash []byte) (store.Credential, error) {
	var out store.Credential
	found := false
	err := t.queryAll(`SELECT `+credCols+` FROM credentials WHERE token_hash = ?`, []any{nz(tokenHash)}, func(r Rows) error {
		c, err := scanCred(r)
		out, found = c, true
		return err
	})
	if err != nil {
		return store.Credential{}, fmt.Errorf("store: credential: %w", err)
	}
	if !found {
		return store.Credential{}, fmt.Errorf("store: credential: %w", store.ErrNotFound)
	}
	return out, nil
}

// ListCredentials lists the credentials of party, oldest first.
func (t *Tx) ListCredentials(party string) ([]store.Credential, error) {
	if !validText(party) {
		return nil, nil
	}
	var out []store.Credential
	err := t.queryAll(`SELECT `+credCols+` FROM credentials WHERE party = ? ORDER BY created_ns, token_hash`, []any{party}, func(r Rows) error {
		c, err := scanCred(r)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list credentials of %q: %w", party, err)
	}
	return out, nil
}
