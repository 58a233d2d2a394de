package volume_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume"
	"github.com/deconflict/deconflict/internal/volume/synth"
)

// activationFixture is a SQLite store of n synthetic volumes and a
// registry loaded from it.
type activationFixture struct {
	st      store.Store
	reg     *volume.Registry
	old, rl rules.Rules
	gen     *synth.Generator
	written int
}

func newActivationFixture(b *testing.B, cfg synth.Config) *activationFixture {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	old := rules.Default()
	old.PriorityMax = map[string]int{}
	for _, p := range cfg.Parties {
		old.PriorityMax[p] = 2
	}
	gen := synth.New(cfg)
	const batch = 5000
	for i := 0; i < cfg.N; i += batch {
		err := st.Update(ctx, func(tx store.Tx) error {
			for j := i; j < min(i+batch, cfg.N); j++ {
				op := gen.Next()
				v, err := volume.NewVolume(synth.ID(j), op.Party, op.Input, old)
				if err != nil {
					return err
				}
				rec, err := v.RecordForTest()
				if err != nil {
					return err
				}
				if _, err := tx.PutVolume(rec, ""); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	reg := volume.NewRegistry(old)
	if err := st.View(ctx, func(tx store.Tx) error { return reg.Load(tx) }); err != nil {
		b.Fatal(err)
	}
	// Half as much separation again, five times the time buffer, windows
	// of at most 4 hours (the corridors of up to 8 hours break it).
	rl := old
	rl.HorizontalSepM *= 1.5
	rl.TimeBufferS *= 5
	rl.MaxWindowS = 4 * 3600
	return &activationFixture{st: st, reg: reg, old: old, rl: rl, gen: gen}
}

// writeMeanwhile declares n more volumes through the registry, as writes
// committed between the scan ahead and the activation.
func (f *activationFixture) writeMeanwhile(b *testing.B, n int) {
	ctx := context.Background()
	for range n {
		op := f.gen.Next()
		var res volume.Result
		err := f.st.Update(ctx, func(tx store.Tx) error {
			var err error
			res, err = f.reg.Create(tx, op.Party, op.Input, f.old, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
			return err
		})
		if err == nil {
			f.reg.Apply(res)
			f.written++
		}
	}
}

// BenchmarkActivationLock is the part of bringing new rules into force
// (raised separation and buffer, a shorter maximum window) that the
// volumes take inside the write transaction, that is holding the writers'
// lock (lock-ms/op): checking every volume and pair there ("inside", as
// before), or taking a scan made ahead without the lock (scan-ms/op) and
// checking there only the volumes written since ("ahead", with 0 or 20
// volumes written between the scan and the transaction). ns/op is the
// whole. Run with -benchtime=1x: one activation of 100,000 volumes takes
// seconds.
func BenchmarkActivationLock(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10_000, 100_000} {
		cfg := synth.DefaultConfig(n)
		var f *activationFixture
		parent := b
		// Made once for the three runs, and closed after them.
		fixture := func(*testing.B) *activationFixture {
			if f == nil {
				f = newActivationFixture(parent, cfg)
			}
			return f
		}
		b.Run(fmt.Sprintf("n=%d/inside", n), func(b *testing.B) {
			f := fixture(b)
			var held time.Duration
			var flags, pairs int
			for b.Loop() {
				began := time.Now()
				err := f.st.Update(ctx, func(tx store.Tx) error {
					fl, err := f.reg.Breaking(tx, f.rl)
					if err != nil {
						return err
					}
					ps, err := f.reg.NewConflicts(tx, f.old, f.rl)
					flags, pairs = len(fl), len(ps)
					return err
				})
				held += time.Since(began)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(held.Milliseconds())/float64(b.N), "lock-ms/op")
			b.ReportMetric(float64(flags), "flags")
			b.ReportMetric(float64(pairs), "pairs")
		})
		for _, meanwhile := range []int{0, 20} {
			b.Run(fmt.Sprintf("n=%d/ahead,%d-written-meanwhile", n, meanwhile), func(b *testing.B) {
				f := fixture(b)
				var held, scanning time.Duration
				var flags, pairs int
				for b.Loop() {
					began := time.Now()
					scan, err := f.reg.ScanRules(f.old, f.rl)
					if err != nil {
						b.Fatal(err)
					}
					scanning += time.Since(began)
					b.StopTimer()
					f.writeMeanwhile(b, meanwhile)
					b.StartTimer()
					began = time.Now()
					err = f.st.Update(ctx, func(tx store.Tx) error {
						fl, ps, err := f.reg.AfterScan(tx, scan, f.old, f.rl)
						flags, pairs = len(fl), len(ps)
						return err
					})
					held += time.Since(began)
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(held.Milliseconds())/float64(b.N), "lock-ms/op")
				b.ReportMetric(float64(scanning.Milliseconds())/float64(b.N), "scan-ms/op")
				b.ReportMetric(float64(flags), "flags")
				b.ReportMetric(float64(pairs), "pairs")
			})
		}
	}
}
