package api

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
)

// partyEvents returns the stored events concerning p, in id order.
func partyEvents(t *testing.T, e *env, p party.Principal) []store.Event {
	t.Helper()
	evs, err := e.svc.EventsAfter(context.Background(), p, 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// checkShown fails unless got, events read from a stream, are want in
// order, shown under the ids firstID, firstID+1, ... (the id: line and the
// data's id alike).
func checkShown(t *testing.T, who string, got []sseEvent, want []store.Event, firstID int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", who, len(got), len(want))
	}
	for i, ev := range got {
		id := firstID + int64(i)
		if !ev.HasID || ev.ID != id || ev.Data.ID != id {
			t.Fatalf("%s: event %d of %d shown as %d (data %d), want %d: ids %v", who, i+1, len(got), ev.ID, ev.Data.ID, id, shownIDs(got))
		}
		if ev.Kind != want[i].Kind || !bytes.Equal(ev.Data.Data, want[i].Body) {
			t.Fatalf("%s: event %d is %s %s, want %s %s", who, id, ev.Kind, ev.Data.Data, want[i].Kind, want[i].Body)
		}
	}
}

func shownIDs(evs []sseEvent) []int64 {
	out := make([]int64, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// noticeBody is the data of a message event of a notice with text.
func noticeBody(text string) []byte {
	return fmt.Appendf(nil, `{"id":"m-%s","from":"deconflict","to":[],"kind":"notice","text":%q,"created":"2026-12-01T00:00:00Z","state":"acknowledged","acks":[]}`, strings.ReplaceAll(text, " ", "-"), text)
}

// readN reads n events of s.
func readN(t *testing.T, s *stream, n int) []sseEvent {
	t.Helper()
	out := make([]sseEvent, n)
	for i := range out {
		out[i] = s.next(t)
	}
	return out
}

// TestEventIDsAreEachPartysOwn: the event ids a party is shown are its own
// numbers of its events, 1, 2, 3... without gaps, however many events
// another party gets meanwhile (here russia, busy on the hotline with an
// ally, and coalition hearing of russia once a round). The ids were the
// store's global ones: the gaps between coalition's told it how many
// messages russia exchanged. A stream resumed with Last-Event-ID (or
// ?after=) at any of them brings exactly the events after it, none lost,
// none twice; one beyond the party's last is refused; the snapshot's ids
// are the party's own too. The operator, sent every event, is shown the
// global ids.
func TestEventIDsAreEachPartysOwn(t *testing.T) {
	e := newEnv(t, Options{})
	var ally struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "ally"}, http.StatusCreated, &ally)
	coalition := party.Principal{Party: "coalition"}
	russia := party.Principal{Party: "russia"}
	operator := party.Principal{Party: party.OperatorName, Operator: true}
	before := map[string]int{
		"coalition": len(partyEvents(t, e, coalition)),
		"russia":    len(partyEvents(t, e, russia)),
		"operator":  len(partyEvents(t, e, operator)),
	}
	live := map[string]*stream{
		"coalition": e.openStream(e.tokens["coalition"], ""),
		"russia":    e.openStream(e.tokens["russia"], ""),
		"operator":  e.openStream(e.operator, ""),
	}
	for round := range 6 {
		for i := range 5 {
			e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"ally"}, "kind": "notice", "text": fmt.Sprintf("busy %d.%d", round, i)}, http.StatusCreated, nil)
		}
		e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"coalition"}, "kind": "notice", "text": fmt.Sprintf("round %d", round)}, http.StatusCreated, nil)
		if round%2 == 1 {
			// An event to everyone, from another writer of the store.
			err := e.st.Update(context.Background(), func(tx store.Tx) error {
				_, err := tx.AppendEvent(store.Event{Time: time.Now(), Kind: "message", Audience: []string{"*"}, Body: noticeBody(fmt.Sprintf("to everyone %d", round))})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.svc.CatchUpEvents(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string][]store.Event{
		"coalition": partyEvents(t, e, coalition),
		"russia":    partyEvents(t, e, russia),
		"operator":  partyEvents(t, e, operator),
	}
	if n := len(want["coalition"]); n != before["coalition"]+9 {
		t.Fatalf("coalition has %d events, want %d", n, before["coalition"]+9)
	}
	for who, s := range live {
		got := readN(t, s, len(want[who]))
		// The first is numbered 1, whatever came before in the store:
		// for the operator, the global id 1.
		checkShown(t, who+"'s live stream", got, want[who], 1)
		s.close()
	}
	if want["operator"][len(want["operator"])-1].ID != int64(len(want["operator"])) {
		t.Fatalf("the operator's events end at id %d, not %d", want["operator"][len(want["operator"])-1].ID, len(want["operator"]))
	}

	// Resumed after each of its ids: the rest, exactly.
	for _, who := range []string{"coalition", "russia", "operator"} {
		token := e.tokens[who]
		if who == "operator" {
			token = e.operator
		}
		evs := want[who]
		for _, k := range []int{0, 1, len(evs) / 2, len(evs) - 1} {
			s := e.openStream(token, strconv.Itoa(k))
			checkShown(t, fmt.Sprintf("%s resumed after %d", who, k), readN(t, s, len(evs)-k), evs[k:], int64(k+1))
			s.close()
			s = e.openStreamPath(token, "/v1/events?after="+strconv.Itoa(k), "")
			checkShown(t, fmt.Sprintf("%s resumed with ?after=%d", who, k), readN(t, s, len(evs)-k), evs[k:], int64(k+1))
			s.close()
		}
		// At its last id: accepted, nothing to replay; then its next
		// event is the next id.
		s := e.openStream(token, strconv.Itoa(len(evs)))
		e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"coalition", "ally"}, "kind": "notice", "text": "after the resume of " + who}, http.StatusCreated, nil)
		if ev := s.next(t); ev.ID != int64(len(evs)+1) || ev.Kind != "message" {
			t.Errorf("%s resumed at its last id %d: next %s %d, want message %d", who, len(evs), ev.Kind, ev.ID, len(evs)+1)
		}
		s.close()
	}

	// Beyond the party's last event (its own count, not the store's):
	// refused, naming the cursor.
	n := len(partyEvents(t, e, coalition))
	status, body, _ := e.do("GET", "/v1/events?after="+strconv.Itoa(n+1), e.tokens["coalition"], nil)
	if status != http.StatusBadRequest || !bytes.Contains(body, []byte(`"field":"after"`)) {
		t.Errorf("a cursor one beyond coalition's %d events: %d %s, want 400 naming after", n, status, body)
	}
	if s, code := e.tryStreamPath(e.tokens["coalition"], "/v1/events", strconv.Itoa(n)); s == nil {
		t.Errorf("coalition's last id %d refused: %d", n, code)
	} else {
		s.close()
	}

	// The snapshot: as of the party's own last event, resumable there.
	s := e.openStreamPath(e.tokens["coalition"], "/v1/events?snapshot=1", "")
	snap := s.next(t)
	s.close()
	var ws wireSnapshot
	if err := json.Unmarshal(snap.Data.Data, &ws); err != nil {
		t.Fatal(err)
	}
	if ws.AlertsAfter != int64(n) || ws.MessagesAfter != int64(n) || !snap.HasID || snap.ID != int64(n) {
		t.Errorf("coalition's snapshot as of alerts %d, messages %d, id: %d (%v); want all %d, its own last", ws.AlertsAfter, ws.MessagesAfter, snap.ID, snap.HasID, n)
	}
}

// TestEventCursorFromBeforeTheUpgrade: a store written before each party's
// events were numbered (schema 12: global ids only) and migrated. A client
// that stayed connected over the upgrade holds a global id; resumed with
// it, its stream brings exactly the events after that id, none lost, none
// twice, and shows them under ids above every global id (the base, 2^40,
// plus the party's numbers), so that a client dropping the ids it has seen
// already drops none of them.
func TestEventCursorFromBeforeTheUpgrade(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := sqlite.MigrateTo(ctx, dir, 12); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	// Events as version 12 wrote them: coalition's few among russia's many.
	audiences := [][]string{{"russia"}, {"russia"}, {"coalition"}, {"russia"}, {"*"}, {"russia"}, {"russia"}, {"coalition", "russia"}, {"russia"}, {"coalition"}, {"russia"}}
	for i, aud := range audiences {
		id := i + 1
		audJSON := `["` + aud[0] + `"]`
		if len(aud) == 2 {
			audJSON = `["` + aud[0] + `","` + aud[1] + `"]`
		}
		stmts := []struct {
			q    string
			args []any
		}{
			{`UPDATE counters SET value = value + 1 WHERE name = 'event'`, nil},
			{`INSERT INTO events (id, time_ns, kind, audience, body) VALUES (?, ?, 'message', ?, ?)`, []any{id, time.Now().UnixNano(), audJSON, noticeBody(fmt.Sprintf("old %d", id))}},
		}
		for _, p := range aud {
			stmts = append(stmts, struct {
				q    string
				args []any
			}{`INSERT INTO event_audience (party, event_id) VALUES (?, ?)`, []any{p, id}})
		}
		for _, s := range stmts {
			if _, err := db.Exec(s.q, s.args...); err != nil {
				t.Fatal(err)
			}
		}
	}
	db.Close()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := newEnvOn(t, st, Options{})
	base := store.UpgradedSeqBase
	if e.svc.EventIDBase() != base {
		t.Fatalf("the base of the ids shown is %d, want %d", e.svc.EventIDBase(), base)
	}
	coalition := party.Principal{Party: "coalition"}
	for _, text := range []string{"after the upgrade", "later"} {
		e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"coalition"}, "kind": "notice", "text": text}, http.StatusCreated, nil)
	}
	evs := partyEvents(t, e, coalition)

	// coalition held the global id of one of its events, or of none of
	// them (a snapshot's alerts_after, say).
	for _, old := range []int64{3, 5, 6, 8, 10, int64(len(audiences))} {
		var rest []store.Event
		var seq int64
		for _, ev := range evs {
			if ev.ID > old {
				rest = append(rest, ev)
			} else {
				seq++
			}
		}
		s := e.openStream(e.tokens["coalition"], strconv.FormatInt(old, 10))
		checkShown(t, fmt.Sprintf("coalition resumed at the global id %d of before", old), readN(t, s, len(rest)), rest, base+seq+1)
		s.close()
	}
	// A global id beyond the store's last at the upgrade (the first
	// message after it, as a replica of the older version still
	// streaming would have shown it, or any id a party tries) is no
	// cursor of before: refused as of another history, whether or not
	// coalition has an event after it, so that the answers tell it
	// nothing of where its events stand among the others'. A client
	// refused so starts again from a snapshot.
	afterUpgrade := evs[len(evs)-2].ID
	for _, probe := range []int64{afterUpgrade, afterUpgrade + 1, 1000, base} {
		if s, code := e.tryStreamPath(e.tokens["coalition"], "/v1/events", strconv.FormatInt(probe, 10)); s != nil {
			s.close()
			t.Errorf("the global id %d from after the upgrade: a stream, want 400", probe)
		} else if code != http.StatusBadRequest {
			t.Errorf("the global id %d from after the upgrade: %d, want 400", probe, code)
		}
	}
	// From the start: every event, numbered after the base.
	s := e.openStream(e.tokens["coalition"], "")
	checkShown(t, "coalition from the start", readN(t, s, len(evs)), evs, base+1)
	s.close()
	// Resumed at an id of after: as before.
	s = e.openStream(e.tokens["coalition"], strconv.FormatInt(base+2, 10))
	checkShown(t, "coalition resumed at its second event", readN(t, s, len(evs)-2), evs[2:], base+3)
	s.close()
}
