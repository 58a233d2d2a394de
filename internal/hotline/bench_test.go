package hotline

import (
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// BenchmarkPostAndAck measures one message posted and acknowledged, each in
// its own transaction (audit record and event included), on SQLite.
func BenchmarkPostAndAck(b *testing.B) {
	e := newEnv(b, "")
	now := t0
	for b.Loop() {
		now = now.Add(time.Second)
		m, _ := e.post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: "benchmark"}, now)
		if _, _, err := e.ack(m.ID, "bravo", "", now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEscalate measures the escalation job over 500 overdue items.
func BenchmarkEscalate(b *testing.B) {
	e := newEnv(b, "")
	e.update(func(tx store.Tx) error {
		for range 500 {
			if _, _, err := Post(tx, e.log, e.r, "alpha", NewMessage{To: []string{"bravo", "charlie"}, Kind: KindNotice, Text: "x"}, t0); err != nil {
				return err
			}
		}
		return nil
	})
	now := t0.Add(time.Hour)
	for b.Loop() {
		now = now.Add(time.Hour)
		if ms, _ := e.escalate(now); len(ms) != 500 {
			b.Fatalf("escalated %d", len(ms))
		}
	}
}
