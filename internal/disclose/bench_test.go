package disclose

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/traffic"
	"github.com/deconflict/deconflict/internal/volume"
)

var benchT0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// stepped returns the reports dtS seconds later, dead-reckoned.
func stepped(reps []track.Report, dtS float64) []track.Report {
	out := make([]track.Report, len(reps))
	for i, r := range reps {
		r.Time = r.Time.Add(time.Duration(dtS * float64(time.Second)))
		r.Pos.LatDeg += r.VelNorthMps * dtS / 111_000
		out[i] = r
	}
	return out
}

// ingestRounds feeds rounds of reports of every aircraft, one second
// apart, in chunks of 250 (the service's), and returns the time per
// report; the reports are prepared outside the timer.
func ingestRounds(b *testing.B, reps []track.Report, ingest func([]track.Report, time.Time)) {
	cur := reps
	ingest(cur, benchT0)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		cur = stepped(cur, 1)
		now := benchT0.Add(time.Duration(i+1) * time.Second)
		b.StartTimer()
		for lo := 0; lo < len(cur); lo += 250 {
			ingest(cur[lo:min(lo+250, len(cur))], now)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(reps)), "ns/report")
}

// BenchmarkIngest is the cost of keeping the disclosure current per
// report, next to the alert engine's on the same reports (the ratio is
// what --http's ingest with and without need to know measures end to end),
// in global traffic and in a city's (metro: every aircraft near every
// other). In by-party the picture first takes every report of one party,
// then the other's, as when the parties connect one after the other: the
// index then lists a city's tracks party by party.
func BenchmarkIngest(b *testing.B) {
	for _, scenario := range []string{"global", "metro"} {
		for _, n := range []int{5000, 25000} {
			reps, err := traffic.Generate(scenario, traffic.Options{Aircraft: n, Parties: 2, Seed: 1, Time: benchT0})
			if err != nil {
				b.Fatal(err)
			}
			byParty := slices.Clone(reps)
			slices.SortStableFunc(byParty, func(x, y track.Report) int { return strings.Compare(x.Party, y.Party) })
			b.Run(fmt.Sprintf("disclose-%s-%d", scenario, n), func(b *testing.B) {
				p := New(RuleFrom(rules.Default()))
				ingestRounds(b, reps, p.Ingest)
			})
			b.Run(fmt.Sprintf("disclose-%s-%d-by-party", scenario, n), func(b *testing.B) {
				p := New(RuleFrom(rules.Default()))
				ingestRounds(b, byParty, p.Ingest)
			})
			b.Run(fmt.Sprintf("disclose-%s-%d-volumes", scenario, n), func(b *testing.B) {
				p := New(RuleFrom(rules.Default()))
				putVolumesAt(b, p, reps[:20])
				ingestRounds(b, reps, p.Ingest)
			})
			b.Run(fmt.Sprintf("engine-%s-%d", scenario, n), func(b *testing.B) {
				e := alert.NewEngine(rules.Default(), nil)
				ingestRounds(b, reps, func(r []track.Report, now time.Time) { _, _ = e.Ingest(r, now) })
			})
		}
	}
}

// putVolumesAt declares, for each report, an accepted volume of its
// party: a 2 km circle around it, 300 m thick, from an hour before benchT0
// to an hour after.
func putVolumesAt(b *testing.B, p *Picture, reps []track.Report) {
	for i, r := range reps {
		in := volume.Input{
			Footprint: volume.Footprint{Type: "Circle", Center: []float64{r.Pos.LonDeg, r.Pos.LatDeg}, RadiusM: 2000},
			AltLowerM: r.Pos.AltM - 150, AltUpperM: r.Pos.AltM + 150,
			Start: benchT0.Add(-time.Hour), End: benchT0.Add(time.Hour), State: volume.Accepted,
		}
		v, err := volume.NewVolume(fmt.Sprint("v", i), r.Party, in, rules.Default())
		if err != nil {
			b.Fatal(err)
		}
		p.PutVolume(v)
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
