package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/client"
)

// post sends one batch (a body from batchBody) and insists that every
// report is accepted: a rejection means the measurement is not measuring
// what it says.
func post(ctx context.Context, c *client.Client, body []byte) error {
	res, err := c.PostPositionsJSON(ctx, body)
	if err != nil {
		return err
	}
	if len(res.Rejected) > 0 {
		return fmt.Errorf("POST /v1/positions rejected %d reports, e.g. %+v", len(res.Rejected), res.Rejected[0])
	}
	return nil
}

// loadTracks reports every aircraft once, in batches spread over the
// replicas, so that the measurements run with all tracks live.
func loadTracks(ctx context.Context, d *deployment, byParty map[string][]aircraft, batch int) error {
	var buf []byte
	for party, as := range byParty {
		for i := 0; i < len(as); i += batch {
			j := min(i+batch, len(as))
			now := time.Now()
			at := slices.Clone(as[i:j])
			advanceTo(at, now)
			buf = batchBody(buf, at, now)
			if err := post(ctx, d.replica(party, i/batch), buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// ingestLoad is clients that each own a slice of one party's aircraft and
// report it over and over, each batch dead-reckoned to the time it is
// stamped with; the clients are spread over the replicas.
type ingestLoad struct {
	start time.Time
	sent  atomic.Int64
	// paceNsPerReport, when set, slows the clients to a target rate.
	paceNsPerReport atomic.Int64
	errC            chan error
	wg              sync.WaitGroup
	cancel          context.CancelFunc
}

func startIngest(ctx context.Context, d *deployment, byParty map[string][]aircraft, clients, batch int) *ingestLoad {
	ctx, cancel := context.WithCancel(ctx)
	l := &ingestLoad{errC: make(chan error, clients), cancel: cancel, start: time.Now()}
	half := (clients + 1) / 2
	for c := range clients {
		party := "coalition"
		if c%2 == 1 {
			party = "russia"
		}
		own := byParty[party]
		per := (len(own) + half - 1) / half
		lo := min((c/2)*per, len(own))
		mine := slices.Clone(own[lo:min(lo+per, len(own))])
		cl := d.replica(party, c)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var buf []byte
			for i := 0; ctx.Err() == nil && len(mine) > 0; i = (i + batch) % len(mine) {
				now := time.Now()
				j := min(i+batch, len(mine))
				advanceTo(mine[i:j], now)
				buf = batchBody(buf, mine[i:j], now)
				if err := post(ctx, cl, buf); err != nil {
					if ctx.Err() == nil {
						l.errC <- err
					}
					return
				}
				l.sent.Add(int64(j - i))
				if pace := l.paceNsPerReport.Load(); pace > 0 {
					// Paced: each client keeps its share of the target rate.
					next := now.Add(time.Duration(pace * int64(j-i) * int64(clients)))
					time.Sleep(time.Until(next))
				}
			}
		}()
	}
	return l
}

// rate is the reports per second sent since the start.
func (l *ingestLoad) rate() float64 {
	return float64(l.sent.Load()) / time.Since(l.start).Seconds()
}

// err is the first error of a client, if any has failed.
func (l *ingestLoad) err() error {
	select {
	case err := <-l.errC:
		return err
	default:
		return nil
	}
}

// pace slows the clients to reportsPerS over all of them.
func (l *ingestLoad) pace(reportsPerS float64) {
	l.paceNsPerReport.Store(int64(float64(time.Second) / reportsPerS))
}

// stop ends the load and waits for the clients.
func (l *ingestLoad) stop() {
	l.cancel()
	l.wg.Wait()
}
