package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/testutil/silentsource"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/feed"
)

// apiFake is a stand-in server for the feed commands: it answers /v1/me as
// party, fails the first failFirst POSTs of positions with 503, and records
// the reports it accepts.
type apiFake struct {
	party     string
	failFirst int

	mu      sync.Mutex
	posts   int
	reports []client.Report
}

func (f *apiFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/me":
		json.NewEncoder(w).Encode(client.Me{Party: f.party})
	case "/v1/positions":
		f.mu.Lock()
		defer f.mu.Unlock()
		f.posts++
		if f.posts <= f.failFirst {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var body struct{ Reports []client.Report }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.reports = append(f.reports, body.Reports...)
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(client.PositionsResult{Accepted: len(body.Reports)})
	case "/v1/volumes":
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(client.Volume{ID: fmt.Sprint(time.Now().UnixNano()), Version: "1"})
	case "/v1/events":
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	default:
		if strings.HasSuffix(r.URL.Path, "/state") {
			json.NewEncoder(w).Encode(client.Volume{})
			return
		}
		http.NotFound(w, r)
	}
}

func (f *apiFake) accepted() []client.Report {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]client.Report(nil), f.reports...)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFeedSBSFile(t *testing.T) {
	fake := &apiFake{party: "coalition"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	file := writeFile(t, "rec.sbs", strings.Join([]string{
		"MSG,1,1,1,4CA2D6,1,2015/10/07,06:00:00.000,2015/10/07,06:00:00.000,RYR5KH,,,,,,,,0,0,0,0",
		"MSG,4,1,1,4CA2D6,1,2015/10/07,06:00:00.100,2015/10/07,06:00:00.100,,,450,90,,,0,,0,0,0,0",
		"MSG,3,1,1,4CA2D6,1,2015/10/07,06:00:00.200,2015/10/07,06:00:00.200,,30000,,,36.0,37.0,,,0,0,0,0",
		"MSG,3,1,1,4CA2D6,1,2015/10/07,06:00:00.700,2015/10/07,06:00:00.700,,30000,,,36.0,37.001,,,0,0,0,0",
		"MSG,3,1,1,4CA2D6,broken",
	}, "\n"))
	var out, errOut bytes.Buffer
	start := time.Now()
	err := feedMain(context.Background(), []string{"sbs", "--file", file, "--party", "coalition", "--server", srv.URL, "--token", "t", "--status", "0"}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	got := fake.accepted()
	if len(got) != 2 || got[0].Callsign != "RYR5KH" || got[1].LonDeg != 37.001 {
		t.Fatalf("server got %+v", got)
	}
	// Re-stamped onto the wall clock at the file's own pace.
	if d := got[1].Time.Sub(got[0].Time); got[0].Time.Before(start) || d != 500*time.Millisecond {
		t.Errorf("stamps %v and %v (run started %v)", got[0].Time, got[1].Time, start)
	}
	if !strings.Contains(out.String(), "sent=2 skipped=1 undeliverable=0") {
		t.Errorf("output %q", out.String())
	}
}

// TestFeedSBSConnectSurvivesSourceAndServerOutages: the BaseStation source
// drops the connection after every position, and the server answers 503
// twice before it recovers; the feed reconnects, retries, and delivers
// every report.
func TestFeedSBSConnectSurvivesSourceAndServerOutages(t *testing.T) {
	fake := &apiFake{party: "coalition", failFirst: 2}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const connections = 4
	go func() {
		for i := 0; i < connections; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "MSG,4,1,1,71BE01,1,,,,,,,420,45,,,0,,0,0,0,0\r\n")
			fmt.Fprintf(c, "MSG,3,1,1,71BE01,1,,,,,,25000,,,35.%d,36.0,,,0,0,0,0\r\n", i+1)
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- feedMain(ctx, []string{"sbs", "--connect", ln.Addr().String(), "--party", "coalition",
			"--server", srv.URL, "--token", "t", "--status", "0"}, &out, &errOut)
	}()
	for len(fake.accepted()) < connections && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	got := fake.accepted()
	if len(got) != connections {
		t.Fatalf("server accepted %d reports, want %d", len(got), connections)
	}
	for i, r := range got {
		if want := fmt.Sprintf("35.%d", i+1); fmt.Sprint(r.LatDeg) != want {
			t.Errorf("report %d at lat %v, want %s", i, r.LatDeg, want)
		}
	}
	final := out.String()
	if !strings.Contains(final, fmt.Sprintf("sent=%d skipped=0 undeliverable=0 retries=2", connections)) ||
		strings.Contains(final, "reconnects=0") || !strings.Contains(final, "aircraft_full=0") {
		t.Errorf("final status %q", final)
	}
}

func TestFeedJSONLAndArguments(t *testing.T) {
	fake := &apiFake{party: "russia"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	now := time.Now().UTC()
	lines := fmt.Sprintf("{\"aircraft\":\"RF-1\",\"time\":%q,\"lat\":35.4,\"lon\":35.9,\"alt_m\":6000}\nnot json\n", now.Format(time.RFC3339Nano))
	file := writeFile(t, "r.jsonl", lines)
	tokens := writeFile(t, "tokens", "coalition AAA\nrussia BBB\n")
	var out, errOut bytes.Buffer
	if err := feedMain(context.Background(), []string{"jsonl", "--file", file, "--party", "russia", "--server", srv.URL, "--token-file", tokens, "--status", "0"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if got := fake.accepted(); len(got) != 1 || !got[0].Time.Equal(now) || got[0].Aircraft != "RF-1" {
		t.Errorf("server got %+v", got)
	}
	if !strings.Contains(errOut.String(), "skipped") || !strings.Contains(out.String(), "sent=1 skipped=1") {
		t.Errorf("output %q / %q", out.String(), errOut.String())
	}

	bad := [][]string{
		{},
		{"csv"},
		{"sbs", "--token", "t", "--server", srv.URL},
		{"sbs", "--file", file, "--connect", "x:1", "--token", "t", "--server", srv.URL},
		{"jsonl", "--connect", "x:1", "--token", "t", "--server", srv.URL},
		{"jsonl", "--file", file, "--server", srv.URL},
		{"jsonl", "--file", file, "--party", "coalition", "--token", "t", "--server", srv.URL}, // the token is russia's
		{"jsonl", "--file", file, "--party", "nobody", "--token-file", tokens, "--server", srv.URL},
		{"jsonl", "--file", file, "--batch", "20000", "--token", "t", "--server", srv.URL},
	}
	for _, args := range bad {
		err := feedMain(context.Background(), args, &out, &errOut)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("feed %q: err %v, want a usage error", args, err)
		}
	}
}

func TestReplayAsFastAsPossibleStaysInTheWindow(t *testing.T) {
	fake := &apiFake{party: "coalition"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var b strings.Builder
	for i := 0; i < 200; i++ {
		// Hours apart in the file: replayed at once, stamped near now.
		fmt.Fprintf(&b, "{\"aircraft\":\"A\",\"time\":%q,\"lat\":35,\"lon\":36,\"alt_m\":5000}\n",
			time.Date(2015, 10, 7, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Hour).Format(time.RFC3339))
	}
	file := writeFile(t, "day.jsonl", b.String())
	var out, errOut bytes.Buffer
	start := time.Now()
	if err := replayMain(context.Background(), []string{file, "--speed", "max", "--server", srv.URL, "--token", "t", "--status", "0"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	got := fake.accepted()
	if len(got) != 200 {
		t.Fatalf("server got %d reports", len(got))
	}
	for i, r := range got {
		if r.Time.Before(start) || r.Time.After(end.Add(5*time.Second)) || (i > 0 && !r.Time.After(got[i-1].Time)) {
			t.Fatalf("report %d stamped %v (run %v..%v)", i, r.Time, start, end)
		}
	}
	if err := replayMain(context.Background(), []string{file, "--speed", "-1", "--token", "t"}, &out, &errOut); err == nil {
		t.Error("negative speed accepted")
	}
	// NaN passed every bound: every report was stamped centuries ago.
	if err := replayMain(context.Background(), []string{file, "--speed", "NaN", "--token", "t"}, &out, &errOut); err == nil {
		t.Error("speed NaN accepted")
	}
	if err := replayMain(context.Background(), []string{"--token", "t"}, &out, &errOut); err == nil {
		t.Error("replay without a file accepted")
	}
	var ue usageError
	if err := replayMain(context.Background(), []string{file, "--batch", "0", "--token", "t", "--server", srv.URL}, &out, &errOut); !errors.As(err, &ue) {
		t.Errorf("replay --batch 0: err %v, want a usage error", err)
	}
}

func TestSimCommandRunsAScenarioSlice(t *testing.T) {
	fake := &apiFake{party: "coalition"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	tokens := writeFile(t, "tokens", "coalition AAA\nrussia BBB\n")
	var out, errOut bytes.Buffer
	args := []string{"--scenario", "syria-2015", "--speed", "max", "--server", srv.URL, "--token-file", tokens,
		"--from", "demo", "--until", "06:02", "--ack-delay", "0s"}
	if err := simMain(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if len(fake.accepted()) == 0 {
		t.Fatal("no reports sent")
	}
	last := strings.TrimSpace(out.String())
	if !strings.Contains(last, "sim 06:02:00") || !strings.Contains(last, fmt.Sprintf("reports %d", len(fake.accepted()))) {
		t.Errorf("progress %q", last)
	}
	bad := [][]string{
		{"--server", srv.URL},
		{"--token-file", tokens, "--scenario", "mars-2040"},
		{"--token-file", writeFile(t, "one", "coalition AAA\n")},
		{"--token-file", tokens, "--from", "noon"},
		{"--token-file", tokens, "--speed", "fast"},
	}
	for _, a := range bad {
		var ue usageError
		if err := simMain(context.Background(), a, &out, &errOut); !errors.As(err, &ue) {
			t.Errorf("sim %q: err %v, want a usage error", a, err)
		}
	}
}

// TestBadTokensAreRefused: a token no Authorization header
// can carry (a stray control byte in the file or the flag) is refused at
// once, naming the file and the party, instead of every request failing
// as if the server could not be reached, and retried without end. So is a
// file naming a party twice: the first token would give way to the
// second without a word, and the second may be the stale one.
func TestBadTokensAreRefused(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"tok\x01en\n", "the token contains U+0001"},
		{"coalition AAA\nrussia BB\x7fB\n", "the token of russia contains U+007F"},
		{"coalition AAA\nrussia BBB\ncoalition CCC\n", `party "coalition" named twice`},
		{"AAA\n# again\nBBB\n", "a second bare token"},
	} {
		path := writeFile(t, "tokens", c.file)
		_, err := loadTokenFile(path)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("token file %q: %v, want a usage error naming %s and saying %q", c.file, err, path, c.want)
		}
	}
	cf := clientFlags{server: "http://127.0.0.1:1", token: "AA\x1bA"}
	if _, err := cf.client(context.Background(), io.Discard); err == nil || !strings.Contains(err.Error(), "--token: contains U+001B") {
		t.Errorf("--token with an escape: %v", err)
	}
}

func FuzzParseTokens(f *testing.F) {
	f.Add("coalition AAA\nrussia BBB\n")
	f.Add("# demo tokens\n\n  justonetoken  \n")
	f.Add("a b c\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		tokens, err := parseTokens(strings.NewReader(text))
		if err != nil {
			return
		}
		// Written back one per line, the same tokens come out.
		var b strings.Builder
		for party, tok := range tokens {
			if party == "" {
				fmt.Fprintln(&b, tok)
			} else {
				fmt.Fprintln(&b, party, tok)
			}
			if strings.ContainsAny(party+tok, " \t\n") || tok == "" {
				t.Fatalf("party %q token %q", party, tok)
			}
		}
		again, err := parseTokens(strings.NewReader(b.String()))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(tokens) {
			t.Fatalf("round trip: %v, %v -> %v", err, tokens, again)
		}
	})
}

// stalledPositions is apiFake whose POSTs of positions wait for release:
// a server that does not take the feed's reports (away, or the party's
// budget of reports spent, answered 429 until it refills).
type stalledPositions struct {
	apiFake
	release chan struct{}
}

func (f *stalledPositions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/positions" {
		<-f.release
	}
	f.apiFake.ServeHTTP(w, r)
}

// TestFeedSBSConnectKeepsReadingWhileTheServerStalls: while the server
// takes no report, the live BaseStation feed reads on, stamping each
// report when it arrives, and drops (counts undeliverable) what its queue
// has no room for. It stopped reading instead, the source's lines waited
// in the socket, and each was stamped when read once the server took
// reports again: positions of the past sent as the aircraft's present.
func TestFeedSBSConnectKeepsReadingWhileTheServerStalls(t *testing.T) {
	fake := &stalledPositions{apiFake: apiFake{party: "coalition"}, release: make(chan struct{})}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	defer func() {
		select {
		case <-fake.release:
		default:
			close(fake.release)
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const aircraft = 40 // far beyond the queue of --batch 1
	secondConnection := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		for i := range aircraft {
			fmt.Fprintf(c, "MSG,4,1,1,71BE%02d,1,,,,,,,420,45,,,0,,0,0,0,0\r\n", i)
			fmt.Fprintf(c, "MSG,3,1,1,71BE%02d,1,,,,,,25000,,,35.%d,36.0,,,0,0,0,0\r\n", i, i+1)
		}
		c.Close()
		// The feed reconnects once it has read the whole of the first.
		if c, err = ln.Accept(); err == nil {
			close(secondConnection)
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- feedMain(ctx, []string{"sbs", "--connect", ln.Addr().String(), "--party", "coalition",
			"--server", srv.URL, "--token", "t", "--status", "0", "--batch", "1"}, &out, &errOut)
	}()
	select {
	case <-secondConnection:
	case <-ctx.Done():
		t.Fatal("the feed stopped reading its source while the server took no report")
	}
	released := time.Now()
	close(fake.release)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, r := range fake.accepted() {
		if r.Time.After(released) {
			t.Errorf("report of %s stamped %v, after the server took reports again (%v): read late", r.Aircraft, r.Time, released)
		}
	}
	if !strings.Contains(out.String(), "undeliverable=") || strings.Contains(out.String(), "undeliverable=0 ") {
		t.Errorf("final status %q: the reports dropped are not counted", out.String())
	}
	if !strings.Contains(out.String(), "\nfeed undeliverable ") || !strings.Contains(out.String(), " "+feed.UndeliverableQueueFull) {
		t.Errorf("final status %q: why reports were dropped is not said", out.String())
	}
}

// A live source's report offered to a full queue takes the place of the
// oldest queued, which is counted undeliverable: what the server gets
// when it takes reports again is the newest the source gave.
func TestFeedLiveOfferKeepsTheNewest(t *testing.T) {
	p := &pipeline{in: make(chan client.Report, 3), stats: &feed.Stats{}}
	for i := range 5 {
		p.offer(client.Report{Aircraft: fmt.Sprint("A", i)})
	}
	var got []string
	for range 3 {
		got = append(got, (<-p.in).Aircraft)
	}
	if want := []string{"A2", "A3", "A4"}; !slices.Equal(got, want) || p.stats.Undeliverable.Load() != 2 {
		t.Fatalf("queued %v with %d undeliverable, want %v and 2", got, p.stats.Undeliverable.Load(), want)
	}
	if got, want := p.stats.UndeliverableSummary(), "undeliverable 2 reports: 2 "+feed.UndeliverableQueueFull; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

// TestFeedSBSConnectDropsASilentSource: a BaseStation source that accepts
// the connection and then sends nothing is said to have gone silent after
// --idle-timeout, dropped and connected again. The feed waited on it for
// ever, saying nothing. An idle timeout of 0 or less is refused, naming
// the flag.
func TestFeedSBSConnectDropsASilentSource(t *testing.T) {
	fake := &apiFake{party: "coalition"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	addr, accepted := silentsource.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- feedMain(ctx, []string{"sbs", "--connect", addr, "--idle-timeout", "50ms", "--party", "coalition",
			"--server", srv.URL, "--token", "t", "--status", "0"}, &out, &errOut)
	}()
	for i := range 2 {
		select {
		case c := <-accepted:
			defer c.Close()
		case err := <-done:
			t.Fatalf("the feed ended: %v\n%s", err, errOut.String())
		case <-ctx.Done():
			t.Fatalf("connection %d never made: the feed still waits on a source that sends nothing", i+1)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if want := "source " + addr + " sent nothing for 0.05 s"; !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr %q, want %q", errOut.String(), want)
	}
	for _, idle := range []string{"0", "-1s"} {
		err := feedMain(context.Background(), []string{"sbs", "--connect", addr, "--idle-timeout", idle,
			"--party", "coalition", "--server", srv.URL, "--token", "t"}, &out, &errOut)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--idle-timeout") {
			t.Errorf("--idle-timeout %s: err %v, want a usage error naming --idle-timeout", idle, err)
		}
	}
}

// TestFeedSBSStatusSaysTheAircraftRefused: the status lines of a
// BaseStation feed and replay say how many messages of new aircraft the
// assembler refused, holding MaxAircraft already (aircraft_full), as the
// ASTERIX feed's do: they did not, and a source naming ever new aircraft
// silently lost every new one.
func TestFeedSBSStatusSaysTheAircraftRefused(t *testing.T) {
	fake := &apiFake{party: "coalition"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	file := writeFile(t, "rec.sbs", strings.Join([]string{
		"MSG,4,1,1,4CA2D6,1,2015/10/07,06:00:00.100,2015/10/07,06:00:00.100,,,450,90,,,0,,0,0,0,0",
		"MSG,3,1,1,4CA2D6,1,2015/10/07,06:00:00.200,2015/10/07,06:00:00.200,,30000,,,36.0,37.0,,,0,0,0,0",
	}, "\n"))
	feedAndReplay(t, srv.URL, file, []string{"--speed", "max"}, func(name, out, _ string) {
		if !strings.Contains(out, "sent=1 ") || !strings.Contains(out, " aircraft_full=0") {
			t.Errorf("%s: final status %q, want the aircraft refused counted (aircraft_full)", name, out)
		}
	})
}

// TestFeedSBSFileSaysAJumpOfItsTime: where a recorded BaseStation file's
// time jumps (here a year on), feed sbs --file and replay go on at once
// and say so on stderr, naming the jump.
func TestFeedSBSFileSaysAJumpOfItsTime(t *testing.T) {
	fake := &apiFake{party: "coalition"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	file := writeFile(t, "jump.sbs", strings.Join([]string{
		"MSG,4,1,1,4CA2D6,1,2015/10/07,06:00:00.000,2015/10/07,06:00:00.000,,,450,90,,,0,,0,0,0,0",
		"MSG,3,1,1,4CA2D6,1,2015/10/07,06:00:00.100,2015/10/07,06:00:00.100,,30000,,,36.0,37.0,,,0,0,0,0",
		"MSG,4,1,1,4CA2D6,1,2016/10/07,06:00:00.100,2016/10/07,06:00:00.100,,,450,90,,,0,,0,0,0,0",
		"MSG,3,1,1,4CA2D6,1,2016/10/07,06:00:00.200,2016/10/07,06:00:00.200,,30000,,,36.0,37.01,,,0,0,0,0",
	}, "\n"))
	feedAndReplay(t, srv.URL, file, nil, func(name, out, errOut string) {
		if want := "the source's time jumps 8784h0m0.1s ahead, from 2015-10-07T06:00:00.1Z to 2016-10-07T06:00:00.2Z"; !strings.Contains(errOut, want) {
			t.Errorf("%s: stderr %q, want %q", name, errOut, want)
		}
		if !strings.Contains(out, "sent=2 ") {
			t.Errorf("%s: final status %q, want both reports sent", name, out)
		}
	})
}

// feedAndReplay runs feed sbs --file and replay (with replayArgs) of the
// BaseStation file against server, calling check with each one's name,
// standard output and standard error.
func feedAndReplay(t *testing.T, server, file string, replayArgs []string, check func(name, out, errOut string)) {
	t.Helper()
	for _, run := range []struct {
		name string
		main func(context.Context, []string, io.Writer, io.Writer) error
		args []string
	}{
		{"feed sbs --file", feedMain, []string{"sbs", "--file", file, "--party", "coalition"}},
		{"replay", replayMain, append([]string{file}, replayArgs...)},
	} {
		var out, errOut bytes.Buffer
		if err := run.main(context.Background(), append(run.args, "--server", server, "--token", "t", "--status", "0"), &out, &errOut); err != nil {
			t.Fatalf("%s: %v\n%s", run.name, err, errOut.String())
		}
		check(run.name, out.String(), errOut.String())
	}
}

// TestFeedSBSConnectDialTimeout: --dial-timeout bounds each connection
// attempt to a BaseStation source (it was a fixed 10 s: a source across a
// slow link could not be given longer, nor a dead one on the local network
// given up sooner), and a value that is not a dial timeout (zero,
// negative, below 10 ms, beyond the system's own connect timeout) is
// refused naming the flag.
func TestFeedSBSConnectDialTimeout(t *testing.T) {
	fake := &apiFake{party: "coalition"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	args := func(more ...string) []string {
		return append([]string{"sbs", "--connect", "192.0.2.1:30003", "--party", "coalition", "--server", srv.URL, "--token", "t", "--status", "0"}, more...)
	}
	for _, d := range []string{"0", "-1s", "1ns", "9ms", "2m1s", "1h"} {
		var out, errOut bytes.Buffer
		err := feedMain(context.Background(), args("--dial-timeout", d), &out, &errOut)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--dial-timeout") {
			t.Errorf("--dial-timeout %s: err %v, want a usage error naming --dial-timeout", d, err)
		}
	}

	// The time each attempt is given, as the source's dial sees it: the
	// flag's, not the default's (10 s lies between the two).
	left := make(chan time.Duration, 1)
	dialSource = func(ctx context.Context, _, _ string) (net.Conn, error) {
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(time.Duration(math.MaxInt64))
		}
		select {
		case left <- time.Until(deadline):
		default:
		}
		return nil, errors.New("refused by the test")
	}
	defer func() { dialSource = nil }()
	for _, c := range []struct {
		flag     string
		min, max time.Duration
	}{
		{"2m", feed.DefaultDialTimeout + time.Second, 2 * time.Minute},
		{"50ms", 0, 50 * time.Millisecond}, // no least: the clock runs on

	} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		var out, errOut bytes.Buffer
		go func() { done <- feedMain(ctx, args("--dial-timeout", c.flag), &out, &errOut) }()
		var got time.Duration
		select {
		case got = <-left:
		case err := <-done:
			t.Fatalf("--dial-timeout %s: the feed ended without dialling: %v", c.flag, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("--dial-timeout %s: %v\n%s", c.flag, err, errOut.String())
		}
		if got > c.max || (c.min > 0 && got <= c.min) {
			t.Errorf("--dial-timeout %s: an attempt was given %v, want more than %v and at most %v", c.flag, got, c.min, c.max)
		}
		if !strings.Contains(errOut.String(), "cannot connect to 192.0.2.1:30003 (refused by the test)") {
			t.Errorf("--dial-timeout %s: stderr %q does not say the source cannot be reached", c.flag, errOut.String())
		}
	}
}

// TestPacedReplayStatusSaysItFellBehind: the status lines of a paced
// replay (feed sbs --file, replay) say how often and how far it fell
// behind the recording's pace, its reports then stamped now rather than
// in the past (feed.Pacer.MaxLag); one as fast as the server takes
// cannot fall behind and does not say it.
func TestPacedReplayStatusSaysItFellBehind(t *testing.T) {
	fake := &apiFake{party: "coalition"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	file := writeFile(t, "rec.sbs", strings.Join([]string{
		"MSG,4,1,1,4CA2D6,1,2015/10/07,06:00:00.100,2015/10/07,06:00:00.100,,,450,90,,,0,,0,0,0,0",
		"MSG,3,1,1,4CA2D6,1,2015/10/07,06:00:00.200,2015/10/07,06:00:00.200,,30000,,,36.0,37.0,,,0,0,0,0",
	}, "\n"))
	feedAndReplay(t, srv.URL, file, nil, func(name, out, _ string) {
		if !strings.Contains(out, " fell_behind=") || !strings.Contains(out, " fell_behind_s=") {
			t.Errorf("%s: final status %q, want how often and how far it fell behind", name, out)
		}
	})
	var out, errOut bytes.Buffer
	if err := replayMain(context.Background(), []string{file, "--speed", "max", "--server", srv.URL, "--token", "t", "--status", "0"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "fell_behind") {
		t.Errorf("replay --speed max: final status %q says it fell behind", out.String())
	}
}
