package httpsig

import (
	"sync"
	"time"
)

// NonceCache remembers the nonces used with each key for NonceWindow, so a
// replayed signature is refused. It is safe for concurrent use. Its memory
// is bounded by the signatures verified in one window: nonces are forgotten
// in the order they were used.
type NonceCache struct {
	mu    sync.Mutex
	seen  map[nonceKey]time.Time // when each was used
	order []nonceEntry           // by time of use, oldest first, from head on
	head  int
}

type nonceKey struct{ keyID, nonce string }

type nonceEntry struct {
	key nonceKey
	at  time.Time
}

// NewNonceCache returns an empty cache.
func NewNonceCache() *NonceCache {
	return &NonceCache{seen: map[nonceKey]time.Time{}}
}

// Use records nonce as used with keyID at now, and reports whether it was
// fresh (not used with that key in the last NonceWindow).
func (c *NonceCache) Use(keyID, nonce string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forget(now)
	k := nonceKey{keyID, nonce}
	if _, used := c.seen[k]; used {
		return false
	}
	c.seen[k] = now
	c.order = append(c.order, nonceEntry{k, now})
	return true
}

// Len is how many nonces are remembered.
func (c *NonceCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// forget drops the nonces used more than NonceWindow before now.
func (c *NonceCache) forget(now time.Time) {
	for c.head < len(c.order) && now.Sub(c.order[c.head].at) > NonceWindow {
		e := c.order[c.head]
		if c.seen[e.key].Equal(e.at) {
			delete(c.seen, e.key)
		}
		c.order[c.head] = nonceEntry{}
		c.head++
	}
	// Compact once the forgotten prefix is half the slice: amortised O(1).
	if c.head > 0 && c.head*2 >= len(c.order) {
		c.order = append(c.order[:0], c.order[c.head:]...)
		c.head = 0
	}
}
