package audit

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/translog"
)

func BenchmarkAppend(b *testing.B) {
	st := openStore(b)
	l := NewLog(testKey(b, 1), DefaultEvery)
	b.ResetTimer()
	i := 0
	for b.Loop() {
		err := st.Update(context.Background(), func(tx store.Tx) error {
			for range 100 {
				i++
				if _, err := l.Append(tx, "alpha", "volume_created", Everyone, volumeContent{ID: "v", Party: "alpha", AltM: float64(i), Details: Seal(map[string]int{"n": i}, "alpha")}, t0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkVerify(b *testing.B) {
	st := openStore(b)
	l := NewLog(testKey(b, 1), 100)
	fill(b, st, l, 300)
	out := export(b, st, l, "alpha", 1)
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		if _, err := Verify(bytes.NewReader(out), l.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
}

// readFrom reads records from st the way the server's tree does.
func readFrom(st store.Store) ReadRecords {
	return func(seq int64, limit int) (page []store.AuditRecord, err error) {
		err = st.View(context.Background(), func(tx store.Tx) error {
			page, err = tx.AuditFrom(seq, limit)
			return err
		})
		return page, err
	}
}

// BenchmarkSyncTree is the tree catching up with 10,000 records from the
// store into a file-backed tree: what the server's periodic job costs per
// record appended. "remembered": the records this Log appended (their leaf
// hashes taken from its memory); "decoded": records it did not append
// (another replica's, or from before a restart), decoded from the store.
func BenchmarkSyncTree(b *testing.B) {
	st := openStore(b)
	l := NewLog(testKey(b, 1), DefaultEvery)
	const records = 10_000
	var stored []store.AuditRecord
	for i := 0; i < records; i += 100 {
		err := st.Update(context.Background(), func(tx store.Tx) error {
			for j := i; j < i+100; j++ {
				rec, err := l.Append(tx, "alpha", "message_posted", Everyone, map[string]any{"id": j, "to": []string{"bravo"},
					"text": Seal(map[string]any{"text": "position report"}, "alpha", "bravo")}, t0)
				if err != nil {
					return err
				}
				stored = append(stored, rec)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	leaves := make([][]byte, len(stored))
	for i, rec := range stored {
		r, err := Decode(rec)
		if err != nil {
			b.Fatal(err)
		}
		leaves[i] = r.Leaf()
	}
	for _, remembered := range []bool{true, false} {
		b.Run(map[bool]string{true: "remembered", false: "decoded"}[remembered], func(b *testing.B) {
			dir := b.TempDir()
			for b.Loop() {
				b.StopTimer()
				fh, err := translog.OpenFileHashes(filepath.Join(dir, "tree"))
				if err != nil {
					b.Fatal(err)
				}
				if err := fh.Truncate(0); err != nil {
					b.Fatal(err)
				}
				tree, err := translog.NewTree(fh)
				if err != nil {
					b.Fatal(err)
				}
				l.leaves = recentLeaves{}
				l.leaves.follow()
				if remembered {
					for i, rec := range stored {
						l.leaves.remember(rec, leaves[i])
					}
				}
				b.StartTimer()
				did, err := l.SyncTree(tree, readFrom(st))
				if err != nil || did.Appended != records {
					b.Fatal(did, err)
				}
				b.StopTimer()
				fh.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkLeafHash is one stored record's leaf hash.
func BenchmarkLeafHash(b *testing.B) {
	st := openStore(b)
	l := NewLog(testKey(b, 1), DefaultEvery)
	var rec store.AuditRecord
	err := st.Update(context.Background(), func(tx store.Tx) (err error) {
		rec, err = l.Append(tx, "alpha", "message_posted", Everyone, map[string]any{"id": 1, "to": []string{"bravo"},
			"text": Seal(map[string]any{"text": "position report"}, "alpha", "bravo")}, t0)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := LeafHash(rec); err != nil {
			b.Fatal(err)
		}
	}
}
