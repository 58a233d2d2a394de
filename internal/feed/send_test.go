package feed

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/testutil/silentsource"

	"github.com/deconflict/deconflict/internal/client"
)

var fastBackoff = client.Backoff{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond}

// flakyServer answers POST /v1/positions with 503 for the first fail
// requests, then accepts everything except aircraft named "BAD", recording
// the aircraft it accepted.
type flakyServer struct {
	mu       sync.Mutex
	fail     int
	status   int
	calls    int
	accepted []string
}

func (s *flakyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls <= s.fail {
		w.WriteHeader(s.status)
		return
	}
	var body struct{ Reports []client.Report }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	res := client.PositionsResult{Rejected: []client.Rejection{}}
	for i, rep := range body.Reports {
		if rep.Aircraft == "BAD" {
			res.Rejected = append(res.Rejected, client.Rejection{Index: i, Error: "aircraft: refused"})
			continue
		}
		res.Accepted++
		s.accepted = append(s.accepted, rep.Aircraft)
	}
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(res)
}

func runSender(t *testing.T, srv http.Handler, reports []client.Report, now func() time.Time) *Stats {
	t.Helper()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	stats := &Stats{}
	sendAll(t, &Sender{Post: client.New(hs.URL, "tok").PostPositions, Stats: stats, MaxBatch: 3, Backoff: fastBackoff, Now: now}, reports)
	return stats
}

// sendAll runs s until it has sent, or given up on, every one of reports.
func sendAll(t *testing.T, s *Sender, reports []client.Report) {
	t.Helper()
	in := make(chan client.Report)
	done := make(chan error)
	go func() { done <- s.Run(context.Background(), in) }()
	for _, r := range reports {
		in <- r
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func reportsAt(now time.Time, names ...string) []client.Report {
	var out []client.Report
	for _, n := range names {
		out = append(out, client.Report{Aircraft: n, Time: now, LatDeg: 35, LonDeg: 36, AltM: 5000})
	}
	return out
}

func TestSenderRetriesUntilTheServerRecovers(t *testing.T) {
	srv := &flakyServer{fail: 3, status: http.StatusServiceUnavailable}
	now := time.Now()
	stats := runSender(t, srv, reportsAt(now, "A1", "A2", "A3", "A4", "BAD"), time.Now)
	if got := strings.Join(srv.accepted, ","); got != "A1,A2,A3,A4" {
		t.Errorf("server accepted %s", got)
	}
	if stats.Sent.Load() != 4 || stats.Undeliverable.Load() != 1 || stats.Retries.Load() != 3 {
		t.Errorf("stats %s", stats)
	}
}

func TestSenderGivesUpOnRefusalAndOnAge(t *testing.T) {
	refused := runSender(t, &flakyServer{fail: 1000, status: http.StatusBadRequest}, reportsAt(time.Now(), "A1", "A2"), time.Now)
	if refused.Sent.Load() != 0 || refused.Undeliverable.Load() != 2 || refused.Retries.Load() != 0 {
		t.Errorf("after a 400: %s", refused)
	}
	// The server stays away; the sender's clock says the reports are old
	// after the first failure: they are dropped, not retried forever.
	t0 := time.Now()
	aged := runSender(t, &flakyServer{fail: 1000, status: http.StatusBadGateway}, reportsAt(t0, "A1", "A2"), minuteEachCall(t0))
	if aged.Sent.Load() != 0 || aged.Undeliverable.Load() != 2 || aged.Retries.Load() != 1 {
		t.Errorf("server away: %s", aged)
	}
}

// TestFollowTCPReconnects serves BaseStation lines from a listener that
// drops every connection after two lines; the follower must come back each
// time and see every line.
func TestFollowTCPReconnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for i := 0; ; i += 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			w := bufio.NewWriter(c)
			fmt.Fprintf(w, "line %d\r\nline %d\n", i, i+1)
			w.Flush()
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stats := &Stats{}
	var got []string
	err = FollowTCP(ctx, ln.Addr().String(), fastBackoff, stats, func(line string) error {
		got = append(got, line)
		if len(got) == 6 {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "line 0|line 1|line 2|line 3|line 4|line 5" {
		t.Errorf("lines %q", got)
	}
	if stats.Reconnects.Load() < 2 {
		t.Errorf("reconnects = %d, want at least 2", stats.Reconnects.Load())
	}
}

func TestFollowTCPWaitsForASourceThatIsNotThereYet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens: the first dials fail
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stats := &Stats{}
	got := make(chan string, 1)
	go func() {
		FollowTCP(ctx, addr, fastBackoff, stats, func(line string) error {
			got <- line
			cancel()
			return nil
		})
	}()
	for stats.Reconnects.Load() < 3 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	defer ln.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, sbsSamples[0]+"\n")
	defer c.Close()
	if line := <-got; line != sbsSamples[0] {
		t.Errorf("line %q", line)
	}
}

func TestReadLinesCountsOverlongAsMalformed(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	for _, input := range []string{"a\n" + long + "\nb", "a\n" + long + "\nb\n" + long} {
		var got []string
		stats := &Stats{}
		err := ReadLines(context.Background(), strings.NewReader(input), stats, func(l string) error {
			got = append(got, l)
			return nil
		})
		if err != nil || strings.Join(got, ",") != "a,b" {
			t.Fatalf("lines %d (%v), want a and b", len(got), err)
		}
		if want := "skipped " + fmt.Sprint(strings.Count(input, long)) + " lines: " + fmt.Sprint(strings.Count(input, long)) + " " + SkipOverlong; stats.SkippedSummary() != want {
			t.Errorf("summary %q, want %q", stats.SkippedSummary(), want)
		}
	}
}

// TestSenderGivesUpOnAServerThatStopsAnswering: a server that takes a
// POST and stops answering in the middle of its answer must not hold the
// feed for ever. Each POST is bounded by PostTimeout; one that runs out is
// sent again, as after a dropped connection (the server takes a report it
// already holds as a duplicate), while the reports are fresh.
func TestSenderGivesUpOnAServerThatStopsAnswering(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	release := make(chan struct{})
	defer close(release)
	flaky := &flakyServer{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			// Half an answer, then nothing until the client gives up.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, `{"accepted":`)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		flaky.ServeHTTP(w, r)
	}))
	defer hs.Close()
	cl := client.New(hs.URL, "tok")
	post := func(ctx context.Context, reports []client.Report) (client.PositionsResult, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("a POST without a deadline: a server that stops answering holds the feed for ever")
			return client.PositionsResult{}, &client.Problem{Status: http.StatusBadRequest}
		}
		return cl.PostPositions(ctx, reports)
	}
	stats := &Stats{}
	sendAll(t, &Sender{Post: post, Stats: stats, MaxBatch: 3, Backoff: fastBackoff, PostTimeout: 50 * time.Millisecond}, reportsAt(time.Now(), "A", "B", "C"))
	if stats.Sent.Load() != 3 || stats.Undeliverable.Load() != 0 || stats.Retries.Load() != 1 {
		t.Errorf("stats %s, want the 3 reports sent after 1 retry", stats)
	}
}

// TestFollowTCPDropsASilentSource: a source that accepts the connection
// and then sends nothing is dropped after the idle timeout, said in the
// log, and connected again. The follower waited on it for ever, saying
// nothing.
func TestFollowTCPDropsASilentSource(t *testing.T) {
	addr, accepted := silentsource.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stats := &Stats{}
	var mu sync.Mutex
	var logged []string
	src := &TCPSource{Addr: addr, Backoff: fastBackoff, Stats: stats, IdleTimeout: 20 * time.Millisecond,
		Logf: func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			logged = append(logged, fmt.Sprintf(format, args...))
		}}
	done := make(chan error, 1)
	go func() {
		done <- src.Follow(ctx, func(string) error { return nil })
	}()
	for i := range 2 {
		select {
		case c := <-accepted:
			defer c.Close()
		case <-ctx.Done():
			t.Fatalf("connection %d never made: the follower still waits on a source that sends nothing", i+1)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if said := strings.Join(logged, "\n"); !strings.Contains(said, "source "+addr+" sent nothing for 0.02 s") {
		t.Errorf("logged %q, want the source named and its silence of 0.02 s said", logged)
	}
	if stats.Reconnects.Load() < 1 {
		t.Errorf("reconnects = %d, want at least 1", stats.Reconnects.Load())
	}
}

// TestFollowTCPSkipsALineCutOffByTheConnectionsEnd: a line a live source
// had not ended (no line feed) when its connection ended, closed or gone
// silent, is cut off, whatever its head holds: it is counted as skipped,
// not handed on. Its head was handed on as the line, and the head of a
// BaseStation line cut before its last field (on the ground: -1) parsed:
// an aircraft on the ground was reported airborne.
func TestFollowTCPSkipsALineCutOffByTheConnectionsEnd(t *testing.T) {
	whole := "MSG,4,1,1,4CA2D6,1,,,,,,,450,90,,,0,,0,0,0,0"
	head := "MSG,3,1,1,4CA2D6,1,,,,,,30000,,,36.0,37.0,,,0,0,0,"
	for _, end := range []string{"closed", "silent"} {
		t.Run(end, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			// The second connection is made once the first was read to
			// its end.
			reconnected := make(chan struct{})
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprint(c, whole+"\r\n"+head)
				if end == "closed" {
					c.Close()
				} else {
					defer c.Close() // held open, sending nothing more
				}
				if c2, err := ln.Accept(); err == nil {
					defer c2.Close()
					close(reconnected)
				}
			}()
			stats := &Stats{}
			lines := make(chan string, 4)
			followUntilReconnected(t, &TCPSource{Addr: ln.Addr().String(), Backoff: fastBackoff, Stats: stats, IdleTimeout: 20 * time.Millisecond},
				func(line string) error {
					lines <- line
					return nil
				}, reconnected)
			close(lines)
			var got []string
			for l := range lines {
				got = append(got, l)
			}
			if len(got) != 1 || got[0] != whole {
				t.Errorf("lines %q, want only the whole one", got)
			}
			if want := "skipped 1 lines: 1 " + SkipCutOff; stats.SkippedSummary() != want {
				t.Errorf("summary %q, want %q", stats.SkippedSummary(), want)
			}
		})
	}
}

// TestFollowTCPSaysWhatBecomesOfTheConnection: the follower says when it
// connects, when the source closes the connection, and when the source
// cannot be reached, once while it stays so (the attempts are counted in
// Reconnects): a feed whose source is away said nothing but a growing
// count of reconnects in its status lines.
func TestFollowTCPSaysWhatBecomesOfTheConnection(t *testing.T) {
	var mu sync.Mutex
	var logged []string
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, fmt.Sprintf(format, args...))
	}
	said := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(logged, "\n")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	reconnected := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprint(c, "line 0\n")
		c.Close()
		if c2, err := ln.Accept(); err == nil {
			defer c2.Close()
			close(reconnected)
		}
	}()
	followUntilReconnected(t, &TCPSource{Addr: addr, Backoff: fastBackoff, Stats: &Stats{}, Logf: logf}, func(string) error { return nil }, reconnected)
	ln.Close()
	for _, want := range []string{"connected to " + addr, "source " + addr + " closed the connection"} {
		if !strings.Contains(said(), want) {
			t.Errorf("said %q, want %q", said(), want)
		}
	}

	// Nobody listens any more: the source cannot be reached, said once.
	mu.Lock()
	logged = nil
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stats := &Stats{}
	done := make(chan error, 1)
	go func() {
		done <- (&TCPSource{Addr: addr, Backoff: fastBackoff, Stats: stats, Logf: logf}).Follow(ctx, func(string) error { return nil })
	}()
	for stats.Reconnects.Load() < 3 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := said(); strings.Count(got, "cannot connect to "+addr) != 1 {
		t.Errorf("said %q after %d attempts, want the source unreachable said once", got, stats.Reconnects.Load()+1)
	}
}

// rejectingServer accepts every report of POST /v1/positions but those
// whose aircraft is a key of why, which it rejects one by one saying why
// (as the server does, "reports[i].field: ..."); with refuseWhole, it
// refuses the whole batch with a 400 problem instead.
type rejectingServer struct {
	why         map[string]string
	refuseWhole bool
}

func (s *rejectingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.refuseWhole {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(client.Problem{Title: "bad request", Status: http.StatusBadRequest, Detail: "reports[0].callsign: a control character", Field: "reports[0].callsign"})
		return
	}
	var body struct{ Reports []client.Report }
	json.NewDecoder(r.Body).Decode(&body)
	res := client.PositionsResult{Rejected: []client.Rejection{}}
	for i, rep := range body.Reports {
		if why, ok := s.why[rep.Aircraft]; ok {
			res.Rejected = append(res.Rejected, client.Rejection{Index: i, Error: fmt.Sprintf("reports[%d].%s", i, why)})
			continue
		}
		res.Accepted++
	}
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(res)
}

// TestSenderSaysWhyReportsAreUndeliverable: the reports that never reach
// the server are counted by reason, with the server's first word on each:
// rejected one by one naming a field, refused whole, or too old to be sent
// again. They were counted undeliverable, and why was said nowhere.
func TestSenderSaysWhyReportsAreUndeliverable(t *testing.T) {
	now := time.Now()
	rejected := runSender(t, &rejectingServer{why: map[string]string{
		"LATE1": "time: more than 60 s old", "LATE2": "time: more than 60 s old", "DRONE": `class: unknown class "drone" (the rules know manned, uas)`,
	}}, reportsAt(now, "A1", "LATE1", "LATE2", "DRONE"), time.Now)
	// The index of a report in its batch depends on how the batches fell.
	anyIndex := regexp.MustCompile(`reports\[\d+\]`)
	if got, want := anyIndex.ReplaceAllString(rejected.UndeliverableSummary(), "reports[i]"), `undeliverable 3 reports: 2 refused by the server naming time (the first: "reports[i].time: more than 60 s old"), `+
		`1 refused by the server naming class (the first: "reports[i].class: unknown class \"drone\" (the rules know manned, uas)")`; got != want {
		t.Errorf("rejected one by one: summary\n%s\nwant\n%s", got, want)
	}
	whole := runSender(t, &rejectingServer{refuseWhole: true}, reportsAt(now, "A1", "A2"), time.Now)
	if got := whole.UndeliverableSummary(); !strings.HasPrefix(got, "undeliverable 2 reports: 2 refused whole by the server (HTTP 400) (the first: ") ||
		!strings.Contains(got, "reports[0].callsign: a control character") {
		t.Errorf("refused whole: summary %q", got)
	}
	// The server stays away; the sender's clock says the reports are old
	// after the first failure.
	aged := runSender(t, &flakyServer{fail: 1000, status: http.StatusBadGateway}, reportsAt(now, "A1", "A2"), minuteEachCall(now))
	if got, want := aged.UndeliverableSummary(), "undeliverable 2 reports: 2 "+UndeliverableTooOld; got != want {
		t.Errorf("server away: summary %q, want %q", got, want)
	}
}

// minuteEachCall is a clock a minute later at each call after t0: a
// sender's reports grow old between its tries.
func minuteEachCall(t0 time.Time) func() time.Time {
	var mu sync.Mutex
	calls := 0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return t0.Add(time.Duration(calls) * time.Minute)
	}
}

// TestFollowTCPGivesUpADialThatIsNotAnswered: a source whose address
// swallows the connection attempt (a blackholed host) is given up after
// DialTimeout, said, and tried again with backoff, instead of each
// attempt waiting out the system's connect timeout (some two minutes)
// with nothing said. The dial here never answers: it returns only when
// its context is done.
func TestFollowTCPGivesUpADialThatIsNotAnswered(t *testing.T) {
	const dialTimeout = 20 * time.Millisecond
	var mu sync.Mutex
	var logged []string
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, fmt.Sprintf(format, args...))
	}
	dialed := make(chan error, 8)
	blackhole := func(ctx context.Context, network, addr string) (net.Conn, error) {
		deadline, ok := ctx.Deadline()
		if !ok {
			dialed <- errors.New("dialled without a deadline: a blackholed address holds the attempt for the system's connect timeout")
			return nil, errors.New("no deadline")
		}
		if left := time.Until(deadline); left > dialTimeout {
			dialed <- fmt.Errorf("dialled with %v left, want at most the DialTimeout %v", left, dialTimeout)
			return nil, errors.New("deadline too far")
		}
		<-ctx.Done()
		dialed <- nil
		return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	}
	// No deadline on the follower's own context: the one the dial sees
	// can only be the DialTimeout's.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stats := &Stats{}
	const addr = "192.0.2.1:30003" // TEST-NET-1: never dialled here
	done := make(chan error, 1)
	go func() {
		done <- (&TCPSource{Addr: addr, Backoff: fastBackoff, Stats: stats, Logf: logf,
			DialTimeout: dialTimeout, Dial: blackhole}).Follow(ctx, func(string) error { return nil })
	}()
	for range 2 {
		select {
		case err := <-dialed:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the dial was never given up")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := strings.Join(logged, "\n")
	mu.Unlock()
	if strings.Count(got, "cannot connect to "+addr) != 1 {
		t.Errorf("said %q, want the unanswered source said once", got)
	}
}

// followUntilReconnected follows src, handing its lines to onLine, until
// reconnected is closed (the source saw it connect again), then stops it;
// the test fails if that takes 30 s or the follower fails.
func followUntilReconnected(t *testing.T, src *TCPSource, onLine func(string) error, reconnected <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- src.Follow(ctx, onLine) }()
	select {
	case <-reconnected:
	case <-ctx.Done():
		t.Fatal("the follower never connected again")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
