package service

import (
	"context"
	"errors"

	"github.com/deconflict/deconflict/internal/volume"
)

// A search of alternatives (volume.Registry.Alternatives) may cost up to
// volume.MaxAlternativesChecks, about a tenth of a second of a core, and
// every conflicting volume write runs one: counted by request only, one
// party writing or asking at the request rate kept every core busy. So
// the caller (the API) may put in a request's context the party's budget
// of searches: each search reserves the most it may cost before it runs
// and settles what it cost.

// AlternativesBudget pays for the searches of alternatives of a request.
type AlternativesBudget interface {
	// Reserve takes the most one search may cost out of the party's
	// budget; false when the budget does not hold it (nothing taken).
	// Settle then charges what the search cost, the rest given back.
	Reserve(party string) (settle func(checks int), ok bool)
}

// ErrAlternativesBudget: the party's budget of searches of alternatives
// does not hold another search now.
var ErrAlternativesBudget = errors.New("service: this party's budget of alternatives searches is spent")

// AlternativesOmittedBudget is what an answer without its alternatives
// says in alternatives_omitted when the party's budget did not hold the
// search.
const AlternativesOmittedBudget = "budget"

// AlternativesSearchOverheadChecks is charged for every search on top of
// the checks it made: what it costs besides (the volume built, the index
// read, the obstacles chosen), about 40 µs for a search of a hundred
// checks, the time of some 10,000 checks (4 ns each).
const AlternativesSearchOverheadChecks = 10_000

type alternativesBudgetKey struct{}

// WithAlternativesBudget makes b pay for the searches of alternatives of
// ctx's request. Without one a search is not counted.
func WithAlternativesBudget(ctx context.Context, b AlternativesBudget) context.Context {
	return context.WithValue(ctx, alternativesBudgetKey{}, b)
}

// searchAlternatives runs search against the budget of ctx, if any.
func searchAlternatives(ctx context.Context, party string, search func() ([]volume.Alternative, int, error)) ([]volume.Alternative, error) {
	b, _ := ctx.Value(alternativesBudgetKey{}).(AlternativesBudget)
	if b == nil {
		alts, _, err := search()
		return alts, err
	}
	settle, ok := b.Reserve(party)
	if !ok {
		return nil, ErrAlternativesBudget
	}
	alts, checks, err := search()
	settle(checks + AlternativesSearchOverheadChecks)
	return alts, err
}
