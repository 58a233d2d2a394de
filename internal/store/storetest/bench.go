package storetest

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/deconflict/deconflict/internal/store"
)

// Bench runs the storage benchmarks against a backend; open returns an
// empty store that the benchmark may fill. The figures are reported per
// operation and, for writes, as commits/s.
func Bench(b *testing.B, open func(b *testing.B) store.Store) {
	event := store.Event{Time: base, Kind: "alert", Audience: []string{"blue", "red"},
		Body: []byte(`{"id":"a-1","level":"warning","t_in_s":42.5,"aircraft":[{"party":"blue","aircraft":"B1"},{"party":"red","aircraft":"R1"}]}`)}

	// One commit per Update, one caller at a time: the cost of a durable
	// commit on this machine.
	b.Run("UpdateAppendEvent/serial", func(b *testing.B) {
		s := open(b)
		b.ResetTimer()
		for b.Loop() {
			if err := s.Update(ctx, func(tx store.Tx) error {
				_, err := tx.AppendEvent(event)
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	})
	// 16 concurrent callers, as the service's request handlers are.
	b.Run("UpdateAppendEvent/parallel16", func(b *testing.B) {
		s := open(b)
		b.SetParallelism(16 / max(1, runtime.GOMAXPROCS(0)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Update(ctx, func(tx store.Tx) error {
					_, err := tx.AppendEvent(event)
					return err
				}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	})
	b.Run("PutVolume/parallel16", func(b *testing.B) {
		s := open(b)
		var n atomic.Int64
		b.SetParallelism(16 / max(1, runtime.GOMAXPROCS(0)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(n.Add(1))
				v := sampleVolume(fmt.Sprintf("v%d", i), "1", i)
				if err := s.Update(ctx, func(tx store.Tx) error {
					if err := tx.LockVolumes(); err != nil {
						return err
					}
					_, err := tx.PutVolume(v, "")
					return err
				}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	})
	b.Run("EventsAfter1000", func(b *testing.B) {
		s := open(b)
		const total = 5000
		if err := s.Update(ctx, func(tx store.Tx) error {
			for range total {
				if _, err := tx.AppendEvent(event); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		var after int64
		b.ResetTimer()
		for b.Loop() {
			if err := s.View(ctx, func(tx store.Tx) error {
				got, err := tx.EventsAfter(after, 1000)
				if err != nil {
					return err
				}
				if len(got) != 1000 {
					return fmt.Errorf("EventsAfter(%d, 1000) returned %d", after, len(got))
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			after = (after + 1000) % (total - 1000)
		}
		b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
	})
	// How long a party's backlog is, judged as an event stream with a
	// cursor does before it sends a snapshot instead (2,000 events at
	// most): by reading them, as it did, or by counting the audience
	// index. The party is 100,000 events behind.
	b.Run("Backlog100000", func(b *testing.B) {
		s := open(b)
		const total, limit = 100_000, 2001
		for done := 0; done < total; done += 10_000 {
			if err := s.Update(ctx, func(tx store.Tx) error {
				for range 10_000 {
					if _, err := tx.AppendEvent(event); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run("read2001", func(b *testing.B) {
			for b.Loop() {
				if err := s.View(ctx, func(tx store.Tx) error {
					got, err := store.EventsAfterFor(tx, "blue", 0, limit)
					if err == nil && len(got) != limit {
						err = fmt.Errorf("EventsAfterFor read %d events, want %d", len(got), limit)
					}
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("count2001", func(b *testing.B) {
			for b.Loop() {
				if err := s.View(ctx, func(tx store.Tx) error {
					n, err := store.CountEventsAfterFor(tx, "blue", 0, limit)
					if err == nil && n != limit {
						err = fmt.Errorf("CountEventsAfterFor counted %d events, want %d", n, limit)
					}
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
