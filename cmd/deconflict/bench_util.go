package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/api"
	"github.com/deconflict/deconflict/internal/server"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/traffic"
)

// This file holds what the bench modes share: timing figures, CPU
// profiles, and the HTTP clients of the ingest and latency measurements
// (--http against one server, --replicas against several).

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pct is the q-th percentile of the durations, in milliseconds.
func pct(d []time.Duration, q int) float64 {
	slices.Sort(d)
	return ms(d[min(len(d)-1, len(d)*q/100)])
}

// startCPUProfile writes a CPU profile to path until the returned stop is
// called; an empty path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func groupByParty(fleet []benchAircraft) map[string][]benchAircraft {
	byParty := map[string][]benchAircraft{}
	for _, a := range fleet {
		byParty[a.party] = append(byParty[a.party], a)
	}
	return byParty
}

// loadTracks reports every aircraft once, in batches spread over the
// replicas, so that the measurements run with all tracks live.
func loadTracks(client *http.Client, bases []string, tokens map[string]string, byParty map[string][]benchAircraft, batch int) error {
	for party, as := range byParty {
		for i := 0; i < len(as); i += batch {
			j := min(i+batch, len(as))
			if err := postBatch(client, bases[(i/batch)%len(bases)], tokens[party], batchBody(nil, as[i:j], time.Now())); err != nil {
				return err
			}
		}
	}
	return nil
}

// ingestLoad is clients that each own a slice of one party's aircraft and
// report it over and over, dead-reckoned to the wall clock; the clients
// are spread over the replicas.
type ingestLoad struct {
	start time.Time
	sent  atomic.Int64
	// paceNsPerReport, when set, slows the clients to a target rate.
	paceNsPerReport atomic.Int64
	errC            chan error
	wg              sync.WaitGroup
	cancel          context.CancelFunc
}

func startIngest(ctx context.Context, client *http.Client, bases []string, tokens map[string]string, byParty map[string][]benchAircraft, clients, batch int) *ingestLoad {
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
		base := bases[c%len(bases)]
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var buf []byte
			last := time.Now()
			for i := 0; ctx.Err() == nil && len(mine) > 0; i = (i + batch) % len(mine) {
				now := time.Now()
				if i == 0 {
					advance(mine, now.Sub(last).Seconds())
					last = now
				}
				j := min(i+batch, len(mine))
				buf = batchBody(buf, mine[i:j], now)
				if err := postBatch(client, base, tokens[party], buf); err != nil {
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

// benchAircraft is one simulated aircraft of the HTTP benchmark.
type benchAircraft struct {
	party, id               string
	latDeg, lonDeg, altM    float64
	velEastMps, velNorthMps float64
}

// benchTraffic generates n aircraft of two parties (coalition and russia)
// with the seeded generator of the airspace benchmarks, so that both
// benchmarks fly the same kind of traffic.
func benchTraffic(scenario string, n int, seed uint64) ([]benchAircraft, error) {
	reports, err := traffic.Generate(scenario, traffic.Options{Aircraft: n, Parties: 2, Seed: seed, Time: time.Now()})
	if err != nil {
		return nil, err
	}
	out := make([]benchAircraft, len(reports))
	for i, r := range reports {
		party := "coalition"
		if i%2 == 1 {
			party = "russia"
		}
		out[i] = benchAircraft{
			party: party, id: r.Party + "-" + r.Aircraft,
			latDeg: r.Pos.LatDeg, lonDeg: r.Pos.LonDeg, altM: r.Pos.AltM,
			velEastMps: r.VelEastMps, velNorthMps: r.VelNorthMps,
		}
	}
	return out, nil
}

// appendReport writes one report as JSON (docs/WIRE.md) without
// reflection, so that the client costs little next to the server on the
// same machine.
func appendReport(b []byte, a *benchAircraft, t time.Time) []byte {
	b = append(b, `{"aircraft":"`...)
	b = append(b, a.id...)
	b = append(b, `","time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","lat":`...)
	b = strconv.AppendFloat(b, a.latDeg, 'f', 6, 64)
	b = append(b, `,"lon":`...)
	b = strconv.AppendFloat(b, a.lonDeg, 'f', 6, 64)
	b = append(b, `,"alt_m":`...)
	b = strconv.AppendFloat(b, a.altM, 'f', 1, 64)
	b = append(b, `,"vel_east_mps":`...)
	b = strconv.AppendFloat(b, a.velEastMps, 'f', 2, 64)
	b = append(b, `,"vel_north_mps":`...)
	b = strconv.AppendFloat(b, a.velNorthMps, 'f', 2, 64)
	b = append(b, `,"vel_up_mps":0}`...)
	return b
}

func batchBody(buf []byte, as []benchAircraft, t time.Time) []byte {
	buf = append(buf[:0], `{"reports":[`...)
	for i := range as {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendReport(buf, &as[i], t)
	}
	return append(buf, "]}"...)
}

// advance dead-reckons the aircraft by dtS seconds.
func advance(as []benchAircraft, dtS float64) {
	for i := range as {
		a := &as[i]
		a.latDeg += a.velNorthMps * dtS / 111_195
		a.lonDeg += a.velEastMps * dtS / (111_195 * math.Cos(a.latDeg*math.Pi/180))
	}
}

func apiOptionsForBench() (o api.Options) {
	o.RatePerSecond = 1e6
	return o
}

func postBatch(client *http.Client, base, token string, body []byte) error {
	req, err := http.NewRequest("POST", base+"/v1/positions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST /v1/positions: %d %s", resp.StatusCode, b)
	}
	var out struct{ Rejected []json.RawMessage }
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	if len(out.Rejected) > 0 {
		return fmt.Errorf("POST /v1/positions rejected %d reports, e.g. %s", len(out.Rejected), out.Rejected[0])
	}
	return nil
}

// raisedWatcher follows one party's event stream and signals the arrival
// of alert_raised events by aircraft id.
type raisedWatcher struct {
	mu      sync.Mutex
	waiting map[string]chan struct{}
}

func (w *raisedWatcher) expect(aircraft string) chan struct{} {
	c := make(chan struct{})
	w.mu.Lock()
	w.waiting[aircraft] = c
	w.mu.Unlock()
	return c
}

func watchRaised(ctx context.Context, base, token string) (*raisedWatcher, error) {
	w := &raisedWatcher{waiting: map[string]chan struct{}{}}
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events?live=1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return nil, fmt.Errorf("events: %d", resp.StatusCode)
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok || !strings.Contains(data, `"alert_raised"`) {
				continue
			}
			var ev struct {
				Data struct {
					Aircraft []struct{ Aircraft string }
				}
			}
			if json.Unmarshal([]byte(data), &ev) != nil {
				continue
			}
			w.mu.Lock()
			for _, a := range ev.Data.Aircraft {
				if c, ok := w.waiting[a.Aircraft]; ok {
					close(c)
					delete(w.waiting, a.Aircraft)
				}
			}
			w.mu.Unlock()
		}
	}()
	return w, nil
}

// measureLatency creates head-on encounters away from the crowd, each in
// its own spot: a russia aircraft is reported to the last replica, then a
// coalition aircraft 20 km away flying at it to the first; one sample is
// the time from sending that second report to the alert_raised event at
// both parties' streams, coalition's on the first replica and russia's on
// the last.
func measureLatency(ctx context.Context, client *http.Client, bases []string, tokens map[string]string, samples int, encounter *int) ([]time.Duration, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first, last := bases[0], bases[len(bases)-1]
	wc, err := watchRaised(sctx, first, tokens["coalition"])
	if err != nil {
		return nil, err
	}
	wr, err := watchRaised(sctx, last, tokens["russia"])
	if err != nil {
		return nil, err
	}
	var out []time.Duration
	for range samples {
		i := *encounter
		*encounter++
		lat := -10 + float64(i%40)*0.5
		lon := 10 + float64(i/40)*0.5
		other := benchAircraft{party: "russia", id: "LR" + strconv.Itoa(i), latDeg: lat, lonDeg: lon, altM: 6000, velEastMps: -200}
		own := benchAircraft{party: "coalition", id: "LC" + strconv.Itoa(i), latDeg: lat, lonDeg: lon - 0.18, altM: 6000, velEastMps: 200}
		if err := postBatch(client, last, tokens["russia"], batchBody(nil, []benchAircraft{other}, time.Now())); err != nil {
			return nil, err
		}
		if len(bases) > 1 {
			// The first report's relay is not part of the measure.
			time.Sleep(20 * time.Millisecond)
		}
		gotC, gotR := wc.expect(own.id), wr.expect(own.id)
		t0 := time.Now()
		if err := postBatch(client, first, tokens["coalition"], batchBody(nil, []benchAircraft{own}, t0)); err != nil {
			return nil, err
		}
		for _, c := range []chan struct{}{gotC, gotR} {
			select {
			case <-c:
			case <-time.After(10 * time.Second):
				return nil, errors.New("no alert_raised within 10 s at both parties' streams")
			}
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

// tempSQLite opens a store in a new temporary data directory; done closes
// it and removes the directory.
func tempSQLite(prefix string) (dir string, st *sqlite.Store, done func(), err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, nil, err
	}
	st, err = sqlite.Open(context.Background(), dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	return dir, st, func() {
		st.Close()
		os.RemoveAll(dir)
	}, nil
}

// benchServers runs one in-process server per store until ctx ends: the
// replicas of one deployment, sharing dataDir (the audit signing key). The
// parties coalition and russia are created through the first. wait waits
// for the servers to stop and returns their errors; call it after ending
// ctx, also when benchServers fails.
func benchServers(ctx context.Context, stores []store.Store, dataDir string) (bases []string, tokens map[string]string, wait func() error, err error) {
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	wait = func() error {
		wg.Wait()
		return errors.Join(errs...)
	}
	for i, st := range stores {
		ready := make(chan error, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = server.Run(ctx, server.Config{
				Store: st, DataDir: dataDir, Listen: "127.0.0.1:0",
				// The benchmark measures the service, not the rate limiter.
				API: apiOptionsForBench(),
				Ready: func(base string, svc *service.Service) {
					var err error
					if i == 0 {
						tokens = map[string]string{}
						for _, party := range []string{"coalition", "russia"} {
							tok, e := svc.CreateParty(context.Background(), party)
							err = errors.Join(err, e)
							tokens[party] = tok
						}
					}
					bases = append(bases, base)
					ready <- err
				},
			})
			if errs[i] != nil {
				ready <- fmt.Errorf("server: %w", errs[i])
			}
		}()
		if err := <-ready; err != nil {
			return nil, nil, wait, err
		}
	}
	return bases, tokens, wait, nil
}
