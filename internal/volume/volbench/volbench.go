// Package volbench measures the strategic check: the latency of a conflict
// check against many stored volumes (the index against a scan of every
// volume, in the same run), and the throughput of concurrent writers over
// one busy area through a store, with a check afterwards that no conflict
// was committed unannounced. It serves `go test -bench` and
// `deconflict bench --volumes`.
package volbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/cputime"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/volume"
	"github.com/deconflict/deconflict/internal/volume/synth"
)

// CheckReport is the outcome of Check. Durations are in microseconds.
type CheckReport struct {
	Volumes       int     `json:"volumes"`
	Queries       int     `json:"queries"`
	ScanQueries   int     `json:"scan_queries"`
	IndexP50Us    float64 `json:"index_p50_us"`
	IndexP99Us    float64 `json:"index_p99_us"`
	ScanP50Us     float64 `json:"scan_p50_us"`
	ScanP99Us     float64 `json:"scan_p99_us"`
	SpeedupP50    float64 `json:"speedup_p50"`
	MeanConflicts float64 `json:"mean_conflicts"`
	Mismatches    int     `json:"mismatches"`
	BuildSeconds  float64 `json:"build_s"`
	// The same on the CPU time of the thread running each check (Linux):
	// on a loaded machine the wall-clock p99 mostly measures waiting for
	// a core.
	IndexCPUP50Us float64 `json:"index_cpu_p50_us,omitempty"`
	IndexCPUP99Us float64 `json:"index_cpu_p99_us,omitempty"`
	ScanCPUP50Us  float64 `json:"scan_cpu_p50_us,omitempty"`
	ScanCPUP99Us  float64 `json:"scan_cpu_p99_us,omitempty"`
}

// Check fills an index with n synthetic volumes, then times the conflict
// check of queries new volumes through the index, and of scanQueries of
// them by scanning every volume; the scanned ones are also compared with
// the index's answer (Mismatches must be 0).
func Check(n, queries, scanQueries int, progress io.Writer) (CheckReport, error) {
	rl := rules.Default()
	cfg := synth.DefaultConfig(n)
	gen := synth.New(cfg)
	idx := volume.NewIndex(rl)
	all := make([]*volume.Volume, 0, n)
	began := time.Now()
	for i := 0; i < n; i++ {
		op := gen.Next()
		v, err := volume.NewVolume(synth.ID(i), op.Party, op.Input, rl)
		if err != nil {
			return CheckReport{}, fmt.Errorf("synthetic volume %d: %w", i, err)
		}
		idx.Put(v)
		all = append(all, v)
		if progress != nil && (i+1)%20000 == 0 {
			fmt.Fprintf(progress, "volumes: indexed %d/%d\n", i+1, n)
		}
	}
	rep := CheckReport{Volumes: n, Queries: queries, ScanQueries: scanQueries, BuildSeconds: time.Since(began).Seconds()}
	probes := make([]*volume.Volume, queries)
	for i := range probes {
		op := gen.Next()
		v, err := volume.NewVolume(fmt.Sprintf("probe-%d", i), op.Party, op.Input, rl)
		if err != nil {
			return CheckReport{}, err
		}
		probes[i] = v
	}
	// One OS thread for the timed loops, so that its CPU clock is the
	// checks' own.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var idxTimes, idxCPU []time.Duration
	var found int
	for _, p := range probes {
		wall, cpu := timed(func() { found += len(idx.Conflicts(p)) })
		idxTimes, idxCPU = append(idxTimes, wall), appendCPU(idxCPU, cpu)
	}
	rep.MeanConflicts = float64(found) / float64(queries)
	var scanTimes, scanCPU []time.Duration
	for i := 0; i < scanQueries && i < queries; i++ {
		var want []*volume.Volume
		wall, cpu := timed(func() { want = volume.ScanConflicts(all, probes[i], rl) })
		scanTimes, scanCPU = append(scanTimes, wall), appendCPU(scanCPU, cpu)
		if !slices.Equal(refs(idx.Conflicts(probes[i])), refs(want)) {
			rep.Mismatches++
		}
		if progress != nil && (i+1)%50 == 0 {
			fmt.Fprintf(progress, "volumes: scanned %d/%d baseline checks\n", i+1, scanQueries)
		}
	}
	rep.IndexP50Us, rep.IndexP99Us = percentile(idxTimes, 0.50), percentile(idxTimes, 0.99)
	rep.ScanP50Us, rep.ScanP99Us = percentile(scanTimes, 0.50), percentile(scanTimes, 0.99)
	rep.IndexCPUP50Us, rep.IndexCPUP99Us = percentile(idxCPU, 0.50), percentile(idxCPU, 0.99)
	rep.ScanCPUP50Us, rep.ScanCPUP99Us = percentile(scanCPU, 0.50), percentile(scanCPU, 0.99)
	if rep.IndexP50Us > 0 {
		rep.SpeedupP50 = rep.ScanP50Us / rep.IndexP50Us
	}
	return rep, nil
}

// timed runs f and returns its wall-clock and thread CPU time (cpu < 0
// when the platform has no thread clock).
func timed(f func()) (wall, cpu time.Duration) {
	c0, ok := cputime.Thread()
	t0 := time.Now()
	f()
	wall = time.Since(t0)
	if c1, ok1 := cputime.Thread(); ok && ok1 {
		return wall, time.Duration(c1 - c0)
	}
	return wall, -1
}

func appendCPU(ds []time.Duration, d time.Duration) []time.Duration {
	if d < 0 {
		return ds
	}
	return append(ds, d)
}

func refs(vs []*volume.Volume) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.ID
	}
	return out
}

// percentile in microseconds (nearest rank).
func percentile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	i = min(max(i, 0), len(s)-1)
	return float64(s[i]) / float64(time.Microsecond)
}

// DenseReport is the outcome of Dense.
type DenseReport struct {
	Writers         int     `json:"writers"`
	Parties         int     `json:"parties"`
	Seconds         float64 `json:"seconds"`
	Writes          int64   `json:"writes"`
	Accepted        int64   `json:"accepted"`
	Refused         int64   `json:"refused"`
	RefusedKey      int64   `json:"refused_missing_key"`
	RefusedPriority int64   `json:"refused_priority"`
	RefusedOther    int64   `json:"refused_other"`
	WritesPerSecond float64 `json:"writes_per_s"`
	LiveVolumes     int     `json:"live_volumes"`
	ConflictPairs   int     `json:"conflict_pairs"`
	Unannounced     int     `json:"unannounced_conflicts"`
}

// maxOwn is how many live volumes one dense-area writer keeps.
const maxOwn = 8

// Dense runs writers goroutines of the given parties for d (or until
// maxWrites writes, when above zero), each creating, updating and
// cancelling (at most maxOwn live at a time) volumes that overlap one
// sideM x sideM area, every write the
// full check in its own store transaction together with its events (as the
// service does). A refusal for a missing key is retried with the missing
// volumes added, as a client would; every attempt counts as one write.
// Afterwards it verifies from the store alone that every pair of
// conflicting live volumes was announced by a volume_conflict event.
func Dense(ctx context.Context, st store.Store, parties []string, writers int, d time.Duration, maxWrites int64, sideM float64) (DenseReport, error) {
	rl := rules.Default()
	// The generated volumes have priorities up to 2: grant them.
	rl.PriorityMax = map[string]int{}
	for _, p := range parties {
		rl.PriorityMax[p] = 2
	}
	reg := volume.NewRegistry(rl)
	if err := st.View(ctx, func(tx store.Tx) error { return reg.Load(tx) }); err != nil {
		return DenseReport{}, err
	}
	const lat, lon = 35.0, 36.0
	var writes, accepted, refusedKey, refusedPriority, refusedOther atomic.Int64
	var firstErr error
	var errOnce sync.Once
	deadline := time.Now().Add(d)
	began := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := synth.DefaultConfig(0)
			cfg.Seed = uint64(w + 1)
			cfg.Start = time.Now().Add(time.Hour).Truncate(time.Hour)
			cfg.Span = 6 * time.Hour
			gen := synth.New(cfg)
			party := parties[w%len(parties)]
			var mine []volume.Volume
			var key []volume.KeyEntry
			for n := 0; time.Now().Before(deadline) && (maxWrites <= 0 || writes.Load() < maxWrites); n++ {
				in := gen.Dense(lat, lon, sideM)
				// Each writer keeps at most maxOwn live volumes: past
				// that it cancels its oldest before creating, as
				// operations end; otherwise it updates or creates.
				i := n % max(len(mine), 1)
				cancel := len(mine) >= maxOwn && n%3 == 0
				update := !cancel && len(mine) > 0 && (len(mine) >= maxOwn || n%2 == 1)
				if cancel {
					i = 0
				}
				var res volume.Result
				err := st.Update(ctx, func(tx store.Tx) error {
					var err error
					switch {
					case cancel:
						res, err = reg.SetState(tx, party, mine[i].ID, mine[i].Version, volume.Cancelled, nil, rl, time.Now())
					case update:
						u := in
						u.Key, u.Version = key, mine[i].Version
						res, err = reg.Update(tx, party, mine[i].ID, u, rl, time.Now())
					default:
						c := in
						c.Key = key
						res, err = reg.Create(tx, party, c, rl, time.Now())
					}
					if err != nil {
						return err
					}
					return res.AppendEvents(tx, time.Now())
				})
				writes.Add(1)
				var mk *volume.MissingKeyError
				switch {
				case err == nil:
					accepted.Add(1)
					reg.Apply(res)
					switch {
					case cancel:
						mine = mine[1:]
					case update:
						mine[i] = res.Volume
					default:
						mine = append(mine, res.Volume)
					}
				case errors.As(err, &mk):
					refusedKey.Add(1)
					// Learn what was missing, as a client does; older
					// entries of the same volumes are left to be ignored.
					for _, m := range mk.Missing {
						key = append(key, volume.KeyEntry{ID: m.ID, Version: m.Version})
					}
					if len(key) > 512 {
						key = key[len(key)-512:]
					}
				case errors.Is(err, volume.ErrHigherPriority):
					refusedPriority.Add(1)
				case errors.Is(err, volume.ErrActivatedConflict), errors.Is(err, volume.ErrStaleVersion):
					refusedOther.Add(1)
				default:
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(began).Seconds()
	if firstErr != nil {
		return DenseReport{}, firstErr
	}
	rep := DenseReport{Writers: writers, Parties: len(parties), Seconds: elapsed, Writes: writes.Load(),
		Accepted: accepted.Load(), RefusedKey: refusedKey.Load(), RefusedPriority: refusedPriority.Load(), RefusedOther: refusedOther.Load()}
	rep.Refused = rep.RefusedKey + rep.RefusedPriority + rep.RefusedOther
	rep.WritesPerSecond = float64(rep.Writes) / elapsed
	var err error
	rep.LiveVolumes, rep.ConflictPairs, rep.Unannounced, err = Verify(ctx, st, rl)
	return rep, err
}

// Verify reads every volume and event from the store and counts the pairs
// of live volumes that conflict, and among them those that no
// volume_conflict event announced to both parties. It tests every pair.
func Verify(ctx context.Context, st store.Store, rl rules.Rules) (live, pairs, unannounced int, err error) {
	var vs []*volume.Volume
	told := map[[2]string]bool{}
	err = st.View(ctx, func(tx store.Tx) error {
		for seq := int64(0); ; {
			recs, err := tx.VolumesChangedSince(seq, 10000)
			if err != nil {
				return err
			}
			for _, r := range recs {
				v, err := volume.Decode(r)
				if err != nil {
					return err
				}
				if v.State.Live() {
					vs = append(vs, v)
				}
				seq = r.ChangeSeq
			}
			if len(recs) < 10000 {
				break
			}
		}
		for after := int64(0); ; {
			evs, err := tx.EventsAfter(after, 10000)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				after = ev.ID
				if ev.Kind != "volume_conflict" {
					continue
				}
				var d volume.ConflictData
				if err := json.Unmarshal(ev.Body, &d); err != nil || len(d.Volumes) != 2 {
					return fmt.Errorf("event %d: bad volume_conflict body", ev.ID)
				}
				a, b := d.Volumes[0], d.Volumes[1]
				if slices.Contains(ev.Audience, a.Party) && slices.Contains(ev.Audience, b.Party) {
					told[[2]string{a.ID, b.ID}], told[[2]string{b.ID, a.ID}] = true, true
				}
			}
			if len(evs) < 10000 {
				return nil
			}
		}
	})
	if err != nil {
		return 0, 0, 0, err
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].ID < vs[j].ID })
	for i, a := range vs {
		for _, b := range vs[i+1:] {
			if volume.Conflict(*a, *b, rl) {
				pairs++
				if !told[[2]string{a.ID, b.ID}] {
					unannounced++
				}
			}
		}
	}
	return len(vs), pairs, unannounced, nil
}
