package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
)

// Revoking or rotating a party's tokens must end, within a second, every
// stream and request that runs with an old token, on every process that
// serves the store. The change appends a credentials_changed event in its
// own transaction, so it reaches every process the way events do: at once
// in the process that made it, through the database's notification on the
// other replicas, and at the next tick (1 s) when the CLI changed an
// embedded store a server has open. Each process then forgets the party's
// cached tokens and tells its listeners (the API ends what runs with a
// token that no longer authenticates).

// EventCredentialsChanged is the kind of the event that says a party's
// tokens were rotated or revoked (data: CredentialsChange). Its audience is
// the party itself.
const EventCredentialsChanged = "credentials_changed"

// CredentialsChange is the data of a credentials_changed event.
type CredentialsChange struct {
	Party string `json:"party"`
	// Change is "rotated" or "revoked".
	Change string `json:"change"`
}

// OnCredentialsChanged registers fn to be called with the party's name
// whenever its tokens were rotated or revoked, by this process or another.
// fn is called with the service's write lock held: it must return quickly
// (start a goroutine for anything slow).
func (s *Service) OnCredentialsChanged(fn func(partyName string)) {
	s.credMu.Lock()
	defer s.credMu.Unlock()
	s.credListeners = append(s.credListeners, fn)
}

// noticeCredentials forgets the cached tokens of the parties whose
// credentials the events change, and tells the listeners.
func (s *Service) noticeCredentials(evs []store.Event) {
	for _, e := range evs {
		if e.Kind != EventCredentialsChanged {
			continue
		}
		var c CredentialsChange
		if err := json.Unmarshal(e.Body, &c); err != nil || c.Party == "" {
			s.log.Warn("unreadable credentials_changed event", "id", e.ID, "err", err)
			continue
		}
		s.auth.Forget(c.Party)
		s.credMu.Lock()
		listeners := s.credListeners
		s.credMu.Unlock()
		for _, fn := range listeners {
			fn(c.Party)
		}
	}
}

// RotateParty replaces every token of the party by a new one. With an
// idempotency key, see issueToken.
func (s *Service) RotateParty(ctx context.Context, actor party.Principal, name string) (string, error) {
	if !actor.Operator {
		return "", ErrForbidden
	}
	return s.issueToken(ctx, actor.Party, name, func(tx store.Tx, now time.Time) (string, error) {
		return rotateParty(tx, actor.Party, name, now)
	})
}

// Writes that issue a token (a party's creation, a rotation) and their
// idempotency keys. Their answer holds the token, which the server keeps
// only as its hash: the answer cannot be kept to be replayed, and keeping
// the token (in clear, or encrypted under the idempotency key, which the
// statements of signed requests record) would put a usable secret in the
// store. So the key keeps only the fact that the write was done (no
// secret), for TokenIdempotencyTTL, and the request sent again with it
// (its answer lost) is not done again: the party's tokens are replaced by
// a new one, answered, the one the lost answer held revoked unseen, with
// an audit record of its own (party_token_reissued). One party, one
// rotation, one usable token, the caller's; nothing secret stored.
//
// The window is short because a reissue revokes the token of the first
// answer: a retry comes within seconds of the loss, and a key sent again
// later is another request's mistake, judged as new (a second rotation,
// or 409 exists). A party revoked since is not given access again by a
// reissue (ErrRevokedSince), as a rotation would. Nor does a reissue
// revoke a token the key did not issue: the key keeps the hash of the
// token it issued last (the stored form of a token, which authenticates
// no one), and a retry that finds it no longer the party's current token
// (a later rotation, under another key or none, replaced it, and that
// answer was delivered) changes nothing (ErrTokenSuperseded). A reissue
// keeps the hash of its own token under the key, so that the retry of a
// reissue whose answer was lost too is a reissue again.
//
// A reissue is right only when the write kept under the key was done
// before the request began: its answer was lost. A request that waited
// (for the writers' lock another replica held, or a slow start) while its
// client gave up and sent the retry to another replica, which issued the
// token, kept the key and delivered its answer, must not reissue: it would
// revoke the token the client holds, and answer the new one to a
// connection nobody reads any more, the party locked out. So the request
// notes, before anything it waits for, the head of the audit chain (the
// sequence number of its last record, one cheap read), and the key keeps
// the sequence number of the last audit record of the write that kept it
// (every write that issues a token appends one). The chain's order is the
// order of the writes' commits (the store refuses a sequence number that
// is not one past the last, and writers take turns on every replica), so
// a key kept by a write numbered past the head the request read was kept
// after the request began, whatever the replicas' clocks say: the request
// was overtaken by another under its key (its retry, or, seen from the
// retry, its first), whose answer holds the token, and it changes nothing
// (ErrOvertaken). Sent again later (that answer lost too) it is a reissue.
// A request that reaches the service only after its retry was answered
// cannot be told from a retry, and reissues; and what a server before
// this kept (no sequence number) reissues as it did.

// TokenIdempotencyTTL is how long the idempotency key of a write that
// issued a token makes its retry a reissue.
const TokenIdempotencyTTL = 10 * time.Minute

// ErrRevokedSince: the retry of a write that issued a token finds the
// party revoked since.
var ErrRevokedSince = errors.New("service: the party was revoked after its token was issued under this idempotency key; rotate it (with a new key) to give it access again")

// ErrTokenSuperseded: the retry of a write that issued a token finds the
// party's tokens replaced since by another write (a later rotation), whose
// token a reissue would revoke.
var ErrTokenSuperseded = errors.New("service: the token issued under this idempotency key was superseded by a later rotation of the party; nothing was revoked (rotate it with a new key to replace the current token)")

// ErrOvertaken: the request, one that issues a token with an idempotency
// key, found the key kept by a write committed after it began: another
// request under the key (its retry, sent while it waited) was served
// first, and that answer holds the token.
var ErrOvertaken = errors.New("service: another request under this idempotency key (a retry of this one, or the first) was served while this one waited, and its answer holds the token, which stays the party's; nothing was changed (if that answer was lost too, send the request again with the same key for a new token)")

// issueToken runs issue, the write that issues a token of party name, in
// a write of its own; with an idempotency key, as described above.
func (s *Service) issueToken(ctx context.Context, actor, name string, issue func(tx store.Tx, now time.Time) (string, error)) (string, error) {
	idem, _ := ctx.Value(idempotencyKey{}).(*idempotent)
	var token string
	if idem == nil {
		err := s.write(ctx, func(tx store.Tx) error {
			var err error
			token, err = issue(tx, s.now())
			return err
		})
		return token, err
	}
	// Where the writes were when this request began: a key kept past it
	// was kept by another request served while this one waited.
	var began int64
	if err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		began, err = auditHead(tx)
		return err
	}); err != nil {
		return "", err
	}
	end, ok := s.inFlight.begin(idem.Party, idem.Key)
	if !ok {
		return "", ErrIdempotencyInProgress
	}
	defer end()
	var reissued bool
	err := s.write(ctx, func(tx store.Tx) error {
		now := s.now()
		token, reissued = "", false
		kept, err := tx.GetIdempotent(idem.Party, idem.Key, now)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if token, err = issue(tx, now); err != nil {
				return err
			}
			body, err := issuedBody(tx, name, token)
			if err != nil {
				return err
			}
			return idem.put(tx, 0, body, now, TokenIdempotencyTTL, s.idemBounds)
		case err != nil:
			return err
		case !bytes.Equal(kept.Fingerprint, idem.Fingerprint):
			return ErrIdempotencyKeyReused
		}
		var was tokenIssued
		if err := json.Unmarshal(kept.Body, &was); err != nil {
			return fmt.Errorf("service: what idempotency key %q keeps: %w", idem.Key, err)
		}
		if was.AuditSeq > began {
			return ErrOvertaken
		}
		if token, err = reissueToken(tx, actor, name, idem.Key, was.TokenHash, now); err != nil {
			return err
		}
		reissued = true
		return keepReissued(tx, kept, name, token)
	})
	idem.mu.Lock()
	idem.reissued = err == nil && reissued
	idem.mu.Unlock()
	return token, err
}

// tokenIssued is what the idempotency key of a write that issued a token
// keeps: no token.
type tokenIssued struct {
	Party string `json:"party"`
	// TokenHash is the hash (party.HashToken) of the token the key issued
	// last; none in what a server before it kept, whose retry reissues
	// as it did.
	TokenHash []byte `json:"token_hash,omitempty"`
	// AuditSeq is the sequence number of the last audit record of the
	// write that issued it: a request that began when the chain's head
	// was below it was overtaken (ErrOvertaken). None (0) in what a
	// server before it kept, whose retry reissues as it did.
	AuditSeq int64 `json:"audit_seq,omitempty"`
}

// issuedBody is what the key keeps for token, issued to party name in tx.
func issuedBody(tx store.Tx, name, token string) ([]byte, error) {
	seq, err := auditHead(tx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(tokenIssued{Party: name, TokenHash: party.HashToken(token), AuditSeq: seq})
}

// auditHead is the sequence number of the last record of the audit chain
// in tx (0: none yet).
func auditHead(tx store.Audit) (int64, error) {
	last, err := tx.LastAudit()
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	return last.Seq, err
}

// keepReissued keeps the hash of token, reissued under kept's key, and
// the reissue's place in the audit chain, in place of the one kept, with
// kept's creation and expiry: the window of the key is not lengthened.
// The store has no update of a live answer, so the answer is put as at
// its expiry, when the one kept is taken over
// (store.Idempotency.PutIdempotent); the party keeps as many answers as
// before, so its bounds are not checked again.
func keepReissued(tx store.Tx, kept store.IdempotentAnswer, name, token string) error {
	body, err := issuedBody(tx, name, token)
	if err != nil {
		return err
	}
	a := kept
	a.Body = body
	err = tx.PutIdempotent(a, kept.Expires)
	if errors.Is(err, store.ErrConflict) {
		// Another replica reissued under the key at the same time.
		return fmt.Errorf("%w: %w", ErrIdempotencyInProgress, err)
	}
	return err
}

// reissueToken replaces the tokens of party name by a new one, the retry
// of the write that issued a token under idempotency key key; issuedHash
// is the hash of the token the key issued last (nil: not known).
func reissueToken(tx store.Tx, actor, name, key string, issuedHash []byte, now time.Time) (string, error) {
	p, err := tx.PartyByName(name)
	if err != nil {
		return "", err
	}
	if p.Disabled {
		return "", ErrRevokedSince
	}
	if issuedHash != nil {
		current, err := holdsToken(tx, name, issuedHash)
		if err != nil {
			return "", err
		}
		if !current {
			return "", ErrTokenSuperseded
		}
	}
	token, err := party.Rotate(tx, name, now)
	if err != nil {
		return "", err
	}
	content := map[string]any{"party": name, "idempotency_key": key,
		"why": "the answer holding the token issued under this idempotency key was lost; that token is revoked"}
	if err := appendAudit(tx, actor, "party_token_reissued", audit.For(name), content, now); err != nil {
		return "", err
	}
	_, err = appendEvent(tx, EventCredentialsChanged, []string{name}, CredentialsChange{Party: name, Change: "rotated"}, now)
	return token, err
}

// holdsToken reports whether the token of hash tokenHash is one of the
// party's current (unrevoked) tokens.
func holdsToken(tx store.Tx, name string, tokenHash []byte) (bool, error) {
	creds, err := tx.ListCredentials(name)
	if err != nil {
		return false, err
	}
	for _, c := range creds {
		if !c.Revoked && bytes.Equal(c.TokenHash, tokenHash) {
			return true, nil
		}
	}
	return false, nil
}

// TokenReissued reports whether the write of ctx's request, one that
// issues a token, was the retry of one done already under its idempotency
// key: its token is a new one (issueToken). The api marks the answer
// Idempotent-Replayed.
func TokenReissued(ctx context.Context) bool {
	i, _ := ctx.Value(idempotencyKey{}).(*idempotent)
	if i == nil {
		return false
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.reissued
}

// RevokeParty revokes every token of the party.
func (s *Service) RevokeParty(ctx context.Context, actor party.Principal, name string) error {
	if !actor.Operator {
		return ErrForbidden
	}
	if name == party.OperatorName {
		return errRevokeOperator
	}
	ch := &rulesChange{}
	err := s.write(ctx, func(tx store.Tx) error {
		now := ch.begin(s)
		if err := revokeParty(tx, actor.Party, name, now); err != nil {
			return err
		}
		// A proposal that waited only for this party comes into force.
		return settleOpen(tx, s, ch, now)
	})
	if err != nil {
		return err
	}
	return s.adoptAndAnnounce(ctx, ch)
}

// RotateParty revokes every token of the party in st and issues a new one
// (the CLI on a store a server may share).
func RotateParty(ctx context.Context, st store.Store, actor, name string, now time.Time) (string, error) {
	var token string
	err := st.Update(ctx, func(tx store.Tx) error {
		var err error
		token, err = rotateParty(tx, actor, name, now)
		return err
	})
	return token, err
}

// RevokeParty revokes every token of the party in st and disables it.
func RevokeParty(ctx context.Context, st store.Store, actor, name string, now time.Time) error {
	if name == party.OperatorName {
		return errRevokeOperator
	}
	return st.Update(ctx, func(tx store.Tx) error { return revokeParty(tx, actor, name, now) })
}

var errRevokeOperator = fielderr.New("name", "the operator cannot be revoked (rotate its token instead)")

func rotateParty(tx store.Tx, actor, name string, now time.Time) (string, error) {
	token, err := party.Rotate(tx, name, now)
	if err != nil {
		return "", err
	}
	if err := appendAudit(tx, actor, "party_rotated", audit.For(name), map[string]any{"party": name}, now); err != nil {
		return "", err
	}
	_, err = appendEvent(tx, EventCredentialsChanged, []string{name}, CredentialsChange{Party: name, Change: "rotated"}, now)
	return token, err
}

func revokeParty(tx store.Tx, actor, name string, now time.Time) error {
	if err := party.Revoke(tx, name, now); err != nil {
		return err
	}
	if err := appendAudit(tx, actor, "party_revoked", audit.For(name), map[string]any{"party": name}, now); err != nil {
		return err
	}
	_, err := appendEvent(tx, EventCredentialsChanged, []string{name}, CredentialsChange{Party: name, Change: "revoked"}, now)
	return err
}
