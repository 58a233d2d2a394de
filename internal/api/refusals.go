package api

import (
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The budgets, as deconflict_budget_refusals_total names them.
const (
	budgetRequests         = "requests"          // the request rate (Options.RatePerSecond)
	budgetReports          = "reports"           // position reports
	budgetPreviews         = "previews"          // airspace preview items
	budgetAlternatives     = "alternatives"      // checks of searches of alternatives
	budgetVolumes          = "volumes"           // positions of volume footprints
	budgetPreviewPositions = "preview_positions" // positions of previewed footprints
	budgetResolutions      = "resolutions"       // units of work of resolutions on demand
	budgetSnapshots        = "snapshots"         // event streams opening with a snapshot
	budgetStreams          = "streams"           // long-lived requests open at once
	budgetReveals          = "volume_reveals"    // hidden volumes shown by probes
)

// refusalLogEvery is how often at most a party's refusals by one budget
// are logged: a party refused at its request rate would otherwise log a
// line a request.
const refusalLogEvery = time.Minute

// refusals counts every refusal of a party's work by one of its budgets
// (deconflict_budget_refusals_total) and logs it at WARN, at most once a
// refusalLogEvery for each party and budget, with how many were refused
// since the last line: a party refused for long is seen by the operator,
// not only by the party.
type refusals struct {
	counter *prometheus.CounterVec
	log     *slog.Logger

	mu     sync.Mutex
	logged map[refusalKey]*refusalLog
}

type refusalKey struct{ budget, party string }

// refusalLog is what was logged of the refusals of a party by a budget.
type refusalLog struct {
	at time.Time
	// unlogged counts the refusals since the line at at.
	unlogged int
}

func newRefusals(counter *prometheus.CounterVec, log *slog.Logger) *refusals {
	return &refusals{counter: counter, log: log, logged: map[refusalKey]*refusalLog{}}
}

// refused counts a refusal of party's work by budget at now; why says what
// was refused.
func (r *refusals) refused(budget, party, why string, now time.Time) {
	r.counter.WithLabelValues(budget, party).Inc()
	k := refusalKey{budget, party}
	r.mu.Lock()
	l, ok := r.logged[k]
	if ok && now.Sub(l.at) < refusalLogEvery {
		l.unlogged++
		r.mu.Unlock()
		return
	}
	since := 0
	if ok {
		since = l.unlogged
	}
	r.logged[k] = &refusalLog{at: now}
	r.mu.Unlock()
	r.log.Warn("a party's budget refuses its work", "budget", budget, "party", party, "refused", why,
		"refused_unlogged_since_last_line", since, "logged_at_most_every", refusalLogEvery.String())
}

// MaxRetryAfter is the longest Retry-After of a refusal: a budget that
// refills so slowly (a rate of 1e-12 a second) that it holds the request
// only later than that asks for it again after a day, and is answered
// again then.
const MaxRetryAfter = 24 * time.Hour

// retryAfterSeconds is the Retry-After of a refusal until wait has passed:
// wait in whole seconds, rounded up, at least 1 and at most
// MaxRetryAfter.
func retryAfterSeconds(wait time.Duration) int {
	if wait >= MaxRetryAfter {
		return int(MaxRetryAfter / time.Second)
	}
	return max(1, int(math.Ceil(wait.Seconds())))
}

// durationOfSeconds is s seconds, at most the longest Duration: a wait of
// 1e16 s (a cost over a rate of 1e-12) converted as it is overflows into a
// negative Duration.
func durationOfSeconds(s float64) time.Duration {
	if !(s < float64(math.MaxInt64)/float64(time.Second)) { // NaN too
		return math.MaxInt64
	}
	return time.Duration(s * float64(time.Second))
}
