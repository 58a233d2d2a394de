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

// Subscription is one live event stream of one party. Its queue grows
// only with what the subscriber has not taken yet (event headers; bodies
// are shared with every other subscriber), up to subscriberBuffer: an idle
// subscription costs a few hundred bytes, however many there are.
type Subscription struct {
	party    string
	operator bool
	h        *hub
	start    int64

	ready   chan struct{} // capacity 1: something was queued, or the end
	done    chan struct{} // closed when stopped
	mu      sync.Mutex
	queue   []store.Event
	closed  bool
	stopped bool
}

// Start is the id of the last event published before the subscription
// began: every later event concerning the subscriber is queued.
func (s *Subscription) Start() int64 { return s.start }

// Ready is signalled when events were queued or the subscription ended;
// then call Take.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Done is closed when the subscription is closed, or every stream ended
// (at shutdown): a stream blocked writing to a client that takes nothing
// gives up then, rather than waiting for it. A subscription cut off for
// lagging is not done: its stream writes what it holds first (the client
// resumes from there).
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Take appends the queued events to dst, in id order, and reports whether
// the subscription is still open: false once it was cut off (too slow) or
// closed, after which nothing more is queued.
func (s *Subscription) Take(dst []store.Event) ([]store.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dst = append(dst, s.queue...)
	if cap(s.queue) > 256 {
		s.queue = nil // a burst is over: give its memory back
	} else {
		s.queue = s.queue[:0]
	}
	return dst, !s.closed
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.closeLocked(true)
}

// closeLocked ends the subscription (h.mu held); with stop, Done too.
func (s *Subscription) closeLocked(stop bool) {
	delete(s.h.subs, s)
	s.mu.Lock()
	s.closed = true
	if stop && !s.stopped {
		s.stopped = true
		close(s.done)
	}
	s.mu.Unlock()
	s.signal()
}

func (s *Subscription) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// offer queues e, or cuts the subscription off when it lags by
// subscriberBuffer events (h.mu held).
func (s *Subscription) offer(e store.Event) {
	s.mu.Lock()
	full := len(s.queue) >= subscriberBuffer
	if !full && !s.closed {
		s.queue = append(s.queue, e)
	}
	s.mu.Unlock()
	if full {
		s.closeLocked(false)
		return
	}
	s.signal()
}

func newHub(lastID int64) *hub {
	return &hub{subs: map[*Subscription]struct{}{}, lastID: lastID}
}

// subscriberBuffer is how many events a subscriber may lag behind before it
// is cut off (its client resumes from the store).
const subscriberBuffer = 4096

func (h *hub) subscribe(party string, operator bool) *Subscription {
	s := &Subscription{party: party, operator: operator, ready: make(chan struct{}, 1), done: make(chan struct{}), h: h}
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
			if Concerns(e, s.party, s.operator) {
				s.offer(e)
			}
		}
	}
}

// closeAll ends every subscription (at shutdown).
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.closeLocked(true)
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
