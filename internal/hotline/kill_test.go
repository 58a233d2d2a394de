package hotline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/audit"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/testutil/childproc"
)

const killEnv = "DECONFLICT_HOTLINE_KILL_DIR"

// TestKill9Child is the child of TestKill9: it posts and acknowledges
// messages on the SQLite store in the given directory until it is killed,
// printing each commit.
func TestKill9Child(t *testing.T) {
	dir := os.Getenv(killEnv)
	if dir == "" {
		t.Skip("run by TestKill9 only")
	}
	e := newEnv(t, dir)
	now := t0
	for i := 0; ; i++ {
		now = now.Add(time.Second)
		var m Message
		e.update(func(tx store.Tx) error {
			var err error
			m, _, err = Post(tx, e.log, e.r, "alpha", NewMessage{To: []string{"bravo", "charlie"}, Kind: KindRequest, Text: fmt.Sprintf("request %d", i)}, now)
			return err
		})
		fmt.Printf("posted %s\n", m.ID)
		e.update(func(tx store.Tx) error {
			_, _, err := Ack(tx, e.log, m.ID, "bravo", "ok", now)
			return err
		})
		fmt.Printf("acked %s\n", m.ID)
		if i%7 == 0 {
			e.update(func(tx store.Tx) error {
				_, _, err := Escalate(tx, e.log, e.r, now.Add(time.Hour), 0, nil)
				return err
			})
		}
	}
}

// TestKill9 kills a writer with SIGKILL in the middle of its work, then
// checks that every committed change has its audit record and events and
// every audit record its change, that nothing reported committed was lost,
// and that the chain verifies.
func TestKill9(t *testing.T) {
	if os.Getenv(killEnv) != "" {
		t.Skip("child")
	}
	dir := t.TempDir()
	e := newEnv(t, dir) // creates the parties
	cmd, out := childproc.Start(t, "TestKill9Child", killEnv+"="+dir)
	posted, acked := map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(acked) < 60 {
		if id, ok := strings.CutPrefix(sc.Text(), "posted "); ok {
			posted[id] = true
		}
		if id, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked[id] = true
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) < 60 {
		t.Fatalf("the child stopped early after %d acks", len(acked))
	}
	e.st.Close()

	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.View(context.Background(), func(tx store.Tx) error {
		msgs, err := List(tx, "alpha", "", time.Time{}, MaxListLimit, nil)
		if err != nil {
			return err
		}
		stored := map[string]Message{}
		for _, m := range msgs {
			stored[m.ID] = m
		}
		for id := range posted {
			if _, ok := stored[id]; !ok {
				return fmt.Errorf("message %s reported committed is lost", id)
			}
		}
		for id := range acked {
			if !stored[id].AckedBy("bravo") {
				return fmt.Errorf("ack of %s reported committed is lost", id)
			}
		}
		// Audit records against the state.
		recs, err := tx.AuditFrom(1, 1<<20)
		if err != nil {
			return err
		}
		postRecs, ackRecs, escRecs := map[string]int{}, map[string]int{}, 0
		for _, r := range recs {
			d, err := audit.Decode(r)
			if err != nil {
				return err
			}
			var c struct {
				ID    string `json:"id"`
				Party string `json:"party"`
			}
			if err := json.Unmarshal(d.Content, &c); err != nil {
				return err
			}
			switch r.Kind {
			case "message_posted":
				postRecs[c.ID]++
			case "message_acked":
				ackRecs[c.ID+"/"+c.Party]++
			case "message_escalated":
				escRecs++
			}
		}
		escalations := 0
		for id, m := range stored {
			if postRecs[id] != 1 {
				return fmt.Errorf("message %s has %d audit records", id, postRecs[id])
			}
			for _, a := range m.Acks {
				if ackRecs[id+"/"+a.Party] != 1 {
					return fmt.Errorf("ack of %s by %s has %d audit records", id, a.Party, ackRecs[id+"/"+a.Party])
				}
			}
			escalations += m.Escalations
		}
		if len(postRecs) != len(stored) || escRecs != escalations {
			return fmt.Errorf("%d message records for %d messages, %d escalation records for %d escalations", len(postRecs), len(stored), escRecs, escalations)
		}
		nAcks := 0
		for _, m := range stored {
			nAcks += len(m.Acks)
		}
		if len(ackRecs) != nAcks {
			return fmt.Errorf("%d ack records for %d acks", len(ackRecs), nAcks)
		}
		// Events against the state: one per post, ack and escalation.
		evs, err := tx.EventsAfter(0, 1<<20)
		if err != nil {
			return err
		}
		kinds := map[string]int{}
		for _, ev := range evs {
			kinds[ev.Kind]++
		}
		if kinds[EventMessage] != len(stored) || kinds[EventAck] != nAcks || kinds[EventEscalated] != escalations {
			return fmt.Errorf("events %v for %d messages, %d acks, %d escalations", kinds, len(stored), nAcks, escalations)
		}
		var exp bytes.Buffer
		lg := audit.NewLog(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)), 10)
		if err := lg.Export(tx, &exp, "", 1, t0); err != nil {
			return err
		}
		_, err = audit.Verify(&exp, lg.PublicKey())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
