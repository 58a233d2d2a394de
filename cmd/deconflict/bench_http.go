package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/server"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/volume"
)

func init() {
	registerBenchMode(benchMode{
		flag:    "--startup",
		summary: "server start time on a data directory holding N volumes, against an empty one",
		run:     runBenchStartup,
	})
}

type startupResult struct {
	Volumes       int     `json:"volumes"`
	FillS         float64 `json:"fill_s"`
	EmptyStartMs  float64 `json:"empty_start_ms"`
	FullStartMs   float64 `json:"full_start_ms"`
	Ratio         float64 `json:"full_over_empty"`
	Runs          int     `json:"runs"`
	VolumesServed int     `json:"volumes_served"`
}

func runBenchStartup(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench --startup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("startup", true, "select this mode")
	n := fs.Int("volumes", 100_000, "volumes in the data directory")
	runs := fs.Int("runs", 3, "starts measured on each directory (median)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *n < 0 || *runs < 1 {
		return usagef("--volumes >= 0 and --runs >= 1")
	}
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "bench --startup: "+format+"\n", a...) }
	res := startupResult{Volumes: *n, Runs: *runs}

	empty, err := os.MkdirTemp("", "deconflict-start-empty-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(empty)
	full, err := os.MkdirTemp("", "deconflict-start-full-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(full)

	progress("filling a data directory with %d volumes", *n)
	t0 := time.Now()
	if err := fillVolumes(full, *n, progress); err != nil {
		return err
	}
	res.FillS = time.Since(t0).Seconds()

	var emptyT, fullT []time.Duration
	for i := 0; i < *runs; i++ {
		d, _, err := timeStart(empty)
		if err != nil {
			return err
		}
		emptyT = append(emptyT, d)
		d, served, err := timeStart(full)
		if err != nil {
			return err
		}
		fullT = append(fullT, d)
		res.VolumesServed = served
		progress("run %d: empty %v, %d volumes %v", i+1, emptyT[i], *n, d)
	}
	slices.Sort(emptyT)
	slices.Sort(fullT)
	res.EmptyStartMs = ms(emptyT[len(emptyT)/2])
	res.FullStartMs = ms(fullT[len(fullT)/2])
	res.Ratio = res.FullStartMs / res.EmptyStartMs
	if res.VolumesServed != *n {
		return fmt.Errorf("the started server holds %d volumes, want %d", res.VolumesServed, *n)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "server start (open store, load rules and volume index, listen), median of %d\n", res.Runs)
	fmt.Fprintf(stdout, "  empty data directory:      %8.1f ms\n", res.EmptyStartMs)
	fmt.Fprintf(stdout, "  with %7d volumes:       %8.1f ms\n", res.Volumes, res.FullStartMs)
	fmt.Fprintf(stdout, "  ratio:                     %8.1f\n", res.Ratio)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// svcOperator reads every volume (reduced) in the start measurement.
var svcOperator = party.Principal{Party: party.OperatorName, Operator: true}

// timeStart measures from opening the store to the server listening, then
// shuts the server down; it returns how many volumes the server holds.
func timeStart(dir string) (time.Duration, int, error) {
	t0 := time.Now()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var took time.Duration
	var served int
	err = server.Run(ctx, server.Config{
		Store: st, DataDir: dir, Listen: "127.0.0.1:0",
		Ready: func(_ string, svc *service.Service) {
			took = time.Since(t0)
			vs, err := svc.QueryVolumes(svcOperator, nil, -1e9, 1e9, time.Unix(0, 0), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC))
			if err == nil {
				served = len(vs)
			}
			cancel()
		},
	})
	return took, served, err
}

// fillVolumes stores n volumes of four parties through the volume registry,
// 1,000 per transaction: circles of 2 to 10 km and polygons, spread over the
// world in four longitude bands (one per party, so that none needs a key),
// windows over the next day.
func fillVolumes(dir string, n int, progress func(string, ...any)) error {
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		return err
	}
	defer st.Close()
	rl := rules.Default()
	reg := volume.NewRegistry(rl)
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Now().UTC().Truncate(time.Second)
	made := 0
	for made < n {
		var results []volume.Result
		err := st.Update(context.Background(), func(tx store.Tx) error {
			results = results[:0]
			for i := made; i < min(made+1000, n); i++ {
				p := i % 4
				lon := -180 + float64(p)*90 + 2 + rng.Float64()*86
				lat := -60 + rng.Float64()*120
				start := now.Add(time.Duration(rng.IntN(20*3600)) * time.Second)
				in := volume.Input{
					AltLowerM: float64(rng.IntN(10)) * 1000, Start: start, End: start.Add(time.Duration(1+rng.IntN(3)) * time.Hour),
					State: volume.Accepted, Details: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`),
				}
				in.AltUpperM = in.AltLowerM + 1000
				r := 2000 + rng.Float64()*8000
				if i%3 == 0 {
					d := r / 111_000
					in.Footprint = volume.Footprint{Type: "Polygon", Coordinates: [][][]float64{{
						{lon - d, lat - d}, {lon + d, lat - d}, {lon + d, lat + d}, {lon - d, lat + d}, {lon - d, lat - d}}}}
				} else {
					in.Footprint = volume.Footprint{Type: "Circle", Center: []float64{lon, lat}, RadiusM: r}
				}
				res, err := reg.Create(tx, "party"+strconv.Itoa(p), in, nil, rl, now)
				if err != nil {
					return fmt.Errorf("volume %d: %w", i, err)
				}
				results = append(results, res)
			}
			return nil
		})
		if err != nil {
			return err
		}
		reg.Apply(results...)
		made += len(results)
		if made%20_000 == 0 {
			progress("%d volumes stored", made)
		}
	}
	if made != n {
		return errors.New("fill: count mismatch")
	}
	return nil
}
