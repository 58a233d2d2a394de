package service

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/store"
)

// alertStory is the alerts open as the store's events tell them, kept up
// with every event this process delivers to its live streams: what a
// replica that does not lead detection answers of its alerts. Its own
// engine, fed the same reports in another order, names an alert after
// another report than the leader's did (or has not found it yet, or has
// cleared it already): answered from the engine, GET /v1/alerts listed an
// alert the party's event stream never carried, beside the one it did, and
// the resolution of the alert the stream announced was 404.
type alertStory struct {
	mu sync.Mutex
	// seeded is set once the store's open alerts were read (New): the
	// events delivered before are in that read.
	seeded bool
	after  int64             // the last event applied
	open   map[string][]byte // id -> the body of its last transition
	// parts holds, for each open alert, the last event of it each party
	// was sent (keyed by the party, or "*" for an event to everyone): a
	// transition with a resolution is one event per party, each with that
	// party's part only, and a snapshot gives a party its own.
	parts map[string]map[string]alertPart
}

// alertPart is one event of an alert, as its audience was sent it.
type alertPart struct {
	id   int64
	body []byte
}

// seed starts the story from the store's open alerts, read up to event
// after.
func (st *alertStory) seed(open map[string][]byte, parts map[string]map[string]alertPart, after int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.open = maps.Clone(open)
	if st.open == nil {
		st.open = map[string][]byte{}
	}
	st.parts = make(map[string]map[string]alertPart, len(parts))
	for id, ps := range parts {
		st.parts[id] = maps.Clone(ps)
	}
	st.after, st.seeded = after, true
}

// apply brings the story up to committed events, in id order; it returns
// the alerts they cleared (for the answers 410).
func (st *alertStory) apply(evs []store.Event) []alert.Alert {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.seeded {
		return nil
	}
	var cleared []alert.Alert
	for _, e := range evs {
		if e.ID <= st.after {
			continue
		}
		st.after = e.ID
		switch e.Kind {
		case alertEventKind(alert.StateRaised), alertEventKind(alert.StateUpdated):
			if id, ok := alertIDOf(e.Body); ok {
				st.open[id] = e.Body
				st.parts[id] = putPart(st.parts[id], e)
			}
		case alertEventKind(alert.StateCleared):
			var a alert.Alert
			if json.Unmarshal(e.Body, &a) == nil {
				delete(st.open, a.ID)
				delete(st.parts, a.ID)
				cleared = append(cleared, a)
			}
		}
	}
	return cleared
}

// putPart records event e of an alert as the last its audience was sent.
func putPart(ps map[string]alertPart, e store.Event) map[string]alertPart {
	if ps == nil {
		ps = make(map[string]alertPart, len(e.Audience))
	}
	for _, who := range e.Audience {
		ps[who] = alertPart{id: e.ID, body: e.Body}
	}
	return ps
}

// snapshot returns the open alerts concerning party (every one for the
// operator) as its own events told them, in id order: for each, the body
// of the last event of it the party was sent (its part of a resolution,
// never another party's), and the id of the last event applied, which the
// answer is exactly the state of.
func (st *alertStory) snapshot(party string, operator bool) (bodies []json.RawMessage, after int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ids := slices.Sorted(maps.Keys(st.parts))
	bodies = make([]json.RawMessage, 0, len(ids))
	for _, id := range ids {
		var last alertPart
		for who, p := range st.parts[id] {
			if (operator || who == party || who == "*") && p.id > last.id {
				last = p
			}
		}
		if last.id > 0 {
			bodies = append(bodies, json.RawMessage(last.body))
		}
	}
	return bodies, st.after
}

// alerts returns the open alerts, in id order.
func (st *alertStory) alerts() []alert.Alert {
	st.mu.Lock()
	bodies := make([][]byte, 0, len(st.open))
	for _, b := range st.open {
		bodies = append(bodies, b)
	}
	st.mu.Unlock()
	out := make([]alert.Alert, 0, len(bodies))
	for _, b := range bodies {
		var a alert.Alert
		if json.Unmarshal(b, &a) == nil {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(x, y alert.Alert) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// alert returns the open alert of that id.
func (st *alertStory) alert(id string) (alert.Alert, bool) {
	st.mu.Lock()
	b, ok := st.open[id]
	st.mu.Unlock()
	var a alert.Alert
	if !ok || json.Unmarshal(b, &a) != nil {
		return alert.Alert{}, false
	}
	return a, true
}

// alertIDOf reads the id of an alert event's body without decoding the
// rest (a resolution's bands): its first field, as alert.Alert and
// alertEvent write it, else found by decoding it all.
func alertIDOf(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err == nil && tok == json.Delim('{') {
		if key, err := dec.Token(); err == nil && key == "id" {
			if id, err := dec.Token(); err == nil {
				s, ok := id.(string)
				return s, ok
			}
		}
	}
	var a struct{ ID string }
	if json.Unmarshal(body, &a) != nil || a.ID == "" {
		return "", false
	}
	return a.ID, true
}
