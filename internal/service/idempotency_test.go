package service

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// withKey is ctx carrying party's idempotency key for a request of the
// given fingerprint, its answer rendered as JSON.
func withKey(party, key, fingerprint string) context.Context {
	ctx := WithIdempotency(context.Background(), Idempotency{Party: party, Key: key, Fingerprint: []byte(fingerprint)}, nil)
	RenderWith(ctx, func(v any) (int, []byte, error) {
		b, err := json.Marshal(v)
		return 201, b, err
	})
	return ctx
}

// messagesWith counts the hotline messages of party holding text.
func messagesWith(t *testing.T, st store.Store, partyName, text string) int {
	t.Helper()
	n := 0
	err := st.View(context.Background(), func(tx store.Tx) error {
		ms, err := tx.MessagesFor(partyName, "", time.Time{}, 1000)
		for _, m := range ms {
			var body struct{ Text string }
			if json.Unmarshal(m.Body, &body) == nil && body.Text == text {
				n++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// retryAfterOutcomeUnknown: a message whose commit's acknowledgement is
// lost while the store goes down answers ErrOutcomeUnknown; sent again
// with its idempotency key once the store is back, it is answered what
// the first write committed, and the message is written once.
func retryAfterOutcomeUnknown(t *testing.T, s *Service, f *faultyStore) {
	coalition := party.Principal{Party: "coalition"}
	text := "tanker track moved west"
	in := hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindNotice, Text: text}
	f.downAfterLostAck.Store(true)
	f.loseAck.Store(&text)
	first := withKey("coalition", "k-1", "post message 1")
	if _, err := s.PostMessage(first, coalition, in); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("the write whose acknowledgement is lost, the store down, returned %v", err)
	}
	f.down.Store(false)
	if n := messagesWith(t, f.Store, "coalition", text); n != 1 {
		t.Fatalf("%d messages after the lost acknowledgement, want the 1 committed", n)
	}
	_, err := s.PostMessage(withKey("coalition", "k-1", "post message 1"), coalition, in)
	var rep *Replayed
	if !errors.As(err, &rep) {
		t.Fatalf("the retry with the key returned %v, want the kept answer", err)
	}
	var m hotline.Message
	if err := json.Unmarshal(rep.Body, &m); err != nil || rep.Status != 201 || m.Text != text || m.ID == "" {
		t.Errorf("the kept answer is %d %s (%v), want 201 and the message committed", rep.Status, rep.Body, err)
	}
	if n := messagesWith(t, f.Store, "coalition", text); n != 1 {
		t.Errorf("%d messages after the retry, want 1: the retry wrote again", n)
	}
	// The same key for another request is refused, and writes nothing.
	_, err = s.PostMessage(withKey("coalition", "k-1", "post message 2"), coalition, hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindNotice, Text: "another"})
	if !errors.Is(err, ErrIdempotencyKeyReused) {
		t.Errorf("the key used for another request returned %v, want ErrIdempotencyKeyReused", err)
	}
	if n := messagesWith(t, f.Store, "coalition", "another"); n != 0 {
		t.Errorf("the refused request wrote %d messages", n)
	}
	// Another party's key of the same string is its own.
	if _, err := s.PostMessage(withKey("russia", "k-1", "post message 1"), party.Principal{Party: "russia"},
		hotline.NewMessage{To: []string{"coalition"}, Kind: hotline.KindNotice, Text: text}); err != nil {
		t.Errorf("russia's write with coalition's key string: %v", err)
	}
	if n := messagesWith(t, f.Store, "russia", text); n != 2 {
		t.Errorf("russia sees %d messages holding the text, want 2 (coalition's and its own)", n)
	}
}

func TestIdempotentRetryAfterOutcomeUnknown(t *testing.T) {
	s, f := newFaultyService(t)
	retryAfterOutcomeUnknown(t, s, f)
}

func TestIdempotentRetryAfterOutcomeUnknownOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	st, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, f := newFaultyServiceOn(t, st)
	retryAfterOutcomeUnknown(t, s, f)
}

// TestIdempotentInProgress: a request whose key is being served by the
// process is refused with ErrIdempotencyInProgress and writes nothing.
func TestIdempotentInProgress(t *testing.T) {
	s, f := newFaultyService(t)
	end, ok := s.inFlight.begin("coalition", "busy")
	if !ok {
		t.Fatal("a free key is busy")
	}
	in := hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindNotice, Text: "twice at once"}
	if _, err := s.PostMessage(withKey("coalition", "busy", "fp"), party.Principal{Party: "coalition"}, in); !errors.Is(err, ErrIdempotencyInProgress) {
		t.Errorf("a request whose key is being served returned %v, want ErrIdempotencyInProgress", err)
	}
	if n := messagesWith(t, f.Store, "coalition", in.Text); n != 0 {
		t.Errorf("the refused request wrote %d messages", n)
	}
	end()
	if _, err := s.PostMessage(withKey("coalition", "busy", "fp"), party.Principal{Party: "coalition"}, in); err != nil {
		t.Errorf("once the first is answered: %v", err)
	}
}

// TestIdempotentKeysExpire: a kept answer is forgotten by the periodic
// job once it expired, and bounded per party.
func TestIdempotentKeysExpire(t *testing.T) {
	s, f := newFaultyService(t)
	var skew time.Duration
	s.now = func() time.Time { return time.Now().Add(skew) }
	coalition := party.Principal{Party: "coalition"}
	in := hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindNotice, Text: "kept a day"}
	if _, err := s.PostMessage(withKey("coalition", "day", "fp"), coalition, in); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		if err := f.Store.View(context.Background(), func(tx store.Tx) error {
			var err error
			n, _, err = tx.IdempotentUsage("coalition")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 1 {
		t.Fatalf("%d answers kept, want 1", n)
	}
	skew = IdempotencyTTL + time.Minute
	s.Tick(context.Background())
	if n := count(); n != 0 {
		t.Errorf("%d answers kept after they expired and the periodic job ran, want 0", n)
	}
	// At the bound, a write with a new key is refused and writes
	// nothing; without a key it is written.
	s.idemBounds = idempotencyBounds{keys: 1, bodyBytes: 1 << 20}
	if _, err := s.PostMessage(withKey("coalition", "one", "fp"), coalition, in); err != nil {
		t.Fatal(err)
	}
	before := messagesWith(t, f.Store, "coalition", in.Text)
	if _, err := s.PostMessage(withKey("coalition", "two", "fp"), coalition, in); !errors.Is(err, ErrIdempotencyKeysExhausted) {
		t.Errorf("a key beyond the bound returned %v, want ErrIdempotencyKeysExhausted", err)
	}
	if n := messagesWith(t, f.Store, "coalition", in.Text); n != before {
		t.Errorf("the refused write wrote: %d messages, want %d", n, before)
	}
	if _, err := s.PostMessage(context.Background(), coalition, in); err != nil {
		t.Errorf("a write without a key at the bound: %v", err)
	}
}

// lateKeyStore hides the kept answers from GetIdempotent while hide is
// set: the transaction of a retry on one replica reads the key before the
// first request's transaction, on another replica, commits (PostgreSQL's
// read committed), and what it reads after, the first's.
type lateKeyStore struct {
	store.Store
	hide atomic.Bool
}

func (l *lateKeyStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	return l.Store.Update(ctx, func(tx store.Tx) error { return fn(lateKeyTx{tx, l}) })
}

type lateKeyTx struct {
	store.Tx
	l *lateKeyStore
}

func (t lateKeyTx) GetIdempotent(party, key string, now time.Time) (store.IdempotentAnswer, error) {
	if t.l.hide.Load() {
		return store.IdempotentAnswer{}, store.ErrNotFound
	}
	return t.Tx.GetIdempotent(party, key, now)
}

// TestIdempotentRetryBesideItsFirstAtTheBound: a retry whose first
// request commits while the retry's transaction runs, the party then at
// its bound of kept answers, is refused as in progress (the client sends
// it again with its key and is answered the first's answer), not as
// exhausted keys: the Go client sends a write refused so without a key,
// and the message would be written twice.
func TestIdempotentRetryBesideItsFirstAtTheBound(t *testing.T) {
	raw, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	late := &lateKeyStore{Store: raw}
	s, _ := newFaultyServiceOn(t, late)
	s.idemBounds = idempotencyBounds{keys: 1, bodyBytes: 1 << 20}
	coalition := party.Principal{Party: "coalition"}
	in := hotline.NewMessage{To: []string{"russia"}, Kind: hotline.KindNotice, Text: "once at the bound"}
	if _, err := s.PostMessage(withKey("coalition", "k", "fp"), coalition, in); err != nil {
		t.Fatal(err)
	}
	late.hide.Store(true)
	_, err = s.PostMessage(withKey("coalition", "k", "fp"), coalition, in)
	if !errors.Is(err, ErrIdempotencyInProgress) {
		t.Errorf("the retry beside its first at the bound returned %v, want ErrIdempotencyInProgress", err)
	}
	if n := messagesWith(t, raw, "coalition", in.Text); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}
