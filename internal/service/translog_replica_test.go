package service

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/translog"
	"github.com/deconflict/deconflict/internal/witness"
)

// logWitness is a party's witness for the tests of replicas sharing one
// log: it counts the pushes it receives.
type logWitness struct {
	srv    *witness.Server
	url    string
	pushes atomic.Int64
}

func newLogWitness(t *testing.T, logVKey string) *logWitness {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := witness.NewServer("coalition.test/witness", priv, t.TempDir(), []string{logVKey})
	if err != nil {
		t.Fatal(err)
	}
	w := &logWitness{srv: ws}
	hs := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.pushes.Add(1)
		ws.ServeHTTP(rw, r)
	}))
	t.Cleanup(hs.Close)
	w.url = hs.URL
	return w
}

// held is the checkpoint the witness cosigned last.
func (w *logWitness) held(t *testing.T, origin string) translog.Checkpoint {
	t.Helper()
	_, cp, ok, err := w.srv.Latest(origin)
	if err != nil || !ok {
		t.Fatalf("the witness holds no checkpoint: %v", err)
	}
	return cp
}

// servedCheckpoint is the checkpoint s publishes (GET /v1/log/checkpoint)
// and whether it carries the witness's cosignature.
func servedCheckpoint(t *testing.T, s *Service, w *logWitness) (translog.Checkpoint, bool) {
	t.Helper()
	origin, vkey := s.LogKey()
	v, err := translog.LogVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	wv, err := translog.WitnessVerifier(w.srv.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	signed := s.LogCheckpoint(context.Background())
	cp, cosigs, err := translog.Open(signed, origin, v, wv)
	if err != nil {
		t.Fatalf("%v\n%s", err, signed)
	}
	_, cosigned := cosigs[w.srv.Name()]
	return cp, cosigned
}

// storedCheckpoint is the checkpoint kept in the store's meta space.
func storedCheckpoint(t *testing.T, s *Service, st store.Store) translog.Checkpoint {
	t.Helper()
	var signed []byte
	err := st.View(context.Background(), func(tx store.Tx) error {
		var err error
		signed, err = tx.GetMeta(LogCheckpointMeta)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	origin, vkey := s.LogKey()
	v, _ := translog.LogVerifier(vkey)
	cp, _, err := translog.Open(signed, origin, v)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// TestOnlyTheDetectionLeaderPushesCheckpoints: of two replicas on one
// store, the one that leads detection signs the log's checkpoints and
// pushes them to the witnesses; the other pushes nothing (not at its
// ticks, not at its shutdown) and serves the checkpoint the witness
// cosigned, not an older one of its own. A takeover continues from the
// store's latest checkpoint: the new leader's push is accepted without a
// complaint, the old leader serves it too, and a push of the old leader
// ending after the takeover stores nothing older.
func TestOnlyTheDetectionLeaderPushesCheckpoints(t *testing.T) {
	ctx := context.Background()
	dir, st := storeInDir(t)
	peersA, peersB := &testPeers{}, &testPeers{}
	peersA.leads.Store(true)
	a, err := New(ctx, Config{Store: st, DataDir: dir, Peers: peersA})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, Config{Store: st, DataDir: dir, Peers: peersB})
	if err != nil {
		t.Fatal(err)
	}
	origin, vkey := a.LogKey()
	w := newLogWitness(t, vkey)
	for _, s := range []*Service{a, b} {
		if err := s.tlog.pusher.SetWitnesses([]witness.Endpoint{{Party: "coalition", URL: w.url, VKey: w.srv.VerifierKey()}}); err != nil {
			t.Fatal(err)
		}
	}

	appendBehindTheService(t, dir, st, 5, 0)
	if err := a.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	held := w.held(t, origin)
	if cp, cosigned := servedCheckpoint(t, b, w); cp != held || !cosigned {
		t.Fatalf("the replica that does not lead serves size %d (cosigned: %v); the witness cosigned size %d", cp.Size, cosigned, held.Size)
	}
	appendBehindTheService(t, dir, st, 3, 1)
	before := w.pushes.Load()
	if err := b.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.pushes.Load() - before; got != 0 {
		t.Fatalf("the replica that does not lead pushed %d checkpoints to the witness", got)
	}
	if cp, cosigned := servedCheckpoint(t, b, w); cp != held || !cosigned {
		t.Fatalf("after its tick, the replica that does not lead serves size %d (cosigned: %v); the witness cosigned size %d", cp.Size, cosigned, held.Size)
	}

	// Takeover: b leads now. It continues from the store's latest
	// checkpoint; the witness takes its push at once.
	peersA.leads.Store(false)
	peersB.leads.Store(true)
	if err := b.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	next := w.held(t, origin)
	if next.Size != held.Size+3 {
		t.Fatalf("after the takeover the witness holds size %d, want %d", next.Size, held.Size+3)
	}
	for _, st := range b.LogStatus(ctx).Witnesses {
		if st.Failing != "" {
			t.Fatalf("the new leader's push: %s", st.Failing)
		}
	}
	if cp, cosigned := servedCheckpoint(t, a, w); cp != next || !cosigned {
		t.Fatalf("the old leader serves size %d (cosigned: %v); the witness cosigned size %d", cp.Size, cosigned, next.Size)
	}
	// A push of the old leader that ends after the takeover: what it
	// stores must not replace the later checkpoint.
	old, err := a.tlog.key.Sign(held.Size, held.Root)
	if err != nil {
		t.Fatal(err)
	}
	a.keepCheckpoint(ctx, old)
	if got := storedCheckpoint(t, a, st); got != next {
		t.Fatalf("the store keeps the checkpoint of size %d after an older one was kept; want %d", got.Size, next.Size)
	}
	// The old leader shuts down: it pushes nothing and the store keeps
	// the latest checkpoint.
	before = w.pushes.Load()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.pushes.Load() - before; got != 0 {
		t.Fatalf("the replica that does not lead pushed %d checkpoints at its shutdown", got)
	}
	if got := storedCheckpoint(t, a, st); got != next {
		t.Fatalf("after the old leader's shutdown the store keeps size %d, want %d", got.Size, next.Size)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestReplicasSignTheAuditHeadOnce: replicas on one store sign the head of
// the audit chain each at its own ticks and at its shutdown, often at the
// same moment. The check for a checkpoint at the head and its signature
// are one write transaction, and the store's writers take turns (the
// PostgreSQL store locks the writers' row first), so a head is signed
// once, by whichever replica came first, with the key they share: the
// export verifies, with one checkpoint line per head signed.
func TestReplicasSignTheAuditHeadOnce(t *testing.T) {
	ctx := context.Background()
	dir, st := storeInDir(t)
	var replicas []*Service
	for i := range 3 {
		// Clocks apart, so that a checkpoint signed again would show.
		now := func() time.Time { return time.Now().Add(time.Duration(i) * time.Hour) }
		s, err := New(ctx, Config{Store: st, DataDir: dir, Peers: &testPeers{}, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, s)
	}
	checkpoints := func() []store.Checkpoint {
		t.Helper()
		var cps []store.Checkpoint
		err := st.View(ctx, func(tx store.Tx) error {
			var err error
			cps, err = tx.CheckpointsFrom(0)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return cps
	}
	const rounds = 5
	for round := range rounds {
		appendBehindTheService(t, dir, st, 3, round)
		var wg sync.WaitGroup
		for _, s := range replicas {
			wg.Go(func() {
				if err := s.signAudit(ctx, s.now()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		signed := checkpoints()
		// Each replica's next tick finds the head signed.
		for _, s := range replicas {
			if err := s.signAudit(ctx, s.now()); err != nil {
				t.Fatal(err)
			}
		}
		if again := checkpoints(); !slices.EqualFunc(signed, again, func(a, b store.Checkpoint) bool {
			return a.Seq == b.Seq && a.Time.Equal(b.Time) && bytes.Equal(a.Signature, b.Signature)
		}) {
			t.Fatalf("round %d: the head's checkpoint was signed again: %+v, then %+v", round, signed, again)
		}
	}
	cps := checkpoints()
	if len(cps) != rounds {
		t.Fatalf("%d checkpoints for %d heads signed by %d replicas at once", len(cps), rounds, len(replicas))
	}
	var export bytes.Buffer
	if err := replicas[0].ExportAudit(ctx, party.Principal{Party: "operator", Operator: true}, &export, 1); err != nil {
		t.Fatal(err)
	}
	pub, err := audit.ParsePublicKey(replicas[1].AuditKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := audit.Verify(&export, pub)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Checkpoints != rounds {
		t.Fatalf("the export holds %d checkpoint lines, want %d", sum.Checkpoints, rounds)
	}
}

// TestANewWitnessIsPushedToAtTheNextTick: the leader may learn of a
// witness the rules added (another replica activated them) after it
// signed the records of their activation: the next tick pushes the latest
// checkpoint to it, not the next re-push a minute later.
func TestANewWitnessIsPushedToAtTheNextTick(t *testing.T) {
	ctx := context.Background()
	dir, st := storeInDir(t)
	peers := &testPeers{}
	peers.leads.Store(true)
	s, err := New(ctx, Config{Store: st, DataDir: dir, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	appendBehindTheService(t, dir, st, 2, 0)
	now := s.now()
	if err := s.publishLog(ctx, now); err != nil {
		t.Fatal(err)
	}
	s.tlog.waitPush(ctx)
	origin, vkey := s.LogKey()
	w := newLogWitness(t, vkey)
	r := s.Rules()
	r.Witnesses = []rules.Witness{{Party: "coalition", URL: w.url, VKey: w.srv.VerifierKey()}}
	if err := s.setWitnesses(r); err != nil {
		t.Fatal(err)
	}
	if err := s.publishLog(ctx, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	s.tlog.waitPush(ctx)
	if got, want := w.held(t, origin).Size, s.tlog.tree.Size(); got != want {
		t.Fatalf("the new witness holds size %d, want %d", got, want)
	}
}

// TestReplicaThatDoesNotPushReportsTheWitnessesFromTheStore: of two
// replicas on one store, only the leader pushes to the witnesses, so the
// other's own view of them would say never. GET /v1/log/witnesses on the
// other reports what the leader last saw (the size cosigned, when, how
// many), says that it does not push itself and which replica the report
// is from and when it was stored; the leader says it pushes. A takeover
// turns the roles round.
func TestReplicaThatDoesNotPushReportsTheWitnessesFromTheStore(t *testing.T) {
	ctx := context.Background()
	dir, st := storeInDir(t)
	peersA, peersB := &testPeers{}, &testPeers{}
	peersA.leads.Store(true)
	a, err := New(ctx, Config{Store: st, DataDir: dir, Peers: peersA, ReplicaName: "replica-a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, Config{Store: st, DataDir: dir, Peers: peersB, ReplicaName: "replica-b"})
	if err != nil {
		t.Fatal(err)
	}
	origin, vkey := a.LogKey()
	w := newLogWitness(t, vkey)
	for _, s := range []*Service{a, b} {
		if err := s.tlog.pusher.SetWitnesses([]witness.Endpoint{{Party: "coalition", URL: w.url, VKey: w.srv.VerifierKey()}}); err != nil {
			t.Fatal(err)
		}
	}
	// Before any push to it: b says it does not push, and nothing is
	// known of the witness.
	if got := b.LogStatus(ctx); got.Pushes || len(got.Witnesses) != 1 || !got.Witnesses[0].LastCosigned.IsZero() {
		t.Fatalf("before any push, b reports pushes %v, witnesses %+v; want no push, the witness never cosigned", got.Pushes, got.Witnesses)
	}

	appendBehindTheService(t, dir, st, 5, 0)
	if err := a.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	held := w.held(t, origin)
	leader := a.LogStatus(ctx)
	if !leader.Pushes || leader.Replica != "replica-a" || leader.WitnessesFrom != "replica-a" {
		t.Fatalf("the leader reports replica %q, pushes %v, witnesses from %q", leader.Replica, leader.Pushes, leader.WitnessesFrom)
	}
	follower := b.LogStatus(ctx)
	if follower.Pushes || follower.Replica != "replica-b" || follower.WitnessesFrom != "replica-a" || follower.WitnessesAsOf == nil {
		t.Fatalf("the follower reports replica %q, pushes %v, witnesses from %q as of %v; want replica-b, no push, from replica-a", follower.Replica, follower.Pushes, follower.WitnessesFrom, follower.WitnessesAsOf)
	}
	if len(follower.Witnesses) != 1 {
		t.Fatalf("the follower reports %d witnesses, want 1", len(follower.Witnesses))
	}
	ws := follower.Witnesses[0]
	if ws.Size != held.Size || ws.LastCosigned.IsZero() || ws.Cosigned == 0 || ws.Failing != "" {
		t.Fatalf("the follower reports the witness as %+v; the witness cosigned size %d (the leader reports %+v)", ws, held.Size, leader.Witnesses[0])
	}

	// Takeover: b pushes now, a reports b's view.
	peersA.leads.Store(false)
	peersB.leads.Store(true)
	appendBehindTheService(t, dir, st, 2, 1)
	if err := b.PublishLog(ctx); err != nil {
		t.Fatal(err)
	}
	next := w.held(t, origin)
	if got := b.LogStatus(ctx); !got.Pushes || got.WitnessesFrom != "replica-b" {
		t.Fatalf("the new leader reports pushes %v, witnesses from %q", got.Pushes, got.WitnessesFrom)
	}
	got := a.LogStatus(ctx)
	if got.Pushes || got.WitnessesFrom != "replica-b" || got.Witnesses[0].Size != next.Size {
		t.Fatalf("the old leader reports pushes %v, witnesses from %q, size %d; want no push, from replica-b, size %d", got.Pushes, got.WitnessesFrom, got.Witnesses[0].Size, next.Size)
	}
}
