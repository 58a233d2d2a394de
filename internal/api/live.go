package api

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/party"
)

// live tracks the authenticated requests in flight: how many event
// streams each party has open (capped, so that no party can exhaust the
// server's memory or connections for the others), and for every request
// the token it came with and a way to end it, so that revoking or rotating
// a party's tokens ends everything still running with an old one.
type live struct {
	maxStreams int

	mu sync.Mutex
	// changes counts the credentials changes seen: a request that
	// authenticated while one arrived is checked again.
	changes  uint64
	streams  map[string]int // party -> open event streams
	requests map[string]map[*liveRequest]struct{}
}

// liveRequest is one authenticated request in flight.
type liveRequest struct {
	token string

	mu       sync.Mutex
	finished bool
	end      func(cause error)
}

// stop ends the request with cause, unless it has finished already (its
// handler returned: its ResponseController must not be used any more).
func (lr *liveRequest) stop(cause error) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if !lr.finished {
		lr.end(cause)
	}
}

// errCredentialsChanged ends the requests of a token that was revoked or
// rotated out.
var errCredentialsChanged = errors.New("api: the token was revoked or rotated")

func newLive(maxStreams int) *live {
	return &live{maxStreams: maxStreams, streams: map[string]int{}, requests: map[string]map[*liveRequest]struct{}{}}
}

// begin registers a request of the party, which end stops; ok is false
// when it is an event stream beyond the party's cap. The caller calls
// finish before its handler returns.
func (l *live) begin(partyName, token string, stream bool, end func(cause error)) (lr *liveRequest, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if stream {
		if l.streams[partyName] >= l.maxStreams {
			return nil, false
		}
		l.streams[partyName]++
	}
	lr = &liveRequest{token: token, end: end}
	rs := l.requests[partyName]
	if rs == nil {
		rs = map[*liveRequest]struct{}{}
		l.requests[partyName] = rs
	}
	rs[lr] = struct{}{}
	return lr, true
}

func (l *live) finish(partyName string, lr *liveRequest, stream bool) {
	lr.mu.Lock()
	lr.finished = true
	lr.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if stream {
		if l.streams[partyName]--; l.streams[partyName] <= 0 {
			delete(l.streams, partyName)
		}
	}
	if rs := l.requests[partyName]; rs != nil {
		delete(rs, lr)
		if len(rs) == 0 {
			delete(l.requests, partyName)
		}
	}
}

func (l *live) changesSeen() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changes
}

// of lists the party's requests in flight, counting a credentials change.
func (l *live) of(partyName string) []*liveRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes++
	out := make([]*liveRequest, 0, len(l.requests[partyName]))
	for lr := range l.requests[partyName] {
		out = append(out, lr)
	}
	return out
}

// credentialsChanged ends the requests of the party whose token no longer
// authenticates (the service has forgotten the party's cached tokens, so
// each is looked up again).
func (h *Handler) credentialsChanged(partyName string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	checked := map[string]bool{} // token -> still valid
	for _, lr := range h.live.of(partyName) {
		valid, seen := checked[lr.token]
		if !seen {
			_, err := h.svc.Authenticate(ctx, lr.token)
			if err != nil && !errors.Is(err, party.ErrUnauthenticated) {
				// Cannot tell: ended all the same. The party's tokens
				// have just changed, and a request of a revoked token
				// must not run on because the store did not answer; a
				// client of a valid one reconnects and is checked afresh.
				h.log.Warn("checking a token after a credentials change failed: its requests are ended", "party", partyName, "err", err)
			}
			valid = err == nil
			checked[lr.token] = valid
		}
		if !valid {
			lr.stop(errCredentialsChanged)
		}
	}
}
