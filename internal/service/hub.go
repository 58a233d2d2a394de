package service

import (
	"slices"
	"sync"

	"github.com/deconflict/deconflict/internal/store"
)

// hub fans committed events out to live subscribers. It is fed only after
// the transaction that appended the events has committed, in id order (the
// service publishes under its write lock), so a subscriber sees increasing
// ids. A subscriber that cannot keep up is cut off rather than slowing the
// writers: its stream ends and the client resumes from the store with
// Last-Event-ID, losing nothing.
type hub struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	lastID int64
}

// Subscription is one live event stream of one party.
type Subscription struct {
	party    string
	operator bool
	c        chan store.Event
	h        *hub
	once     sync.Once
	start    int64
}

// Start is the id of the last event published before the subscription
// began: every later event reaches Events.
func (s *Subscription) Start() int64 { return s.start }

// Events delivers the events concerning the subscriber; it is closed when
// the subscription is cut off (too slow) or cancelled.
func (s *Subscription) Events() <-chan store.Event { return s.c }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.closeLocked()
}

func (s *Subscription) closeLocked() {
	s.once.Do(func() {
		delete(s.h.subs, s)
		close(s.c)
	})
}

func newHub(lastID int64) *hub {
	return &hub{subs: map[*Subscription]struct{}{}, lastID: lastID}
}

// subscriberBuffer is how many events a subscriber may lag behind before it
// is cut off.
const subscriberBuffer = 4096

func (h *hub) subscribe(party string, operator bool) *Subscription {
	s := &Subscription{party: party, operator: operator, c: make(chan store.Event, subscriberBuffer), h: h}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	s.start = h.lastID
	h.mu.Unlock()
	return s
}

// last is the id of the last event published.
func (h *hub) last() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastID
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

func (h *hub) publish(events []store.Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range events {
		if e.ID <= h.lastID {
			continue
		}
		h.lastID = e.ID
		for s := range h.subs {
			if !Concerns(e, s.party, s.operator) {
				continue
			}
			select {
			case s.c <- e:
			default:
				s.closeLocked()
			}
		}
	}
}

// closeAll ends every subscription (at shutdown).
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.closeLocked()
	}
}

// Concerns reports whether event e is for party: its audience names the
// party or is "*". The operator sees everything.
func Concerns(e store.Event, party string, operator bool) bool {
	if operator {
		return true
	}
	return slices.Contains(e.Audience, party) || slices.Contains(e.Audience, "*")
}
