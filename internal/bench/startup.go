package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// StartupOptions sizes the server start measurement.
type StartupOptions struct {
	Volumes int // volumes in the data directory
	Runs    int // starts measured on each directory (the median is reported)
	// Dir holds the volumes: filled when it has no store yet, kept
	// afterwards; "" uses a temporary directory.
	Dir string
	// CPUProfile, when set, receives a CPU profile of the starts.
	CPUProfile string
}

// StartupResult is the JSON of `deconflict bench --startup --json`.
type StartupResult struct {
	Volumes       int     `json:"volumes"`
	FillS         float64 `json:"fill_s"`
	EmptyStartMs  float64 `json:"empty_start_ms"`
	FullStartMs   float64 `json:"full_start_ms"`
	Ratio         float64 `json:"full_over_empty"`
	Runs          int     `json:"runs"`
	VolumesServed int     `json:"volumes_served"`
	LoadAverage   string  `json:"load_average"`
}

// Startup times a server start (open the store, load the rules and the
// volume index, listen) on a data directory holding o.Volumes volumes
// against one on an empty directory, alternately.
func Startup(o StartupOptions, progress Progress) (StartupResult, error) {
	res := StartupResult{Volumes: o.Volumes, Runs: o.Runs}
	empty, err := os.MkdirTemp("", "deconflict-start-empty-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(empty)
	full := o.Dir
	fill := true
	if full == "" {
		if full, err = os.MkdirTemp("", "deconflict-start-full-"); err != nil {
			return res, err
		}
		defer os.RemoveAll(full)
	} else if _, err := os.Stat(filepath.Join(full, sqlite.FileName)); err == nil {
		fill = false
	} else if err := os.MkdirAll(full, 0o700); err != nil {
		return res, err
	}
	if fill {
		progress("filling a data directory with %d volumes", o.Volumes)
		t0 := time.Now()
		if err := fillVolumes(full, o.Volumes, progress); err != nil {
			return res, err
		}
		res.FillS = time.Since(t0).Seconds()
	}
	stopProfile, err := StartCPUProfile(o.CPUProfile)
	if err != nil {
		return res, err
	}
	defer stopProfile()

	var emptyT, fullT []time.Duration
	for i := 0; i < o.Runs; i++ {
		d, _, err := timeStart(empty)
		if err != nil {
			return res, err
		}
		emptyT = append(emptyT, d)
		d, served, err := timeStart(full)
		if err != nil {
			return res, err
		}
		fullT = append(fullT, d)
		res.VolumesServed = served
		progress("run %d: empty %v, %d volumes %v", i+1, emptyT[i], o.Volumes, d)
	}
	res.EmptyStartMs = ms(median(emptyT))
	res.FullStartMs = ms(median(fullT))
	res.Ratio = res.FullStartMs / res.EmptyStartMs
	res.LoadAverage = LoadAverage()
	if res.VolumesServed != o.Volumes {
		return res, fmt.Errorf("the started server holds %d volumes, want %d", res.VolumesServed, o.Volumes)
	}
	return res, nil
}

// WriteText writes the result for a person.
func (res StartupResult) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "server start (open store, load rules and volume index, listen), median of %d, load %s\n", res.Runs, res.LoadAverage)
	fmt.Fprintf(w, "  empty data directory:      %8.1f ms\n", res.EmptyStartMs)
	fmt.Fprintf(w, "  with %7d volumes:       %8.1f ms\n", res.Volumes, res.FullStartMs)
	_, err := fmt.Fprintf(w, "  ratio:                     %8.1f\n", res.Ratio)
	return err
}

// operator reads every volume (reduced) in the start measurement.
var operator = party.Principal{Party: party.OperatorName, Operator: true}

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
			vs, err := svc.QueryVolumes(operator, nil, volume.Extent{LowerM: -1e9, UpperM: 1e9, From: time.Unix(0, 0), To: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)})
			if err == nil {
				served = len(vs)
			}
			cancel()
		},
	})
	return took, served, err
}

// fillPerTx is how many volumes one fill transaction stores.
const fillPerTx = 100

// fillVolumes stores n volumes of four parties through the volume registry,
// fillPerTx per transaction: circles of 2 to 10 km and polygons, spread over the
// world in four longitude bands (one per party, so that none needs a key),
// windows over the next day.
func fillVolumes(dir string, n int, progress Progress) error {
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
			for i := made; i < min(made+fillPerTx, n); i++ {
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
				res, err := reg.Create(tx, "party"+strconv.Itoa(p), in, rl, now)
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
