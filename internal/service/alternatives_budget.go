package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deconflict/deconflict/internal/volume"
)

// A search of alternatives (volume.Registry.Alternatives) may cost up to
// volume.MaxAlternativesChecks, about a tenth of a second of a core, and
// every conflicting volume write runs one: counted by request only, one
// party writing or asking at the request rate kept every core busy. So
// the caller (the API) may put in a request's context the party's budget
// of searches: each search reserves the most it can cost among the volumes
// near it (volume.AlternativesChecksBound, plus
// AlternativesSearchOverheadChecks) once it knows them and before it
// checks anything, and settles what it cost. A search among a few volumes
// reserves a few thousand checks, not the bound of the worst search: a
// party whose searches are small is not refused as if each were the
// largest, and none can take more than its budget holds.

// AlternativesBudget pays for the searches of alternatives of a request.
type AlternativesBudget interface {
	// Reserve takes checks out of the party's budget, all or none: when
	// the budget does not hold them, ok is false, nothing is taken, and
	// wait is how long until it holds them. Settle then charges what the
	// search cost (at most checks), the rest given back.
	Reserve(party string, checks int) (settle func(checks int), wait time.Duration, ok bool)
	// Most is the most checks the party's budget holds at once (its
	// burst): a search that may cost more is never made, however long
	// it waits.
	Most(party string) int
}

// ErrAlternativesBudget: the party's budget of searches of alternatives
// does not hold another search now (errors.Is of an
// *AlternativesBudgetError).
var ErrAlternativesBudget = errors.New("service: this party's budget of alternatives searches is spent")

// AlternativesBudgetError is a search refused by the party's budget: what
// it would have reserved and how long until the budget holds that.
type AlternativesBudgetError struct {
	// Checks is the most the search could have cost, which it reserves.
	Checks int
	// Near is how many volumes it would have searched among.
	Near int
	Wait time.Duration
	// Beyond: Checks is more than the budget ever holds (Most), so that
	// waiting is no use; Wait is then meaningless.
	Beyond bool
	// Listing: Checks is what listing the volumes around the write over
	// the horizon costs (volume.AlternativesListingChecks a listing),
	// reserved before they are listed; Near is not known then.
	Listing bool
}

func (e *AlternativesBudgetError) Error() string {
	if e.Listing {
		return fmt.Sprintf("service: this party's budget of alternatives searches does not hold the %d checks that listing the volumes around the write costs", e.Checks)
	}
	if e.Beyond {
		return fmt.Sprintf("service: this party's budget of alternatives searches never holds the %d checks a search among %d volumes may cost", e.Checks, e.Near)
	}
	return fmt.Sprintf("service: this party's budget of alternatives searches does not hold the %d checks a search among %d volumes may cost", e.Checks, e.Near)
}

// Is makes an *AlternativesBudgetError an ErrAlternativesBudget.
func (e *AlternativesBudgetError) Is(target error) bool { return target == ErrAlternativesBudget }

// AlternativesOmittedBudget is what an answer without its alternatives
// says in alternatives_omitted when the party's budget did not hold the
// search.
const AlternativesOmittedBudget = "budget"

// AlternativesSearchOverheadChecks is charged for every search on top of
// the checks it made: what it costs besides (the volume built, the index
// read, the obstacles chosen), about 40 µs for a search of a hundred
// checks, the time of some 10,000 checks (4 ns each).
const AlternativesSearchOverheadChecks = 10_000

// MaxAlternativesSearchChecks is the most one search reserves of a budget:
// the bound of its checks and its overhead.
const MaxAlternativesSearchChecks = volume.MaxAlternativesChecks + AlternativesSearchOverheadChecks

type alternativesBudgetKey struct{}

// WithAlternativesBudget makes b pay for the searches of alternatives of
// ctx's request. Without one a search is not counted.
func WithAlternativesBudget(ctx context.Context, b AlternativesBudget) context.Context {
	return context.WithValue(ctx, alternativesBudgetKey{}, b)
}

// searchAlternatives runs search against the budget of ctx, if any, in
// a turn of work on demand (OnDemandTurn). search calls payListing with
// what listing the volumes around the write costs
// (volume.Registry.AlternativesPaidListed), before it lists them, which
// reserves that much of the budget, then waits for the turn (holding the
// reservation, so that a party's searches waiting for turns never hold
// more than its budget): the listing and the search run in the turn, so
// that however many parties search, ingest and alerts keep the other
// cores. Then search calls pay with the most the search can cost among
// the volumes it counts before it checks anything, which reserves that
// much more. The listing is charged what it was reserved, the search the
// checks it made and AlternativesSearchOverheadChecks.
func (s *Service) searchAlternatives(ctx context.Context, party string, search func(payListing func(checks int) error, pay func(near, mostChecks int) error) ([]volume.Alternative, int, error)) ([]volume.Alternative, error) {
	b, _ := ctx.Value(alternativesBudgetKey{}).(AlternativesBudget)
	var settleListing, settle func(checks int)
	listed := 0
	var release func()
	payListing := func(checks int) error {
		if b != nil {
			paid, wait, ok := b.Reserve(party, checks)
			if !ok {
				return &AlternativesBudgetError{Checks: checks, Listing: true, Wait: wait, Beyond: checks > b.Most(party)}
			}
			settleListing, listed = paid, checks
		}
		var err error
		release, err = s.OnDemandTurn(ctx, s.onDemandWait)
		return err
	}
	pay := func(near, mostChecks int) error {
		if b != nil {
			held := mostChecks + AlternativesSearchOverheadChecks
			paid, wait, ok := b.Reserve(party, held)
			if !ok {
				return &AlternativesBudgetError{Checks: held, Near: near, Wait: wait, Beyond: listed+held > b.Most(party)}
			}
			settle = paid
		}
		return nil
	}
	alts, checks, err := search(payListing, pay)
	if release != nil {
		release()
	}
	if settleListing != nil {
		settleListing(listed)
	}
	if settle != nil {
		settle(checks + AlternativesSearchOverheadChecks)
	}
	return alts, err
}
