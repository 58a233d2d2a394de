package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// notesN posts n hotline notices from coalition to russia: n events,
// each for both parties.
func (e *env) notesN(n int) {
	e.t.Helper()
	for range n {
		e.mustDo("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "n"}, 201, nil)
	}
}

// TestEventsResumeNoGapNoDuplicate reconnects with Last-Event-ID while
// events are being written, and checks that the ids seen across the two
// connections are exactly 1..N.
func TestEventsResumeNoGapNoDuplicate(t *testing.T) {
	e := newEnv(t, Options{})
	const before, during = 20, 60
	e.notesN(before)

	first := e.openStream(e.tokens["coalition"], "0")
	var seen []int64
	for range before / 2 {
		seen = append(seen, first.next(t).ID)
	}
	first.close()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range during {
			e.do("POST", "/v1/hotline/messages", e.tokens["coalition"], map[string]any{"to": []string{"russia"}, "kind": "notice", "text": "n"})
		}
	}()
	second := e.openStream(e.tokens["coalition"], strconv.FormatInt(seen[len(seen)-1], 10))
	for len(seen) < before+during {
		seen = append(seen, second.next(t).ID)
	}
	wg.Wait()
	for i, id := range seen {
		if id != int64(i+1) {
			t.Fatalf("event %d has id %d: ids %v", i, id, seen)
		}
	}
}

func TestEventsAfterQueryAndLiveOnly(t *testing.T) {
	e := newEnv(t, Options{})
	e.notesN(3)
	s := e.openStream(e.tokens["russia"], "")
	if ev := s.next(t); ev.ID != 1 {
		t.Fatalf("a stream without a cursor starts at the first event; got id %d first", ev.ID)
	}
	live := e.openStreamPath(e.tokens["russia"], "/v1/events?live=1", "")
	e.notesN(1)
	if ev := live.next(t); ev.ID != 4 {
		t.Fatalf("?live=1 starts with what happens next; got id %d first", ev.ID)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/events?after=2", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["russia"])
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// ?after= resumes like Last-Event-ID.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/events?after=2", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["russia"])
	resp, err = e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var ids []string
	for sc.Scan() && len(ids) < 2 {
		if v, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			ids = append(ids, v)
		}
	}
	if strings.Join(ids, ",") != "3,4" {
		t.Fatalf("after=2 gave ids %v", ids)
	}
}

func TestEventsHeartbeat(t *testing.T) {
	e := newEnv(t, Options{HeartbeatEvery: 20 * time.Millisecond})
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["russia"])
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == ": heartbeat" {
			return
		}
	}
	t.Fatalf("stream ended without a heartbeat: %v", sc.Err())
}

// A stream replays the stored backlog a page at a time (replayPage events,
// so that it holds one page at most however long the history): every
// event arrives once and in order across the pages, an exact multiple of
// the page included.
func TestEventsReplayAcrossPages(t *testing.T) {
	e := newEnv(t, Options{})
	stored := 0
	for _, n := range []int{2 * replayPage, 2*replayPage + 1} {
		e.notesN(n - stored)
		stored = n
		s := e.openStream(e.tokens["russia"], "0")
		for want := int64(1); want <= int64(n); want++ {
			if got := s.next(t).ID; got != want {
				t.Fatalf("backlog of %d: event %d, want %d", n, got, want)
			}
		}
		s.close()
	}
}

// bigBacklog stores n events of about size bytes each for every party, so
// that a stream replaying them fills any socket's buffers.
func (e *env) bigBacklog(n, size int) {
	e.t.Helper()
	body := []byte(`"` + strings.Repeat("x", size) + `"`)
	err := e.st.Update(context.Background(), func(tx store.Tx) error {
		for range n {
			if _, err := tx.AppendEvent(store.Event{Time: time.Now(), Kind: "message", Audience: []string{"*"}, Body: body}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	// The live streams start after it.
	if err := e.svc.CatchUpEvents(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// stuckStream opens an event stream whose client reads its first line and
// then nothing more.
func (e *env) stuckStream(token string) net.Conn {
	e.t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET /v1/events?after=0 HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n\r\n", token)
	line, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
	if err != nil || !strings.Contains(line, " 200 ") {
		e.t.Fatalf("stream: %q %v", line, err)
	}
	return c
}

// waitForStream opens a live event stream of token, trying again while
// the party is at its cap of streams (429), and fails after a minute.
func (e *env) waitForStream(token string) *stream {
	e.t.Helper()
	for range 600 {
		s, code := e.tryStreamPath(token, "/v1/events?live=1", "")
		if s != nil {
			return s
		}
		if code != http.StatusTooManyRequests {
			e.t.Fatalf("stream: status %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatal("the party's stream is still held a minute later")
	return nil
}

// TestEventsClientThatStopsReadingIsCutOff: a client that stops reading
// its stream (a lot to replay, nothing taken) is cut off once a write
// waited StreamWriteTimeout, and its stream, one of its party's few, is
// free again; meanwhile the other party's stream delivers as ever. (The
// stream's write deadline was cleared for good: the handler waited for the
// client for ever, and the party could not open another stream.)
func TestEventsClientThatStopsReadingIsCutOff(t *testing.T) {
	e := newEnv(t, Options{MaxStreamsPerParty: 1, StreamWriteTimeout: 200 * time.Millisecond})
	e.bigBacklog(100, 100<<10)
	e.stuckStream(e.tokens["coalition"])
	other := e.openStreamPath(e.tokens["russia"], "/v1/events?live=1", "")
	e.notesN(1)
	if ev := other.next(t); ev.Kind != "message" {
		t.Fatalf("russia got %s", ev.Kind)
	}
	again := e.waitForStream(e.tokens["coalition"])
	e.notesN(1)
	if ev := again.next(t); ev.Kind != "message" {
		t.Fatalf("coalition's new stream got %s", ev.Kind)
	}
}

// TestEndStreamsEndsAStreamBlockedOnItsClient: EndStreams (a graceful
// shutdown) ends a stream whose write is blocked on a client that takes
// nothing, at once rather than at its write deadline; before, the handler
// stayed blocked and the server's shutdown waited for it until its own
// deadline, which then left no time for the final audit checkpoint.
func TestEndStreamsEndsAStreamBlockedOnItsClient(t *testing.T) {
	e := newEnv(t, Options{MaxStreamsPerParty: 1, StreamWriteTimeout: time.Hour})
	e.bigBacklog(100, 100<<10)
	e.stuckStream(e.tokens["coalition"])
	e.svc.EndStreams()
	e.waitForStream(e.tokens["coalition"])
}

// TestEventsCursorOfNoEventIsRefused: a cursor that names no event of
// this server (beyond its last: a client of another history, after the
// store was restored from an older copy, say) is refused, naming the
// header or parameter, rather than answered with a stream that skips every
// event up to it in silence. A negative or malformed cursor is refused
// too; the last event's id itself is a cursor like any other.
func TestEventsCursorOfNoEventIsRefused(t *testing.T) {
	e := newEnv(t, Options{})
	e.notesN(3)
	var last int64
	s := e.openStream(e.tokens["russia"], "0")
	for range 3 {
		last = s.next(t).ID
	}
	s.close()
	for _, c := range []struct{ header, query, field string }{
		{header: strconv.FormatInt(last+1, 10), field: "Last-Event-ID"},
		{header: "9223372036854775807", field: "Last-Event-ID"},
		{query: strconv.FormatInt(last+1000, 10), field: "after"},
		{header: "-1", field: "Last-Event-ID"},
		{header: "12abc", field: "Last-Event-ID"},
		{query: "1e3", field: "after"},
	} {
		path := "/v1/events"
		if c.query != "" {
			path += "?after=" + c.query
		}
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens["russia"])
		if c.header != "" {
			req.Header.Set("Last-Event-ID", c.header)
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p Problem
		_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || p.Field != c.field {
			t.Errorf("cursor %q%q: status %d, field %q; want 400 naming %s", c.header, c.query, resp.StatusCode, p.Field, c.field)
		}
	}
	// The last event's id resumes with what comes next.
	s = e.openStream(e.tokens["russia"], strconv.FormatInt(last, 10))
	e.notesN(1)
	if ev := s.next(t); ev.ID != last+1 {
		t.Fatalf("resumed after %d with %d", last, ev.ID)
	}
}

// TestEventsCursorTellsNothingOfTheOthers: whether a cursor is refused
// depends on the events of the party that gives it, not on the server's
// last event: a party that probed cursors (bisecting the ids, or reading
// the refusal, which stated the last id) learned the count of every
// event of the server, the others' alerts and messages included, at any
// moment it liked.
func TestEventsCursorTellsNothingOfTheOthers(t *testing.T) {
	e := newEnv(t, Options{})
	var out struct{ Token string }
	e.mustDo("POST", "/v1/parties", e.operator, map[string]string{"name": "turkey"}, http.StatusCreated, &out)
	turkey := out.Token
	e.notesN(1)
	s := e.openStream(e.tokens["russia"], "0")
	own := s.next(t).ID
	s.close()
	// Messages between the two others: events russia is not told of.
	for range 5 {
		e.mustDo("POST", "/v1/hotline/messages", turkey, map[string]any{"to": []string{"coalition"}, "kind": "notice", "text": "n"}, 201, nil)
	}
	open := func(cursor int64) (int, string) {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens["russia"])
		req.Header.Set("Last-Event-ID", strconv.FormatInt(cursor, 10))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := e.srv.Client().Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return resp.StatusCode, ""
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, string(b)
	}
	if code, body := open(own); code != http.StatusOK {
		t.Fatalf("russia's own last event as its cursor: %d %s", code, body)
	}
	// The refusals of the cursors before the server's last event and
	// after it read alike, but for the cursor they name.
	var refusal string
	for cursor := own + 1; cursor <= own+6; cursor++ {
		code, body := open(cursor)
		if code != http.StatusBadRequest {
			t.Errorf("cursor %d, beyond russia's last event %d (the server's is %d): status %d, want 400 as for any cursor beyond russia's", cursor, own, own+5, code)
		}
		var pr Problem
		if err := json.Unmarshal([]byte(body), &pr); err != nil {
			t.Fatalf("cursor %d: %v: %s", cursor, err, body)
		}
		body = fmt.Sprintf("%d %s %s", pr.Status, pr.Field, strings.Replace(pr.Detail, fmt.Sprintf("event %d ", cursor), "event N ", 1))
		if refusal == "" {
			refusal = body
		} else if body != refusal {
			t.Errorf("cursor %d is refused otherwise than cursor %d (the server's last event is %d):\n%s\n%s", cursor, own+1, own+5, body, refusal)
		}
	}
}
