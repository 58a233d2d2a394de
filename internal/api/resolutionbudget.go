package api

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/service"
)

// A resolution on demand (GET /v1/alerts/{id}/resolution) computes the
// bands and suggestions of the alert's aircraft afresh: in a city of
// drones about 1.5 ms of a core for two drones, 9 to 11 ms for a manned
// aircraft, whose reach covers the city (BENCHMARKS.md). Counted by
// request only, one party asking for a manned aircraft's alert in a loop
// at the request rate took some ten cores, and everybody's ingest and
// alerts waited behind it. So each party has a budget of them, counted in
// units of work (resolutionCost), not by request.
//
// What a resolution costs is known only once it is computed, and it is
// computed from the live picture, which no request bounds: so a request
// is refused with 429, computing nothing and changing nothing, when its
// party's budget does not hold at least ResolutionBaseWork; else it takes
// that, is computed, and is charged the rest of what it cost after,
// which can take the budget below zero (a manned aircraft's resolution
// with little left): the party's next requests are refused until the rate
// has paid it back. So that no request is computed on the credit of
// another still being computed (a hundred sent at once would all find
// the base there), a party's resolutions are computed one at a time
// (resolutionSlots): a request waits, holding nothing of the budget,
// until the party's previous one has been charged. The resolutions
// computed for alerts' events (the service's pool) are no party's
// request and are charged to none. The operator's requests are charged
// to the operator's own budget, like any party's.

// ResolutionBaseWork is what every resolution on demand costs besides the
// tracks it goes through, in units of work: what the least of them cost
// (about 0.1-0.15 ms, the intercept of the fit below: its frames and
// tests, need to know, the answer), and what the budget must hold for
// one to be computed. A request answered 404 or 410 costs this.
const ResolutionBaseWork = 1000

// ResolutionWorkPerTested is what a track the bands and suggestion are
// computed against costs, in units of work, beside a track the search
// lists (a unit): fitted, with ResolutionBaseWork, by least squares to the
// CPU time of every open alert's resolution in metro 25,000 and 5,000
// (8.3 and 8.6), which the cost then follows within a sixth for both
// drones' alerts and a manned aircraft's.
const ResolutionWorkPerTested = 8

// DefaultResolutionWorkPerSecond is the default of
// Options.ResolutionWorkPerSecond: a unit of work took 150 ns of a core
// on a loaded machine (75-100 ns at a low load), so 2 million units a
// second is a fifth to a third of a core for one party. That is some 35
// resolutions a second of a manned aircraft's alert in metro 25,000
// (57,000 units), or 200 of two drones' (10,000): an operations centre
// asking for the resolutions of a dozen open alerts, one of them with a
// manned aircraft over a city, three times a second (some 450,000 a
// second) is never refused.
const DefaultResolutionWorkPerSecond = 2_000_000

// resolutionCost is what a resolution on demand that made work cost, in
// units of work.
func resolutionCost(work service.ResolutionWork) float64 {
	return ResolutionBaseWork + float64(work.Listed) + ResolutionWorkPerTested*float64(work.Tested)
}

// resolutionSlots lets each party have one resolution on demand computed
// at a time.
type resolutionSlots struct {
	mu    sync.Mutex
	slots map[string]chan struct{}
	// waiting, for tests only, is called when a request waits for its
	// party's slot.
	waiting func(party string)
}

// acquire waits for party's slot, or until ctx ends (its error). release
// gives the slot back.
func (s *resolutionSlots) acquire(ctx context.Context, party string) (release func(), err error) {
	s.mu.Lock()
	if s.slots == nil {
		s.slots = map[string]chan struct{}{}
	}
	slot, ok := s.slots[party]
	if !ok {
		slot = make(chan struct{}, 1)
		s.slots[party] = slot
	}
	s.mu.Unlock()
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	default:
	}
	if s.waiting != nil {
		s.waiting(party)
	}
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// resolutionOnDemand computes the resolution of alert id for p, paid from
// p's budget of resolutions (see above).
func (h *Handler) resolutionOnDemand(ctx context.Context, p party.Principal, id string) (service.Resolution, error) {
	release, err := h.resolutionSlots.acquire(ctx, p.Party)
	if err != nil {
		return service.Resolution{}, err
	}
	defer release()
	b := h.resolutions
	if res, wait, _ := b.reserveCost(p.Party, ResolutionBaseWork, time.Now()); res == nil {
		return service.Resolution{}, b.refusal(p.Party, wait, fmt.Sprintf(
			"does not hold the %d units of work a resolution costs at least, which it takes before it is computed (it is then charged what it cost: %d a resolution, a unit a track its search lists, %d a track its bands or suggestion are computed against); nothing was computed",
			ResolutionBaseWork, ResolutionBaseWork, ResolutionWorkPerTested))
	}
	out, work, err := h.svc.ResolutionWork(p, id)
	b.limiter.charge(p.Party, resolutionCost(work)-ResolutionBaseWork, time.Now())
	return out, err
}
