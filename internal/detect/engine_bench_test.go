package detect

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/traffic"
)

// Sizes here are small enough for `go test -bench .` on a shared machine;
// `deconflict bench` runs the large ones.
var benchSizes = []struct {
	scenario string
	n        int
}{{"global", 5000}, {"global", 25000}, {"theatre", 2000}, {"metro", 20000}}

func benchEngine(b *testing.B, scenario string, n int) (*Engine, []track.Report) {
	b.Helper()
	reps, err := traffic.Generate(scenario, traffic.Options{Aircraft: n, Seed: 1, Time: t0})
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(rules.Default(), Grid{}, nil)
	if _, err := e.Ingest(nil, reps, t0); err != nil {
		b.Fatal(err)
	}
	return e, reps
}

func BenchmarkFullCycle(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("%s-%d", s.scenario, s.n), func(b *testing.B) {
			e, _ := benchEngine(b, s.scenario, s.n)
			b.ResetTimer()
			for range b.N {
				e.FullCycle()
			}
		})
	}
}

// BenchmarkBruteForce is the baseline of BenchmarkFullCycle, on the same
// traffic; the 25,000 case (312 million pairs) is left to `deconflict
// bench`.
func BenchmarkBruteForce(b *testing.B) {
	for _, s := range benchSizes {
		if s.n > 10000 {
			continue
		}
		b.Run(fmt.Sprintf("%s-%d", s.scenario, s.n), func(b *testing.B) {
			e, _ := benchEngine(b, s.scenario, s.n)
			states, p := e.States(), e.Params()
			b.ResetTimer()
			for range b.N {
				BruteForce(states, p)
			}
		})
	}
}

// BenchmarkUpdate is one report in: the aircraft moves one second on and
// its pairs are re-evaluated.
func BenchmarkUpdate(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("%s-%d", s.scenario, s.n), func(b *testing.B) {
			e, reps := benchEngine(b, s.scenario, s.n)
			rng := rand.New(rand.NewPCG(1, 2))
			var evs []Event
			now := t0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				k := rng.IntN(len(reps))
				reps[k] = traffic.Advance(reps[k], time.Second)
				if reps[k].Time.After(now) {
					now = reps[k].Time
				}
				evs, _ = e.Ingest(evs[:0], reps[k:k+1], now)
			}
		})
	}
}
