package alert

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/traffic"
)

// BenchmarkTrafficTransitions counts the conflict transitions a
// scenario's traffic publishes per round of reports (every aircraft once,
// one second apart, in chunks of 250, each aircraft flying straight and
// level as the HTTP benchmarks fly it), after three rounds of settling:
// what the service computes a resolution for (raised and updated) and
// stores an event, an audit record and a hotline item for. Metrics per
// round: raised, updated, cleared, and the alerts open at the end.
//
//	go test -run XXX -bench TrafficTransitions -benchtime 1x ./internal/alert/
func BenchmarkTrafficTransitions(b *testing.B) {
	for _, sc := range []struct {
		name     string
		aircraft int
	}{{"metro", 5_000}, {"metro", 25_000}, {"global", 25_000}} {
		b.Run(fmt.Sprintf("%s-%d", sc.name, sc.aircraft), func(b *testing.B) {
			const settle, rounds = 3, 20
			for b.Loop() {
				now := time.Unix(1_800_000_000, 0)
				reports, err := traffic.Generate(sc.name, traffic.Options{Aircraft: sc.aircraft, Parties: 2, Seed: 1, Time: now})
				if err != nil {
					b.Fatal(err)
				}
				for i := range reports {
					reports[i].VelUpMps = 0
				}
				e := NewEngine(rules.Default(), nil)
				count := map[string]int{}
				for round := range settle + rounds {
					for i := 0; i < len(reports); i += 250 {
						trs, err := e.Ingest(reports[i:min(i+250, len(reports))], now)
						if err != nil {
							b.Fatal(err)
						}
						for _, tr := range trs {
							if round >= settle && tr.Kind == KindConflict {
								count[tr.State]++
							}
						}
					}
					for i := range reports {
						r := &reports[i]
						r.Pos.LatDeg += r.VelNorthMps / 111_195
						r.Pos.LonDeg += r.VelEastMps / (111_195 * math.Cos(r.Pos.LatDeg*math.Pi/180))
						r.Pos.LonDeg = geo.NormalizeLonDeg(r.Pos.LonDeg)
						r.Time = r.Time.Add(time.Second)
					}
					now = now.Add(time.Second)
				}
				for _, st := range []string{StateRaised, StateUpdated, StateCleared} {
					b.ReportMetric(float64(count[st])/rounds, st+"/round")
				}
				b.ReportMetric(float64(len(e.Alerts())), "open")
			}
		})
	}
}
