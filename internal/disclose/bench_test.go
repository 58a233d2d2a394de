package disclose

import (
	"fmt"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/traffic"
)

var benchT0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// moved returns the reports one second later, dead-reckoned.
func moved(reps []track.Report, dt time.Duration) []track.Report {
	out := make([]track.Report, len(reps))
	for i, r := range reps {
		s := track.NewState(r)
		p := s.ECEFAt(dt.Seconds())
		_ = p
		r.Time = r.Time.Add(dt)
		r.Pos.LatDeg += r.VelNorthMps * dt.Seconds() / 111_000
		out[i] = r
	}
	return out
}

// BenchmarkIngest is the cost of keeping the disclosure current per
// report, next to the alert engine's on the same reports (the ratio is
// what --http's disclosure on/off measures end to end).
func BenchmarkIngest(b *testing.B) {
	for _, n := range []int{5000, 25000} {
		reps, err := traffic.Generate("global", traffic.Options{Aircraft: n, Parties: 2, Seed: 1, Time: benchT0})
		if err != nil {
			b.Fatal(err)
		}
		next := moved(reps, time.Second)
		now := benchT0.Add(time.Second)
		b.Run(fmt.Sprintf("disclose-global-%d", n), func(b *testing.B) {
			p := New(RuleFrom(rules.Default()))
			p.Ingest(reps, benchT0)
			b.ResetTimer()
			for i := range b.N {
				cur := reps
				if i%2 == 0 {
					cur = next
				}
				for lo := 0; lo < len(cur); lo += 250 {
					p.Ingest(cur[lo:min(lo+250, len(cur))], now.Add(time.Duration(i)*time.Second))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/report")
		})
		b.Run(fmt.Sprintf("engine-global-%d", n), func(b *testing.B) {
			e := alert.NewEngine(rules.Default(), nil)
			if _, err := e.Ingest(reps, benchT0); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				cur := reps
				if i%2 == 0 {
					cur = next
				}
				for lo := 0; lo < len(cur); lo += 250 {
					_, _ = e.Ingest(cur[lo:min(lo+250, len(cur))], now.Add(time.Duration(i)*time.Second))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/report")
		})
	}
}

// BenchmarkTracks is one party's read of what it may see at 25,000 tracks.
func BenchmarkTracks(b *testing.B) {
	reps, err := traffic.Generate("global", traffic.Options{Aircraft: 25000, Parties: 2, Seed: 1, Time: benchT0})
	if err != nil {
		b.Fatal(err)
	}
	p := New(RuleFrom(rules.Default()))
	p.Ingest(reps, benchT0)
	b.ResetTimer()
	var n int
	for range b.N {
		n = len(p.Tracks("p1", detect.World, benchT0))
	}
	b.ReportMetric(float64(n), "tracks")
}
