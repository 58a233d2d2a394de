package service

import (
	"context"
	"crypto/ed25519"
	"slices"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/store"
)

// Signed writes: a party that registered a public key signs every write
// (internal/httpsig); the api verifies the signature with SigningKeys and
// hands the statement over in the request's context (WithStatement), and
// the write's transaction records it last, as a "statement" record of the
// party naming the records of what the write changed (covers). An offline
// verifier then finds every record of the party covered by one of its
// signed statements (audit.VerifyWithPartyKeys).

// KindStatement is the kind of the audit record of a signed request.
const KindStatement = audit.KindStatement

// StatementContent is the content of a statement record.
type StatementContent struct {
	Statement httpsig.Statement `json:"statement"`
	Covers    audit.Covers      `json:"covers"`
}

type statementKey struct{}

type signedBy struct {
	party string
	st    httpsig.Statement
}

// WithStatement marks ctx as carrying party's verified signed request.
func WithStatement(ctx context.Context, partyName string, st httpsig.Statement) context.Context {
	return context.WithValue(ctx, statementKey{}, signedBy{partyName, st})
}

// recordStatement appends the statement ctx carries, if any, after the
// records the write appended.
func (s *Service) recordStatement(ctx context.Context, tx *recTx) error {
	sb, ok := ctx.Value(statementKey{}).(signedBy)
	if !ok {
		return nil
	}
	readers, err := coveredReaders(tx, sb.party)
	if err != nil {
		return err
	}
	return s.audit(tx, sb.party, KindStatement, readers, StatementContent{Statement: sb.st, Covers: audit.Covers{From: tx.firstAudit, To: tx.lastAudit}})
}

// coveredReaders is who may read a statement: whoever may read one of the
// records it covers (and its author), so that a party that sees a signed
// change also sees the signature, and one that may not see the change
// does not learn of the request either.
func coveredReaders(tx *recTx, author string) (audit.Readers, error) {
	readers := audit.For(author)
	if tx.firstAudit == 0 {
		return readers, nil
	}
	recs, err := tx.AuditFrom(tx.firstAudit, int(tx.lastAudit-tx.firstAudit+1))
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		d, err := audit.Decode(r)
		if err != nil {
			return nil, err
		}
		for _, p := range d.Readers {
			if !slices.Contains(readers, p) {
				readers = append(readers, p)
			}
		}
	}
	return readers, nil
}

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
