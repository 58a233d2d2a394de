package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/translog"
	"golang.org/x/mod/sumdb/note"
)

// Endpoint is one witness as a log knows it: where it listens and the key
// its cosignatures verify with.
type Endpoint struct {
	Party string // whose witness it is ("" when none)
	URL   string // submission prefix; add-checkpoint is URL + "/add-checkpoint"
	VKey  string // cosignature verifier key
}

// ConflictError is a 409 answer: the witness holds a checkpoint of
// another size than the old size sent (Size), or of the same size with
// another root.
type ConflictError struct{ Size int64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("the witness holds a checkpoint of size %d", e.Size)
}

// StatusError is any other refusal, with the witness's explanation.
type StatusError struct {
	Status int
	Body   string
}

// Error shows the witness's explanation escaped (printable.Escape): a
// witness is another party's, and what it answers is shown to every party
// (GET /v1/log/witnesses, the console) and in the log's own log.
func (e *StatusError) Error() string {
	return fmt.Sprintf("witness answered %d: %s", e.Status, printable.Escape(strings.TrimSpace(e.Body)))
}

// Client talks to one witness.
type Client struct {
	Endpoint Endpoint
	HTTP     *http.Client
	verifier note.Verifier
}

// NewClient checks the endpoint's key and returns a client using hc
// (http.DefaultClient when nil; give it a timeout).
func NewClient(e Endpoint, hc *http.Client) (*Client, error) {
	v, err := translog.WitnessVerifier(e.VKey)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{Endpoint: e, HTTP: hc, verifier: v}, nil
}

// Name is the witness's name (its key's).
func (c *Client) Name() string { return c.verifier.Name() }

// Verifier verifies the witness's cosignatures.
func (c *Client) Verifier() note.Verifier { return c.verifier }

// AddCheckpoint submits signed (a checkpoint of the log verified by
// logVerifier) with the consistency proof from oldSize, and returns the
// witness's cosignature lines that verify on it. Lines of other keys are
// dropped; an answer without one valid cosignature is an error.
func (c *Client) AddCheckpoint(ctx context.Context, logVerifier note.Verifier, oldSize int64, proof []translog.Hash, signed []byte) ([]string, error) {
	body := Request{OldSize: oldSize, Proof: proof, Checkpoint: signed}.Body()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.Endpoint.URL, "/")+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	return c.readAnswer(resp.StatusCode, answer, logVerifier, signed)
}

// readAnswer reads the witness's answer (status, body) to the push of
// signed: its cosignature lines that verify, a *ConflictError, or why not.
func (c *Client) readAnswer(status int, answer []byte, logVerifier note.Verifier, signed []byte) ([]string, error) {
	switch status {
	case http.StatusOK:
	case http.StatusConflict:
		n, err := parseSize(strings.TrimSuffix(string(answer), "\n"))
		if err != nil || !strings.HasSuffix(string(answer), "\n") {
			return nil, fmt.Errorf("witness answered 409 with a malformed size %q", clip(string(answer)))
		}
		return nil, &ConflictError{Size: n}
	default:
		return nil, &StatusError{Status: status, Body: clip(string(answer))}
	}
	lines := translog.SignatureLines(append([]byte("x\n\n"), answer...))
	// Keep the lines that verify as this witness's cosignature on signed.
	var good []string
	for _, l := range lines {
		n, err := note.Open(translog.AddSignatures(logOnlySigned(signed), l), note.VerifierList(logVerifier, c.verifier))
		if err != nil {
			continue
		}
		for _, s := range n.Sigs {
			if s.Name == c.verifier.Name() && s.Hash == c.verifier.KeyHash() {
				good = append(good, l)
			}
		}
	}
	if len(good) == 0 {
		return nil, fmt.Errorf("witness answered 200 without a valid cosignature of %s: %q", c.Name(), clip(string(answer)))
	}
	return good, nil
}

// logOnlySigned strips signature lines other than the first (the log's)
// so a witness line is checked alone.
func logOnlySigned(signed []byte) []byte {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return signed
	}
	lines := translog.SignatureLines(signed)
	out := bytes.Clone(signed[:i+2])
	if len(lines) > 0 {
		out = append(out, lines[0]...)
	}
	return out
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// Status is what the log knows about one witness.
type Status struct {
	Party, Name, URL string
	// Size is the size of the latest checkpoint the witness cosigned.
	Size int64
	// LastCosigned is when the log last got a cosignature (zero: never).
	LastCosigned time.Time
	// Failing is the last push's error ("" when it succeeded).
	Failing string
	// Cosigned counts the checkpoints the witness cosigned for this log.
	Cosigned int
}

// Proofs makes consistency proofs of the log's tree.
type Proofs func(from, size int64) ([]translog.Hash, error)

// Pusher pushes a log's checkpoints to its witnesses. Push never waits
// longer than Timeout per witness, and witnesses are pushed to in
// parallel.
type Pusher struct {
	LogVerifier note.Verifier
	Proofs      Proofs
	Timeout     time.Duration

	mu      sync.Mutex
	clients []*Client
	status  map[string]*Status // by witness name
}

// NewPusher returns a pusher for the witnesses given.
func NewPusher(logVerifier note.Verifier, proofs Proofs, endpoints []Endpoint, timeout time.Duration) (*Pusher, error) {
	p := &Pusher{LogVerifier: logVerifier, Proofs: proofs, Timeout: timeout, status: map[string]*Status{}}
	if err := p.SetWitnesses(endpoints); err != nil {
		return nil, err
	}
	return p, nil
}

// SetWitnesses replaces the witnesses (the rules changed); what is known
// of a witness that stays is kept.
func (p *Pusher) SetWitnesses(endpoints []Endpoint) error {
	var clients []*Client
	for _, e := range endpoints {
		c, err := NewClient(e, &http.Client{Timeout: p.Timeout})
		if err != nil {
			return fmt.Errorf("witness of %s: %w", e.Party, err)
		}
		clients = append(clients, c)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clients = clients
	status := map[string]*Status{}
	for _, c := range clients {
		st := p.status[c.Name()]
		if st == nil {
			st = &Status{}
		}
		st.Party, st.Name, st.URL = c.Endpoint.Party, c.Name(), c.Endpoint.URL
		status[c.Name()] = st
	}
	p.status = status
	return nil
}

// Endpoints are the witnesses pushed to, in configuration order.
func (p *Pusher) Endpoints() []Endpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Endpoint, len(p.clients))
	for i, c := range p.clients {
		out[i] = c.Endpoint
	}
	return out
}

// Verifiers are the witnesses' cosignature verifiers.
func (p *Pusher) Verifiers() []note.Verifier {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]note.Verifier, len(p.clients))
	for i, c := range p.clients {
		out[i] = c.verifier
	}
	return out
}

// Status reports every witness, in configuration order.
func (p *Pusher) Status() []Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Status, 0, len(p.clients))
	for _, c := range p.clients {
		out = append(out, *p.status[c.Name()])
	}
	return out
}

// Push sends signed, the log's checkpoint of size leaves, to every
// witness and returns the cosignature lines collected. A witness whose
// held size the log does not know yet (first push, restart) answers 409
// with it; the push is retried once from that size.
func (p *Pusher) Push(ctx context.Context, signed []byte, size int64) []string {
	p.mu.Lock()
	clients := p.clients
	p.mu.Unlock()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		lines []string
	)
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := p.pushOne(ctx, c, signed, size)
			p.mu.Lock()
			st := p.status[c.Name()]
			if st != nil {
				if err != nil {
					st.Failing = err.Error()
				} else {
					st.Failing, st.Size, st.LastCosigned = "", size, time.Now()
					st.Cosigned++
				}
			}
			p.mu.Unlock()
			mu.Lock()
			lines = append(lines, got...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lines
}

func (p *Pusher) pushOne(ctx context.Context, c *Client, signed []byte, size int64) ([]string, error) {
	p.mu.Lock()
	old := int64(0)
	if st := p.status[c.Name()]; st != nil && st.Size <= size {
		old = st.Size
	}
	p.mu.Unlock()
	for attempt := 0; ; attempt++ {
		proof, err := p.Proofs(old, size)
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, p.Timeout)
		lines, err := c.AddCheckpoint(cctx, p.LogVerifier, old, proof, signed)
		cancel()
		var conflict *ConflictError
		if !errors.As(err, &conflict) || attempt > 0 {
			return lines, err
		}
		if conflict.Size > size {
			return nil, fmt.Errorf("the witness holds a checkpoint of size %d, larger than the log's %d: the log lost records or forked", conflict.Size, size)
		}
		if conflict.Size == old {
			// Same size, another root: the witness holds another history.
			return nil, fmt.Errorf("the witness holds another checkpoint of size %d: the log forked", old)
		}
		old = conflict.Size
	}
}
