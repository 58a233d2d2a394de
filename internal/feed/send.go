package feed

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/client"
)

// Stats are the counters of one feed. Safe for concurrent use.
type Stats struct {
	// Sent counts reports the server accepted.
	Sent atomic.Int64
	// Skipped counts input lines that were malformed (or carried no
	// aircraft data) and were dropped; Skip counts them by reason too.
	Skipped atomic.Int64
	// Undeliverable counts reports that never reached the server: refused
	// by it (4xx, or rejected one by one), or given up after retries once
	// they were too old for the server to accept, or dropped by a live
	// source while the queue to the server was full; Undeliver counts
	// them by reason too.
	Undeliverable atomic.Int64
	// Retries counts failed POSTs that were tried again.
	Retries atomic.Int64
	// Reconnects counts connections to the source after the first.
	Reconnects atomic.Int64

	mu       sync.Mutex
	byReason map[string]int64
	// undeliverable counts by reason, with the server's first word on it
	// (when it said one).
	undeliverable map[string]*undeliverableCount
}

type undeliverableCount struct {
	n     int64
	first string
}

// Reasons (Stats.Undeliver) of reports that never reached the server.
const (
	UndeliverableQueueFull = "dropped while the queue to the server was full"
	UndeliverableTooOld    = "too old to be sent again while the server was away"
	UndeliverableStopped   = "still to be sent when the feed stopped"
)

// maxSaid bounds what the server said that a summary repeats.
const maxSaid = 200

// Undeliver counts n reports that never reached the server, for reason (a
// short, stable phrase: the reports undeliverable for the same cause
// share it); said is what the server said of the first of them ("" when
// it said nothing).
func (s *Stats) Undeliver(n int, reason, said string) {
	if n <= 0 {
		return
	}
	s.Undeliverable.Add(int64(n))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.undeliverable == nil {
		s.undeliverable = map[string]*undeliverableCount{}
	}
	c := s.undeliverable[reason]
	if c == nil {
		if len(said) > maxSaid {
			said = strings.ToValidUTF8(said[:maxSaid], "") + "..."
		}
		c = &undeliverableCount{first: said}
		s.undeliverable[reason] = c
	}
	c.n += int64(n)
}

// UndeliverableSummary is one line saying why reports never reached the
// server, counts by reason, the most frequent first, each with the
// server's first word on it; "" when none was lost.
func (s *Stats) UndeliverableSummary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.undeliverable) == 0 {
		return ""
	}
	reasons := slices.Collect(maps.Keys(s.undeliverable))
	slices.SortFunc(reasons, func(a, b string) int {
		if c := cmp.Compare(s.undeliverable[b].n, s.undeliverable[a].n); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		c := s.undeliverable[r]
		parts[i] = fmt.Sprintf("%d %s", c.n, r)
		if c.first != "" {
			parts[i] += fmt.Sprintf(" (the first: %q)", c.first)
		}
	}
	return fmt.Sprintf("undeliverable %d reports: %s", s.Undeliverable.Load(), strings.Join(parts, ", "))
}

// Skip counts one input line dropped for reason (a short, stable phrase:
// the lines skipped for the same cause share it).
func (s *Stats) Skip(reason string) {
	s.Skipped.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byReason == nil {
		s.byReason = map[string]int64{}
	}
	s.byReason[reason]++
}

// SkippedSummary is one line saying why lines were skipped, counts by
// reason, the most frequent first; "" when none was.
func (s *Stats) SkippedSummary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byReason) == 0 {
		return ""
	}
	reasons := slices.Collect(maps.Keys(s.byReason))
	slices.SortFunc(reasons, func(a, b string) int {
		if c := cmp.Compare(s.byReason[b], s.byReason[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%d %s", s.byReason[r], r)
	}
	return fmt.Sprintf("skipped %d lines: %s", s.Skipped.Load(), strings.Join(parts, ", "))
}

// String is the one-line status a feed prints periodically.
func (s *Stats) String() string {
	return fmt.Sprintf("sent=%d skipped=%d undeliverable=%d retries=%d reconnects=%d",
		s.Sent.Load(), s.Skipped.Load(), s.Undeliverable.Load(), s.Retries.Load(), s.Reconnects.Load())
}

// PostFunc posts one batch of reports; (*client.Client).PostPositions is
// one.
type PostFunc func(ctx context.Context, reports []client.Report) (client.PositionsResult, error)

// BatchLimit is the most reports the server takes in one POST.
const BatchLimit = 10_000

// Defaults of a Sender.
const (
	DefaultMaxBatch   = 1000
	DefaultFlushEvery = 250 * time.Millisecond
	// DefaultMaxAge: the server refuses reports older than 60 s on its
	// clock; a report this old is dropped instead of retried forever.
	DefaultMaxAge = 55 * time.Second
	// DefaultPostTimeout: a POST of a full batch takes milliseconds; one
	// unanswered this long is given up and sent again while its reports
	// are fresh.
	DefaultPostTimeout = 20 * time.Second
)

// Sender batches reports and posts them, retrying with backoff while the
// server is away.
type Sender struct {
	Post  PostFunc
	Stats *Stats
	// MaxBatch reports per POST (at most BatchLimit).
	MaxBatch int
	// FlushEvery bounds how long a report waits for its batch to fill.
	FlushEvery time.Duration
	// MaxAge: reports older than this (by their Time against Now) are not
	// retried any more and count as undeliverable.
	MaxAge time.Duration
	// PostTimeout bounds one POST (DefaultPostTimeout when 0): a server
	// that takes a batch and stops answering must not hold the feed.
	PostTimeout time.Duration
	Backoff     client.Backoff
	// Now is the wall clock (time.Now when nil).
	Now func() time.Time
}

func (s *Sender) defaults() {
	if s.MaxBatch <= 0 || s.MaxBatch > BatchLimit {
		s.MaxBatch = DefaultMaxBatch
	}
	if s.FlushEvery <= 0 {
		s.FlushEvery = DefaultFlushEvery
	}
	if s.MaxAge <= 0 {
		s.MaxAge = DefaultMaxAge
	}
	if s.PostTimeout <= 0 {
		s.PostTimeout = DefaultPostTimeout
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Stats == nil {
		s.Stats = &Stats{}
	}
}

// Run posts what arrives on in until in is closed (then it flushes and
// returns nil) or ctx is done (what is still pending counts as
// undeliverable and it returns ctx.Err()).
func (s *Sender) Run(ctx context.Context, in <-chan client.Report) error {
	s.defaults()
	tick := time.NewTicker(s.FlushEvery)
	defer tick.Stop()
	batch := make([]client.Report, 0, s.MaxBatch)
	flush := func() {
		if len(batch) > 0 {
			s.send(ctx, batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case <-ctx.Done():
			s.Stats.Undeliver(len(batch), UndeliverableStopped, "")
			return ctx.Err()
		case r, ok := <-in:
			if !ok {
				flush()
				return ctx.Err()
			}
			batch = append(batch, r)
			if len(batch) == s.MaxBatch {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// send posts one batch until it is delivered, refused, too old, or ctx
// ends; a POST unanswered for PostTimeout is sent again.
func (s *Sender) send(ctx context.Context, batch []client.Report) {
	pending := batch
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, s.PostTimeout)
		res, err := s.Post(pctx, pending)
		// Unanswered within PostTimeout: sent again, as after a dropped
		// connection (client.Retryable takes a deadline for the caller's).
		timedOut := err != nil && pctx.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil {
			s.Stats.Sent.Add(int64(res.Accepted))
			s.rejected(len(pending)-res.Accepted, res.Rejected)
			return
		}
		if ctx.Err() != nil {
			s.Stats.Undeliver(len(pending), UndeliverableStopped, "")
			return
		}
		if !(client.Retryable(err) || timedOut) {
			reason := "refused whole by the server"
			var prob *client.Problem
			if errors.As(err, &prob) && prob.Status != 0 {
				reason = fmt.Sprintf("%s (HTTP %d)", reason, prob.Status)
			}
			s.Stats.Undeliver(len(pending), reason, err.Error())
			return
		}
		s.Stats.Retries.Add(1)
		if client.Sleep(ctx, s.Backoff.After(attempt, err)) != nil {
			s.Stats.Undeliver(len(pending), UndeliverableStopped, "")
			return
		}
		// Keep only what the server would still take.
		oldest := s.Now().Add(-s.MaxAge)
		fresh := pending[:0:0]
		for _, r := range pending {
			if r.Time.After(oldest) {
				fresh = append(fresh, r)
			}
		}
		s.Stats.Undeliver(len(pending)-len(fresh), UndeliverableTooOld, "")
		if len(fresh) == 0 {
			return
		}
		pending = fresh
	}
}

// rejected counts the n reports of a batch the server did not accept,
// each by the field its rejection names ("reports[i].field: why").
func (s *Sender) rejected(n int, rejections []client.Rejection) {
	for _, r := range rejections {
		if n == 0 {
			return
		}
		reason := "refused by the server"
		if field := rejectedField(r.Error); field != "" {
			reason += " naming " + field
		}
		s.Stats.Undeliver(1, reason, r.Error)
		n--
	}
	s.Stats.Undeliver(n, "refused by the server", "")
}

// rejectedField is the field a rejection of the server names (the
// "field" of "reports[3].field: why"), "" when it names none.
func rejectedField(msg string) string {
	if _, rest, ok := strings.Cut(msg, "]."); ok && strings.HasPrefix(msg, "reports[") {
		msg = rest
	}
	field, _, ok := strings.Cut(msg, ":")
	if !ok || field == "" || strings.ContainsAny(field, " \t") {
		return ""
	}
	return field
}
