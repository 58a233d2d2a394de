package api

import (
	"math"
	"sync"
	"time"
)

// rateLimiter is one token bucket per party: each request takes what it
// costs (one token a request for the request rate, one a report for the
// position budget); tokens refill at rate per second up to burst.
type rateLimiter struct {
	rate, burst float64
	// limitsOf, when not nil, gives a party's own rate and burst (the
	// report budget's, which grows with the party's agreed fleet), read
	// at each take; else every party has rate and burst.
	limitsOf func(party string) (rate, burst float64)

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate, burst float64) *rateLimiter {
	return &rateLimiter{rate: rate, burst: burst, buckets: map[string]*bucket{}}
}

// allow takes a token for party at now, or says how long until one is there.
func (l *rateLimiter) allow(party string, now time.Time) (time.Duration, bool) {
	return l.take(party, 1, now)
}

// take takes cost tokens for party at now, all of them or none: when the
// bucket holds fewer, it takes nothing and says how long until it holds
// cost (a cost above the burst never passes: the caller bounds it, or
// tells it apart). The wait is the longest Duration at most: at a rate of
// 1e-12 a second it was more, and overflowed into a negative one. A cost
// below zero, or NaN, is no number of tokens: it never passes and takes
// nothing (subtracted, a negative cost credited the bucket above its
// burst; a NaN one made its tokens NaN, and no take passed again).
func (l *rateLimiter) take(party string, cost float64, now time.Time) (time.Duration, bool) {
	if !(cost >= 0) {
		return math.MaxInt64, false
	}
	rate, burst := l.limits(party)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[party]
	if !ok {
		b = &bucket{tokens: burst, last: now}
		l.buckets[party] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(burst, b.tokens+el*rate)
		b.last = now
	}
	if b.tokens >= cost {
		b.tokens -= cost
		return 0, true
	}
	return durationOfSeconds((cost - b.tokens) / rate), false
}

// limits are party's rate and burst. Read before the limiter's lock is
// taken: limitsOf may read the service's rules.
func (l *rateLimiter) limits(party string) (rate, burst float64) {
	if l.limitsOf == nil {
		return l.rate, l.burst
	}
	return l.limitsOf(party)
}

// refund gives n tokens back to party's bucket (up to burst). An n
// below zero, or NaN, gives nothing back: it is no refund (charge takes).
func (l *rateLimiter) refund(party string, n float64, now time.Time) {
	if n > 0 {
		l.add(party, n, now)
	}
}

// add adds n tokens (taken when below zero) to party's bucket, refilled
// to now first, and holding at most burst.
func (l *rateLimiter) add(party string, n float64, now time.Time) {
	rate, burst := l.limits(party)
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.buckets[party]; ok {
		if el := now.Sub(b.last).Seconds(); el > 0 {
			b.tokens, b.last = b.tokens+el*rate, now
		}
		b.tokens = min(burst, b.tokens+n)
	}
}

// charge takes n tokens out of party's bucket, below zero if it holds
// fewer: work of a known cost above the burst, made with the bucket full,
// is paid back at the rate before the party's next take passes. An n
// below zero, or NaN, charges nothing.
func (l *rateLimiter) charge(party string, n float64, now time.Time) {
	if n > 0 {
		l.add(party, -n, now)
	}
}
