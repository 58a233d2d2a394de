package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// The service's time of a replica (its clock.Guard's) is not always the
// database's: a replica keeps its time across a step of the database's
// clock and raises an alarm. A replica started after such a step took the
// database's new time while the others kept the old, and two replicas of
// one service disagreed by the step: the tracks, deadlines and volume
// windows were judged differently depending on which replica looked.
//
// So each replica records its service time in the meta space
// (serviceTimeMeta+name) at its start and every period (the server's sync,
// 2 s), and deletes it at a clean shutdown; a replica that starts watches
// the records (WatchPeersTime) and starts at the time of the live ones when
// they agree. A record's age is told on the starting replica's monotonic
// clock, not the database's (which is what may have stepped, between the
// record and the read): it watches each record until it changes, and the
// new value was written between its last two reads, polled PeersTimePoll
// apart. A record that does not change within the watch is of a replica
// that ended without deleting it (or is paused past the watch): the
// starting replica deletes it, and a live one writes it again at its next
// period.
const serviceTimeMeta = "clock/"

// PeersTimePoll is how often WatchPeersTime reads the records: the age of
// a record it takes is known to within half of it plus a read.
const PeersTimePoll = 50 * time.Millisecond

type serviceTimeRecord struct {
	Time time.Time `json:"time"`
}

// PutServiceTime records the service time of replica, now's, read in the
// write's transaction: a replica that starts takes the record as written
// between two of its reads, and a time read before the write waited its
// turn (PostgreSQL's group commit, its retries) was older than that by
// the wait.
func PutServiceTime(ctx context.Context, st store.Store, replica string, now func() time.Time) error {
	return st.Update(ctx, func(tx store.Tx) error {
		b, err := json.Marshal(serviceTimeRecord{Time: now().UTC()})
		if err != nil {
			return err
		}
		return tx.PutMeta(serviceTimeMeta+replica, b)
	})
}

// DeleteServiceTime deletes replica's record (at a clean shutdown).
func DeleteServiceTime(ctx context.Context, st store.Store, replica string) error {
	return st.Update(ctx, func(tx store.Tx) error { return tx.DeleteMeta(serviceTimeMeta + replica) })
}

// PeersTime is what WatchPeersTime found.
type PeersTime struct {
	// Peers are the live replicas whose time was taken, sorted.
	Peers []string
	// Offset is their time minus the reference's, the median of theirs
	// (zero without peers).
	Offset time.Duration
	// Spread is the largest of their offsets minus the smallest: how far
	// they disagree with each other.
	Spread time.Duration
	// Ended are the replicas whose record did not change within the
	// watch: their records were deleted.
	Ended []string
}

// WatchPeersTime reads the service times the other replicas recorded
// (self's own is left out) and watches them until each has changed once,
// for at most within: each one that changed is a live replica whose time
// now is known on this replica's monotonic clock, and is returned as an
// offset from reference (the clock this replica's guard follows). Without
// records it returns at once with no peers. The records unchanged within
// the watch are deleted.
func WatchPeersTime(ctx context.Context, st store.Store, self string, reference func() time.Time, within time.Duration) (PeersTime, error) {
	read := func() (map[string][]byte, error) {
		var rows map[string][]byte
		err := st.View(ctx, func(tx store.Tx) error {
			var err error
			rows, err = tx.MetaWithPrefix(serviceTimeMeta)
			return err
		})
		delete(rows, serviceTimeMeta+self)
		return rows, err
	}
	start := time.Now()
	prev, err := read()
	if err != nil || len(prev) == 0 {
		return PeersTime{}, err
	}
	prevStart := start
	// taken: the time of each live replica at the instant taken at, on
	// this replica's monotonic clock.
	type taken struct {
		time time.Time
		at   time.Time
	}
	live := map[string]taken{}
	var cur map[string][]byte
	for {
		t := time.NewTimer(PeersTimePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return PeersTime{}, ctx.Err()
		case <-t.C:
		}
		readStart := time.Now()
		if cur, err = read(); err != nil {
			return PeersTime{}, err
		}
		readEnd := time.Now()
		waiting := false
		for key, v := range cur {
			if _, ok := live[key]; ok {
				continue
			}
			if old, ok := prev[key]; ok && string(old) == string(v) {
				waiting = true
				continue
			}
			var rec serviceTimeRecord
			if json.Unmarshal(v, &rec) != nil || rec.Time.IsZero() {
				continue // not a record this version reads
			}
			// Written after the previous read began and before this one
			// ended: taken at the middle.
			live[key] = taken{time: rec.Time, at: prevStart.Add(readEnd.Sub(prevStart) / 2)}
		}
		for key := range live {
			if _, ok := cur[key]; !ok {
				delete(live, key) // ended cleanly meanwhile
			}
		}
		prev, prevStart = cur, readStart
		if !waiting || readEnd.Sub(start) >= within {
			break
		}
	}

	var out PeersTime
	for key, v := range cur {
		if _, ok := live[key]; ok {
			continue
		}
		// Unchanged for the whole watch: deleted, unless it changed since.
		err := st.Update(ctx, func(tx store.Tx) error {
			now, err := tx.GetMeta(key)
			if errors.Is(err, store.ErrNotFound) || err == nil && string(now) != string(v) {
				return nil
			}
			if err != nil {
				return err
			}
			return tx.DeleteMeta(key)
		})
		if err != nil {
			return PeersTime{}, fmt.Errorf("replica: deleting the service time of an ended replica: %w", err)
		}
		out.Ended = append(out.Ended, key[len(serviceTimeMeta):])
	}
	slices.Sort(out.Ended)
	if len(live) == 0 {
		return out, nil
	}
	now, ref := time.Now(), reference()
	offsets := make([]time.Duration, 0, len(live))
	for key, tk := range live {
		offsets = append(offsets, tk.time.Add(now.Sub(tk.at)).Sub(ref))
		out.Peers = append(out.Peers, key[len(serviceTimeMeta):])
	}
	slices.Sort(out.Peers)
	slices.Sort(offsets)
	out.Offset = offsets[len(offsets)/2]
	if len(offsets)%2 == 0 {
		lo, hi := offsets[len(offsets)/2-1], offsets[len(offsets)/2]
		out.Offset = lo + (hi-lo)/2
	}
	out.Spread = offsets[len(offsets)-1] - offsets[0]
	return out, nil
}
