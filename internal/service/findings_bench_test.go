package service

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/volume"
)

// BenchmarkActivationFindings measures, on SQLite, how long an activation
// with n new conflicting pairs holds the writers' lock to queue its
// findings (queue-ms), the longest hold of one batch announced after it
// (max-batch-ms, commit included) and the whole announcement
// (announce-s). Run with -benchtime=1x: each size takes seconds.
func BenchmarkActivationFindings(b *testing.B) {
	for _, n := range []int{10_000, 50_000, 100_000} {
		b.Run(fmt.Sprintf("pairs=%d", n), func(b *testing.B) {
			ctx := context.Background()
			s, _ := newEmbedded(b)
			for _, p := range []string{"coalition", "russia"} {
				if _, err := s.CreateParty(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
			// The proposal whose rules the items' deadlines follow
			// (readBatch); left open.
			r := s.Rules()
			r.HorizontalSepM += 1000
			prop, err := s.ProposeRules(ctx, party.Principal{Party: party.OperatorName, Operator: true}, r)
			if err != nil {
				b.Fatal(err)
			}
			in := eastOf(s.now(), 0)
			pairs := make([]volume.Pair, n)
			for i := range pairs {
				a := &volume.Volume{ID: fmt.Sprintf("a%023d", i), Party: "coalition", Version: "v1", Footprint: in.Footprint,
					AltLowerM: in.AltLowerM, AltUpperM: in.AltUpperM, Start: in.Start, End: in.End, State: volume.Accepted}
				o := *a
				o.ID, o.Party = fmt.Sprintf("b%023d", i), "russia"
				pairs[i] = volume.Pair{A: a, B: &o}
			}
			var queue, maxBatch, announce time.Duration
			for b.Loop() {
				start := time.Now()
				if err := s.write(ctx, func(tx store.Tx) error { return s.queueFindings(tx, prop.Version, nil, pairs) }); err != nil {
					b.Fatal(err)
				}
				queue += time.Since(start)
				last := time.Now()
				s.onFindingsBatch = func(int64) error {
					maxBatch = max(maxBatch, time.Since(last))
					last = time.Now()
					return nil
				}
				start = time.Now()
				if err := s.announceFindings(ctx, 0); err != nil {
					b.Fatal(err)
				}
				announce += time.Since(start)
			}
			b.ReportMetric(float64(queue.Milliseconds())/float64(b.N), "queue-ms")
			b.ReportMetric(float64(maxBatch.Milliseconds()), "max-batch-ms")
			b.ReportMetric(announce.Seconds()/float64(b.N), "announce-s")
		})
	}
}
