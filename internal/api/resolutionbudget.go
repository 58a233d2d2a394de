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
// until the party's previous one has been charged; and all parties'
// together take turns with the searches of alternatives
// (service.OnDemandTurn), so that many parties, each within its budget,
// do not take every core. The resolutions
// computed for alerts' events (the service's pool) are no party's
// request and are charged to none. The operator's requests are charged
// to the operator's own budget, like any party's.

// ResolutionBaseWork is what every resolution on demand costs besides the
// tracks it goes through, and what the budget must hold for one to be
// computed (service.ResolutionBaseUnits); a request answered 404 or 410,
// which computed nothing, costs this.
const ResolutionBaseWork = service.ResolutionBaseUnits

// ResolutionWorkPerTested is what a track the bands or suggestion are
// computed against costs, a track the search lists costing a unit
// (service.ResolutionUnitsPerTested).
const ResolutionWorkPerTested = service.ResolutionUnitsPerTested

// DefaultResolutionWorkPerSecond is the default of
// Options.ResolutionWorkPerSecond: a quarter of a core for one party. A
// unit of work took 139-189 ns of a core, whatever the alert
// (BenchmarkResolve's cpu-ns/unit at a load average of 13 on 2 cores,
// 2026-12-07 18:03-18:05 UTC: global 25,000 189, metro 5,000 174, metro
// 25,000 two drones' 139 and a manned aircraft's 164-189; at a lower load
// the same resolutions have measured cheaper, BENCHMARKS.md), so 1.5
// million units a second is 0.21-0.28 of a core, less at a lower load.
// That is some 26 resolutions a second of a manned aircraft's alert over a
// city of 25,000 (57,000 units, 9.4-10.8 ms), or 145 of two drones'
// (10,300 units, 1.4 ms): an operations centre asking for the resolutions
// of a dozen open alerts, one of them with a manned aircraft over that
// city, three times a second (some 500,000 units a second) is never
// refused, nor a program asking for one alert's ten times a second. The
// web console asks for at most four alerts' every 5 s (web/src/alerts.js),
// some 46,000 units a second at most: thirty consoles of one party fit.
// The burst, twice the rate, holds the resolutions of some 50 manned
// aircraft's alerts asked for at once.
const DefaultResolutionWorkPerSecond = 1_500_000

// resolutionCost is what a resolution on demand that made work cost, in
// units of work (service.ResolutionWork.Units), ResolutionBaseWork when it
// computed nothing.
func resolutionCost(work service.ResolutionWork) float64 { return work.Units() }

// resolutionSlots lets each party have one resolution on demand computed
// at a time, each in a turn of the service's work on demand (turn:
// service.OnDemandTurn), which bounds all parties' together. A request
// takes its party's slot first, then a turn, so that at most one a party
// waits for the turns and they go to the parties in turn.
type resolutionSlots struct {
	mu    sync.Mutex
	slots map[string]chan struct{}
	turn  func(ctx context.Context, waiting func()) (release func(), err error)
	// waiting, for tests only, is called when a request waits for its
	// party's slot; waitingTurn when it waits for a turn.
	waiting, waitingTurn func(party string)
}

// acquire waits for party's slot, then for a turn, or until ctx ends (its
// error). release gives both back.
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
	default:
		if s.waiting != nil {
			s.waiting(party)
		}
		select {
		case slot <- struct{}{}:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	var waitingTurn func()
	if s.waitingTurn != nil {
		waitingTurn = func() { s.waitingTurn(party) }
	}
	done, err := s.turn(ctx, waitingTurn)
	if err != nil {
		<-slot
		return nil, err
	}
	return func() { done(); <-slot }, nil
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
