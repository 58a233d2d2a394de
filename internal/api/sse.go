package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/store"
)

// eventEnvelope is the data line of one SSE event (docs/WIRE.md).
type eventEnvelope struct {
	ID   int64           `json:"id"`
	Kind string          `json:"kind"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// cursor is where a stream resumes: the Last-Event-ID header, else the
// after query parameter (field names which); ok is false when neither is
// given.
func cursor(r *http.Request) (after int64, field string, ok bool, err error) {
	v, field := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if v == "" {
		v, field = r.URL.Query().Get("after"), "after"
	}
	if v == "" {
		return 0, "", false, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, field, false, badRequest(field, "must be a non-negative event id")
	}
	return n, field, true, nil
}

// events streams the events concerning the caller: first those stored after
// the cursor, then live ones. The live subscription is taken before the
// store is read, and live events at or below the last id sent are dropped,
// so that nothing is lost between the two and nothing is sent twice.
func (h *Handler) events(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	after, field, given, err := cursor(r)
	if err != nil {
		return err
	}
	sub := h.svc.Subscribe(p)
	defer sub.Close()
	if given && after > 0 {
		// A cursor is the id of an event this party was sent: one beyond
		// the last of its events stored is of another history (a store
		// restored from an older copy, another server), and the stream
		// would skip every event up to it in silence. The test is of the
		// party's own events, not the server's last id: a refusal that
		// depended on that would tell a party, cursor by cursor, how
		// many events the others have (their alerts and messages).
		next, err := h.svc.EventsAfter(r.Context(), p, after-1, 1)
		if err != nil {
			return err
		}
		if len(next) == 0 {
			return badRequest(field, fmt.Sprintf("event %d is beyond the last event of yours on this server: the cursor is of another history (a store restored from an older copy, or another server); resume without it, from a fresh snapshot", after))
		}
	}
	if !given && r.URL.Query().Get("live") != "" {
		// ?live=1 without a cursor: only what happens from now on (a
		// client that has just loaded a snapshot of the state).
		after = sub.Start()
	}
	// Without a cursor the stream starts at the first event: a client
	// that has never seen anything misses nothing.
	rc := http.NewResponseController(w)
	// The server's read and write deadlines are for ordinary requests; a
	// stream lives until the client or the server goes, each of its
	// writes within the stream's own deadline.
	_ = rc.SetReadDeadline(time.Time{})
	sw := &streamWriter{w: w, rc: rc, timeout: h.opt.StreamWriteTimeout}
	defer sw.finish()
	ctx := r.Context()
	go func() {
		select {
		case <-sub.Done():
			sw.end()
		case <-ctx.Done():
		}
	}()
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	sw.extend()
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(sw, 32<<10)
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		sw.extend()
		return rc.Flush()
	}
	if _, err := bw.WriteString(": stream of " + p.Party + "\nretry: 1000\n\n"); err != nil {
		return nil
	}
	if err := flush(); err != nil {
		return nil
	}
	// The backlog a page at a time: a stream holds one page at most,
	// however long the history it replays.
	var batch []store.Event
	for {
		batch, err = h.svc.EventsAfter(ctx, p, after, replayPage)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("reading the event backlog", "err", err)
			}
			return nil
		}
		for _, e := range batch {
			if err := writeEvent(bw, e); err != nil {
				return nil
			}
			after = e.ID
		}
		if err := flush(); err != nil {
			return nil
		}
		if len(batch) < replayPage {
			break
		}
	}
	beat := time.NewTicker(h.opt.HeartbeatEvery)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-beat.C:
			if _, err := bw.WriteString(": heartbeat\n\n"); err != nil {
				return nil
			}
			if err := flush(); err != nil {
				return nil
			}
		case <-sub.Ready():
			var open bool
			batch, open = sub.Take(batch[:0])
			for _, e := range batch {
				if e.ID <= after {
					continue
				}
				if err := writeEvent(bw, e); err != nil {
					return nil
				}
				after = e.ID
			}
			if err := flush(); err != nil || !open {
				// Cut off (too slow) or shutting down: the client resumes.
				return nil
			}
		}
	}
}

// streamWriter is the writer of a long-lived answer (an event stream, an
// audit export): each write must be taken by the client within timeout,
// however long the whole lasts, so that a client that stops reading is
// cut off (it resumes with Last-Event-ID, losing nothing) instead of
// holding its stream, one of its party's few, for ever; and once the stream's
// subscription ended (the service shutting down, or the client cut off
// for lagging) a write still blocked fails at once, so that a graceful
// shutdown does not wait for such a client.
type streamWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration

	mu       sync.Mutex
	ended    bool // the deadline is past for good
	finished bool // the handler returned: rc must not be used any more
}

func (sw *streamWriter) Write(p []byte) (int, error) {
	sw.extend()
	return sw.w.Write(p)
}

// extend gives the next write its deadline, unless the stream ended.
func (sw *streamWriter) extend() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if !sw.ended && !sw.finished {
		_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout))
	}
}

// end makes every write, the one blocked now included, fail.
func (sw *streamWriter) end() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if !sw.finished {
		sw.ended = true
		_ = sw.rc.SetWriteDeadline(time.Now())
	}
}

func (sw *streamWriter) finish() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.finished = true
}

// replayPage is how many stored events a stream reads at a time.
const replayPage = 200

func writeEvent(w *bufio.Writer, e store.Event) error {
	body := e.Body
	if len(body) == 0 {
		body = json.RawMessage("null")
	}
	data, err := json.Marshal(eventEnvelope{ID: e.ID, Kind: e.Kind, Time: e.Time.UTC(), Data: body})
	if err != nil {
		return err
	}
	w.WriteString("id: ")
	w.WriteString(strconv.FormatInt(e.ID, 10))
	w.WriteString("\nevent: ")
	w.WriteString(e.Kind)
	w.WriteString("\ndata: ")
	w.Write(data)
	_, err = w.WriteString("\n\n")
	return err
}
