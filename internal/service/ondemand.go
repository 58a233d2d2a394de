package service

import (
	"context"
	"runtime"
)

// Work a party asks for and waits for, a resolution on demand (the API's
// GET /v1/alerts/{id}/resolution: 1.5 ms of a core for two drones over a
// city, 10 ms for a manned aircraft) or a search of alternatives (up to a
// tenth of a second), is paid from that party's budget: the budget bounds
// what one party takes, not what many take together. Thirty drone
// operators over a city, each within its quarter of a core, would take
// every core, and ingest and the alerts, which nobody asks for, would wait
// behind them. So all such work of all parties together runs at most
// Config.OnDemandAtOnce at a time (half the cores by default): the rest
// wait their turn, in the order they came (a channel's blocked senders
// proceed first in, first out), and the other cores stay with ingest and
// alerts. The resolutions of alerts' events (the pool, s.resolving) are
// not work on demand and take no turn.

// DefaultOnDemandAtOnce is the default of Config.OnDemandAtOnce: half the
// cores the process may use, at least one.
func DefaultOnDemandAtOnce() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// OnDemandTurn waits for a turn to compute work on demand (see above),
// calling waiting first (when not nil) if it has to wait, until ctx ends
// (its cause). release gives the turn back; the caller must call it once
// the work is done.
func (s *Service) OnDemandTurn(ctx context.Context, waiting func()) (release func(), err error) {
	release = func() { <-s.onDemand }
	select {
	case s.onDemand <- struct{}{}:
		return release, nil
	default:
	}
	if waiting != nil {
		waiting()
	}
	select {
	case s.onDemand <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}
