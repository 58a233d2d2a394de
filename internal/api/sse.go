package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/service"
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
// given. The parameter is read, and refused given twice or spelled
// otherwise than canonically, even when the header is given: an
// EventSource resuming sends the header with the URL it was opened with,
// and the header is the later cursor.
func cursor(r *http.Request) (after int64, field string, ok bool, err error) {
	fromQuery, inQuery, err := queryOptionalInt(r, "after", 0, 0)
	if err != nil {
		return 0, "after", false, err
	}
	// The header is held to the rules of the parameter: given once (two
	// were read as the first), in the spelling of the id: line it
	// echoes.
	const header = "Last-Event-ID"
	switch vs := r.Header.Values(header); {
	case len(vs) > 1:
		return 0, header, false, givenMoreThanOnce(header, len(vs))
	case len(vs) == 1 && vs[0] != "":
		n, err := canonicalInt(header, vs[0], 0)
		return n, header, err == nil, err
	}
	if !inQuery {
		return 0, "", false, nil
	}
	return fromQuery, "after", true, nil
}

// streamStart reads ?snapshot= (whether the client takes a snapshot of
// the state instead of a long backlog) and ?live= (without a cursor,
// whether it starts from the next event), each 1 or true when set.
func streamStart(r *http.Request) (snapshot, live bool, err error) {
	if snapshot, err = queryFlag(r, "snapshot"); err != nil {
		return false, false, err
	}
	if live, err = queryFlag(r, "live"); err != nil {
		return false, false, err
	}
	if snapshot && live {
		return false, false, badRequest("live", "live and snapshot exclude each other: a snapshot is followed by every event after it")
	}
	return snapshot, live, nil
}

// snapshotBacklog is how many stored events of its party a stream with
// ?snapshot=1 replays from its cursor at most; beyond, it sends a snapshot
// instead (a console away for long starts from the present at once).
const snapshotBacklog = 2000

// events streams the events concerning the caller: first those stored after
// the cursor, then live ones. The live subscription is taken before the
// store is read, and live events at or below the last id sent are dropped,
// so that nothing is lost between the two and nothing is sent twice.
//
// Inside, the stream goes by the store's global ids; a party is shown its
// own numbers of its events (service.StreamIDs, eventids.go): the cursor
// it sends is translated into the global id it stands for, and each event
// it is sent is numbered as it goes.
//
// With ?snapshot=1 and no cursor, or a cursor more than snapshotBacklog of
// the party's events behind, the stream opens with a snapshot event, the
// state its events tell (service.EventsSnapshot), read after the
// subscription was taken, and goes on with the events after it: those of
// the backlog and the live ones, without those the snapshot holds already.
func (h *Handler) events(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	after, field, given, err := cursor(r)
	if err != nil {
		return err
	}
	wantSnapshot, wantLive, err := streamStart(r)
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
		shown := after
		after, err = h.svc.ResumeAfter(r.Context(), p, shown)
		if errors.Is(err, service.ErrCursorBeyond) {
			return badRequest(field, fmt.Sprintf("event %d is beyond the last event of yours on this server: the cursor is of another history (a store restored from an older copy, or another server); resume without it, from a fresh snapshot", shown))
		}
		if err != nil {
			return err
		}
	}
	if !given && wantLive {
		// ?live=1 without a cursor: only what happens from now on (a
		// client that has just loaded a snapshot of the state).
		after = sub.Start()
	}
	// The snapshot that replaces a backlog too long, or none.
	var snap *service.EventsSnapshot
	if wantSnapshot {
		long := !given
		if given {
			// Counted, not read: a stream that replays its backlog
			// reads it a page at a time below, and one that starts
			// from a snapshot never reads it.
			n, err := h.svc.EventsBacklog(r.Context(), p, after, snapshotBacklog+1)
			if err != nil {
				return err
			}
			long = n > snapshotBacklog
		}
		if long {
			if wait, ok := h.snapshots.allow(p.Party, time.Now()); !ok {
				h.refusals.refused(budgetSnapshots, p.Party, "an event stream opening with a snapshot", time.Now())
				pr := problem(http.StatusTooManyRequests, "rate-limited", "Too many snapshots",
					"this party opens event streams with a snapshot faster than its limit; retry after the delay in Retry-After, or resume with Last-Event-ID")
				pr.retryAfterS = retryAfterSeconds(wait)
				return pr
			}
			h.hook("subscribed")
			s, err := h.svc.Snapshot(r.Context(), p)
			if err != nil {
				return err
			}
			snap, after = &s, s.After()
			h.hook("snapshot")
		}
	}
	// covered tells the events the snapshot holds already.
	covered := func(e store.Event) bool { return snap != nil && snap.Covers(e) }
	// The ids shown of the events after the stream's start.
	ids, err := h.svc.StreamIDs(r.Context(), p, after)
	if err != nil {
		return err
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
	if snap != nil {
		if err := writeSnapshot(bw, *snap, h.svc.Now()); err != nil {
			return nil
		}
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
			// Numbered whether sent or not: a party's ids count its
			// events.
			id := ids.Next(e)
			if !covered(e) {
				if err := writeEvent(bw, e, id); err != nil {
					return nil
				}
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
				after = e.ID
				id := ids.Next(e)
				if covered(e) {
					continue
				}
				if err := writeEvent(bw, e, id); err != nil {
					return nil
				}
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

func (h *Handler) hook(step string) {
	if h.startHook != nil {
		h.startHook(step)
	}
}

// replayPage is how many stored events a stream reads at a time.
const replayPage = 200

// writeSnapshot writes the snapshot event. It is no stored event (its
// data's id is 0), but its id: line, when the snapshot has one
// (service.EventsSnapshot.ResumeAfter), is the cursor a client cut off
// before the first event after it resumes from, with no event the
// snapshot holds sent again and none after it missed: a quiet party's
// console is not sent a new snapshot on every reconnect. Without one (the
// party has events between the snapshot's two ids, some of which it
// holds), such a client starts with a snapshot again.
func writeSnapshot(w *bufio.Writer, s service.EventsSnapshot, now time.Time) error {
	body, err := json.Marshal(s)
	if err != nil {
		return err
	}
	data, err := json.Marshal(eventEnvelope{ID: 0, Kind: "snapshot", Time: now.UTC(), Data: body})
	if err != nil {
		return err
	}
	if s.Resumable {
		w.WriteString("id: ")
		w.WriteString(strconv.FormatInt(s.ResumeAfter, 10))
		w.WriteString("\n")
	}
	w.WriteString("event: snapshot\ndata: ")
	w.Write(data)
	_, err = w.WriteString("\n\n")
	return err
}

// writeEvent writes e under id, the id its reader is shown.
func writeEvent(w *bufio.Writer, e store.Event, id int64) error {
	body := e.Body
	if len(body) == 0 {
		body = json.RawMessage("null")
	}
	data, err := json.Marshal(eventEnvelope{ID: id, Kind: e.Kind, Time: e.Time.UTC(), Data: body})
	if err != nil {
		return err
	}
	w.WriteString("id: ")
	w.WriteString(strconv.FormatInt(id, 10))
	w.WriteString("\nevent: ")
	w.WriteString(e.Kind)
	w.WriteString("\ndata: ")
	w.Write(data)
	_, err = w.WriteString("\n\n")
	return err
}
