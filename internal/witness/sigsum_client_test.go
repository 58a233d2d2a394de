package witness

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	sigsumapi "sigsum.org/sigsum-go/pkg/api"
	"sigsum.org/sigsum-go/pkg/checkpoint"
	sigsumclient "sigsum.org/sigsum-go/pkg/client"
	"sigsum.org/sigsum-go/pkg/crypto"
	"sigsum.org/sigsum-go/pkg/merkle"
	"sigsum.org/sigsum-go/pkg/requests"
	"sigsum.org/sigsum-go/pkg/types"
)

// sigsumLog is a log kept and signed entirely with sigsum-go, an
// implementation of the C2SP checkpoint, tlog-witness and
// tlog-cosignature specifications independent of ours: its own Merkle
// tree, signer and checkpoint text.
type sigsumLog struct {
	t      *testing.T
	pub    crypto.PublicKey
	signer crypto.Signer
	tree   merkle.Tree
	origin string
}

func newSigsumLog(t *testing.T) *sigsumLog {
	pub, signer, err := crypto.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return &sigsumLog{t: t, pub: pub, signer: signer, tree: merkle.NewTree(), origin: types.SigsumCheckpointOrigin(&pub)}
}

// grow adds n leaves, distinct across logs made with a different salt.
func (l *sigsumLog) grow(n int, salt byte) {
	for range n {
		var b [9]byte
		b[0] = salt
		binary.BigEndian.PutUint64(b[1:], l.tree.Size())
		h := merkle.HashLeafNode(b[:])
		if !l.tree.AddLeafHash(&h) {
			l.t.Fatalf("leaf %d not added", l.tree.Size())
		}
	}
}

// request is the add-checkpoint request for the log's current tree, from
// oldSize.
func (l *sigsumLog) request(oldSize uint64) requests.AddCheckpoint {
	th := types.TreeHead{Size: l.tree.Size(), RootHash: l.tree.GetRootHash()}
	sth, err := th.Sign(l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	req := requests.AddCheckpoint{OldSize: oldSize,
		Checkpoint: checkpoint.Checkpoint{SignedTreeHead: sth, Origin: l.origin, KeyId: checkpoint.NewLogKeyId(l.origin, &l.pub)}}
	if oldSize > 0 && oldSize < th.Size {
		if req.Proof.Path, err = l.tree.ProveConsistency(oldSize, th.Size); err != nil {
			l.t.Fatal(err)
		}
	}
	return req
}

// TestSigsumClientAgainstOurWitness: sigsum-go's tlog-witness client
// pushes the checkpoints of a log sigsum-go keeps and signs to our
// witness. Our cosignatures must verify with sigsum-go's cosignature/v1
// verifier; a stale old size must get the 409 with the size the witness
// holds, which sigsum-go reads; a fork signed with the same key (its proof
// does not verify) must be refused and not cosigned.
func TestSigsumClientAgainstOurWitness(t *testing.T) {
	lg := newSigsumLog(t)
	logVKey, err := note.NewEd25519VerifierKey(lg.origin, ed25519.PublicKey(lg.pub[:]))
	if err != nil {
		t.Fatal(err)
	}
	_, wkey, _ := ed25519.GenerateKey(nil)
	const name = "witness.example/ours"
	ws, err := NewServer(name, wkey, t.TempDir(), []string{logVKey})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ws)
	defer srv.Close()
	var wpub crypto.PublicKey
	copy(wpub[:], wkey.Public().(ed25519.PublicKey))
	cli := sigsumclient.New(sigsumclient.Config{URL: srv.URL + "/", UserAgent: "deconflict-test"})
	ctx := context.Background()

	cosigned := func(req requests.AddCheckpoint) {
		t.Helper()
		lines, err := cli.AddCheckpoint(ctx, req)
		if err != nil {
			t.Fatalf("add-checkpoint of size %d from %d: %v", req.Checkpoint.Size, req.OldSize, err)
		}
		cs, err := req.Checkpoint.VerifyCosignatureByKey(lines, &wpub)
		if err != nil {
			t.Fatalf("size %d: our cosignature does not verify with sigsum-go: %v (%d lines)", req.Checkpoint.Size, err, len(lines))
		}
		if cs.Timestamp == 0 {
			t.Fatal("cosignature without a timestamp")
		}
	}
	lg.grow(5, 0)
	cosigned(lg.request(0))
	lg.grow(12, 0)
	cosigned(lg.request(5))
	cosigned(lg.request(17)) // the same size again
	lg.grow(300, 0)
	cosigned(lg.request(17))

	// A stale old size: 409, and the body says what the witness holds.
	lg.grow(1, 0)
	_, err = cli.AddCheckpoint(ctx, lg.request(5))
	if !errors.Is(err, sigsumapi.ErrConflict) || err.Error() == "" {
		t.Fatalf("stale old size: %v, want 409", err)
	}
	if want := "old size must be 317"; !strings.Contains(err.Error(), want) {
		t.Fatalf("stale old size: %v, want %q", err, want)
	}

	// A fork: another history of 400 leaves under the same key, pushed
	// from the size the witness holds. Its proof cannot verify.
	fork := &sigsumLog{t: t, pub: lg.pub, signer: lg.signer, tree: merkle.NewTree(), origin: lg.origin}
	fork.grow(400, 1)
	req := fork.request(317)
	if _, err := cli.AddCheckpoint(ctx, req); err == nil {
		t.Fatal("a fork was cosigned")
	} else if !errors.Is(err, sigsumapi.ErrUnprocessableEntity) && !errors.Is(err, sigsumapi.ErrConflict) {
		t.Fatalf("fork: %v, want 422 (or 409)", err)
	}
	// The honest log goes on being cosigned.
	cosigned(lg.request(317))
}
