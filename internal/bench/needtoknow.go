package bench

// This file holds what --http measures of need to know (package
// disclose): ingest with it against ingest without it, alternately in the
// same run, and GET /v1/tracks for one party among all the tracks.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/deconflict/deconflict/internal/client"
)

// observerParty flies a theatre-sized fleet among the global traffic of
// coalition and russia: the party whose view of the airspace is measured.
const observerParty = "observer"

// observerFleet is n aircraft of observerParty within about 300 km of 35 N
// 38 E, between 5,000 and 11,000 m, seeded, where they are now.
func observerFleet(n int) []aircraft {
	rng := rand.New(rand.NewPCG(14, 1))
	out := make([]aircraft, n)
	at := time.Now()
	for i := range out {
		heading := rng.Float64() * 2 * math.Pi
		out[i] = aircraft{
			party: observerParty, id: fmt.Sprintf("OBS-%04d", i),
			latDeg: 35 + (rng.Float64()*2-1)*2.7, lonDeg: 38 + (rng.Float64()*2-1)*3.3, altM: 5000 + 6000*rng.Float64(),
			velEastMps: 220 * math.Sin(heading), velNorthMps: 220 * math.Cos(heading),
			at: at,
		}
	}
	return out
}

// tracksView is what GET /v1/tracks answered one party: its size, and the
// time of each request from sending to the last byte read.
type tracksView struct {
	tracks int
	times  []time.Duration
	// cpu is the process's CPU time (server and client) per timed
	// request: what a request costs, which a loaded machine does not
	// inflate the way it does the wall-clock times.
	cpu time.Duration
}

// measureTracks times n sequential GET /v1/tracks of c, after a few to warm
// up; the size is that of the first answer (the tracks are all live then).
func measureTracks(ctx context.Context, c *client.Client, n int) (tracksView, error) {
	var v tracksView
	var cpu0 time.Duration
	for i := -5; i < n; i++ {
		if i == 0 {
			cpu0 = cpuTime()
		}
		t0 := time.Now()
		b, err := c.TracksJSON(ctx, "")
		if err != nil {
			return v, err
		}
		if i >= 0 {
			v.times = append(v.times, time.Since(t0))
		}
		if i == -5 {
			var answer struct {
				Tracks []json.RawMessage `json:"tracks"`
			}
			if err := json.Unmarshal(b, &answer); err != nil {
				return v, err
			}
			v.tracks = len(answer.Tracks)
		}
	}
	v.cpu = (cpuTime() - cpu0) / time.Duration(n)
	return v, nil
}

// phase is what one ingest phase did: reports sent, wall time, and the
// CPU time of the process (server and clients), which a loaded machine
// does not inflate the way it does wall time.
type phase struct {
	sent      int64
	wall, cpu time.Duration
}

func (p phase) rate() float64   { return float64(p.sent) / p.wall.Seconds() }
func (p phase) perCPU() float64 { return float64(p.sent) / p.cpu.Seconds() }

// medianOf is the median of xs (the mean of the middle two).
func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func (p *phase) add(o phase) {
	p.sent += o.sent
	p.wall += o.wall
	p.cpu += o.cpu
}

// ingestPhase runs the ingest load on d for dur.
func ingestPhase(ctx context.Context, d *deployment, byParty map[string][]aircraft, clients, batch int, dur time.Duration) (phase, error) {
	cpu0 := cpuTime()
	load := startIngest(ctx, d, byParty, clients, batch)
	time.Sleep(dur)
	sent := load.sent.Load()
	elapsed := time.Since(load.start)
	cpu := cpuTime() - cpu0
	load.stop()
	return phase{sent: sent, wall: elapsed, cpu: cpu}, load.err()
}

// warmUp runs the ingest load on d for at least minDur and until it sent
// minReports (at most 20 times minDur).
func warmUp(ctx context.Context, d *deployment, byParty map[string][]aircraft, clients, batch int, minDur time.Duration, minReports int) error {
	load := startIngest(ctx, d, byParty, clients, batch)
	defer load.stop()
	for {
		time.Sleep(100 * time.Millisecond)
		el := time.Since(load.start)
		if el >= minDur && load.sent.Load() >= int64(minReports) || el >= 20*minDur {
			return load.err()
		}
		if err := load.err(); err != nil {
			return err
		}
	}
}

// startWarm starts a deployment, loads the tracks of byParty and warms it
// up past the first round of reports, which raises every alert of the
// airspace at once (and commits them), so that what is measured next is
// the steady state. On error nothing is left running.
func startWarm(ctx context.Context, opt deploymentOptions, byParty map[string][]aircraft, clients, batch int, minDur time.Duration) (*deployment, func() error, error) {
	d, done, err := startOne(ctx, opt)
	if err != nil {
		return nil, nil, err
	}
	reports := 0
	for _, fleet := range byParty {
		reports += len(fleet)
	}
	if err := loadTracks(ctx, d, byParty, batch); err != nil {
		done()
		return nil, nil, err
	}
	if err := warmUp(ctx, d, byParty, clients, batch, minDur, 2*reports); err != nil {
		done()
		return nil, nil, err
	}
	return d, done, nil
}
