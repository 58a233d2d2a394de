package hotline

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
	"pgregory.net/rapid"

	_ "github.com/deconflict/deconflict/internal/testutil/racerapid" // fewer cases under -race
)

// readFor reads every event for party after id, in pages of size page, as
// a reconnecting SSE client does.
func (e *env) readFor(party string, after int64, page int) []store.Event {
	e.t.Helper()
	var out []store.Event
	for {
		var got []store.Event
		e.view(func(tx store.Tx) error {
			var err error
			got, err = store.EventsAfterFor(tx, party, after, page)
			return err
		})
		if len(got) == 0 {
			return out
		}
		out = append(out, got...)
		after = got[len(got)-1].ID
	}
}

// A recipient that goes offline and resumes after the last event id it saw
// gets every event it missed, in order, exactly once, and nothing meant
// only for others.
func TestOfflineRecipientGetsEverythingOnceInOrder(t *testing.T) {
	e := newEnv(t, "")
	now := t0
	var forBravo []int64 // ids of events whose audience holds bravo, as returned
	track := func(evs []store.Event) {
		for _, ev := range evs {
			if slices.Contains(ev.Audience, "bravo") {
				forBravo = append(forBravo, ev.ID)
			}
		}
	}
	step := func(i int) {
		now = now.Add(7 * time.Second)
		senders := []string{"alpha", "charlie", "delta"}
		from := senders[i%3]
		to := []string{"bravo"}
		if i%4 == 0 {
			to = []string{"delta"} // not for bravo
			if from == "delta" {
				to = []string{"alpha"}
			}
		}
		m, evs := e.post(from, NewMessage{To: to, Kind: KindNotice, Text: fmt.Sprintf("message %d", i)}, now)
		track(evs)
		if i%3 == 1 {
			_, evs, err := e.ack(m.ID, to[0], "", now.Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			track(evs)
		}
		if i%5 == 0 {
			_, evs := e.escalate(now)
			track(evs)
		}
	}

	for i := range 10 {
		step(i)
	}
	seen := e.readFor("bravo", 0, 4)
	lastSeen := seen[len(seen)-1].ID
	// bravo goes offline; the others carry on.
	for i := 10; i < 40; i++ {
		step(i)
	}
	_, evs := e.escalate(now.Add(time.Hour))
	track(evs)

	missed := e.readFor("bravo", lastSeen, 3)
	var got []int64
	for _, ev := range append(seen, missed...) {
		got = append(got, ev.ID)
		if !slices.Contains(ev.Audience, "bravo") {
			t.Fatalf("bravo received event %d meant for %v", ev.ID, ev.Audience)
		}
		var m Message
		if err := json.Unmarshal(ev.Body, &m); err != nil || !slices.Contains(m.Parties(), "bravo") {
			t.Fatalf("event %d: data %s (%v)", ev.ID, ev.Body, err)
		}
	}
	if !slices.Equal(got, forBravo) {
		t.Fatalf("bravo got events\n%v\nwant\n%v", got, forBravo)
	}
	if len(missed) == 0 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Fatalf("not in order or not once: %v", got)
	}
}

// For any exchange among four parties, each party lists exactly the
// messages it sent or received, in creation order.
func TestListIsExactlyOwnMessages(t *testing.T) {
	e := newEnv(t, "")
	parties := []string{"alpha", "bravo", "charlie", "delta"}
	now := t0
	rapid.Check(t, func(rt *rapid.T) {
		name := fmt.Sprintf("th-%d", now.UnixNano())
		var thread string
		var sent []Message
		n := rapid.IntRange(1, 8).Draw(rt, "n")
		e.update(func(tx store.Tx) error {
			// The first sender starts the thread; later ones are its
			// members (they sent or received a message in it).
			members := parties
			for i := range n {
				from := rapid.SampledFrom(members).Draw(rt, fmt.Sprintf("from%d", i))
				var others []string
				for _, p := range parties {
					if p != from {
						others = append(others, p)
					}
				}
				to := rapid.SliceOfNDistinct(rapid.SampledFrom(others), 1, 3, rapid.ID).Draw(rt, fmt.Sprintf("to%d", i))
				now = now.Add(time.Second)
				if i == 0 {
					thread = from + "/" + name
				}
				m, _, err := Post(tx, e.log, e.r, from, NewMessage{To: to, Kind: KindNotice, Thread: thread, Text: "x"}, now)
				if err != nil {
					return err
				}
				sent = append(sent, m)
				if i == 0 {
					members = nil
				}
				for _, p := range append([]string{from}, to...) {
					if !slices.Contains(members, p) {
						members = append(members, p)
					}
				}
			}
			return nil
		})
		for _, p := range parties {
			var want []string
			for _, m := range sent {
				if m.From == p || slices.Contains(m.To, p) {
					want = append(want, m.ID)
				}
			}
			var got []string
			e.view(func(tx store.Tx) error {
				ms, err := List(tx, p, thread, time.Time{}, 0, nil)
				for _, m := range ms {
					got = append(got, m.ID)
				}
				return err
			})
			if !slices.Equal(got, want) {
				rt.Fatalf("%s lists %v, want %v", p, got, want)
			}
		}
		// Acknowledged, so that the checks to come, on the same store,
		// stay within the bound on a party's open messages to another.
		e.update(func(tx store.Tx) error {
			for _, m := range sent {
				for _, p := range m.To {
					if _, _, err := Ack(tx, e.log, m.ID, p, "", now); err != nil {
						return err
					}
				}
			}
			return nil
		})
	})
}
