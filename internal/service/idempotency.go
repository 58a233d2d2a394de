package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// Idempotent retries (draft-ietf-httpapi-idempotency-key-header): a party
// that sends a write with an Idempotency-Key and never gets its answer
// (the connection dropped, a 503 outcome-unknown, a proxy's timeout) sends
// it again with the same key, signed again with a fresh nonce, and is
// answered what the first was answered, the write done once: one hotline
// message with one deadline, one volume, one rules proposal, one statement
// in the record.
//
// The api hands the key, the request's fingerprint (method, path, body
// digest) and how to render the answer over in the request's context
// (WithIdempotency); the write's transaction first looks the key up (of
// the calling party only: another party's key of the same string is
// another key), and, when it is new, renders the answer from the write's
// result and keeps it (store.Idempotency) in the same transaction, so that
// it is kept if and only if the write committed. A key kept for the same
// fingerprint is answered from the store and the transaction writes
// nothing (*Replayed); for another request, ErrIdempotencyKeyReused; while
// a request with the key is still being served by this process,
// ErrIdempotencyInProgress. A write that is refused keeps nothing: it
// changed nothing, and sent again it is judged again.

// IdempotencyTTL is how long an answer is kept for a retry; a periodic job
// deletes it after.
const IdempotencyTTL = 24 * time.Hour

// Bounds of the answers one party keeps at once: a write with a key
// beyond either is refused (ErrIdempotencyKeysExhausted) and may be sent
// without one. A campaign of 2,000 sorties a day in nine volumes each
// (DefaultMaxVolumesPerParty's example) declares 18,000 volumes a day, a
// few KB of answer each: the bounds hold several such days of writes.
const (
	MaxIdempotencyKeysPerParty      = 100_000
	MaxIdempotencyBodyBytesPerParty = 256 << 20
)

// idempotencyBounds are the bounds of one party's kept answers.
type idempotencyBounds struct {
	keys      int
	bodyBytes int64
}

var defaultIdempotencyBounds = idempotencyBounds{MaxIdempotencyKeysPerParty, MaxIdempotencyBodyBytesPerParty}

// idempotencySweepEvery is how often the expired answers are deleted.
const idempotencySweepEvery = time.Minute

var (
	// ErrIdempotencyKeyReused: the key was used for another request
	// (another method, path or body) of the party.
	ErrIdempotencyKeyReused = errors.New("service: the idempotency key was used for another request")
	// ErrIdempotencyInProgress: a request with the key is still being
	// served.
	ErrIdempotencyInProgress = errors.New("service: a request with this idempotency key is still being served")
	// ErrIdempotencyKeysExhausted: the party keeps as many answers as it
	// may.
	ErrIdempotencyKeysExhausted = errors.New("service: this party keeps as many idempotent answers as it may")
)

// Replayed is the answer kept for a request sent again with its
// idempotency key: the api answers Status and Body as they are. The write
// was not done again.
type Replayed struct {
	Status int
	Body   []byte
}

func (r *Replayed) Error() string {
	return fmt.Sprintf("service: answered from the idempotency key's kept answer (status %d)", r.Status)
}

// Render renders the answer to a write from its result (the value the
// service method returns), inside the write's transaction.
type Render func(result any) (status int, body []byte, err error)

// Idempotency is a request's idempotency key, scoped to its party.
type Idempotency struct {
	Party string
	Key   string
	// Fingerprint tells two requests with the same key apart.
	Fingerprint []byte
}

// idempotent is the idempotency of one request, with the answer rendered
// in its committed transaction.
type idempotent struct {
	Idempotency
	render Render

	mu       sync.Mutex
	rendered bool
	status   int
	body     []byte
	// reissued: the write, one that issues a token, was done already
	// under the key, and its token was reissued (issueToken).
	reissued bool
	// alternatives are those of the request's volume write, searched
	// before its transaction (searchBeforeWrite), nil when none was.
	alternatives *searchedAlternatives
}

type idempotencyKey struct{}

// WithIdempotency marks ctx as carrying a request's idempotency key and
// how to render its answer.
func WithIdempotency(ctx context.Context, k Idempotency, render Render) context.Context {
	return context.WithValue(ctx, idempotencyKey{}, &idempotent{Idempotency: k, render: render})
}

// RenderWith sets how the answer of the write of ctx's request is
// rendered, when the request carries an idempotency key (WithIdempotency);
// otherwise it does nothing. Without it the key is not used.
func RenderWith(ctx context.Context, render Render) {
	if i, _ := ctx.Value(idempotencyKey{}).(*idempotent); i != nil {
		i.mu.Lock()
		i.render = render
		i.mu.Unlock()
	}
}

func idempotencyOf(ctx context.Context) *idempotent {
	i, _ := ctx.Value(idempotencyKey{}).(*idempotent)
	if i == nil || i.render == nil {
		return nil
	}
	return i
}

// Answered returns the answer rendered and kept in the transaction of the
// write ctx's request made (false: none was, the request had no
// idempotency key). The api answers it as it is, so that the first answer
// and a replayed one are the same bytes.
func Answered(ctx context.Context) (status int, body []byte, ok bool) {
	i := idempotencyOf(ctx)
	if i == nil {
		return 0, nil, false
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.status, i.body, i.rendered
}

// inFlight are the idempotency keys of the requests this process is
// serving.
type inFlight struct {
	mu   sync.Mutex
	keys map[[2]string]struct{}
}

// begin claims party's key, or reports that a request with it is being
// served; end releases it.
func (f *inFlight) begin(party, key string) (end func(), ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := [2]string{party, key}
	if _, busy := f.keys[k]; busy {
		return nil, false
	}
	if f.keys == nil {
		f.keys = map[[2]string]struct{}{}
	}
	f.keys[k] = struct{}{}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.keys, k)
	}, true
}

// replay looks the request's key up in tx: nil when it is new,
// *Replayed when kept for the same request, ErrIdempotencyKeyReused for
// another.
func (i *idempotent) replay(tx store.Idempotency, now time.Time) error {
	i.mu.Lock()
	i.rendered, i.status, i.body = false, 0, nil
	i.mu.Unlock()
	a, err := tx.GetIdempotent(i.Party, i.Key, now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	case !bytes.Equal(a.Fingerprint, i.Fingerprint):
		return ErrIdempotencyKeyReused
	}
	return &Replayed{Status: a.Status, Body: a.Body}
}

// keep renders the answer of the write from its result and keeps it in
// tx, within the party's bounds.
func (i *idempotent) keep(tx store.Idempotency, result any, now time.Time, bounds idempotencyBounds) error {
	status, body, err := i.render(result)
	if err != nil {
		return err
	}
	if err := i.put(tx, status, body, now, IdempotencyTTL, bounds); err != nil {
		return err
	}
	i.mu.Lock()
	i.rendered, i.status, i.body = true, status, body
	i.mu.Unlock()
	return nil
}

// put keeps status and body under the request's key for ttl, within the
// party's bounds.
func (i *idempotent) put(tx store.Idempotency, status int, body []byte, now time.Time, ttl time.Duration, bounds idempotencyBounds) error {
	// Put before the bound is checked: a key another replica has just
	// committed (or is committing) under this one's feet is in progress,
	// whatever the party keeps; refused as exhausted, the write would be
	// sent again without a key, and done twice.
	err := tx.PutIdempotent(store.IdempotentAnswer{Party: i.Party, Key: i.Key, Fingerprint: i.Fingerprint,
		Status: status, Body: body, Created: now.UTC(), Expires: now.Add(ttl).UTC()}, now)
	if errors.Is(err, store.ErrConflict) {
		// Another replica is committing the same key: this one writes
		// nothing.
		return fmt.Errorf("%w: %w", ErrIdempotencyInProgress, err)
	}
	if err != nil {
		return err
	}
	// What the party keeps with this answer (undone with the
	// transaction when beyond the bounds).
	n, size, err := tx.IdempotentUsage(i.Party)
	if err != nil {
		return err
	}
	if n > bounds.keys || size > bounds.bodyBytes {
		return fmt.Errorf("%w (%d answers, %d bytes, of at most %d and %d bytes, each kept %s)", ErrIdempotencyKeysExhausted,
			n-1, size-int64(len(body)), bounds.keys, bounds.bodyBytes, IdempotencyTTL)
	}
	return nil
}

// writeAnswer is writeThen for a write whose request may carry an
// idempotency key (WithIdempotency): result returns the value the service
// method answers with, once fn succeeded. Without a key it is writeThen.
func (s *Service) writeAnswer(ctx context.Context, fn func(tx store.Tx) error, after func(), result func() any) error {
	idem := idempotencyOf(ctx)
	if idem == nil {
		return s.writeThen(ctx, fn, after)
	}
	end, ok := s.inFlight.begin(idem.Party, idem.Key)
	if !ok {
		return ErrIdempotencyInProgress
	}
	defer end()
	return s.writeThenKeep(ctx, fn, after, idem, result)
}

// forgetIdempotent deletes the expired answers, at most once per
// idempotencySweepEvery.
func (s *Service) forgetIdempotent(ctx context.Context, now time.Time) error {
	return s.sweep(ctx, now, &s.lastIdempotencySweep, idempotencySweepEvery, func(tx store.Tx) error {
		_, err := tx.ForgetIdempotent(now)
		return err
	})
}
