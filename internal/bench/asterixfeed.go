package bench

// This file holds what --asterix-feed measures: whether an ASTERIX feed
// keeps up with the server it feeds.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/asterix"
	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/feed"
	"github.com/deconflict/deconflict/internal/store"
)

// ASTERIXFeedOptions sizes `deconflict bench --asterix-feed`.
type ASTERIXFeedOptions struct {
	// Recording is an ASTERIX recording in any framing the feed reads.
	Recording string
	// Clients post the recording's reports concurrently when the server's
	// ingest capacity is measured.
	Clients int
	// Rounds is how many times each measurement runs, alternately; the
	// medians are reported.
	Rounds int
	// Duration is the least length of each measurement: the feed replays
	// the recording as many times as that takes.
	Duration time.Duration
}

// ASTERIXFeedResult is the JSON of `deconflict bench --asterix-feed --json`.
type ASTERIXFeedResult struct {
	Recording string `json:"recording"`
	Framing   string `json:"framing"`
	// Reports is what one pass over the recording gives (track updates
	// completed by the assembler), of Aircraft aircraft.
	Reports  int `json:"reports_per_pass"`
	Aircraft int `json:"aircraft"`
	Batch    int `json:"batch"`
	Clients  int `json:"clients"`
	Rounds   int `json:"rounds"`
	// ServerIngestPerS is the server's HTTP ingest of the recording's
	// reports (Clients concurrent clients posting prepared batches): what
	// it can take. Medians of the rounds, each round's figure beside.
	ServerIngestPerS float64   `json:"server_ingest_reports_per_s"`
	ServerIngestRuns []float64 `json:"server_ingest_runs"`
	// FeedDeliveredPerS is what the whole feed (framing, decoding,
	// assembly, batching, JSON, POST, one request at a time, as `deconflict
	// feed asterix --speed 0` runs) delivered into the same server.
	FeedDeliveredPerS float64   `json:"feed_delivered_reports_per_s"`
	FeedDeliveredRuns []float64 `json:"feed_delivered_runs"`
	FeedOverServer    float64   `json:"feed_over_server"`
	// FeedOfferedPerS is the feed into a server that only reads and accepts
	// each batch: what the feed can offer when the server costs nothing.
	FeedOfferedPerS   float64   `json:"feed_offered_reports_per_s"`
	FeedOfferedRuns   []float64 `json:"feed_offered_runs"`
	OfferedOverServer float64   `json:"feed_offered_over_server"`
	FeedUndeliverable int64     `json:"feed_undeliverable"`
	FeedRetries       int64     `json:"feed_retries"`
	// FeedRetryErrors are the distinct answers that made the feed retry.
	FeedRetryErrors []string `json:"feed_retry_errors,omitempty"`
	// The same per CPU second of the process (the load average inflates
	// wall time, not CPU time): the server's ingest (with its load
	// clients), the feed into the server (feed and server), the feed into
	// the sink (the feed alone, the sink's share being slight), and the
	// ratio of the last to the first: above 1, a feed with one core
	// offers more than a server with one core ingests.
	ServerIngestPerCPUS float64 `json:"server_ingest_reports_per_cpu_s"`
	FeedDeliveredPerCPU float64 `json:"feed_delivered_reports_per_cpu_s"`
	FeedOfferedPerCPU   float64 `json:"feed_offered_reports_per_cpu_s"`
	OfferedOverServerCP float64 `json:"feed_offered_over_server_per_cpu_s"`
	LoadAverage         string  `json:"load_average"`
}

// ASTERIXFeed measures, in one process and run, the server's HTTP ingest
// capacity for the reports of an ASTERIX recording, and what the feed
// delivers into that same server replaying the recording as fast as it
// goes; then what the feed offers a server that does nothing. The
// measurements alternate over the rounds so that a change of the
// machine's load falls on all of them.
func ASTERIXFeed(ctx context.Context, o ASTERIXFeedOptions, progress Progress) (ASTERIXFeedResult, error) {
	res := ASTERIXFeedResult{Recording: filepath.Base(o.Recording), Batch: feed.DefaultMaxBatch, Clients: o.Clients, Rounds: o.Rounds}
	data, err := os.ReadFile(o.Recording)
	if err != nil {
		return res, err
	}
	framing, reports, err := decodeRecording(ctx, data)
	if err != nil {
		return res, err
	}
	res.Framing, res.Reports = framing.String(), len(reports)
	byAircraft := map[string][]client.Report{}
	for _, r := range reports {
		byAircraft[r.Aircraft] = append(byAircraft[r.Aircraft], r)
	}
	res.Aircraft = len(byAircraft)
	if res.Reports == 0 {
		return res, fmt.Errorf("%s gives no reports", o.Recording)
	}
	progress("%s (%s framing): %d reports of %d aircraft a pass", res.Recording, res.Framing, res.Reports, res.Aircraft)

	_, st, closeStore, err := tempSQLite("deconflict-bench-asterix-")
	if err != nil {
		return res, err
	}
	defer closeStore()
	dataDir, err := os.MkdirTemp("", "deconflict-bench-asterix-data-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dataDir)
	srvCtx, stop := context.WithCancel(ctx)
	d, err := startDeployment(srvCtx, []store.Store{st}, dataDir, deploymentOptions{})
	if err != nil {
		stop()
		return res, errors.Join(err, d.wait())
	}
	defer func() {
		stop()
		_ = d.wait()
	}()
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(client.PositionsResult{Accepted: bytes.Count(body, []byte(`"aircraft":`))})
	}))
	defer sink.Close()

	bodies := prepareBodies(byAircraft, o.Clients, res.Batch)
	var serverCPU, feedCPU, sinkCPU time.Duration
	var serverN, feedN, sinkN int64
	for round := range o.Rounds {
		rate, n, cpu, err := serverIngest(ctx, d.replica("coalition", 0), bodies, o.Duration)
		if err != nil {
			return res, fmt.Errorf("server ingest: %w", err)
		}
		res.ServerIngestRuns = append(res.ServerIngestRuns, rate)
		serverN, serverCPU = serverN+n, serverCPU+cpu
		progress("round %d: server ingest %.0f reports/s", round+1, rate)

		stats, rate, cpu, err := feedReplay(ctx, d.replica("coalition", 0), data, framing, o.Duration, func(err error) {
			if !slices.Contains(res.FeedRetryErrors, err.Error()) {
				res.FeedRetryErrors = append(res.FeedRetryErrors, err.Error())
			}
		})
		if err != nil {
			return res, fmt.Errorf("feed: %w", err)
		}
		n = stats.Sent.Load()
		res.FeedDeliveredRuns = append(res.FeedDeliveredRuns, rate)
		res.FeedUndeliverable += stats.Undeliverable.Load()
		res.FeedRetries += stats.Retries.Load()
		feedN, feedCPU = feedN+n, feedCPU+cpu
		progress("round %d: feed delivered %.0f reports/s", round+1, rate)

		stats, rate, cpu, err = feedReplay(ctx, client.New(sink.URL, "t"), data, framing, o.Duration, func(error) {})
		if err != nil {
			return res, fmt.Errorf("feed into a sink: %w", err)
		}
		sinkN, sinkCPU = sinkN+stats.Sent.Load(), sinkCPU+cpu
		res.FeedOfferedRuns = append(res.FeedOfferedRuns, rate)
		res.FeedUndeliverable += stats.Undeliverable.Load()
		progress("round %d: feed offered %.0f reports/s", round+1, rate)
	}
	if res.FeedUndeliverable > 0 {
		return res, fmt.Errorf("the feed could not deliver %d reports: the measurement is not of a feed that keeps up", res.FeedUndeliverable)
	}
	res.ServerIngestPerS = medianOf(res.ServerIngestRuns)
	res.FeedDeliveredPerS = medianOf(res.FeedDeliveredRuns)
	res.FeedOfferedPerS = medianOf(res.FeedOfferedRuns)
	res.FeedOverServer = res.FeedDeliveredPerS / res.ServerIngestPerS
	res.OfferedOverServer = res.FeedOfferedPerS / res.ServerIngestPerS
	res.ServerIngestPerCPUS = float64(serverN) / serverCPU.Seconds()
	res.FeedDeliveredPerCPU = float64(feedN) / feedCPU.Seconds()
	res.FeedOfferedPerCPU = float64(sinkN) / sinkCPU.Seconds()
	res.OfferedOverServerCP = res.FeedOfferedPerCPU / res.ServerIngestPerCPUS
	res.LoadAverage = LoadAverage()
	return res, nil
}

// decodeRecording reads a recording once through the feed's decoder and
// returns its framing and the reports it gives.
func decodeRecording(ctx context.Context, data []byte) (asterix.Framing, []client.Report, error) {
	fr, framing, err := asterix.NewFrameReader(bytes.NewReader(data), asterix.FramingAuto)
	if err != nil {
		return framing, nil, err
	}
	out := make(chan client.Report, 1024)
	var reports []client.Report
	done := make(chan struct{})
	go func() {
		for r := range out {
			reports = append(reports, r)
		}
		close(done)
	}()
	err = feed.NewASTERIXDecoder(nil).Replay(ctx, fr, &feed.Pacer{}, out)
	close(out)
	<-done
	return framing, reports, err
}

// preparedBody is one batch of reports encoded once, but for their times,
// which are written at each send.
type preparedBody struct {
	// parts[i] precedes the time of report i; the last part closes the body.
	parts [][]byte
}

// prepareBodies splits the aircraft among clients (each aircraft's reports
// in order, with one client) and encodes each client's reports in batches.
func prepareBodies(byAircraft map[string][]client.Report, clients, batch int) [][]preparedBody {
	ids := make([]string, 0, len(byAircraft))
	for id := range byAircraft {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	own := make([][]client.Report, clients)
	for i, id := range ids {
		own[i%clients] = append(own[i%clients], byAircraft[id]...)
	}
	out := make([][]preparedBody, clients)
	for c, reports := range own {
		slices.SortStableFunc(reports, func(a, b client.Report) int { return a.Time.Compare(b.Time) })
		for i := 0; i < len(reports); i += batch {
			out[c] = append(out[c], prepare(reports[i:min(i+batch, len(reports))]))
		}
	}
	return out
}

// timeMark is the time every report is encoded with before its encoding is
// cut around it.
var timeMark = []byte(`"time":"0001-01-01T00:00:00Z"`)

func prepare(reports []client.Report) preparedBody {
	var b preparedBody
	cur := []byte(`{"reports":[`)
	for i, r := range reports {
		r.Time = time.Time{}
		enc, _ := json.Marshal(r)
		before, after, _ := bytes.Cut(enc, timeMark)
		if i > 0 {
			cur = append(cur, ',')
		}
		cur = append(cur, before...)
		cur = append(cur, `"time":"`...)
		b.parts = append(b.parts, cur)
		cur = append([]byte(`"`), after...)
	}
	b.parts = append(b.parts, append(cur, "]}"...))
	return b
}

// body writes the batch with report i at t0 plus i microseconds.
func (p preparedBody) body(buf []byte, t0 time.Time) []byte {
	buf = buf[:0]
	for i, part := range p.parts[:len(p.parts)-1] {
		buf = append(buf, part...)
		buf = t0.Add(time.Duration(i)*time.Microsecond).UTC().AppendFormat(buf, time.RFC3339Nano)
	}
	return append(buf, p.parts[len(p.parts)-1]...)
}

// serverIngest posts the prepared batches, one client a goroutine, each
// going round its own batches, for d, and returns the reports/s the server
// accepted, how many, and the process's CPU time.
func serverIngest(ctx context.Context, c *client.Client, bodies [][]preparedBody, d time.Duration) (float64, int64, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var accepted atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, len(bodies))
	cpu0, start := cpuTime(), time.Now()
	for i, own := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for k := 0; ctx.Err() == nil; k = (k + 1) % len(own) {
				buf = own[k].body(buf, time.Now())
				if err := post(ctx, c, buf); err != nil {
					if ctx.Err() == nil {
						errs[i] = err
					}
					return
				}
				accepted.Add(int64(len(own[k].parts) - 1))
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	for _, err := range errs {
		if err != nil {
			return 0, 0, 0, err
		}
	}
	return float64(accepted.Load()) / elapsed.Seconds(), accepted.Load(), cpu, nil
}

// feedReplay runs the feed as `deconflict feed asterix --file F --speed 0`
// does, into c, passing over the recording until d has gone by, and
// returns its counts, the reports/s delivered and the process's CPU time;
// failed is told each error of a POST.
func feedReplay(ctx context.Context, c *client.Client, data []byte, framing asterix.Framing, d time.Duration, failed func(error)) (*feed.Stats, float64, time.Duration, error) {
	postFn := func(ctx context.Context, reports []client.Report) (client.PositionsResult, error) {
		res, err := c.PostPositions(ctx, reports)
		if err != nil {
			failed(err)
		}
		return res, err
	}
	stats := &feed.Stats{}
	cpu0, start := cpuTime(), time.Now()
	for time.Since(start) < d {
		fr, _, err := asterix.NewFrameReader(bytes.NewReader(data), framing)
		if err != nil {
			return nil, 0, 0, err
		}
		s := &feed.Sender{Post: postFn, Stats: stats}
		in := make(chan client.Report, 4*feed.DefaultMaxBatch)
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, in) }()
		err = feed.NewASTERIXDecoder(nil).Replay(ctx, fr, &feed.Pacer{}, in)
		close(in)
		if serr := <-done; err == nil {
			err = serr
		}
		if err != nil {
			return nil, 0, 0, err
		}
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	return stats, float64(stats.Sent.Load()) / elapsed.Seconds(), cpu, nil
}

// WriteText writes the result for a person.
func (res ASTERIXFeedResult) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "ASTERIX feed against the server it feeds: %s (%s framing), %d reports of %d aircraft a pass, batches of %d, %d rounds, load %s\n",
		res.Recording, res.Framing, res.Reports, res.Aircraft, res.Batch, res.Rounds, res.LoadAverage)
	fmt.Fprintf(w, "  server HTTP ingest of these reports (%d clients):     %10.0f reports/s  %s\n", res.Clients, res.ServerIngestPerS, runs(res.ServerIngestRuns))
	fmt.Fprintf(w, "  feed delivered into that server (one feed, --speed 0): %10.0f reports/s  %s\n", res.FeedDeliveredPerS, runs(res.FeedDeliveredRuns))
	fmt.Fprintf(w, "  ratio feed / server:                                   %10.2f\n", res.FeedOverServer)
	fmt.Fprintf(w, "  feed into a server that only accepts (what it offers): %10.0f reports/s  %s\n", res.FeedOfferedPerS, runs(res.FeedOfferedRuns))
	fmt.Fprintf(w, "  ratio offered / server:                                %10.2f\n", res.OfferedOverServer)
	fmt.Fprintf(w, "  per CPU second of the process: server ingest %.0f, feed into the server %.0f, feed alone %.0f reports\n",
		res.ServerIngestPerCPUS, res.FeedDeliveredPerCPU, res.FeedOfferedPerCPU)
	fmt.Fprintf(w, "  ratio feed alone / server ingest, per CPU second:      %10.2f\n", res.OfferedOverServerCP)
	fmt.Fprintf(w, "  undeliverable %d, retries %d\n", res.FeedUndeliverable, res.FeedRetries)
	for _, e := range res.FeedRetryErrors {
		fmt.Fprintf(w, "  the feed retried after: %s\n", e)
	}
	return nil
}

func runs(v []float64) string {
	s := "(runs"
	for _, x := range v {
		s += fmt.Sprintf(" %.0f", x)
	}
	return s + ")"
}
