package api

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/service"
)

// costBudget is each party's budget of a kind of work counted by what a
// request costs (the reports of a position batch, the items of an airspace
// preview), not by the request: counted by request, one party posting
// batches of 10,000 reports, or previews of 5,000 airspaces, as fast as the
// request rate let it took every core, and the others' alerts waited
// behind it.
//
// What a request costs is known only once it is read, and reading it is
// already work: so before it is read, a request reserves the most it can
// cost (maxCost; less when its Content-Length bounds it, see
// leastBytesPerUnit) and is refused with 429, unread, when the budget does
// not hold that much; once read, it settles what it cost and the rest is
// given back. No request is read on credit (concurrent ones
// each hold a full reservation), none is refused after it was read, and a
// refusal changes nothing. A request that ends before it settled (refused
// as malformed, or for its signature) costs what it made the server read,
// a unit per bytesPerUnit of its body (at most its reservation): reading
// it was the work.
type costBudget struct {
	limiter *rateLimiter
	maxCost float64
	// leastBytesPerUnit, when above 0, is the fewest bytes of a body a
	// unit of cost takes: a request of known Content-Length then reserves
	// what a body of that length can hold at most, not maxCost, so that a
	// party's small requests in flight at once (a feed's, over a slow
	// link) do not each hold the reservation of a full batch and are not
	// refused while the party is far within its budget.
	leastBytesPerUnit int64
	bytesPerUnit      int64
	// baseCost is what every request costs besides its units (a volume
	// write's commit), in units.
	baseCost float64
	// What the refusal says: its problem type and title, the unit of
	// cost (plural) and the serve flag that sets the rate.
	slug, title, unit, flag string
	// rateSource, when not nil, says where a party's rate comes from,
	// when not from the flag alone.
	rateSource func(party string) string
	// name is the budget's in deconflict_budget_refusals_total; refusals
	// counts and logs its refusals (set by NewHandler; nil: neither).
	name     string
	refusals *refusals
}

func newCostBudget(rate, burst, maxCost float64, leastBytesPerUnit, bytesPerUnit int64, slug, title, unit, flag string) *costBudget {
	return &costBudget{limiter: newRateLimiter(rate, max(burst, maxCost)), maxCost: maxCost,
		leastBytesPerUnit: leastBytesPerUnit, bytesPerUnit: bytesPerUnit,
		slug: slug, title: title, unit: unit, flag: flag}
}

// newCostBudgetBase is newCostBudget with a cost of every request besides
// its units.
func newCostBudgetBase(rate, burst, maxCost, baseCost float64, leastBytesPerUnit, bytesPerUnit int64, slug, title, unit, flag string) *costBudget {
	b := newCostBudget(rate, burst, maxCost, leastBytesPerUnit, bytesPerUnit, slug, title, unit, flag)
	b.baseCost = baseCost
	return b
}

// sharedAs is b (its bucket, problem type, flag and name in the refusals
// metric) as a refusal of another kind of request paying from it says:
// its title and unit are that request's.
func (b *costBudget) sharedAs(title, unit string) *costBudget {
	shared := *b
	shared.title, shared.unit = title, unit
	return &shared
}

// mostCost is the most a request whose body is contentLength bytes long
// (below 0: unknown) can cost.
func (b *costBudget) mostCost(contentLength int64) float64 {
	if b.leastBytesPerUnit <= 0 || contentLength < 0 {
		return b.maxCost
	}
	return min(b.maxCost, float64(contentLength/b.leastBytesPerUnit+1)+b.baseCost)
}

// reservation is what one request holds of its party's budget until it
// settles.
type reservation struct {
	b     *costBudget
	party string
	held  float64 // what it reserved
	once  sync.Once
	// read counts the bytes read of the request's body.
	read atomic.Int64
}

// reserve takes the most a request of contentLength bytes (below 0:
// unknown) can cost out of party's budget, or refuses the request: 429
// naming the budget, with Retry-After the seconds until the budget holds
// it.
func (b *costBudget) reserve(party string, contentLength int64, now time.Time) (*reservation, error) {
	held := b.mostCost(contentLength)
	res, wait, beyond := b.reserveCost(party, held, now)
	if res != nil {
		return res, nil
	}
	if beyond {
		// Not reached: the burst is at least maxCost.
		return nil, b.beyondBudget(party, "", fmt.Sprintf("a request may cost %g, which it reserves before it is read", held))
	}
	return nil, b.refusal(party, wait, fmt.Sprintf("does not hold the %g one request may cost, which a request reserves before it is read (it is then charged what it holds); nothing of this one was read or applied", held))
}

// reserveCost takes held out of party's budget, all or none. When the
// budget does not hold it, it takes nothing, counts the refusal, and says
// how long until the budget holds it, or, beyond, that it never will:
// held is more than the budget holds at most (its burst).
func (b *costBudget) reserveCost(party string, held float64, now time.Time) (res *reservation, wait time.Duration, beyond bool) {
	wait, ok := b.limiter.take(party, held, now)
	if ok {
		return &reservation{b: b, party: party, held: held}, 0, false
	}
	_, burst := b.limiter.limits(party)
	beyond = held > burst
	why := "spent"
	if beyond {
		why = "beyond its burst"
	}
	if b.refusals != nil {
		b.refusals.refused(b.name, party, fmt.Sprintf("%g %s, %s", held, b.unit, why), now)
	}
	return nil, wait, beyond
}

// refusal is the 429 of a request the budget does not hold: why says
// what it did not hold and what was done of the request.
func (b *costBudget) refusal(party string, wait time.Duration, why string) *Problem {
	pr := problem(http.StatusTooManyRequests, b.slug, b.title,
		fmt.Sprintf("this party's budget of %s %s: send it again after the delay in Retry-After (the seconds until the budget holds it, at most a day)", b.describe(party), why))
	pr.retryAfterS = retryAfterSeconds(wait)
	return pr
}

// beyondBudget is the 422 of a request that costs more than party's
// budget ever holds (its burst): sent again, it would be refused again
// however long it waited. field is the request's field that makes the
// cost, why what it costs.
func (b *costBudget) beyondBudget(party, field, why string) *Problem {
	_, burst := b.limiter.limits(party)
	pr := problem(http.StatusUnprocessableEntity, "beyond-budget", "Beyond this party's budget",
		fmt.Sprintf("%s, more than this party's budget of %s ever holds at once (%s): it is never done; sending it again changes nothing, make it cost less (or the operator raises the burst)", why, b.describe(party), figure(burst)))
	pr.Field = field
	return pr
}

// describe names party's budget: its rate, burst and where they come from.
func (b *costBudget) describe(party string) string {
	rate, burst := b.limiter.limits(party)
	source := "serve " + b.flag
	if b.rateSource != nil {
		source = b.rateSource(party)
	}
	return fmt.Sprintf("%s %s a second on this replica (burst %s; %s)", figure(rate), b.unit, figure(burst), source)
}

// settle charges the request cost (at most the reservation) and gives the
// rest back; only the first call counts.
func (r *reservation) settle(cost int) {
	if r == nil {
		return
	}
	r.once.Do(func() {
		r.b.limiter.refund(r.party, r.held-min(float64(cost), r.held), time.Now())
	})
}

// settleRead settles a request its handler did not settle: it costs what
// it made the server read.
func (r *reservation) settleRead() {
	r.settle(int(min((r.read.Load()+r.b.bytesPerUnit-1)/r.b.bytesPerUnit, int64(r.held))))
}

// countedBody counts the bytes read of a request body into read.
type countedBody struct {
	io.ReadCloser
	read *atomic.Int64
}

func (c countedBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.read.Add(int64(n))
	return n, err
}

type reservationKey struct{}

func withReservation(ctx context.Context, r *reservation) context.Context {
	return context.WithValue(ctx, reservationKey{}, r)
}

// reservationOf is the request's reservation (nil when its route has no
// budget: settling it does nothing).
func reservationOf(ctx context.Context) *reservation {
	r, _ := ctx.Value(reservationKey{}).(*reservation)
	return r
}

// alternativesPayer pays for the searches of alternatives of a request (a
// volume write's, a preview item's, the alternatives endpoint's) from its
// party's budget of checks, each reserving what it may cost among the
// volumes near it when it begins (service.AlternativesBudget).
type alternativesPayer struct{ b *costBudget }

func (a alternativesPayer) Reserve(party string, checks int) (func(checks int), time.Duration, bool) {
	res, wait, _ := a.b.reserveCost(party, float64(checks), time.Now())
	if res == nil {
		return nil, wait, false
	}
	return res.settle, 0, true
}

func (a alternativesPayer) Most(party string) int {
	_, burst := a.b.limiter.limits(party)
	return int(min(burst, math.MaxInt32))
}

// revealPayer pays for the other parties' volumes hidden from a party
// that the answers to its probes show (service.RevealBudget), from its
// budget of revealed volumes, before they are shown: 429 when the budget
// does not hold them, 422 when it never will.
type revealPayer struct{ b *costBudget }

func (r revealPayer) Pay(party, via string, volumes int) error {
	res, wait, beyond := r.b.reserveCost(party, float64(volumes), time.Now())
	if res != nil {
		return nil
	}
	field, what := "footprint", "this probe"
	if via == service.ProbeViaPreview {
		field, what = "file", "this preview"
	}
	if beyond {
		return r.b.beyondBudget(party, field, fmt.Sprintf("%s would show %d volumes of other parties that this party may not see otherwise (under volume_visibility need_to_know), each counted once", what, volumes))
	}
	return r.b.refusal(party, wait, fmt.Sprintf("does not hold the %d volumes of other parties, hidden from this party under volume_visibility need_to_know, that %s would show (each probe that shows one is recorded for its owner); nothing of them was shown", volumes, what))
}

// alternativesRefusal is the refusal of a search of alternatives its
// party's budget did not hold: 429, or 422 naming the footprint when the
// budget never holds what the search may cost among the volumes near it.
func (h *Handler) alternativesRefusal(party string, e *service.AlternativesBudgetError) *Problem {
	if e.Listing && e.Beyond {
		return h.alternatives.beyondBudget(party, "footprint", fmt.Sprintf("listing the volumes around this volume (its footprint, over its window and a week either side) may cost %d checks, which a search of alternatives reserves before it lists them", e.Checks))
	}
	if e.Listing {
		return h.alternatives.refusal(party, e.Wait, fmt.Sprintf("does not hold the %d checks that listing the volumes around this volume (its footprint, over its window and a week either side) costs, which a search reserves before it lists them; nothing was searched", e.Checks))
	}
	if e.Beyond {
		return h.alternatives.beyondBudget(party, "footprint", fmt.Sprintf("a search of alternatives among the %d volumes near this volume (in its footprint, band and window) may cost %d checks, which it reserves before it runs", e.Near, e.Checks))
	}
	return h.alternatives.refusal(party, e.Wait, fmt.Sprintf("does not hold the %d checks this search may cost among the volumes near it (%d), which a search reserves before it runs (it is then charged the checks it made); nothing was searched", e.Checks, e.Near))
}

// figure writes a rate or a burst in full (160000000, 0.001), not in
// exponent form.
func figure(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// reportLimits are party's rate and burst of reports: the floor
// (Options.ReportsPerSecond and its burst), or a report rate
// (Options.ReportsPerAircraftPerSecond) of each aircraft of the fleet the
// party may fly, in a burst of twice that, when more.
func (h *Handler) reportLimits(party string) (rate, burst float64) {
	fleetRate := h.fleetReportRate(party)
	return max(h.reports.limiter.rate, fleetRate), max(h.reports.limiter.burst, 2*fleetRate)
}

func (h *Handler) fleetReportRate(party string) float64 {
	return float64(h.svc.MaxAircraftFor(party)) * h.opt.ReportsPerAircraftPerSecond
}

// reportRateSource says where party's rate of reports comes from.
func (h *Handler) reportRateSource(party string) string {
	return fmt.Sprintf("the more of serve %s, %s, and %s a second of each of the %d aircraft this party may fly",
		h.reports.flag, figure(h.reports.limiter.rate), figure(h.opt.ReportsPerAircraftPerSecond), h.svc.MaxAircraftFor(party))
}
