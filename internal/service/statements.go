package service

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/store"
)

// Signed writes: a party that registered a public key signs every write
// (internal/httpsig); the api verifies the signature with SigningKeys and
// hands the statement over in the request's context (WithStatement), and
// the write's transaction records it last, as a "statement" record of the
// party naming the records of what the write changed (covers) and holding
// the request's body (sealed for the parties who may read all of what the
// write recorded), so that an offline verifier checks both that every
// record of the party follows from a request it signed and that the record
// says what the request asked (BindStatement). A position batch is recorded
// as a statement of its own that covers nothing and holds no body: the
// reports do not enter the record, their signature does.
//
// The nonce of a statement is used in the store (store.Nonces) inside the
// same transaction, so that a request replayed to another replica is
// refused there (401, field nonce) and changes nothing; a signed request
// whose write fails uses its nonce in a transaction of its own.

// KindStatement is the kind of the audit record of a signed request.
const KindStatement = audit.KindStatement

// StatementContent is the content of a statement record.
type StatementContent struct {
	Statement httpsig.Statement `json:"statement"`
	Covers    audit.Covers      `json:"covers"`
	// Body is the request's body, standard base64 of its bytes, sealed
	// (audit.StatementBody); absent when the write recorded nothing.
	Body *audit.Sealed `json:"body,omitempty"`
}

type statementKey struct{}

type signedBy struct {
	party string
	st    httpsig.Statement
	body  []byte
}

// WithStatement marks ctx as carrying party's verified signed request and
// the body it signed.
func WithStatement(ctx context.Context, partyName string, st httpsig.Statement, body []byte) context.Context {
	return context.WithValue(ctx, statementKey{}, signedBy{partyName, st, body})
}

// withoutStatement is ctx without a signed request: for writes made on a
// request's behalf that are not what it signed (the commit of alert
// transitions serves every batch waiting).
func withoutStatement(ctx context.Context) context.Context {
	return context.WithValue(ctx, statementKey{}, nil)
}

// Signed reports whether ctx carries a verified signed request.
func Signed(ctx context.Context) bool {
	_, ok := statementOf(ctx)
	return ok
}

func statementOf(ctx context.Context) (signedBy, bool) {
	sb, ok := ctx.Value(statementKey{}).(signedBy)
	return sb, ok
}

// errReplayed is the refusal of a nonce already used (on any replica).
func errReplayed(st httpsig.Statement) error {
	return &httpsig.Error{Field: httpsig.FieldNonce, Detail: fmt.Sprintf("%q was already used with key %q in the last %s: a replayed request", st.Nonce, st.KeyID, httpsig.NonceWindow)}
}

// useNonce uses the statement's nonce in tx, or refuses the replay.
func (s *Service) useNonce(tx store.Nonces, st httpsig.Statement) error {
	now := s.now()
	fresh, err := tx.UseNonce(st.KeyID, st.Nonce, now, now.Add(httpsig.NonceWindow))
	if err != nil {
		return err
	}
	if !fresh {
		return errReplayed(st)
	}
	return nil
}

// useNonceAlone uses the nonce of a signed request whose write failed, so
// that it cannot be replayed later where the write would succeed. A replay
// found here is no news (the write failed anyway).
func (s *Service) useNonceAlone(ctx context.Context, sb signedBy) {
	err := s.st.Update(context.WithoutCancel(ctx), func(tx store.Tx) error {
		_, err := tx.UseNonce(sb.st.KeyID, sb.st.Nonce, s.now(), s.now().Add(httpsig.NonceWindow))
		return err
	})
	if err != nil {
		s.log.Warn("recording the nonce of a refused signed request", "party", sb.party, "err", err)
	}
}

// recordStatement appends the record of the statement ctx carries, if
// any, after the records the write appended (its nonce was used first).
func (s *Service) recordStatement(ctx context.Context, tx *recTx) error {
	sb, ok := statementOf(ctx)
	if !ok {
		return nil
	}
	c := StatementContent{Statement: sb.st, Covers: audit.Covers{From: tx.firstAudit, To: tx.lastAudit}}
	readers := audit.For(sb.party)
	if tx.firstAudit != 0 {
		var bodyReaders audit.Readers
		var err error
		readers, bodyReaders, err = statementReaders(tx, sb.party)
		if err != nil {
			return err
		}
		body := audit.Seal(base64.StdEncoding.EncodeToString(sb.body), bodyReaders...)
		c.Body = &body
	}
	return s.audit(tx, sb.party, KindStatement, readers, c)
}

// recordBatchStatement records the statement of a signed position batch
// in a transaction of its own (the batch changes nothing in the store),
// before the batch is applied: a replayed batch is refused and changes
// nothing. It takes no write lock (it appends no event), so that the
// statements of concurrent batches share one commit.
func (s *Service) recordBatchStatement(ctx context.Context) error {
	sb, ok := statementOf(ctx)
	if !ok {
		return nil
	}
	return s.st.Update(ctx, func(tx store.Tx) error {
		if err := s.useNonce(tx, sb.st); err != nil {
			return err
		}
		return s.audit(tx, sb.party, KindStatement, audit.For(sb.party), StatementContent{Statement: sb.st})
	})
}

// CommitBatchStatement commits the nonce and statement of the signed
// position batch ctx carries (none: it returns ctx as it is) and returns
// ctx marked as committed, so that IngestPositions applies the batch
// without committing them again. A caller commits once the batch is known
// to be well formed (a malformed batch is refused and changes nothing, its
// nonce and statement included) and checks the reports one by one while
// the commit runs, instead of after it. A replayed nonce is refused here
// (*httpsig.Error naming the nonce).
func (s *Service) CommitBatchStatement(ctx context.Context) (context.Context, error) {
	if _, ok := statementOf(ctx); !ok {
		return ctx, nil
	}
	if err := s.recordBatchStatement(ctx); err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, batchCommittedKey{}, true), nil
}

type batchCommittedKey struct{}

// commitBatchStatement records the statement of the signed position batch
// ctx carries, unless CommitBatchStatement did.
func (s *Service) commitBatchStatement(ctx context.Context) error {
	if committed, _ := ctx.Value(batchCommittedKey{}).(bool); committed {
		return nil
	}
	return s.recordBatchStatement(ctx)
}

// statementReaders is who may read a statement: whoever may read one of
// the records it covers (and its author), so that a party that sees a
// signed change also sees the signature, and one that may not see the
// change does not learn of the request either; and who may read its body:
// the parties who may read every one of those records and every private
// detail in them (and the author), since the body holds all of them.
func statementReaders(tx *recTx, author string) (readers, bodyReaders audit.Readers, err error) {
	readers = audit.For(author)
	recs, err := tx.AuditFrom(tx.firstAudit, int(tx.lastAudit-tx.firstAudit+1))
	if err != nil {
		return nil, nil, err
	}
	everyone := true // the body's readers so far: everyone, or body
	var body []string
	narrow := func(rs []string) {
		if slices.Contains(rs, "*") {
			return
		}
		if everyone {
			everyone, body = false, slices.Clone(rs)
			return
		}
		body = slices.DeleteFunc(body, func(p string) bool { return !slices.Contains(rs, p) })
	}
	for _, r := range recs {
		d, err := audit.Decode(r)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range d.Readers {
			if !slices.Contains(readers, p) {
				readers = append(readers, p)
			}
		}
		narrow(d.Readers)
		for _, sealed := range d.Sealed {
			narrow(sealed.Readers)
		}
	}
	if everyone {
		return readers, audit.Everyone, nil
	}
	if !slices.Contains(body, author) {
		body = append(body, author)
	}
	return readers, audit.For(body...), nil
}

// nonceSweepEvery is how often the expired nonces are deleted.
const nonceSweepEvery = time.Minute

// forgetNonces deletes the expired nonces, at most once per
// nonceSweepEvery.
func (s *Service) forgetNonces(ctx context.Context, now time.Time) error {
	return s.sweep(ctx, now, &s.lastNonceSweep, nonceSweepEvery, func(tx store.Tx) error {
		_, err := tx.ForgetNonces(now)
		return err
	})
}
