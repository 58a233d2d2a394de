package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/store"
	"github.com/deconflict/deconflict/internal/traffic"
)

// BenchmarkPositionsHTTP posts batches of 1,000 reports over loopback to a
// server holding 2,000 tracks (the full-size figure, 25,000 tracks, is
// `deconflict bench --http`). It reports reports/s.
func BenchmarkPositionsHTTP(b *testing.B) {
	e := newEnv(b, Options{RatePerSecond: 1e6, ReportsPerSecond: 1e9, PreviewItemsPerSecond: 1e9, VolumePositionsPerSecond: 1e9})
	const tracks, batch = 2000, 1000
	body := func(lo int, now time.Time) []byte {
		var buf bytes.Buffer
		buf.WriteString(`{"reports":[`)
		for i := lo; i < lo+batch; i++ {
			if i > lo {
				buf.WriteByte(',')
			}
			// A grid of aircraft 0.2 degrees apart at two levels.
			fmt.Fprintf(&buf, `{"aircraft":"A%d","time":%q,"lat":%g,"lon":%g,"alt_m":%d,"vel_east_mps":200}`,
				i, now.UTC().Format(time.RFC3339Nano), 30+float64(i%50)*0.2, 30+float64(i/50)*0.2, 6000+(i%2)*3000)
		}
		buf.WriteString("]}")
		return buf.Bytes()
	}
	post := func(b *testing.B, data []byte) {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/positions", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+e.tokens["coalition"])
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	for lo := 0; lo < tracks; lo += batch {
		post(b, body(lo, time.Now()))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		data := body((i%(tracks/batch))*batch, time.Now())
		b.StartTimer()
		post(b, data)
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "reports/s")
}

// hostileBatches are the costliest batches of 10,000 reports found, each
// built against the intake's weak spots; clean is the baseline.
var hostileBatches = []struct {
	name string
	// report writes report i of the batch at now.
	report func(buf *bytes.Buffer, i int, now string)
}{
	{"clean", func(buf *bytes.Buffer, i int, now string) {
		fmt.Fprintf(buf, `{"aircraft":"A%d","time":%q,"lat":%g,"lon":%g,"alt_m":6000,"vel_east_mps":200}`,
			i, now, 20+float64(i%100)*0.2, 20+float64(i/100)*0.2)
	}},
	// Every other report has a speed above the engine's limit with each
	// component within it: each used to restart the batch.
	{"speeding", func(buf *bytes.Buffer, i int, now string) {
		v := 200
		if i%2 == 1 {
			v = 2000
		}
		fmt.Fprintf(buf, `{"aircraft":"A%d","time":%q,"lat":%g,"lon":%g,"alt_m":6000,"vel_east_mps":%d,"vel_north_mps":%d,"vel_up_mps":%d}`,
			i, now, 20+float64(i%100)*0.2, 20+float64(i/100)*0.2, v, v, v)
	}},
	// The same aircraft and time 10,000 times.
	{"duplicates", func(buf *bytes.Buffer, i int, now string) {
		fmt.Fprintf(buf, `{"aircraft":"A0","time":%q,"lat":20,"lon":20,"alt_m":6000,"vel_east_mps":200}`, now)
	}},
	// Reports missing a required number, and refused for a bad time.
	{"refused", func(buf *bytes.Buffer, i int, now string) {
		if i%2 == 0 {
			fmt.Fprintf(buf, `{"aircraft":"A%d","time":%q,"lon":20,"alt_m":6000}`, i, now)
		} else {
			fmt.Fprintf(buf, `{"aircraft":"A%d","time":"1999-01-01T00:00:00Z","lat":20,"lon":20,"alt_m":6000}`, i)
		}
	}},
	// Ids and callsigns at their longest, escaped so that the fast decoder
	// falls back to encoding/json.
	{"slow-decoding", func(buf *bytes.Buffer, i int, now string) {
		id := fmt.Sprintf("\\u0041%062d", i)
		fmt.Fprintf(buf, `{"aircraft":"%s","callsign":"\u00c9CALLSIGN-%05d","time":%q,"lat":%g,"lon":%g,"alt_m":6000,"vel_east_mps":200}`,
			id, i, now, 20+float64(i%100)*0.2, 20+float64(i/100)*0.2)
	}},
	// Every aircraft of the batch at one point: one cell of the detection
	// grid holds them all.
	{"stacked", func(buf *bytes.Buffer, i int, now string) {
		fmt.Fprintf(buf, `{"aircraft":"A%d","time":%q,"lat":20,"lon":20,"alt_m":6000,"vel_east_mps":200}`, i, now)
	}},
}

// BenchmarkPositionsHostileBatches posts each batch of hostileBatches to
// the handler (no network) in turn, each to a service of its own, at every
// iteration, and reports the cost per report of each as a ratio to the
// clean batch measured in the same iterations (<name>-x), and the clean
// cost (clean-ns/report). Cost is the process's CPU time (getrusage), which
// other load on the machine does not inflate the way it does wall time.
func BenchmarkPositionsHostileBatches(b *testing.B) {
	const batch = MaxReportsPerRequest
	type target struct {
		h     *Handler
		token string
	}
	targets := make([]target, len(hostileBatches))
	for i := range targets {
		e := newEnv(b, Options{RatePerSecond: 1e9, ReportsPerSecond: 1e9, PreviewItemsPerSecond: 1e9, VolumePositionsPerSecond: 1e9})
		targets[i] = target{NewHandler(e.svc, Options{RatePerSecond: 1e9, ReportsPerSecond: 1e9, PreviewItemsPerSecond: 1e9, VolumePositionsPerSecond: 1e9}), e.tokens["coalition"]}
	}
	spent := make([]time.Duration, len(hostileBatches))
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		for k, hb := range hostileBatches {
			b.StopTimer()
			now := time.Now().UTC().Format(time.RFC3339Nano)
			var buf bytes.Buffer
			buf.WriteString(`{"reports":[`)
			for i := range batch {
				if i > 0 {
					buf.WriteByte(',')
				}
				hb.report(&buf, i, now)
			}
			buf.WriteString("]}")
			req := httptest.NewRequest("POST", "/v1/positions", &buf)
			req.Header.Set("Authorization", "Bearer "+targets[k].token)
			rec := httptest.NewRecorder()
			b.StartTimer()
			start := cpuTime(b)
			targets[k].h.ServeHTTP(rec, req)
			spent[k] += cpuTime(b) - start
			if rec.Code != http.StatusAccepted {
				b.Fatalf("%s: status %d %.300s", hb.name, rec.Code, rec.Body.String())
			}
		}
	}
	b.ReportMetric(float64(spent[0].Nanoseconds())/float64(b.N*batch), "clean-ns/report")
	for k := 1; k < len(hostileBatches); k++ {
		b.ReportMetric(float64(spent[k])/float64(spent[0]), hostileBatches[k].name+"-x")
	}
}

// cpuTime is the CPU time the process used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFullHistoryStreams opens 150 event streams (30 of each of five
// parties) that replay a history of 20,000 events of 1 KB from the start,
// with clients that read nothing, and reports the Go heap they hold per
// stream once their replay is under way (heap-KiB/stream).
func BenchmarkFullHistoryStreams(b *testing.B) {
	const events, perParty = 20_000, 30
	parties := []string{"p1", "p2", "p3", "p4", "p5"}
	st := openTestStore(b)
	body := []byte(`{"text":"` + strings.Repeat("x", 1000) + `"}`)
	for lo := 0; lo < events; lo += 1000 {
		err := st.Update(context.Background(), func(tx store.Tx) error {
			for range 1000 {
				if _, err := tx.AppendEvent(store.Event{Time: time.Now().UTC(), Kind: "message", Audience: []string{"*"}, Body: body}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	e := newEnvOn(b, st, Options{RatePerSecond: 1e9, ReportsPerSecond: 1e9, PreviewItemsPerSecond: 1e9, VolumePositionsPerSecond: 1e9, HeartbeatEvery: time.Hour})
	tokens := map[string]string{}
	for _, p := range parties {
		var out struct{ Token string }
		e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": p}, http.StatusCreated, &out)
		tokens[p] = out.Token
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	b.ResetTimer()
	for range b.N {
		before := heap()
		var bodies []io.ReadCloser
		for _, p := range parties {
			for range perParty {
				req, _ := http.NewRequest("GET", e.srv.URL+"/v1/events", nil)
				req.Header.Set("Authorization", "Bearer "+tokens[p])
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					b.Fatal(err)
				}
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("stream: %d", resp.StatusCode)
				}
				bodies = append(bodies, resp.Body)
			}
		}
		time.Sleep(2 * time.Second) // every stream reads its first pages and blocks on its client
		b.ReportMetric(float64(heap()-before)/1024/float64(len(bodies)), "heap-KiB/stream")
		for _, rc := range bodies {
			rc.Close()
		}
	}
}

// BenchmarkTracksNeedToKnow is one party's GET /v1/tracks among 25,000
// tracks of two others (global traffic), through the handler without the
// network: the party flies 200 aircraft around 35 N 38 E, as the observer
// of `deconflict bench --http` does, and sees its own and the few
// disclosed to it. It reports the tracks answered.
func BenchmarkTracksNeedToKnow(b *testing.B) {
	e := newEnv(b, Options{RatePerSecond: 1e9, ReportsPerSecond: 1e9, PreviewItemsPerSecond: 1e9, VolumePositionsPerSecond: 1e9})
	e.addParty("observer")
	now := time.Now()
	reps, err := traffic.Generate("global", traffic.Options{Aircraft: 25_000, Parties: 2, Seed: 14, Time: now})
	if err != nil {
		b.Fatal(err)
	}
	byParty := map[string][]any{}
	for i, r := range reps {
		party := map[string]string{"p1": "coalition", "p2": "russia"}[r.Party]
		byParty[party] = append(byParty[party], report(r.Aircraft, r.Pos.LatDeg, r.Pos.LonDeg, r.Pos.AltM, r.VelEastMps, now))
		if i < 200 {
			lat, lon := 35+float64(i%20)*0.25-2.5, 38+float64(i/20)*0.3-1.5
			byParty["observer"] = append(byParty["observer"], report(fmt.Sprintf("OBS-%03d", i), lat, lon, 5000+float64(i%7)*900, 200, now))
		}
	}
	// Twice: an aircraft's disclosure is decided at its own reports.
	for range 2 {
		for party, rs := range byParty {
			for lo := 0; lo < len(rs); lo += 1000 {
				e.mustDo("POST", "/v1/positions", e.tokens[party], map[string]any{"reports": rs[lo:min(lo+1000, len(rs))]}, 202, nil)
			}
		}
	}
	h := e.srv.Config.Handler
	get := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v1/tracks", nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens["observer"])
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return rec
	}
	n := strings.Count(get().Body.String(), `"aircraft"`)
	b.ResetTimer()
	for range b.N {
		get()
	}
	b.ReportMetric(float64(n), "tracks")
}

// BenchmarkSignedPositionsHTTP posts, at every iteration, one batch of
// 1,000 reports of a party without a key and one signed by a party with a
// key (RFC 9421, content digest, the statement committed before the batch
// is applied), over loopback from the Go client, in alternating order; the
// two parties fly 6 km apart in altitude so that neither raises alerts with
// the other. It reports the signed batch's cost as a ratio to the unsigned
// one's in the same iterations, in the process's CPU time (signed-cpu-x,
// client and server: what the signature costs whatever the machine's load)
// and on the wall clock (signed-wall-x: with the wait for the commit), and
// the unsigned batch's CPU time (unsigned-cpu-ms/batch). `deconflict bench
// --audit` measures the same from one client and from several at once.
func BenchmarkSignedPositionsHTTP(b *testing.B) {
	e := newEnv(b, Options{RatePerSecond: 1e9, ReportsPerSecond: 1e9, PreviewItemsPerSecond: 1e9, VolumePositionsPerSecond: 1e9})
	key, _ := partykey.Generate()
	var tok struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]any{"name": "delta", "public_keys": []string{partykey.Format(partykey.Public(key))}}, 201, &tok)
	ctx := context.Background()
	clients := []*client.Client{client.New(e.srv.URL, e.tokens["coalition"]), client.New(e.srv.URL, tok.Token).WithKey(key)}
	batch := func(k int) []client.Report {
		now := time.Now()
		rs := make([]client.Report, 1000)
		for i := range rs {
			rs[i] = client.Report{Aircraft: fmt.Sprintf("A%d", i), Time: now, LatDeg: -60 + 0.12*float64(i), LonDeg: -170 + 0.34*float64(i),
				AltM: 3000 + 6000*float64(k), VelEastMps: 200}
		}
		return rs
	}
	var cpu, wall [2]time.Duration
	for it := 0; it < b.N+1; it++ {
		for j := range 2 {
			k := (it + j) % 2
			rs := batch(k)
			start, cpu0 := time.Now(), cpuTime(b)
			r, err := clients[k].PostPositions(ctx, rs)
			if err != nil || len(r.Rejected) > 0 {
				b.Fatalf("party %d: %v %v", k, err, r.Rejected)
			}
			if it > 0 { // the first round creates the tracks
				cpu[k] += cpuTime(b) - cpu0
				wall[k] += time.Since(start)
			}
		}
		if it == 0 {
			b.ResetTimer()
		}
	}
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "signed-cpu-x")
	b.ReportMetric(float64(wall[1])/float64(wall[0]), "signed-wall-x")
	b.ReportMetric(float64(cpu[0].Milliseconds())/float64(b.N), "unsigned-cpu-ms/batch")
}
