package api

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// costBudget is each party's budget of a kind of work counted by what a
// request costs (the reports of a position batch, the items of an airspace
// preview), not by the request: counted by request, one party posting
// batches of 10,000 reports, or previews of 5,000 airspaces, as fast as the
// request rate let it took every core, and the others' alerts waited
// behind it.
//
// What a request costs is known only once it is read, and reading it is
// already work: so before it is read, a request reserves the most one
// request can cost (maxCost) and is refused with 429, unread, when the
// budget does not hold that much; once read, it settles what it cost and
// the rest is given back. No request is read on credit (concurrent ones
// each hold a full reservation), none is refused after it was read, and a
// refusal changes nothing. A request that ends before it settled (refused
// as malformed, or for its signature) costs what it made the server read,
// a unit per bytesPerUnit of its body (at most its reservation): reading
// it was the work.
type costBudget struct {
	limiter      *rateLimiter
	maxCost      float64
	bytesPerUnit int64
	// What the refusal says: its problem type and title, the unit of
	// cost (plural) and the serve flag that sets the rate.
	slug, title, unit, flag string
}

func newCostBudget(rate, burst, maxCost float64, bytesPerUnit int64, slug, title, unit, flag string) *costBudget {
	return &costBudget{limiter: newRateLimiter(rate, max(burst, maxCost)), maxCost: maxCost, bytesPerUnit: bytesPerUnit,
		slug: slug, title: title, unit: unit, flag: flag}
}

// reservation is what one request holds of its party's budget until it
// settles.
type reservation struct {
	b     *costBudget
	party string
	once  sync.Once
	// read counts the bytes read of the request's body.
	read atomic.Int64
}

// reserve takes the largest cost of a request out of party's budget, or
// refuses the request: 429 naming the budget, with Retry-After the
// seconds until the budget holds it.
func (b *costBudget) reserve(party string, now time.Time) (*reservation, error) {
	wait, ok := b.limiter.take(party, b.maxCost, now)
	if ok {
		return &reservation{b: b, party: party}, nil
	}
	pr := problem(http.StatusTooManyRequests, b.slug, b.title,
		fmt.Sprintf("this party's budget of %g %s a second (burst %g, serve %s) does not hold the %g one request may cost, which a request reserves before it is read (it is then charged what it holds); nothing of this one was read or applied: send it again after the delay in Retry-After",
			b.limiter.rate, b.unit, b.limiter.burst, b.flag, b.maxCost))
	pr.retryAfterS = max(1, int(math.Ceil(wait.Seconds())))
	return nil, pr
}

// settle charges the request cost (at most the reservation) and gives the
// rest back; only the first call counts.
func (r *reservation) settle(cost int) {
	if r == nil {
		return
	}
	r.once.Do(func() {
		r.b.limiter.refund(r.party, r.b.maxCost-min(float64(cost), r.b.maxCost), time.Now())
	})
}

// settleRead settles a request its handler did not settle: it costs what
// it made the server read.
func (r *reservation) settleRead() {
	r.settle(int(min((r.read.Load()+r.b.bytesPerUnit-1)/r.b.bytesPerUnit, int64(r.b.maxCost))))
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
