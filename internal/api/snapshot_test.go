package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/hotline"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
)

// appendAlertHistory writes n events straight to the store, alerts of
// coalition and russia raised and cleared long ago (the history of a busy
// service), and has the service deliver them, as another replica's would be.
func appendAlertHistory(t *testing.T, e *env, n int) {
	t.Helper()
	at := time.Now().Add(-72 * time.Hour).UTC()
	const perTx = 5000
	for done := 0; done < n; {
		err := e.st.Update(context.Background(), func(tx store.Tx) error {
			for i := 0; i < perTx && done+i < n; i++ {
				state := alert.StateRaised
				if i%2 == 1 {
					state = alert.StateCleared
				}
				a := alert.Alert{ID: fmt.Sprintf("old-%d", (done+i)/2), Kind: alert.KindConflict, Level: "advisory", State: state, Time: at,
					Aircraft: []alert.Aircraft{{Party: "coalition", Aircraft: "US-9", Callsign: "US-9", Class: "manned"}, {Party: "russia", Aircraft: "RF-9", Callsign: "RF-9", Class: "manned"}}}
				body, err := json.Marshal(a)
				if err != nil {
					return err
				}
				if _, err := tx.AppendEvent(store.Event{Time: at, Kind: "alert_" + state, Audience: []string{"coalition", "russia"}, Body: body}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		done = min(n, done+perTx)
	}
	if err := e.svc.CatchUpEvents(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// wireSnapshot is the data of a snapshot event, as far as the tests read it.
type wireSnapshot struct {
	Alerts []struct {
		ID         string
		Aircraft   []struct{ Party string }
		Resolution *wireResolution
	}
	AlertsAfter int64 `json:"alerts_after"`
	Messages    []struct {
		ID, From, Text, State string
		To                    []string
	}
	MessagesAfter     int64 `json:"messages_after"`
	MessagesTruncated bool  `json:"messages_truncated"`
}

// TestEventsSnapshotStartsAtThePresent: a console starts its stream with
// ?snapshot=1 on a party with a long history (50,000 events). The stream
// opens with the state (the alert raised before the history, with the
// party's own part of its resolution; its hotline items) and goes on with
// what happens next, reading a few kilobytes instead of the history. An
// event committed while the stream starts (after its subscription, before
// the snapshot is read, by this process or by another writer of the store;
// after the snapshot, before the backlog is) reaches
// the client once, in the snapshot or as an event, never both, never
// neither. A third party's snapshot holds nothing of the two's alert or
// messages. (Without ?snapshot=1 the stream replayed the 50,000 events
// first.)
func TestEventsSnapshotStartsAtThePresent(t *testing.T) {
	e := newEnv(t, Options{})
	var bystander struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &bystander)

	watch := e.openStreamPath(e.tokens["coalition"], "/v1/events?live=1", "")
	now := time.Now()
	e.mustDo("POST", "/v1/positions", e.tokens["russia"], map[string]any{"reports": []any{report("RF-1", 35.0, 36.1, 6000, -200, now)}}, 202, nil)
	e.mustDo("POST", "/v1/positions", e.tokens["coalition"], map[string]any{"reports": []any{report("US-1", 35.0, 35.88, 6000, 200, now)}}, 202, nil)
	var raised struct{ ID string }
	for raised.ID == "" {
		if ev := watch.next(t); ev.Kind == "alert_raised" {
			_ = json.Unmarshal(ev.Data.Data, &raised)
		}
	}
	watch.close()
	var note struct{ ID string }
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "before the history"}, 201, &note)
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"bystander"}, "kind": "notice", "text": "russia to bystander"}, 201, nil)
	const history = 50_000
	appendAlertHistory(t, e, history)

	// A message committed at each step of the start of the next stream.
	var armed atomic.Bool
	var mu sync.Mutex
	duringStart := map[string]string{} // step -> message id
	e.handler.startHook = func(step string) {
		if !armed.Load() {
			return
		}
		code, b, _ := e.do("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "at " + step})
		var m struct{ ID string }
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		defer mu.Unlock()
		if code == 201 {
			duringStart[step] = m.ID
		}
		if step != "subscribed" {
			return
		}
		// Another writer of the store (a replica, a command-line tool):
		// its event is in the store, not yet delivered by this process,
		// so that the snapshot's hotline part is ahead of its alerts'.
		err := e.st.Update(context.Background(), func(tx store.Tx) error {
			m, _, err := hotline.Post(tx, nil, e.svc.Rules(), "coalition", hotline.NewMessage{To: []string{"russia"}, Kind: "notice", Text: "another writer"}, time.Now())
			duringStart["another writer"] = m.ID
			return err
		})
		if err != nil {
			delete(duringStart, "another writer")
		}
	}
	armed.Store(true)
	began := time.Now()
	s := e.openStreamPath(e.tokens["coalition"], "/v1/events?snapshot=1", "")
	first := s.next(t)
	armed.Store(false)
	if first.Kind != "snapshot" || first.Data.ID != 0 {
		t.Fatalf("the stream opened with %s (data id %d), not a snapshot", first.Kind, first.Data.ID)
	}
	t.Logf("snapshot after %v, %d bytes", time.Since(began), s.bytesRead.Load())
	var snap wireSnapshot
	if err := json.Unmarshal(first.Data.Data, &snap); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(duringStart) != 3 {
		t.Fatalf("messages posted during the start: %v", duringStart)
	}
	mu.Unlock()
	if snap.AlertsAfter < history || snap.MessagesAfter < history {
		t.Fatalf("snapshot as of alerts %d, messages %d: before the history", snap.AlertsAfter, snap.MessagesAfter)
	}
	if len(snap.Alerts) != 1 || snap.Alerts[0].ID != raised.ID {
		t.Fatalf("snapshot alerts %+v, want the open alert %s only", snap.Alerts, raised.ID)
	}
	checkOwnResolution(t, "coalition", snap.Alerts[0].Resolution)

	// Each message once: in the snapshot, or as an event after it.
	seen := map[string]int{}
	for _, m := range snap.Messages {
		seen[m.ID]++
		if m.From != "coalition" && !slices.Contains(m.To, "coalition") {
			t.Errorf("coalition's snapshot holds message %s of %s to %v", m.ID, m.From, m.To)
		}
	}
	var live struct{ ID string }
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"coalition"}, "kind": "notice", "text": "live"}, 201, &live)
	for {
		ev := s.next(t)
		if ev.ID <= min(snap.AlertsAfter, snap.MessagesAfter) {
			t.Fatalf("event %d (%s) after a snapshot as of %d, %d", ev.ID, ev.Kind, snap.AlertsAfter, snap.MessagesAfter)
		}
		if ev.Kind != "message" {
			continue
		}
		var m struct{ ID string }
		_ = json.Unmarshal(ev.Data.Data, &m)
		seen[m.ID]++
		if m.ID == live.ID {
			break
		}
	}
	for what, id := range map[string]string{"the message before the history": note.ID, "the message at subscription": duringStart["subscribed"], "the message after the snapshot": duringStart["snapshot"], "the message of another writer": duringStart["another writer"], "the live message": live.ID} {
		if seen[id] != 1 {
			t.Errorf("%s (%s) reached the client %d times", what, id, seen[id])
		}
	}
	if n := s.bytesRead.Load(); n > 64<<10 {
		t.Errorf("the start read %d bytes before the live event: the history's size", n)
	}
	t.Logf("live after %v, %d bytes", time.Since(began), s.bytesRead.Load())

	// A short reconnect resumes from its last event, without a snapshot;
	// one from a cursor far behind gets a snapshot instead of the backlog.
	short := e.openStreamPath(e.tokens["coalition"], "/v1/events?snapshot=1", strconv.FormatInt(snap.MessagesAfter, 10))
	if ev := short.next(t); ev.Kind == "snapshot" || ev.ID <= snap.MessagesAfter {
		t.Errorf("a stream resumed a few events back opened with %s %d", ev.Kind, ev.ID)
	}
	short.close()
	far := e.openStreamPath(e.tokens["coalition"], "/v1/events?snapshot=1", "1")
	if ev := far.next(t); ev.Kind != "snapshot" {
		t.Errorf("a stream resumed %d events back opened with %s %d, not a snapshot", history, ev.Kind, ev.ID)
	}
	far.close()

	// The bystander sees its own message, nothing of the others'.
	b := e.openStreamPath(bystander.Token, "/v1/events?snapshot=1", "")
	ev := b.next(t)
	var bs wireSnapshot
	if err := json.Unmarshal(ev.Data.Data, &bs); err != nil || ev.Kind != "snapshot" {
		t.Fatalf("bystander: %s %v", ev.Kind, err)
	}
	if len(bs.Alerts) != 0 || len(bs.Messages) != 1 || bs.Messages[0].Text != "russia to bystander" {
		t.Fatalf("bystander's snapshot: %+v", bs)
	}
}

// TestEventsSnapshotParameterRefused: ?snapshot= other than 1 or true, or
// with ?live=1, is a 400 naming the field, and opens no stream.
func TestEventsSnapshotParameterRefused(t *testing.T) {
	e := newEnv(t, Options{})
	for path, field := range map[string]string{"/v1/events?snapshot=yes": "snapshot", "/v1/events?snapshot=1&live=1": "live"} {
		code, b, _ := e.do("GET", path, e.tokens["coalition"], nil)
		var p struct{ Field string }
		_ = json.Unmarshal(b, &p)
		if code != 400 || p.Field != field {
			t.Errorf("%s: %d %s, want 400 naming %s", path, code, b, field)
		}
	}
}

// TestEventsSnapshotListsTheNewestMessages: a party with more hotline items
// in the last 24 hours than a list holds gets the newest in its snapshot
// (the list is oldest first: it gave the oldest of the day, and not the
// item just posted), read in one ordered read of its newest items: the
// snapshot looked for the longest window holding fewer than a list by
// halving it, up to 9 reads of 5,000 items each, and held fewer than the
// newest 5,000 (the window to within 1/256 of a day).
func TestEventsSnapshotListsTheNewestMessages(t *testing.T) {
	st := &readCountingStore{Store: openTestStore(t)}
	e := newEnvOn(t, st, Options{})
	now := time.Now().UTC()
	const n = hotline.MaxListLimit + 1
	err := e.st.Update(context.Background(), func(tx store.Tx) error {
		for i := range n {
			created := now.Add(-23 * time.Hour).Add(time.Duration(i) * 15 * time.Second)
			text := "old"
			if i == n-1 {
				text = "newest"
			}
			body, _ := json.Marshal(map[string]any{"text": text, "ack_deadline": created.Add(time.Minute), "escalation_deadline": created.Add(2 * time.Minute)})
			if err := tx.PutMessage(store.Message{ID: fmt.Sprintf("m-%05d", i), From: "russia", To: []string{"coalition"}, Thread: fmt.Sprintf("t-%05d", i), Kind: "notice",
				State: hotline.StateAcknowledged, Created: created, Deadline: created.Add(time.Minute), Body: body}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st.messagesRead.Store(0)
	s := e.openStreamPath(e.tokens["coalition"], "/v1/events?snapshot=1", "")
	ev := s.next(t)
	var snap wireSnapshot
	if err := json.Unmarshal(ev.Data.Data, &snap); err != nil || ev.Kind != "snapshot" {
		t.Fatalf("%s: %v", ev.Kind, err)
	}
	if len(snap.Messages) == 0 || snap.Messages[len(snap.Messages)-1].Text != "newest" {
		t.Fatalf("the snapshot's %d messages end with %+v, not the newest", len(snap.Messages), snap.Messages[len(snap.Messages)-1])
	}
	// The newest hotline.MaxListLimit, oldest first: all but the first.
	if len(snap.Messages) != hotline.MaxListLimit || snap.Messages[0].ID != "m-00001" {
		t.Errorf("the snapshot holds %d messages from %s, want the newest %d, from m-00001", len(snap.Messages), snap.Messages[0].ID, hotline.MaxListLimit)
	}
	for i := 1; i < len(snap.Messages); i++ {
		if snap.Messages[i-1].ID >= snap.Messages[i].ID {
			t.Fatalf("the snapshot's messages are not oldest first: %s before %s", snap.Messages[i-1].ID, snap.Messages[i].ID)
		}
	}
	if n := st.messagesRead.Load(); n > hotline.MaxListLimit {
		t.Errorf("%d messages read by the snapshot, want at most the %d it lists", n, hotline.MaxListLimit)
	}
}

// TestEventsSnapshotKeepsOpenItemsHoweverOld: an item still waiting for an
// acknowledgment is in the snapshot however long ago it was posted; one
// acknowledged, older than the snapshot's window, is not.
func TestEventsSnapshotKeepsOpenItemsHoweverOld(t *testing.T) {
	e := newEnv(t, Options{})
	var open, done struct{ ID string }
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "waiting"}, 201, &open)
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "acknowledged"}, 201, &done)
	e.mustDo("POST", "/v1/hotline/messages/"+done.ID+"/ack", e.tokens["russia"], nil, 200, nil)
	e.advance(service.SnapshotMessagesWindow + time.Hour)
	s := e.openStreamPath(e.tokens["coalition"], "/v1/events?snapshot=1", "")
	ev := s.next(t)
	var snap wireSnapshot
	if err := json.Unmarshal(ev.Data.Data, &snap); err != nil || ev.Kind != "snapshot" {
		t.Fatalf("%s: %v", ev.Kind, err)
	}
	var ids []string
	for _, m := range snap.Messages {
		ids = append(ids, m.ID)
	}
	if !slices.Equal(ids, []string{open.ID}) {
		t.Fatalf("snapshot messages %v, want the waiting one %s only", ids, open.ID)
	}
}

// TestEventsSnapshotResumedAfterItself: a quiet party's console cut off
// right after the snapshot (before any event after it) resumes from the
// snapshot's id: line, with no second snapshot, no event the snapshot
// holds sent again and none after it missed; so does a party with no
// event at all before the snapshot (id 0), and the operator. (The
// snapshot had no id: line: the console reconnected without a cursor and
// was sent a new snapshot every time.)
func TestEventsSnapshotResumedAfterItself(t *testing.T) {
	e := newEnv(t, Options{})
	var quiet, silent struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "quiet"}, 201, &quiet)
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "silent"}, 201, &silent)
	var before struct{ ID string }
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{"coalition", "quiet"}, "kind": "notice", "text": "before the snapshot"}, 201, &before)
	// Events of coalition and russia, none of quiet's or silent's: their
	// snapshot's id is that of their last event, far behind.
	appendAlertHistory(t, e, 50)

	for _, c := range []struct {
		who, token, to string
		p              party.Principal
	}{
		{"coalition", e.tokens["coalition"], "coalition", party.Principal{Party: "coalition"}},
		{"a quiet party", quiet.Token, "quiet", party.Principal{Party: "quiet"}},
		{"a party with no event", silent.Token, "silent", party.Principal{Party: "silent"}},
		{"the operator", e.operator, "coalition", party.Principal{Party: party.OperatorName, Operator: true}},
	} {
		s := e.openStreamPath(c.token, "/v1/events?snapshot=1", "")
		snap := s.next(t)
		s.close()
		if snap.Kind != "snapshot" || !snap.HasID {
			t.Fatalf("%s: the stream opened with %s, id: line %v; want a snapshot with one", c.who, snap.Kind, snap.HasID)
		}
		var ws wireSnapshot
		if err := json.Unmarshal(snap.Data.Data, &ws); err != nil {
			t.Fatal(err)
		}
		if c.to != "silent" && !c.p.Operator && (len(ws.Messages) != 1 || ws.Messages[0].ID != before.ID) {
			t.Fatalf("%s: the snapshot's messages %+v, want %s", c.who, ws.Messages, before.ID)
		}

		// Reconnecting at once, before anything of its own happened: the
		// id is accepted (not refused as beyond its events).
		if r, code := e.tryStreamPath(c.token, "/v1/events?snapshot=1", strconv.FormatInt(snap.ID, 10)); r == nil {
			t.Fatalf("%s: resuming after the snapshot's id %d at once: %d", c.who, snap.ID, code)
		} else {
			r.close()
		}
		// While it is away, an event it is sent; then it reconnects
		// with the snapshot's id.
		e.mustDo("POST", "/v1/hotline/messages", e.tokens["russia"], map[string]any{"to": []string{c.to}, "kind": "notice", "text": "while away"}, 201, nil)
		r := e.openStreamPath(c.token, "/v1/events?snapshot=1", strconv.FormatInt(snap.ID, 10))
		ev := r.next(t)
		r.close()
		if ev.Kind == "snapshot" {
			t.Fatalf("%s: the stream resumed after the snapshot (id %d) opened with another snapshot", c.who, snap.ID)
		}
		if ev.ID <= max(ws.AlertsAfter, ws.MessagesAfter) {
			t.Errorf("%s: the resumed stream's first event %s %d, which the snapshot (as of %d, %d) holds", c.who, ev.Kind, ev.ID, ws.AlertsAfter, ws.MessagesAfter)
		}
		// It is the first after the snapshot: none missed (the ids a
		// principal is shown have no gaps).
		if ev.ID != max(ws.AlertsAfter, ws.MessagesAfter)+1 {
			t.Errorf("%s: the resumed stream's first event %s %d, want %d, the first after the snapshot (as of %d, %d)", c.who, ev.Kind, ev.ID, max(ws.AlertsAfter, ws.MessagesAfter)+1, ws.AlertsAfter, ws.MessagesAfter)
		}
		at, err := e.svc.ResumeAfter(context.Background(), c.p, max(ws.AlertsAfter, ws.MessagesAfter))
		if err != nil {
			t.Fatal(err)
		}
		next, err := e.svc.EventsAfter(context.Background(), c.p, at, 1)
		if err != nil || len(next) != 1 || next[0].Kind != ev.Kind || !bytes.Equal(next[0].Body, ev.Data.Data) {
			t.Errorf("%s: the resumed stream's first event %s %d; the first after the snapshot %+v (%v)", c.who, ev.Kind, ev.ID, next, err)
		}
	}

	// A message of coalition's from another writer of the store, not yet
	// delivered by this process: the snapshot's hotline part holds it, its
	// alerts' part is before it, and the stream after the snapshot starts
	// before it. No id tells a resumed stream to leave it out and bring
	// what follows: the snapshot has no id: line.
	err := e.st.Update(context.Background(), func(tx store.Tx) error {
		_, _, err := hotline.Post(tx, nil, e.svc.Rules(), "russia", hotline.NewMessage{To: []string{"coalition"}, Kind: "notice", Text: "another writer"}, time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s := e.openStreamPath(e.tokens["coalition"], "/v1/events?snapshot=1", "")
	snap := s.next(t)
	s.close()
	var ws wireSnapshot
	if err := json.Unmarshal(snap.Data.Data, &ws); err != nil || snap.Kind != "snapshot" {
		t.Fatalf("the stream opened with %s (%v), not a snapshot", snap.Kind, err)
	}
	// (Unless this process delivered the message first: then the two
	// parts are of the same id, and the id: line resumes exactly.)
	if ws.AlertsAfter < ws.MessagesAfter && snap.HasID {
		t.Errorf("a snapshot as of alerts %d, messages %d, with coalition's message between, has the id: line %d", ws.AlertsAfter, ws.MessagesAfter, snap.ID)
	}
}

// TestEventsSnapshotHoldsEveryOpenItemOfTheParty: with other parties'
// items open, more than a snapshot carries and due before the caller's,
// the caller's snapshot holds each of its own items still open, a day
// old; with one more than it carries it says so, and the one left out
// reaches the stream with its next event. The operator's snapshot holds
// every party's items open or escalated: its console shows the
// escalations of before it started. (The snapshot read the open items of
// every party by deadline, as many as it carries, and kept the caller's;
// the operator's held none, and the events before it were left out.)
func TestEventsSnapshotHoldsEveryOpenItemOfTheParty(t *testing.T) {
	const carried = 3
	e := newEnvConfig(t, openTestStore(t), Options{}, func(c *service.Config) { c.SnapshotOpenMessages = carried })
	var bystander struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "bystander"}, 201, &bystander)
	post := func(from, to string) string {
		t.Helper()
		var m struct{ ID string }
		e.mustDo("POST", "/v1/hotline/messages", e.tokens[from], map[string]any{"to": []string{to}, "kind": "request", "text": "confirm"}, 201, &m)
		e.advance(time.Second)
		return m.ID
	}
	for range 3 * carried {
		post("russia", "bystander")
	}
	var own []string
	for range carried {
		own = append(own, post("russia", "coalition"))
	}
	left := post("coalition", "russia")
	e.advance(service.SnapshotMessagesWindow + time.Hour)

	snapshotOf := func(token string) (*stream, wireSnapshot) {
		t.Helper()
		s := e.openStreamPath(token, "/v1/events?snapshot=1", "")
		ev := s.next(t)
		var snap wireSnapshot
		if err := json.Unmarshal(ev.Data.Data, &snap); err != nil || ev.Kind != "snapshot" {
			t.Fatalf("%s: %v", ev.Kind, err)
		}
		return s, snap
	}
	ids := func(snap wireSnapshot) []string {
		var out []string
		for _, m := range snap.Messages {
			out = append(out, m.ID)
		}
		return out
	}
	s, snap := snapshotOf(e.tokens["coalition"])
	if got := ids(snap); !slices.Equal(got, own) || !snap.MessagesTruncated {
		t.Fatalf("coalition's snapshot holds %v (truncated %v), want its items due first %v, truncated", got, snap.MessagesTruncated, own)
	}
	e.mustDo("POST", "/v1/hotline/messages/"+left+"/ack", e.tokens["russia"], nil, 200, nil)
	for {
		ev := s.next(t)
		var m struct{ ID string }
		_ = json.Unmarshal(ev.Data.Data, &m)
		if ev.Kind == "ack" && m.ID == left {
			break
		}
	}
	s.close()
	s, snap = snapshotOf(e.tokens["coalition"])
	if got := ids(snap); !slices.Equal(got, own) || snap.MessagesTruncated {
		t.Fatalf("coalition's snapshot holds %v (truncated %v), want its open items %v", got, snap.MessagesTruncated, own)
	}
	s.close()

	// The operator, once every item open escalated: as many as a
	// snapshot carries, and it says there are more.
	e.svc.Tick(context.Background())
	_, snap = snapshotOf(e.operator)
	if len(snap.Messages) != carried || !snap.MessagesTruncated {
		t.Fatalf("the operator's snapshot holds %d items (truncated %v), want %d and truncated", len(snap.Messages), snap.MessagesTruncated, carried)
	}
	for _, m := range snap.Messages {
		if m.State != "escalated" {
			t.Errorf("the operator's snapshot holds %s %s, not escalated", m.ID, m.State)
		}
	}
}

// TestEventsSnapshotsHaveABudget: streams that open with a snapshot (each
// reads up to thousands of the party's items) are refused with 429 and
// Retry-After beyond the party's budget of them, although the party's
// request rate and its cap on open streams let them in (a stream opened
// and closed at once frees its place); a stream resumed from a near
// cursor, which takes no snapshot, is not refused, nor is another
// party's.
func TestEventsSnapshotsHaveABudget(t *testing.T) {
	e := newEnv(t, Options{SnapshotsPerSecond: 0.001, SnapshotsBurst: 2})
	var first sseEvent
	for range 2 {
		s := e.openStreamPath(e.tokens["coalition"], "/v1/events?snapshot=1", "")
		if first = s.next(t); first.Kind != "snapshot" {
			t.Fatalf("opened with %s", first.Kind)
		}
		s.close()
	}
	// Read only the status and headers: a stream let in never ends.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/events?snapshot=1", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["coalition"])
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		resp.Body.Close()
		t.Fatalf("a snapshot beyond the budget: %d, want 429", resp.StatusCode)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var p struct{ Type string }
	_ = json.Unmarshal(b, &p)
	if resp.Header.Get("Retry-After") == "" || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.HasSuffix(p.Type, "rate-limited") {
		t.Fatalf("a snapshot beyond the budget: Retry-After %q %s", resp.Header.Get("Retry-After"), b)
	}
	e.wantRefusals(budgetSnapshots, "coalition", 1)
	var m struct{ ID string }
	e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "after"}, 201, &m)
	resumed := e.openStreamPath(e.tokens["coalition"], "/v1/events?snapshot=1", "0")
	if ev := resumed.next(t); ev.Kind == "snapshot" {
		t.Fatalf("a stream resumed from a near cursor opened with a snapshot")
	}
	resumed.close()
	other := e.openStreamPath(e.tokens["russia"], "/v1/events?snapshot=1", "")
	if ev := other.next(t); ev.Kind != "snapshot" {
		t.Fatalf("russia's stream opened with %s", ev.Kind)
	}
	other.close()
}

// readCountingStore counts the events and the hotline messages its
// transactions read (bodies and all), whichever way they are read.
type readCountingStore struct {
	store.Store
	eventsRead, messagesRead atomic.Int64
}

func (c *readCountingStore) View(ctx context.Context, fn func(store.Tx) error) error {
	return c.Store.View(ctx, func(tx store.Tx) error { return fn(readCountingTx{tx, c}) })
}

func (c *readCountingStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	return c.Store.Update(ctx, func(tx store.Tx) error { return fn(readCountingTx{tx, c}) })
}

// readCountingTx passes the backend's audience index through (the
// optional roles of store.Tx), counting the events it returns.
type readCountingTx struct {
	store.Tx
	c *readCountingStore
}

func (t readCountingTx) EventsAfter(afterID int64, limit int) ([]store.Event, error) {
	evs, err := t.Tx.EventsAfter(afterID, limit)
	t.c.eventsRead.Add(int64(len(evs)))
	return evs, err
}

func (t readCountingTx) EventsAfterFor(party string, afterID int64, limit int) ([]store.Event, error) {
	evs, err := store.EventsAfterFor(t.Tx, party, afterID, limit)
	t.c.eventsRead.Add(int64(len(evs)))
	return evs, err
}

func (t readCountingTx) MessagesFor(party, thread string, since time.Time, limit int) ([]store.Message, error) {
	ms, err := t.Tx.MessagesFor(party, thread, since, limit)
	t.c.messagesRead.Add(int64(len(ms)))
	return ms, err
}

func (t readCountingTx) NewestMessagesFor(party string, since time.Time, limit int) ([]store.Message, error) {
	ms, err := t.Tx.NewestMessagesFor(party, since, limit)
	t.c.messagesRead.Add(int64(len(ms)))
	return ms, err
}

func (t readCountingTx) LastEventIDFor(party string, atOrBefore int64) (int64, error) {
	return store.LastEventIDFor(t.Tx, party, atOrBefore)
}

func (t readCountingTx) CountEventsAfterFor(party string, afterID int64, limit int) (int, error) {
	return store.CountEventsAfterFor(t.Tx, party, afterID, limit)
}

func (t readCountingTx) PartySeqAt(party string, id int64) (int64, error) {
	return store.PartySeqAt(t.Tx, party, id)
}

func (t readCountingTx) PartyEventAt(party string, seq int64) (int64, error) {
	return store.PartyEventAt(t.Tx, party, seq)
}

func (t readCountingTx) PartySeqBase() (int64, error) { return store.PartySeqBase(t.Tx) }

func (t readCountingTx) LegacyCursorMax() (int64, error) { return store.LegacyCursorMax(t.Tx) }

// TestEventsSnapshotJudgesTheBacklogWithoutReadingIt: a stream with
// ?snapshot=1 and a cursor far behind read up to snapshotBacklog+1 whole
// events of its backlog only to see that it was too long, and then sent
// the snapshot instead: 2,001 events and their bodies for each console
// coming back after a while. The backlog is counted from the audience
// index, and so is the cursor's own check (an event of the party's at or
// after it): no event is read to open such a stream, for a party nor for
// the operator, and a cursor a few events back still replays them.
func TestEventsSnapshotJudgesTheBacklogWithoutReadingIt(t *testing.T) {
	st := &readCountingStore{Store: openTestStore(t)}
	e := newEnvOn(t, st, Options{})
	appendAlertHistory(t, e, snapshotBacklog+500)
	last, err := e.svc.EventsAfter(context.Background(), party.Principal{Party: party.OperatorName, Operator: true}, 0, snapshotBacklog+1000)
	if err != nil {
		t.Fatal(err)
	}
	lastID := last[len(last)-1].ID
	for _, c := range []struct{ who, token string }{{"coalition", e.tokens["coalition"]}, {"the operator", e.operator}} {
		st.eventsRead.Store(0)
		far := e.openStreamPath(c.token, "/v1/events?snapshot=1", "1")
		if ev := far.next(t); ev.Kind != "snapshot" {
			t.Fatalf("%s: a stream resumed %d events back opened with %s %d, not a snapshot", c.who, snapshotBacklog+500, ev.Kind, ev.ID)
		}
		far.close()
		if n := st.eventsRead.Load(); n != 0 {
			t.Errorf("%s: %d events read to open a stream with a snapshot instead of its backlog, want none", c.who, n)
		}
		// A few events back: replayed, without a snapshot.
		short := e.openStreamPath(c.token, "/v1/events?snapshot=1", strconv.FormatInt(lastID-3, 10))
		if ev := short.next(t); ev.Kind == "snapshot" || ev.ID != lastID-2 {
			t.Errorf("%s: a stream resumed 3 events back opened with %s %d, want event %d", c.who, ev.Kind, ev.ID, lastID-2)
		}
		short.close()
	}
}
