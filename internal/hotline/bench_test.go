package hotline

import (
	"context"
	"errors"
	"fmt"
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

// errRollBack ends a benchmark's transaction without committing it, so that
// each iteration finds the store as it was filled.
var errRollBack = errors.New("benchmark: roll back")

// BenchmarkHistory measures the hotline's reads and sweeps on SQLite with
// a history of 1k and 100k acknowledged messages between alpha and bravo
// (ten to a thread) and ten open ones: a post into a new thread (which
// asks whether the sender is a member of it), a list of one thread of the
// history, the sender's open items and the escalation of the ten. Each
// runs in a transaction rolled back, commit excluded. Their cost must not
// grow with the history: a long-lived deployment has months of it.
func BenchmarkHistory(b *testing.B) {
	for _, history := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			e := newEnv(b, "")
			fillHistory(b, e, history)
			open := make([]string, 0, 10)
			e.update(func(tx store.Tx) error {
				for range 10 {
					m, _, err := Post(tx, e.log, e.r, "alpha", NewMessage{To: []string{"bravo"}, Kind: KindRequest, Text: "open"}, t0.Add(time.Duration(history)*time.Second))
					if err != nil {
						return err
					}
					open = append(open, m.ID)
				}
				return nil
			})
			rolledBack := func(b *testing.B, fn func(tx store.Tx) error) {
				err := e.st.Update(context.Background(), func(tx store.Tx) error {
					if err := fn(tx); err != nil {
						return err
					}
					return errRollBack
				})
				if !errors.Is(err, errRollBack) {
					b.Fatal(err)
				}
			}
			now := t0.Add(time.Duration(history)*time.Second + time.Hour)
			b.Run("PostNewThread", func(b *testing.B) {
				for b.Loop() {
					rolledBack(b, func(tx store.Tx) error {
						_, _, err := Post(tx, e.log, e.r, "alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: "new"}, now)
						return err
					})
				}
			})
			b.Run("ListThread", func(b *testing.B) {
				for b.Loop() {
					e.view(func(tx store.Tx) error {
						ms, err := List(tx, "alpha", historyThread(history/2), time.Time{}, 0, nil)
						if err == nil && len(ms) != 10 {
							b.Fatalf("listed %d of the thread, want 10", len(ms))
						}
						return err
					})
				}
			})
			b.Run("ListOpen", func(b *testing.B) {
				for b.Loop() {
					e.view(func(tx store.Tx) error {
						ms, _, err := ListOpen(tx, "alpha", 500, nil)
						if err == nil && len(ms) != len(open) {
							b.Fatalf("listed %d open, want %d", len(ms), len(open))
						}
						return err
					})
				}
			})
			b.Run("Escalate", func(b *testing.B) {
				for b.Loop() {
					rolledBack(b, func(tx store.Tx) error {
						ms, _, err := Escalate(tx, e.log, e.r, now, 0, nil)
						if err == nil && len(ms) != len(open) {
							b.Fatalf("escalated %d, want %d", len(ms), len(open))
						}
						return err
					})
				}
			})
		})
	}
}

// historyThread is the thread of the i-th message of fillHistory.
func historyThread(i int) string { return fmt.Sprintf("alpha/history-%d", i/10) }

// fillHistory stores n messages of alpha to bravo, one a second from t0,
// acknowledged, ten to a thread: stored as Post and Ack leave them, without
// their audit records and events, which the reads measured do not touch.
func fillHistory(b *testing.B, e *env, n int) {
	b.Helper()
	const perTx = 10_000
	for first := 0; first < n; first += perTx {
		e.update(func(tx store.Tx) error {
			for i := first; i < min(first+perTx, n); i++ {
				created := t0.Add(time.Duration(i) * time.Second)
				m := Message{ID: fmt.Sprintf("m-history-%d", i), From: "alpha", To: []string{"bravo"}, Thread: historyThread(i),
					Kind: KindNotice, Text: "history", Created: created, Deadline: created.Add(sec(e.r.AckDeadlineS)),
					EscalationDeadline: created.Add(sec(e.r.AckDeadlineS + e.r.EscalationDeadlineS)), State: StateAcknowledged}
				rec, err := m.record()
				if err != nil {
					return err
				}
				if err := tx.PutMessage(rec); err != nil {
					return err
				}
				if _, err := tx.PutAck(store.Ack{MessageID: m.ID, Party: "bravo", Time: created, Body: []byte(`{}`)}); err != nil {
					return err
				}
			}
			return nil
		})
	}
}
