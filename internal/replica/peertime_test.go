package replica

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

func (t *metaTx) DeleteMeta(k string) error {
	delete(t.meta, k)
	return nil
}

func (t *metaTx) MetaWithPrefix(prefix string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for k, v := range t.meta {
		if strings.HasPrefix(k, prefix) {
			out[k] = slices.Clone(v)
		}
	}
	return out, nil
}

// peerRecording records a replica's service time, offset from the host's
// clock, every period until stopped.
func peerRecording(t *testing.T, st store.Store, name string, offset, period time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if err := PutServiceTime(ctx, st, name, func() time.Time { return time.Now().Add(offset) }); err != nil {
				t.Error(err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(period):
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// TestWatchPeersTime: without records a starting replica has no peers;
// with the records of two live replicas an hour behind the reference and
// of one that ended, it takes the live ones' time, and deletes the ended
// one's record; two live replicas an hour apart are told as a spread of
// an hour.
func TestWatchPeersTime(t *testing.T) {
	ctx := context.Background()
	st := &metaStore{meta: map[string][]byte{}}
	got, err := WatchPeersTime(ctx, st, "self", time.Now, time.Second)
	if err != nil || len(got.Peers) != 0 || got.Offset != 0 {
		t.Fatalf("without records: %+v, %v", got, err)
	}

	if err := PutServiceTime(ctx, st, "ended", time.Now); err != nil {
		t.Fatal(err)
	}
	if err := PutServiceTime(ctx, st, "self", time.Now); err != nil {
		t.Fatal(err)
	}
	stopA := peerRecording(t, st, "a", -time.Hour, 20*time.Millisecond)
	defer stopA()
	stopB := peerRecording(t, st, "b", -time.Hour, 30*time.Millisecond)
	got, err = WatchPeersTime(ctx, st, "self", time.Now, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// The peers' time is known to within the poll and the period of their
	// records; the figure checked is the hour.
	if !slices.Equal(got.Peers, []string{"a", "b"}) || (got.Offset+time.Hour).Abs() > 500*time.Millisecond || got.Spread > 500*time.Millisecond {
		t.Errorf("two live replicas an hour behind: %+v", got)
	}
	if !slices.Equal(got.Ended, []string{"ended"}) {
		t.Errorf("ended: %q, want the replica that ended", got.Ended)
	}
	st.mu.Lock()
	keys := slices.Sorted(maps.Keys(st.meta))
	st.mu.Unlock()
	if !slices.Equal(keys, []string{"clock/a", "clock/b", "clock/self"}) {
		t.Errorf("records after the watch: %q; want the ended replica's deleted", keys)
	}

	stopB()
	stopB = peerRecording(t, st, "b", 0, 30*time.Millisecond)
	defer stopB()
	got, err = WatchPeersTime(ctx, st, "self", time.Now, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Peers) != 2 || (got.Spread-time.Hour).Abs() > 500*time.Millisecond {
		t.Errorf("two live replicas an hour apart: %+v", got)
	}
}

// waitingStore is a store whose writes wait their turn: each Update moves
// the clock on by wait before it runs its function, as a write queued
// behind others in PostgreSQL's group commit does.
type waitingStore struct {
	*metaStore
	clock *clock
	wait  time.Duration
}

func (s *waitingStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	s.clock.t = s.clock.t.Add(s.wait)
	return s.metaStore.Update(ctx, fn)
}

// TestPutServiceTimeIsTheWritesTime: the time recorded is the service's
// when the write runs, not when it was asked for: a starting replica takes
// the record as written between two of its reads, and a time 3 s older
// (the write queued behind others) would start it 3 s behind the replica
// that wrote it.
func TestPutServiceTimeIsTheWritesTime(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	st := &waitingStore{metaStore: &metaStore{meta: map[string][]byte{}}, clock: c, wait: 3 * time.Second}
	if err := PutServiceTime(context.Background(), st, "a", c.now); err != nil {
		t.Fatal(err)
	}
	var rec serviceTimeRecord
	if err := json.Unmarshal(st.meta[serviceTimeMeta+"a"], &rec); err != nil {
		t.Fatal(err)
	}
	if !rec.Time.Equal(c.t) {
		t.Fatalf("recorded %v, want the time of the write %v (the request was at %v)", rec.Time, c.t, c.t.Add(-st.wait))
	}
}
