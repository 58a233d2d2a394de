package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/pgtest"
)

// shownEvent is one event of a stream as its reader is shown it.
type shownEvent struct {
	id   int64
	kind string
	data json.RawMessage
}

// readEvents opens base's event stream with token after the cursor last
// ("" for none) and returns a channel of its events.
func readEvents(t *testing.T, base, token, last string) <-chan shownEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events after %q: %d", last, resp.StatusCode)
	}
	out := make(chan shownEvent, 1024)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		var cur shownEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.kind != "" {
					out <- cur
				}
				cur = shownEvent{}
			case strings.HasPrefix(line, "id: "):
				cur.id, _ = strconv.ParseInt(line[4:], 10, 64)
			case strings.HasPrefix(line, "event: "):
				cur.kind = line[7:]
			case strings.HasPrefix(line, "data: "):
				var env struct {
					ID   int64           `json:"id"`
					Data json.RawMessage `json:"data"`
				}
				if json.Unmarshal([]byte(line[6:]), &env) == nil && env.ID != cur.id {
					cur.kind = "mismatch: data id " + strconv.FormatInt(env.ID, 10)
				}
				cur.data = env.Data
			}
		}
	}()
	return out
}

// take reads n events; the limit only guards against a hang.
func take(t *testing.T, evs <-chan shownEvent, n int, what string) []shownEvent {
	t.Helper()
	out := make([]shownEvent, 0, n)
	for len(out) < n {
		select {
		case ev, ok := <-evs:
			if !ok {
				t.Fatalf("%s: the stream ended after %d of %d events", what, len(out), n)
			}
			out = append(out, ev)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: %d of %d events within 30 s", what, len(out), n)
		}
	}
	return out
}

// TestEventIDsOnEveryReplica: two replicas on one PostgreSQL, writes
// through both, russia far busier than coalition. coalition's stream on
// replica b shows its events as 1, 2, 3... without gaps (the global ids
// told it how many messages russia exchanged meanwhile); resumed on
// replica a with the last id it got, it brings the rest, none lost, none
// twice, numbered on: each party's numbers are the store's, the same on
// every replica.
func TestEventIDsOnEveryReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two replicas on PostgreSQL")
	}
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	dir := t.TempDir()
	st := openPostgres(t, url)
	bases := []string{started(t, openPostgres(t, url), dir, nil), started(t, openPostgres(t, url), dir, nil)}
	tokens := map[string]string{}
	for _, p := range []string{"coalition", "russia", "ally"} {
		tok, err := service.AddParty(ctx, st, "operator", p, false, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tokens[p] = tok
	}
	post := func(base, text string, to ...string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"to": to, "kind": "notice", "text": text})
		req, _ := http.NewRequest("POST", base+"/v1/hotline/messages", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokens["russia"])
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("posting %q: %d", text, resp.StatusCode)
		}
	}
	onB := readEvents(t, bases[1], tokens["coalition"], "")
	const rounds = 8
	for round := range rounds {
		for i := range 4 {
			post(bases[(round+i)%2], fmt.Sprintf("busy %d.%d", round, i), "ally")
		}
		post(bases[round%2], fmt.Sprintf("round %d", round), "coalition")
	}
	var want []store.Event
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		want, err = store.EventsAfterFor(tx, "coalition", 0, 1000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != rounds {
		t.Fatalf("coalition has %d events, want %d", len(want), rounds)
	}
	check := func(got []shownEvent, from int, what string) {
		t.Helper()
		for i, ev := range got {
			w := want[from+i]
			if ev.id != int64(from+i+1) || ev.kind != w.Kind || !bytes.Equal(ev.data, w.Body) {
				t.Fatalf("%s: event %d is %d %s %s, want %d %s %s", what, i, ev.id, ev.kind, ev.data, from+i+1, w.Kind, w.Body)
			}
		}
	}
	half := take(t, onB, rounds/2, "coalition on replica b")
	check(half, 0, "coalition on replica b")
	onA := readEvents(t, bases[0], tokens["coalition"], strconv.FormatInt(half[len(half)-1].id, 10))
	check(take(t, onA, rounds-rounds/2, "coalition resumed on replica a"), rounds/2, "coalition resumed on replica a")
	// The rest reached replica b's stream too, numbered alike.
	check(take(t, onB, rounds-rounds/2, "coalition on replica b, the rest"), rounds/2, "coalition on replica b, the rest")
	// russia, resumed on b after its 10th event, from the start on a:
	// the same numbers.
	var russia []store.Event
	err = st.View(ctx, func(tx store.Tx) error {
		var err error
		russia, err = store.EventsAfterFor(tx, "russia", 0, 1000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	fromA := take(t, readEvents(t, bases[0], tokens["russia"], ""), len(russia), "russia on replica a")
	fromB := take(t, readEvents(t, bases[1], tokens["russia"], "10"), len(russia)-10, "russia resumed on replica b")
	for i, ev := range fromB {
		if a := fromA[10+i]; ev.id != a.id || ev.id != int64(11+i) || !bytes.Equal(ev.data, a.data) {
			t.Fatalf("russia's event %d: %d %s on replica b, %d %s on replica a", 11+i, ev.id, ev.data, a.id, a.data)
		}
	}
}
