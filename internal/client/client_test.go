package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPostPositionsSendsWireShape(t *testing.T) {
	var gotAuth, gotPath string
	var gotBody map[string][]map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		gotPath = r.Method + " " + r.URL.Path
		if err := json.NewDecoder(r.Body).Decode(&gotBody); err != nil {
			t.Errorf("decoding body: %v", err)
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"accepted":1,"rejected":[{"index":1,"error":"lat: out of range"}]}`)
	}))
	defer srv.Close()

	c := New(srv.URL+"/", "tok")
	when := time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)
	res, err := c.PostPositions(context.Background(), []Report{
		{Aircraft: "RF-101", Callsign: "SU24-1", Time: when, LatDeg: 35.4, LonDeg: 35.95, AltM: 6000, VelEastMps: 200},
		{Aircraft: "RF-102", Time: when, LatDeg: 95},
	})
	if err != nil {
		t.Fatal(err)
	}
	if gotAuth != "Bearer tok" || gotPath != "POST /v1/positions" {
		t.Errorf("request = %q %q", gotAuth, gotPath)
	}
	items := gotBody["reports"]
	if len(items) != 2 {
		t.Fatalf("sent %d reports, want 2", len(items))
	}
	for _, k := range []string{"aircraft", "callsign", "time", "lat", "lon", "alt_m", "vel_east_mps", "vel_north_mps", "vel_up_mps"} {
		if _, ok := items[0][k]; !ok {
			t.Errorf("report lacks field %q: %v", k, items[0])
		}
	}
	if items[0]["time"] != when.Format(time.RFC3339) || items[0]["lat"] != 35.4 {
		t.Errorf("report = %v", items[0])
	}
	if res.Accepted != 1 || len(res.Rejected) != 1 || res.Rejected[0].Index != 1 {
		t.Errorf("result = %+v", res)
	}
}

func TestProblemDecoding(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/volumes":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"type":"https://deconflict.dev/problems/missing-key","title":"awareness key incomplete","status":409,"missing":[{"id":"v1","party":"russia","version":"a"}]}`)
		case "/v1/positions":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"status":400,"title":"bad","field":"reports[3].lat"}`)
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "tok")
	ctx := context.Background()

	_, err := c.CreateVolume(ctx, VolumeInput{Footprint: Circle(35, 36, 1000)})
	var p *Problem
	if !errors.As(err, &p) || p.Status != 409 || len(p.Missing) != 1 || p.Missing[0].ID != "v1" || p.Missing[0].Version != "a" {
		t.Fatalf("409: err = %v (%+v)", err, p)
	}
	if Retryable(err) {
		t.Error("409 must not be retryable")
	}

	_, err = c.PostPositions(ctx, nil)
	if !errors.As(err, &p) || p.Status != 429 || p.RetryAfter != 3*time.Second || !Retryable(err) {
		t.Fatalf("429: err = %v (%+v)", err, p)
	}
	// The server's 3 s outweighs a shorter backoff, not a longer one; an
	// error without Retry-After leaves the backoff alone.
	short, long := Backoff{Min: time.Millisecond, Max: time.Millisecond}, Backoff{Min: time.Minute, Max: time.Minute}
	if got := short.After(0, err); got != p.RetryAfter {
		t.Errorf("short backoff after a 429: %v, want the server's %v", got, p.RetryAfter)
	}
	if got := long.After(0, err); got < 30*time.Second {
		t.Errorf("long backoff after a 429: %v, want the backoff (30 s..1 min)", got)
	}
	if got := long.After(0, errors.New("connection refused")); got < 30*time.Second || got > time.Minute {
		t.Errorf("long backoff after a transport error: %v, want 30 s..1 min", got)
	}

	_, err = c.Alerts(ctx)
	if !errors.As(err, &p) || p.Field != "reports[3].lat" || !strings.Contains(err.Error(), "reports[3].lat") {
		t.Fatalf("400: err = %v", err)
	}
	if StatusOf(err) != 400 || Retryable(err) {
		t.Errorf("400: status %d retryable %v", StatusOf(err), Retryable(err))
	}
}

func TestRetryableTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	_, err := New(url, "t").Me(context.Background())
	if err == nil || !Retryable(err) {
		t.Fatalf("err = %v, want a retryable transport error", err)
	}
}

// sseServer serves /v1/events from a fixed list of events, at most perConn
// events per connection, honouring Last-Event-ID, and records the resume
// points it was asked for.
type sseServer struct {
	mu      sync.Mutex
	resumes []string
	events  []Event
	perConn int
}

func (s *sseServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.resumes = append(s.resumes, r.Header.Get("Last-Event-ID"))
	s.mu.Unlock()
	after, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	s.mu.Lock()
	events := s.events
	s.mu.Unlock()
	if n := len(events); after > 0 && (n == 0 || after > events[n-1].ID) {
		// As the server refuses a cursor of another history.
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"title":"bad request","status":400,"detail":"event %d is beyond the last event of this server","field":"Last-Event-ID"}`, after)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprint(w, ": hello\n\n")
	sent := 0
	for _, ev := range events {
		if ev.ID <= after || sent == s.perConn {
			continue
		}
		data, _ := json.Marshal(ev)
		fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Kind, data)
		sent++
	}
	// Returning closes the stream: the client must resume.
}

func TestEventsResumeWithoutGapOrDuplicate(t *testing.T) {
	s := &sseServer{perConn: 2}
	for i := int64(1); i <= 7; i++ {
		s.events = append(s.events, Event{ID: i, Kind: "alert_raised", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
	}
	srv := httptest.NewServer(s)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []int64
	err := New(srv.URL, "t").Events(ctx, 1, func(ev Event) error {
		got = append(got, ev.ID)
		var d struct{ N int64 }
		if err := json.Unmarshal(ev.Data, &d); err != nil || d.N != ev.ID || ev.Kind != "alert_raised" {
			t.Errorf("event %d: data %s kind %q", ev.ID, ev.Data, ev.Kind)
		}
		if ev.ID == 7 {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[2 3 4 5 6 7]" {
		t.Errorf("events seen = %v", got)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fmt.Sprint(s.resumes) != "[1 3 5]" {
		t.Errorf("resume points = %q", s.resumes)
	}
}

// TestEventsFollowAServerWhoseHistoryChanged: a server restored from an
// older copy refuses the cursor of the event seen last; the client follows
// it afresh, from the start of its backlog, instead of ending deaf to
// every alert after.
func TestEventsFollowAServerWhoseHistoryChanged(t *testing.T) {
	history := func(base int64, n int) []Event {
		var evs []Event
		for i := int64(1); i <= int64(n); i++ {
			evs = append(evs, Event{ID: i, Kind: "alert_raised", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, base+i))})
		}
		return evs
	}
	s := &sseServer{perConn: 2, events: history(0, 4)}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	err := New(srv.URL, "t").Events(ctx, 0, func(ev Event) error {
		var d struct{ N int64 }
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d:%d", ev.ID, d.N))
		switch d.N {
		case 4:
			// The store is restored from a copy of when it held two
			// events; a third is written after.
			s.mu.Lock()
			s.events = history(100, 3)
			s.mu.Unlock()
		case 103:
			return ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Events ended with %v, want it to follow the restored server", err)
	}
	if want := "[1:1 2:2 3:3 4:4 1:101 2:102 3:103]"; fmt.Sprint(got) != want {
		t.Errorf("events seen = %v, want %s", got, want)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Refused at 4, then from the start of the restored backlog.
	if want := `["" "2" "4" "" "2"]`; fmt.Sprintf("%q", s.resumes) != want {
		t.Errorf("resume points = %q, want %s", s.resumes, want)
	}
}

func TestEventsHandlerErrorEndsStream(t *testing.T) {
	s := &sseServer{perConn: 10, events: []Event{{ID: 1, Kind: "message", Data: json.RawMessage(`{}`)}}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	boom := errors.New("boom")
	err := New(srv.URL, "t").Events(context.Background(), 0, func(Event) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

func TestEventsRefusedIsFinal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	err := New(srv.URL, "bad").Events(context.Background(), 0, func(Event) error { return nil })
	if StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("err = %v, want 401", err)
	}
}

func TestBackoffGrowsCappedAndJittered(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for n := 0; n < 12; n++ {
		ceil := min(b.Min<<n, b.Max)
		seen := map[time.Duration]bool{}
		for i := 0; i < 50; i++ {
			d := b.Wait(n)
			if d < ceil/2 || d > ceil {
				t.Fatalf("Wait(%d) = %v, want within [%v, %v]", n, d, ceil/2, ceil)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("Wait(%d) is not jittered: %v", n, seen)
		}
	}
}

func FuzzReadSSE(f *testing.F) {
	f.Add("id: 1\nevent: alert_raised\ndata: {\"id\":1,\"kind\":\"alert_raised\",\"data\":{}}\n\n")
	f.Add(": heartbeat\n\nid: 2\ndata: {\"kind\":\"message\"}\n\n")
	f.Add("id: x\ndata: {}\n\n")
	f.Add("data: {\"id\":3,\n data: \"kind\":\"ack\"}\n\n")
	f.Add("data: not json\n\n")
	f.Add("id: 5\r\nevent: ack\r\ndata: {\"id\":5,\r\ndata: \"data\":{\"a\":\"b\"}}\r\n\r\n")
	f.Add("id: 6\revent: ack\rdata: {\"id\":6}\r\r")
	f.Add("data\ndata:{\"id\":7}\n\nid: 8\ndata: {\"id\":8}")
	f.Add("event:\x81\ndata:{}\n\r")
	f.Add("id: 4\nevent: message\ndata: {\"id\":4,\"kind\":\"message\",\"time\":\"2026-11-24T07:00:00.5+02:00\",\"data\":{\"text\":\"<climb> & \\u00e9\",\"n\":[1,2.5e3,null]}}\n\n")
	f.Fuzz(func(t *testing.T, body string) {
		var got []Event
		if err := readSSE(strings.NewReader(body), func(ev Event) error {
			got = append(got, ev)
			return nil
		}); err != nil {
			return // malformed streams are refused with an error, never a panic
		}
		// The events are those a plain reading of the stream by the
		// rules of the event-stream format gives, data and all.
		want := referenceSSE(body)
		if len(got) != len(want) {
			t.Fatalf("read %d events, the format gives %d: %q", len(got), len(want), want)
		}
		for i, data := range want {
			var ev Event
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatalf("event %d was read, but its data %q is not JSON: %v", i, data, err)
			}
			if (ev.ID != 0 && got[i].ID != ev.ID) || (ev.Kind != "" && got[i].Kind != ev.Kind) ||
				!got[i].Time.Equal(ev.Time) || !sameJSON(t, got[i].Data, ev.Data) {
				t.Fatalf("event %d read as %+v (data %s), its data line says %s", i, got[i], got[i].Data, data)
			}
		}
		// Every event read back must survive being written out and read again.
		var out strings.Builder
		for _, ev := range got {
			data, err := json.Marshal(ev)
			if err != nil {
				t.Fatalf("re-encoding %+v: %v", ev, err)
			}
			fmt.Fprintf(&out, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Kind, data)
		}
		var again []Event
		if err := readSSE(strings.NewReader(out.String()), func(ev Event) error {
			again = append(again, ev)
			return nil
		}); err != nil {
			t.Fatalf("re-reading %q: %v", out.String(), err)
		}
		if len(again) != len(got) {
			t.Fatalf("round trip: %d events, want %d", len(again), len(got))
		}
		for i := range got {
			if again[i].ID != got[i].ID || again[i].Kind != got[i].Kind || !again[i].Time.Equal(got[i].Time) ||
				!sameJSON(t, again[i].Data, got[i].Data) {
				t.Fatalf("round trip event %d: %+v (data %s), want %+v (data %s)", i, again[i], again[i].Data, got[i], got[i].Data)
			}
		}
	})
}

// referenceSSE returns the data of each event of an event stream, read by
// the rules of the HTML standard's event-stream format (lines end in CRLF,
// LF or CR; data lines join with LF; one space after the colon is
// dropped; an event without data, or unfinished at the end, is no event).
func referenceSSE(body string) []string {
	body = strings.ReplaceAll(body, "\r\n", "\n")
	body = strings.ReplaceAll(body, "\r", "\n")
	lines := strings.Split(body, "\n")
	lines = lines[:len(lines)-1] // the text after the last line end is no line
	var out []string
	var data strings.Builder
	for _, line := range lines {
		if line == "" {
			if data.Len() > 0 {
				out = append(out, strings.TrimSuffix(data.String(), "\n"))
			}
			data.Reset()
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found && field == "" {
			continue // a comment
		}
		value = strings.TrimPrefix(value, " ")
		if field == "data" {
			data.WriteString(value + "\n")
		}
	}
	return out
}

// sameJSON reports whether two JSON texts hold the same value (encoding
// may differ in spacing and escapes); absent data is null.
func sameJSON(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	if len(a) == 0 {
		a = json.RawMessage("null")
	}
	if len(b) == 0 {
		b = json.RawMessage("null")
	}
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("data %q: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("data %q: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func TestSleepReturnsOnCancelWithoutWaitingTheDuration(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// An hour: were the cancellation ignored, the test would hang, not pass.
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled context = %v, want context.Canceled", err)
	}
	if err := (Backoff{Min: time.Hour, Max: time.Hour}).Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Backoff.Sleep on a cancelled context = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), time.Nanosecond); err != nil {
		t.Fatalf("Sleep that runs out = %v, want nil", err)
	}
}

// FromNow asks for the live stream only until an event has been seen, then
// resumes after that event like any other stream; WithHTTPClient carries
// the requests through the given client.
func TestEventsFromNowThenResume(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.RawQuery+"|"+r.Header.Get("Last-Event-ID"))
		n := len(asked)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		switch n {
		case 1: // breaks before any event
		case 2:
			fmt.Fprint(w, "id: 41\nevent: message\ndata: {\"id\":41,\"kind\":\"message\",\"data\":{}}\n\n")
		default:
			fmt.Fprint(w, "id: 42\nevent: message\ndata: {\"id\":42,\"kind\":\"message\",\"data\":{}}\n\n")
		}
	}))
	defer srv.Close()
	var trips atomic.Int64
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		trips.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	var got []int64
	err := New(srv.URL, "t").WithHTTPClient(hc).Events(context.Background(), FromNow, func(ev Event) error {
		got = append(got, ev.ID)
		if ev.ID == 42 {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[41 42]" {
		t.Errorf("events seen = %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "[live=1| live=1| |41]"; fmt.Sprint(asked) != want {
		t.Errorf("requests (query|Last-Event-ID) = %v, want %s", asked, want)
	}
	if trips.Load() != int64(len(asked)) {
		t.Errorf("%d requests went through the given HTTP client, want %d", trips.Load(), len(asked))
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// PostPositionsJSON sends the body it is given, byte for byte, as a JSON
// request, and decodes the answer like PostPositions.
func TestPostPositionsJSONSendsTheBodyAsIs(t *testing.T) {
	body := []byte(`{"reports":[{"aircraft":"RF-101","time":"2026-11-24T07:00:00Z","lat":35.4,"lon":35.95,"alt_m":6000}]}`)
	var got []byte
	var gotType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		gotType = r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"accepted":1,"rejected":[]}`)
	}))
	defer srv.Close()
	res, err := New(srv.URL, "tok").PostPositionsJSON(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(body) || gotType != "POST /v1/positions application/json" {
		t.Errorf("sent %q %s", gotType, got)
	}
	if res.Accepted != 1 || len(res.Rejected) != 0 {
		t.Errorf("result = %+v", res)
	}
}

// TestRetryAfterBeyondADuration: a Retry-After of more seconds than a
// Duration holds in nanoseconds (a hostile server's, or a proxy's gone
// wrong) is read as the longest wait, not wrapped around into a moment's,
// with which a caller waiting out 429s would have sent again at once.
func TestRetryAfterBeyondADuration(t *testing.T) {
	const seconds = "18446744074" // × 1e9 wraps to 0.29 s
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", seconds)
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	_, err := New(srv.URL, "tok").PostPositions(context.Background(), nil)
	var p *Problem
	if !errors.As(err, &p) || p.Status != 429 || p.RetryAfter < 100*365*24*time.Hour {
		t.Fatalf("429 with Retry-After %s: err = %v, RetryAfter %v, want a century at least", seconds, err, p.RetryAfter)
	}
}

// TestPreviewSendsEachParameterOnce: PreviewVolumes copied the caller's
// query as it was, so that start given twice was sent twice (the server
// took the first), and a format in the query was replaced by the
// argument in silence. Both are refused before anything is sent.
func TestPreviewSendsEachParameterOnce(t *testing.T) {
	var sent []string
	c := New("http://deconflict.test", "t").WithHTTPClient(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, r.URL.RawQuery)
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(`{"items":[]}`)), Request: r}, nil
	})})
	ctx := context.Background()
	for _, q := range []url.Values{
		{"start": {"2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"}},
		{"format": {"geojson"}},
	} {
		if _, err := c.PreviewVolumes(ctx, "openair", q, nil); err == nil {
			t.Errorf("query %v: no error", q)
		}
	}
	if len(sent) != 0 {
		t.Fatalf("sent %v", sent)
	}
	if _, err := c.PreviewVolumes(ctx, "openair", url.Values{"start": {"2026-01-01T00:00:00Z"}, "end": nil}, nil); err != nil {
		t.Fatal(err)
	}
	if want := "format=openair&start=2026-01-01T00%3A00%3A00Z"; len(sent) != 1 || sent[0] != want {
		t.Fatalf("sent %v, want %s", sent, want)
	}
}
