package hotline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
	"github.com/deconflict/deconflict/internal/store/postgres"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// Two replicas on one PostgreSQL database post, acknowledge and escalate at
// the same time: the audit chain stays one gap-free chain that verifies,
// every change has exactly one record and one event, and each overdue item
// escalates once although both replicas run the escalation job.
func TestOnPostgresReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	url := pgtest.NewDatabase(t)
	open := func() store.Store {
		st, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	replicas := []*env{newEnvOn(t, open()), newEnvOn(t, open())}
	const perReplica = 15
	var wg sync.WaitGroup
	errs := make(chan error, len(replicas))
	for i, e := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perReplica {
				var m Message
				err := e.st.Update(context.Background(), func(tx store.Tx) error {
					var err error
					m, _, err = Post(tx, e.log, e.r, "alpha", NewMessage{To: []string{"bravo", "charlie"}, Kind: KindNotice, Text: fmt.Sprintf("replica %d message %d", i, j)}, t0)
					return err
				})
				if err == nil && j%2 == 0 {
					_, _, err = e.ack(m.ID, "bravo", "", t0.Add(time.Second))
				}
				if err != nil {
					errs <- err
					return
				}
			}
			// Both replicas run the escalation job at the same moment.
			err := e.st.Update(context.Background(), func(tx store.Tx) error {
				_, _, err := Escalate(tx, e.log, e.r, t0.Add(time.Hour), 0, nil)
				return err
			})
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	e := replicas[0]
	var msgs []Message
	e.view(func(tx store.Tx) error {
		var err error
		msgs, err = List(tx, "alpha", "", time.Time{}, 0, nil)
		return err
	})
	acks, escalations := 0, 0
	for _, m := range msgs {
		acks += len(m.Acks)
		escalations += m.Escalations
		if m.Escalations != 1 || m.State != StateEscalated {
			t.Errorf("message %s: %d escalations, state %s; want exactly 1, escalated", m.ID, m.Escalations, m.State)
		}
	}
	total := 2 * perReplica
	if wantAcks := 2 * ((perReplica + 1) / 2); len(msgs) != total || acks != wantAcks {
		t.Fatalf("%d messages and %d acks, want %d and %d", len(msgs), acks, total, wantAcks)
	}
	k := e.auditKinds()
	if k["message_posted"] != total || k["message_acked"] != acks || k["message_escalated"] != escalations {
		t.Fatalf("audit records %v for %d posts, %d acks, %d escalations", k, total, acks, escalations)
	}
	if got := e.lastEventID(); got != int64(total+acks+escalations) {
		t.Fatalf("%d events for %d changes", got, total+acks+escalations)
	}
	var out bytes.Buffer
	e.view(func(tx store.Tx) error { return e.log.Export(tx, &out, "", 1, t0.Add(2*time.Hour)) })
	sum, err := audit.Verify(&out, e.log.PublicKey())
	if err != nil || sum.Records != int64(total+acks+escalations) {
		t.Fatalf("chain: %+v, %v", sum, err)
	}
}

// Two replicas on one PostgreSQL database run the escalation job (Reschedule
// then Escalate, in one transaction) at the same moment after the clock
// that set the items' deadlines, a day ahead, was corrected: each item is
// brought back once (one audit record), escalates once at its interval
// after the correction, and not before.
func TestRescheduleOnPostgresReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	url := pgtest.NewDatabase(t)
	open := func() store.Store {
		st, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	replicas := []*env{newEnvOn(t, open()), newEnvOn(t, open())}
	ahead := t0.Add(24 * time.Hour)
	const items = 10
	for i := range items {
		replicas[i%2].post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: fmt.Sprintf("message %d", i)}, t0)
	}
	replicas[0].escalate(ahead) // escalated during the step: the next deadline a day ahead
	for i := range items / 2 {  // posted during the step
		replicas[i%2].post("alpha", NewMessage{To: []string{"bravo"}, Kind: KindNotice, Text: fmt.Sprintf("message %d", items+i)}, ahead)
	}
	job := func(now time.Time) {
		var wg sync.WaitGroup
		for _, e := range replicas {
			wg.Go(func() {
				err := e.st.Update(context.Background(), func(tx store.Tx) error {
					if _, _, err := Reschedule(tx, e.log, e.r, now, 0, nil); err != nil {
						return err
					}
					_, _, err := Escalate(tx, e.log, e.r, now, 0, nil)
					return err
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	e := replicas[0]
	count := func() (escalations int, msgs []Message) {
		e.view(func(tx store.Tx) error {
			var err error
			msgs, err = List(tx, "alpha", "", time.Time{}, 0, nil)
			return err
		})
		for _, m := range msgs {
			escalations += m.Escalations
		}
		return escalations, msgs
	}
	before, msgs := count()
	corrected := t0.Add(time.Hour)
	job(corrected)
	if k := e.auditKinds(); k["message_rescheduled"] != len(msgs) {
		t.Fatalf("%d rescheduled records for %d items ahead of the clock", k["message_rescheduled"], len(msgs))
	}
	if n, _ := count(); n != before {
		t.Fatalf("%d escalations at the correction, want %d", n, before)
	}
	job(corrected.Add(e.r.LongestDeadline()))
	n, msgs := count()
	if n != before+len(msgs) {
		t.Fatalf("%d escalations an interval after the correction, want %d (one per item)", n, before+len(msgs))
	}
	for _, m := range msgs {
		if !m.EscalationDeadline.Before(corrected.Add(2 * e.r.LongestDeadline()).Add(time.Second)) {
			t.Errorf("%s: next escalation deadline %v", m.ID, m.EscalationDeadline)
		}
	}
}
