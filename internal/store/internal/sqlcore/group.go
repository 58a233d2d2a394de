package sqlcore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/deconflict/deconflict/internal/store"
)

// Group is the group commit both backends use: Update calls are queued to
// one writer goroutine, which takes every request waiting at that moment
// and hands them to run as one batch, to be run in one transaction. SQLite
// has one writer anyway, and on PostgreSQL nearly every write updates the
// same counter rows (event ids, volume change sequence), so concurrent
// transactions would only abort each other: one writer loses little
// parallelism, and one commit (one fsync, one round trip) serves many
// Updates.
type Group struct {
	reqs    chan *Request
	quit    chan struct{}
	done    chan struct{}
	closeMu sync.RWMutex
	closed  bool
}

// ErrClosed is returned by Update after Close.
var ErrClosed = errors.New("store: closed")

// Request states: the writer and a caller whose context ends race to move a
// request out of queued.
const (
	queued int32 = iota
	taken
	abandoned
)

// Request is one Update waiting for its outcome.
type Request struct {
	// Ctx is the caller's context; statements must run under
	// context.WithoutCancel(Ctx), since a statement cut short would
	// spoil the transaction the whole batch shares.
	Ctx   context.Context
	Fn    func(store.Tx) error
	state atomic.Int32
	done  chan Result
}

// Result is the outcome of one request: the error of fn or of the commit,
// or the value fn panicked with, which is re-raised in the caller.
type Result struct {
	Err   error
	Panic any
}

// OK reports whether fn succeeded.
func (r Result) OK() bool { return r.Err == nil && r.Panic == nil }

// Answer delivers the outcome to the caller; call it once per request.
func (r *Request) Answer(res Result) { r.done <- res }

// Call runs the request's fn on tx, turning a panic into a Result.
func (r *Request) Call(tx store.Tx) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			res = Result{Panic: p}
		}
	}()
	return Result{Err: r.Fn(tx)}
}

// NewGroup starts the writer; run receives batches of at most maxBatch
// requests and must Answer each of them.
func NewGroup(maxBatch int, run func(batch []*Request)) *Group {
	g := &Group{
		reqs: make(chan *Request, maxBatch),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go g.loop(maxBatch, run)
	return g
}

// Update queues fn and waits for its outcome. A caller whose context ends
// while fn is still queued gets the context's error and fn never runs;
// once the writer has taken fn, the caller waits for the real outcome.
func (g *Group) Update(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.closeMu.RLock()
	if g.closed {
		g.closeMu.RUnlock()
		return ErrClosed
	}
	r := &Request{Ctx: ctx, Fn: fn, done: make(chan Result, 1)}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		g.closeMu.RUnlock()
		return ctx.Err()
	}
	g.closeMu.RUnlock()
	var res Result
	select {
	case res = <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, abandoned) {
			return ctx.Err()
		}
		res = <-r.done
	}
	if res.Panic != nil {
		panic(res.Panic)
	}
	return res.Err
}

// Close lets the batch in progress finish, fails the requests still queued
// with ErrClosed and stops the writer. It may be called more than once.
func (g *Group) Close() {
	g.closeMu.Lock()
	if g.closed {
		g.closeMu.Unlock()
		<-g.done
		return
	}
	g.closed = true
	g.closeMu.Unlock()
	close(g.quit)
	<-g.done
}

func (g *Group) loop(maxBatch int, run func([]*Request)) {
	defer close(g.done)
	batch := make([]*Request, 0, maxBatch)
	take := func(r *Request) {
		if r.state.CompareAndSwap(queued, taken) {
			batch = append(batch, r)
		}
	}
	// drain fails what is still queued. No Update can be sending any more
	// (closed is set under the lock they hold while sending).
	drain := func() {
		for {
			select {
			case r := <-g.reqs:
				if r.state.CompareAndSwap(queued, taken) {
					r.Answer(Result{Err: ErrClosed})
				}
			default:
				return
			}
		}
	}
	for {
		batch = batch[:0]
		// Close takes precedence over queued requests.
		select {
		case <-g.quit:
			drain()
			return
		default:
		}
		select {
		case r := <-g.reqs:
			take(r)
		case <-g.quit:
			drain()
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-g.reqs:
				take(r)
			default:
				break fill
			}
		}
		if len(batch) > 0 {
			run(batch)
		}
	}
}
