package volbench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/cputime"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume"
	"github.com/deconflict/deconflict/internal/volume/synth"
)

// On synthetic operations the index answers exactly what the scan answers.
func TestCheckAgreesWithScan(t *testing.T) {
	rep, err := Check(3000, 300, 300, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mismatches != 0 {
		t.Fatalf("%d of %d checks differ from the scan", rep.Mismatches, rep.ScanQueries)
	}
	if rep.MeanConflicts == 0 {
		t.Fatal("no probe conflicted with anything: the workload exercises nothing")
	}
}

var fixture struct {
	once   sync.Once
	idx    *volume.Index
	all    []*volume.Volume
	probes []*volume.Volume
}

// load builds 100,000 synthetic volumes once for all benchmarks.
func load(b *testing.B) {
	fixture.once.Do(func() {
		rl := rules.Default()
		gen := synth.New(synth.DefaultConfig(100_000))
		fixture.idx = volume.NewIndex(rl)
		for i := 0; i < 100_000; i++ {
			op := gen.Next()
			v, err := volume.NewVolume(synth.ID(i), op.Party, op.Input, rl)
			if err != nil {
				panic(err)
			}
			fixture.idx.Put(v)
			fixture.all = append(fixture.all, v)
		}
		for i := 0; i < 1000; i++ {
			op := gen.Next()
			v, err := volume.NewVolume(fmt.Sprint("probe", i), op.Party, op.Input, rl)
			if err != nil {
				panic(err)
			}
			fixture.probes = append(fixture.probes, v)
		}
	})
}

// BenchmarkCheckIndex100k is one conflict check of a new volume against
// 100,000 stored volumes through the index.
func BenchmarkCheckIndex100k(b *testing.B) {
	load(b)
	cpu := cpuMeter(b)
	for i := 0; b.Loop(); i++ {
		fixture.idx.Conflicts(fixture.probes[i%len(fixture.probes)])
	}
	cpu()
}

// cpuMeter resets the timer and returns a function that reports the thread
// CPU time per operation next to ns/op, which on a loaded machine also
// counts the time spent waiting for a core.
func cpuMeter(b *testing.B) func() {
	runtime.LockOSThread()
	c0, ok := cputime.Thread()
	b.ResetTimer()
	return func() {
		b.StopTimer()
		if c1, ok1 := cputime.Thread(); ok && ok1 && b.N > 0 {
			b.ReportMetric(float64(c1-c0)/1e3/float64(b.N), "cpu-us/op")
		}
		runtime.UnlockOSThread()
	}
}

// BenchmarkCheckScan100k is the baseline: the same check scanning every
// volume.
func BenchmarkCheckScan100k(b *testing.B) {
	load(b)
	rl := rules.Default()
	cpu := cpuMeter(b)
	for i := 0; b.Loop(); i++ {
		volume.ScanConflicts(fixture.all, fixture.probes[i%len(fixture.probes)], rl)
	}
	cpu()
}

// BenchmarkDenseWritesSQLite: 16 writers of four parties over one 1 km
// square, every write the full key check in its own transaction on the
// embedded store; reports writes/s and fails if a conflict went unannounced.
func BenchmarkDenseWritesSQLite(b *testing.B) {
	st, err := sqlite.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ResetTimer()
	rep, err := Dense(context.Background(), st, []string{"a", "b", "c", "d"}, 16, time.Hour, int64(b.N), 1000)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rep.WritesPerSecond, "writes/s")
	b.ReportMetric(float64(rep.Accepted)/float64(rep.Writes), "accepted/write")
	if rep.Unannounced > 0 {
		b.Fatalf("%d conflicting pairs committed without a volume_conflict event", rep.Unannounced)
	}
}

// On the embedded store, concurrent writers over one busy square never
// commit a conflict nobody was told about.
func TestDenseWritesLeaveNoUnannouncedConflict(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := Dense(context.Background(), st, []string{"a", "b"}, 16, time.Minute, 400, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted == 0 || rep.ConflictPairs == 0 {
		t.Fatalf("nothing exercised: %+v", rep)
	}
	if rep.Unannounced != 0 {
		t.Fatalf("%d of %d conflicting pairs unannounced", rep.Unannounced, rep.ConflictPairs)
	}
}
