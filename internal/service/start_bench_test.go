package service

import (
	"context"
	"fmt"
	"testing"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// BenchmarkStartAfterAMillionEvents measures a start (New, then Close) on
// the embedded store after an alert raised and a million events of other
// kinds. Run with -benchtime=3x: the setup writes the million events.
func BenchmarkStartAfterAMillionEvents(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	clock := &testClock{}
	s, err := New(ctx, Config{Store: st, Now: clock.now})
	if err != nil {
		b.Fatal(err)
	}
	c, r := headOnPair(clock.now())
	for _, in := range []struct {
		party  string
		report PositionReport
	}{{"coalition", c}, {"russia", r}} {
		if _, _, err := s.IngestPositions(ctx, party.Principal{Party: in.party}, []PositionReport{in.report}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		b.Fatal(err)
	}
	const history, perTx = 1_000_000, 20_000
	for lo := 0; lo < history; lo += perTx {
		err := st.Update(ctx, func(tx store.Tx) error {
			for i := lo; i < lo+perTx; i++ {
				body := fmt.Appendf(nil, `{"id":"m%d"}`, i)
				if _, err := tx.AppendEvent(store.Event{Time: clock.now(), Kind: "message", Audience: []string{"coalition"}, Body: body}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		s, err := New(ctx, Config{Store: st, Now: clock.now})
		if err != nil {
			b.Fatal(err)
		}
		if n := len(s.Alerts(party.Principal{Operator: true})); n != 1 {
			b.Fatalf("the start took up %d alerts, want 1", n)
		}
		if err := s.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
