package service

import (
	"context"
	"encoding/json"
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

// RotateParty replaces every token of the party by a new one.
func (s *Service) RotateParty(ctx context.Context, actor party.Principal, name string) (string, error) {
	if !actor.Operator {
		return "", ErrForbidden
	}
	var token string
	err := s.write(ctx, func(tx store.Tx) error {
		var err error
		token, err = rotateParty(tx, actor.Party, name, s.now())
		return err
	})
	return token, err
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
	return s.adopt(ctx, ch)
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
