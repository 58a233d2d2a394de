package service

import (
	"context"
	"crypto/ed25519"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/store"
)

// keysTTL bounds how long another replica's key change may go unseen.
const keysTTL = 2 * time.Second

type keyCache struct {
	mu sync.Mutex
	m  map[string]cachedKeys
}

type cachedKeys struct {
	keys map[string]ed25519.PublicKey
	at   time.Time
}

// SigningKeys returns the current keys of a party by key id (empty: the
// party signs nothing and need not sign).
func (s *Service) SigningKeys(ctx context.Context, partyName string) (map[string]ed25519.PublicKey, error) {
	now := time.Now()
	s.keys.mu.Lock()
	c, ok := s.keys.m[partyName]
	s.keys.mu.Unlock()
	if ok && now.Sub(c.at) < keysTTL {
		return c.keys, nil
	}
	var keys map[string]ed25519.PublicKey
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		keys, err = party.CurrentKeys(tx, partyName)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.keys.mu.Lock()
	if s.keys.m == nil {
		s.keys.m = map[string]cachedKeys{}
	}
	s.keys.m[partyName] = cachedKeys{keys, now}
	s.keys.mu.Unlock()
	return keys, nil
}

func (s *Service) forgetKeys(partyName string) {
	s.keys.mu.Lock()
	delete(s.keys.m, partyName)
	s.keys.mu.Unlock()
}

// addKeys registers keys of a new party inside its creation.
func addKeys(tx store.Tx, actor, name string, keys []ed25519.PublicKey, now time.Time) error {
	for _, pub := range keys {
		k, err := party.AddKey(tx, name, pub, now)
		if err != nil {
			return err
		}
		if err := appendAudit(tx, actor, "party_key_added", audit.Everyone, map[string]any{"party": name, "keyid": k.ID, "public_key": k.PublicKey}, now); err != nil {
			return err
		}
	}
	return nil
}

// Keys lists the keys of a party, current and retired (the party itself
// or the operator).
func (s *Service) Keys(ctx context.Context, actor party.Principal, name string) ([]party.Key, error) {
	if !actor.Operator && actor.Party != name {
		return nil, ErrForbidden
	}
	var ks []party.Key
	err := s.st.View(ctx, func(tx store.Tx) error {
		if _, err := tx.PartyByName(name); err != nil {
			return err
		}
		var err error
		ks, err = party.Keys(tx, name)
		return err
	})
	if ks == nil {
		ks = []party.Key{}
	}
	return ks, err
}

// AddKey registers a new key of the party making the request (a party
// that has keys signs this request with a current one).
func (s *Service) AddKey(ctx context.Context, actor party.Principal, name string, pub ed25519.PublicKey) (party.Key, error) {
	if actor.Operator || actor.Party != name {
		return party.Key{}, ErrForbidden
	}
	var k party.Key
	err := s.write(ctx, func(tx store.Tx) error {
		var err error
		if k, err = party.AddKey(tx, name, pub, s.now()); err != nil {
			return err
		}
		return s.audit(tx, name, "party_key_added", audit.Everyone, map[string]any{"party": name, "keyid": k.ID, "public_key": k.PublicKey})
	})
	s.forgetKeys(name)
	return k, err
}

// RetireKey ends the use of one of the requesting party's keys.
func (s *Service) RetireKey(ctx context.Context, actor party.Principal, name, keyID string) (party.Key, error) {
	if actor.Operator || actor.Party != name {
		return party.Key{}, ErrForbidden
	}
	var k party.Key
	err := s.write(ctx, func(tx store.Tx) error {
		var err error
		if k, err = party.RetireKey(tx, name, keyID, s.now()); err != nil {
			return err
		}
		return s.audit(tx, name, "party_key_retired", audit.Everyone, map[string]any{"party": name, "keyid": k.ID})
	})
	s.forgetKeys(name)
	return k, err
}

// KeyID is the key id of pub (re-exported for the api's answers).
func KeyID(pub ed25519.PublicKey) string { return partykey.ID(pub) }
