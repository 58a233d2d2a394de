package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff computes exponential, capped and jittered waits between attempts.
// The zero value waits 200 ms, doubling up to 10 s.
type Backoff struct {
	Min, Max time.Duration
}

// Wait returns how long to wait before attempt n (0 for the first retry):
// Min*2^n capped at Max, with "equal jitter" (a uniformly random point in
// the upper half) so that many clients cut off together do not come back in
// lockstep.
func (b Backoff) Wait(n int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 200 * time.Millisecond
	}
	if hi <= 0 {
		hi = 10 * time.Second
	}
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + rand.N(half+1)
}

// After is how long to wait before attempt n after err: Wait(n), or the
// server's Retry-After when err carries a longer one, since a server that
// asks to slow down means it.
func (b Backoff) After(n int, err error) time.Duration {
	wait := b.Wait(n)
	var prob *Problem
	if errors.As(err, &prob) && prob.RetryAfter > wait {
		wait = prob.RetryAfter
	}
	return wait
}

// Sleep waits for Wait(n) or until ctx is done, whichever comes first, and
// returns ctx.Err() in the second case.
func (b Backoff) Sleep(ctx context.Context, n int) error {
	return Sleep(ctx, b.Wait(n))
}

// Sleep waits for d or until ctx is done, whichever comes first, and returns
// ctx.Err() in the second case. The feeds and the simulator pace with it so
// that an interrupt never waits out a long sleep.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ErrStop, returned by an event handler, ends Events without error.
var ErrStop = errors.New("client: stop the event stream")

// FromNow, as the afterID of Events, starts the stream at the next event
// (GET /v1/events?live=1), for a client that has just read the state it
// needs and wants only what happens from then on. Once an event has been
// seen the stream resumes after it as usual; a stream that breaks before
// its first event starts from now again.
const FromNow int64 = -1

// Events follows GET /v1/events from the event after afterID (0 for the
// whole backlog the server keeps, FromNow for none of it) and calls fn for
// each event in order.
// When the stream breaks it reconnects with backoff and resumes with
// Last-Event-ID, so fn sees every event once, in id order. It returns when
// ctx is done (nil), when fn returns ErrStop (nil) or another error (that
// error), or when the server refuses the stream with a 4xx (a *Problem).
//
// One refusal is not the end: a server whose history no longer holds the
// event seen last (400 on Last-Event-ID: its store restored from an older
// copy) is followed afresh, from the start of its backlog (or from now,
// for FromNow), as the console does, so that fn then sees that history's
// events, whose ids may repeat ones seen before. Ending there instead
// would leave the caller deaf to every alert from then on.
func (c *Client) Events(ctx context.Context, afterID int64, fn func(Event) error) error {
	last := afterID
	var b Backoff
	failures := 0
	for {
		progressed, err := c.streamOnce(ctx, &last, fn)
		if ctx.Err() != nil {
			return nil
		}
		var he handlerError
		if errors.As(err, &he) {
			if errors.Is(he.err, ErrStop) {
				return nil
			}
			return he.err
		}
		var p *Problem
		if errors.As(err, &p) && p.Status == http.StatusBadRequest && p.Field == "Last-Event-ID" && last > 0 {
			last = min(afterID, 0)
			continue
		}
		if errors.As(err, &p) && !Retryable(p) {
			return err
		}
		if errors.Is(err, ErrAnswerTooLarge) {
			// The stream would resume at the same event: say so.
			return err
		}
		if progressed {
			failures = 0
		}
		if err := b.Sleep(ctx, failures); err != nil {
			return nil
		}
		failures++
	}
}

// handlerError marks an error returned by the caller's handler, which ends
// Events instead of being retried.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }
func (e handlerError) Unwrap() error { return e.err }

func (c *Client) streamOnce(ctx context.Context, last *int64, fn func(Event) error) (progressed bool, err error) {
	path := "/v1/events"
	if *last == FromNow {
		path += "?live=1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+path, nil)
	if err != nil {
		return false, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+c.token)
	if *last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(*last, 10))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("client: GET /v1/events: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, readProblem(resp)
	}
	err = readSSE(resp.Body, func(ev Event) error {
		// A resumed stream never repeats what was seen; guard anyway so a
		// server bug cannot make the handler act twice.
		if ev.ID != 0 && ev.ID <= *last {
			return nil
		}
		if err := fn(ev); err != nil {
			return handlerError{err}
		}
		if ev.ID != 0 {
			*last = ev.ID
		}
		progressed = true
		return nil
	})
	if err == nil {
		err = io.ErrUnexpectedEOF // the server closed the stream: resume
	}
	return progressed, err
}

// readSSE parses a text/event-stream body and calls fn once per event. It
// returns nil at the end of the body.
func readSSE(r io.Reader, fn func(Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxEventBytes)
	sc.Split(scanSSELines)
	var id int64
	var kind string
	var data strings.Builder
	sawData := false // a data line, even an empty one, makes an event
	for sc.Scan() {
		// The format is UTF-8, invalid bytes read as U+FFFD.
		line := strings.ToValidUTF8(sc.Text(), "\uFFFD")
		if line == "" {
			if sawData {
				ev, err := decodeEvent(id, kind, data.String())
				if err != nil {
					return err
				}
				if err := fn(ev); err != nil {
					return err
				}
			}
			id, kind, sawData = 0, "", false
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // heartbeat comment
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return fmt.Errorf("client: event id %q: %w", value, err)
			}
			id = n
		case "event":
			kind = value
		case "data":
			if data.Len()+1+len(value) > maxEventBytes {
				// A stream whose event never ends would take the
				// client's memory line by line.
				return &AnswerTooLargeError{What: "an event of the stream", MaxBytes: maxEventBytes}
			}
			if sawData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			sawData = true
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		// One line over the bound: the event is too large just the same.
		return &AnswerTooLargeError{What: "an event of the stream", MaxBytes: maxEventBytes}
	}
	return sc.Err()
}

// scanSSELines splits an event stream into lines: they end in CRLF, LF or
// a lone CR (bufio.ScanLines knows no lone CR).
func scanSSELines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	for i, c := range data {
		switch c {
		case '\n':
			return i + 1, data[:i], nil
		case '\r':
			if i+1 < len(data) {
				if data[i+1] == '\n' {
					return i + 2, data[:i], nil
				}
				return i + 1, data[:i], nil
			}
			if atEOF {
				return i + 1, data[:i], nil
			}
			return 0, nil, nil // a LF may follow
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

func decodeEvent(id int64, kind, data string) (Event, error) {
	var ev Event
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		return Event{}, fmt.Errorf("client: event %d data: %w", id, err)
	}
	if ev.ID == 0 {
		ev.ID = id
	}
	if ev.Kind == "" {
		ev.Kind = kind
	}
	return ev, nil
}
