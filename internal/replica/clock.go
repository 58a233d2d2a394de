package replica

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Clock is the wall clock of a replica on the shared PostgreSQL: the
// host's clock corrected by its offset from the database server's, so that
// every replica tells the same time whatever its host's clock says. The
// service compares that time with what other replicas wrote: the deadline
// of a hotline item posted by one replica is escalated by whichever replica
// looks first, a volume ends at the first replica's look, and a position
// report is refused as being from the future or too old. With one host's
// clock 30 s ahead, every replica's items were escalated 30 s early; one
// 30 s behind refused every report as "more than 10 s in the future".
//
// The offset is measured by reading clock_timestamp() and placing it at the
// middle of the round trip (the error is at most half of it), the best of
// a few samples, again at each Sync. The lease does not use this clock: it
// counts on the host's monotonic clock alone.
type Clock struct {
	pool   *pgxpool.Pool
	local  func() time.Time
	offset atomic.Int64 // nanoseconds to add to local
}

// clockSamples is how many round trips a Sync measures, keeping the
// shortest.
const clockSamples = 3

// NewClock returns the clock of a replica whose host clock is local
// (time.Now when nil), measured once against the database behind pool.
func NewClock(ctx context.Context, pool *pgxpool.Pool, local func() time.Time) (*Clock, error) {
	if local == nil {
		local = time.Now
	}
	c := &Clock{pool: pool, local: local}
	if _, err := c.Sync(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Now is the database server's time as this replica estimates it.
func (c *Clock) Now() time.Time {
	return c.local().Add(time.Duration(c.offset.Load()))
}

// Sync measures the offset again and returns it (what to add to the host's
// clock). On failure the offset stays as it was.
func (c *Clock) Sync(ctx context.Context) (time.Duration, error) {
	best, bestRTT := time.Duration(0), time.Duration(-1)
	for range clockSamples {
		before := c.local()
		var db time.Time
		if err := c.pool.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&db); err != nil {
			return time.Duration(c.offset.Load()), fmt.Errorf("replica: reading the database's clock: %w", err)
		}
		after := c.local()
		rtt := after.Sub(before)
		if bestRTT < 0 || rtt < bestRTT {
			best, bestRTT = db.Sub(before.Add(rtt/2)), rtt
		}
	}
	// A new measurement that differs from the offset in use by no more than
	// the noise of measuring keeps it: replacing it would move the clock
	// back and forth by that noise every Sync, and the times the service
	// stamps would not keep their order. A host clock that drifted or
	// stepped moves it.
	if old := time.Duration(c.offset.Load()); (best - old).Abs() <= clockNoise {
		return old, nil
	}
	c.offset.Store(int64(best))
	return best, nil
}

// clockNoise is the change of offset a Sync takes for the noise of
// measuring it: far above the half round trip to a database a replica
// works with, far below anything the service's times are compared at.
const clockNoise = 20 * time.Millisecond
