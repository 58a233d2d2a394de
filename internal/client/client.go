// Package client is a small Go client of the deconflict HTTP API (the shapes
// of docs/WIRE.md): positions, volumes, alerts, the hotline and the event
// stream with resume. The feeds, the simulator, the demo and tests use it to
// act as one party, exactly as any outside client would.
//
// Errors from the server come back as *Problem (RFC 9457); Retryable tells
// apart what is worth sending again (network failures, 429, 5xx) from what
// never will be (4xx).
//
// The writes that must not be done twice (a hotline message, a volume and
// its changes, a rules proposal and its answers) carry an Idempotency-Key
// and are sent once more, signed again with a fresh nonce, when their
// answer is lost (a transport error, 503 outcome-unknown): the server
// answers a retry of a write it did with the first answer and does nothing
// again (see docs/WIRE.md). When the first send of such a write is
// answered from a kept answer (Idempotent-Replayed), the key had been used
// before this call, perhaps hours ago: the write returns the earlier
// answer with ErrReplayed rather than pass it off as this call's.
package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/httpsig"
	"github.com/deconflict/deconflict/internal/partykey"
	"github.com/deconflict/deconflict/internal/rules"
)

// Client acts as one party against one server. It is safe for concurrent
// use.
type Client struct {
	baseURL string
	token   string
	http    *http.Client
	// key, when set, signs every write (RFC 9421, internal/httpsig).
	key   ed25519.PrivateKey
	keyID string
	// maxAnswerBytes bounds the answers read (answer.go; 0: the default).
	maxAnswerBytes int64
}

// New returns a client of the server at baseURL (e.g.
// "http://127.0.0.1:8080") authenticating with token.
func New(baseURL, token string) *Client {
	return &Client{
		baseURL: strings.TrimRight(baseURL, "/"),
		token:   token,
		// No overall timeout: the event stream is long-lived. Plain requests
		// are bounded by their context.
		http: &http.Client{},
	}
}

// WithHTTPClient returns a copy of c that sends its requests through hc,
// e.g. one keeping more idle connections per host than
// http.DefaultTransport for many concurrent requests.
func (c *Client) WithHTTPClient(hc *http.Client) *Client {
	d := *c
	d.http = hc
	return &d
}

// WithKey returns a copy of c that signs every write (POST, PUT, DELETE)
// with the party's own key, as a server requires of a party that
// registered a public key.
func (c *Client) WithKey(key ed25519.PrivateKey) *Client {
	d := *c
	d.key, d.keyID = key, partykey.ID(partykey.Public(key))
	return &d
}

// BaseURL returns the server address the client talks to.
func (c *Client) BaseURL() string { return c.baseURL }

// Problem is an error answer of the server (application/problem+json), or a
// synthesized one when the body was not a problem document.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Field  string `json:"field,omitempty"`
	// Missing lists, on a 409 about the awareness key, the other parties'
	// volumes (reduced) that the key must name.
	Missing []Volume `json:"missing,omitempty"`
	// Alternatives lists, on a 409 for a conflict, the write's nearest
	// conflict-free variants.
	Alternatives []Alternative `json:"alternatives,omitempty"`
	// AlternativesOmitted, on a 409 for a conflict without alternatives,
	// says why: "budget", the party's budget of searches was spent.
	AlternativesOmitted string `json:"alternatives_omitted,omitempty"`
	// RetryAfter is the server's Retry-After on 429/503, zero when absent.
	RetryAfter time.Duration `json:"-"`
}

func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "server: %d", p.Status)
	if p.Title != "" {
		b.WriteString(" " + p.Title)
	}
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	if p.Field != "" {
		b.WriteString(" (field " + p.Field + ")")
	}
	return b.String()
}

// Retryable reports whether sending the same request again may succeed:
// transport errors, 408, 429, 5xx answers and 409 idempotency-in-progress.
// Context cancellation is not retryable.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, ErrReplayed) || errors.Is(err, ErrAnswerTooLarge) {
		return false
	}
	var p *Problem
	if errors.As(err, &p) {
		// A write whose Idempotency-Key is still being served (its
		// first attempt not answered yet) is answered once it is.
		return inProgress(p) || p.Status == http.StatusRequestTimeout || p.Status == http.StatusTooManyRequests || p.Status >= 500
	}
	return true
}

// StatusOf returns the HTTP status of a *Problem error, 0 for anything else.
func StatusOf(err error) int {
	var p *Problem
	if errors.As(err, &p) {
		return p.Status
	}
	return 0
}

// do sends one JSON request and decodes a JSON answer into out (when not
// nil). Non-2xx answers become *Problem.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("client: encoding %s %s: %w", method, path, err)
		}
	}
	return c.send(ctx, method, path, body, out)
}

// send sends body (JSON, none when nil) and decodes a JSON answer into out
// (when not nil). Non-2xx answers become *Problem.
func (c *Client) send(ctx context.Context, method, path string, body []byte, out any) error {
	return c.sendKeyed(ctx, method, path, body, out, "")
}

// doOnce is do for a write that must not be done twice: it carries an
// Idempotency-Key (draft-ietf-httpapi-idempotency-key-header; the one
// WithIdempotencyKey put in ctx, else a new random one) and is sent once
// more, signed again, with the same key when its answer was lost: a
// transport error (the connection dropped, a proxy gave up) or 503
// outcome-unknown (the database did not confirm the commit), and again
// while the server answers that the first is still being served (409
// idempotency-in-progress). The server answers the retry of a write that
// was done with the first answer, and does it only once.
func (c *Client) doOnce(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("client: encoding %s %s: %w", method, path, err)
		}
	}
	return c.sendOnce(ctx, method, path, body, out)
}

// ErrReplayed is returned, with the answer decoded into the write's
// result, when the first send of a write was answered from the answer the
// server kept for its Idempotency-Key (Idempotent-Replayed: true): the
// write was done before this call, with the same request, and not again.
// That is what a caller resending a write after a restart of its own
// (WithIdempotencyKey) expects, and tests with errors.Is; for any other
// caller the key was used twice, and the answer is not this call's. A
// replay to a send made again after a lost answer is the expected answer,
// and no error.
var ErrReplayed = errors.New("client: the write had been done before under this idempotency key; the answer is the one kept then")

// sendOnce is doOnce with the body encoded.
func (c *Client) sendOnce(ctx context.Context, method, path string, body []byte, out any) error {
	key, _ := ctx.Value(idempotencyKeyCtx{}).(string)
	if key == "" {
		key = rand.Text()
	}
	var replayed bool
	err := c.sendKeyedReplay(ctx, method, path, body, out, key, &replayed)
	if err == nil && replayed {
		return fmt.Errorf("%s %s with Idempotency-Key %q: %w", method, path, key, ErrReplayed)
	}
	if answerLost(ctx, err) {
		err = c.sendKeyed(ctx, method, path, body, out, key)
		// The first is still being served (its answer lost to a
		// proxy or a timeout, not its write): only this client holds
		// the key, so it waits for that one's answer here; a caller
		// sending the write again would send it with a new key.
		var b Backoff
		for n := 0; n < maxInProgressRetries && inProgress(err); n++ {
			if serr := Sleep(ctx, b.After(n, err)); serr != nil {
				return errors.Join(err, serr)
			}
			err = c.sendKeyed(ctx, method, path, body, out, key)
		}
	}
	var p *Problem
	if errors.As(err, &p) && p.Status == http.StatusTooManyRequests && p.Type == problemBase+"idempotency-keys-exhausted" {
		// The party keeps as many answers as the server allows: the
		// write, refused and not done, is sent as it was before keys.
		err = c.sendKeyed(ctx, method, path, body, out, "")
	}
	return err
}

// maxInProgressRetries bounds the sends of a write whose key is still
// being served: with Backoff's waits, up to about 30 s, the server's
// request time limit.
const maxInProgressRetries = 8

// inProgress reports whether err is 409 idempotency-in-progress.
func inProgress(err error) bool {
	var p *Problem
	return errors.As(err, &p) && p.Status == http.StatusConflict && p.Type == problemBase+"idempotency-in-progress"
}

type idempotencyKeyCtx struct{}

// WithIdempotencyKey returns ctx carrying the Idempotency-Key of the
// writes sent with it (instead of a random one each): a caller that keeps
// the key can send the write again after a restart of its own. Every write
// sent with ctx carries the key, so give each write its own ctx: a second
// write of another request is refused (422 idempotency-key-reused), and a
// second one of the same request (the same message sent twice on purpose,
// or after this caller's restart) is answered the first's answer, not
// done, and returns ErrReplayed with that answer. A key is 1 to
// 255 visible ASCII characters other than '"' and '\'; the server keeps
// it 24 hours.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyCtx{}, key)
}

// answerLost reports whether err says that the answer of a write was
// lost, the write perhaps done: a transport error, or 503 outcome-unknown.
func answerLost(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var p *Problem
	if errors.As(err, &p) {
		return p.Status == http.StatusServiceUnavailable && p.Type == problemBase+"outcome-unknown"
	}
	var de *decodeError
	return !errors.As(err, &de) && !errors.Is(err, ErrAnswerTooLarge)
}

// problemBase prefixes the server's problem types.
const problemBase = "https://deconflict.dev/problems/"

// decodeError is an answer that came whole but did not decode: nothing
// was lost on the way.
type decodeError struct{ err error }

func (e *decodeError) Error() string { return e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// sendKeyed is send with an Idempotency-Key (none when "").
func (c *Client) sendKeyed(ctx context.Context, method, path string, body []byte, out any, idempotencyKey string) error {
	var replayed bool
	return c.sendKeyedReplay(ctx, method, path, body, out, idempotencyKey, &replayed)
}

// replayedHeader is set to "true" on an answer replayed from the one kept
// for an Idempotency-Key (internal/api.ReplayedHeader).
const replayedHeader = "Idempotent-Replayed"

// sendKeyedReplay is sendKeyed that also sets *replayed to whether a 2xx
// answer was replayed from the one kept for the key.
func (c *Client) sendKeyedReplay(ctx context.Context, method, path string, body []byte, out any, idempotencyKey string, replayed *bool) error {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, r)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	if idempotencyKey != "" {
		// An sf-string; the signature covers it (httpsig.Sign).
		req.Header.Set("Idempotency-Key", `"`+idempotencyKey+`"`)
	}
	if c.key != nil && method != http.MethodGet {
		if err := httpsig.Sign(req, body, c.key, c.keyID, time.Now()); err != nil {
			return fmt.Errorf("client: signing %s %s: %w", method, path, err)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return readProblem(resp)
	}
	*replayed = resp.Header.Get(replayedHeader) == "true"
	if out == nil {
		_, err := io.Copy(io.Discard, c.bounded(resp.Body, method+" "+path))
		return err
	}
	if err := json.NewDecoder(c.bounded(resp.Body, method+" "+path)).Decode(out); err != nil {
		if errors.Is(err, ErrAnswerTooLarge) {
			return err
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			// The answer was cut short: lost on the way.
			return fmt.Errorf("client: reading the answer of %s %s: %w", method, path, err)
		}
		return &decodeError{fmt.Errorf("client: decoding answer of %s %s: %w", method, path, err)}
	}
	if hr, ok := out.(headerReader); ok {
		hr.readHeader(resp.Header)
	}
	return nil
}

// maxRetryAfterS is the longest Retry-After, in seconds, a Duration holds.
const maxRetryAfterS = int(math.MaxInt64 / int64(time.Second))

func readProblem(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	p := &Problem{}
	if err := json.Unmarshal(raw, p); err != nil || p.Status == 0 {
		p = &Problem{Title: http.StatusText(resp.StatusCode), Detail: strings.TrimSpace(string(raw))}
	}
	p.Status = resp.StatusCode
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			// Beyond what a Duration holds, the most it holds: n
			// seconds in nanoseconds would wrap around, a wait of
			// centuries asked becoming one of a moment (or none).
			p.RetryAfter = time.Duration(min(n, maxRetryAfterS)) * time.Second
		}
	}
	return p
}

// Me returns the party the token acts as.
func (c *Client) Me(ctx context.Context) (Me, error) {
	var m Me
	err := c.do(ctx, http.MethodGet, "/v1/me", nil, &m)
	return m, err
}

// PostPositions sends one batch of reports (at most 10,000).
func (c *Client) PostPositions(ctx context.Context, reports []Report) (PositionsResult, error) {
	var r PositionsResult
	err := c.do(ctx, http.MethodPost, "/v1/positions", struct {
		Reports []Report `json:"reports"`
	}{reports}, &r)
	return r, err
}

// PostPositionsJSON sends one batch already encoded as the body of POST
// /v1/positions ({"reports":[...]}, docs/WIRE.md), for a caller that must
// spend less on encoding than encoding/json does: the load generator of
// `deconflict bench`, which shares the machine with the server it measures.
func (c *Client) PostPositionsJSON(ctx context.Context, body []byte) (PositionsResult, error) {
	var r PositionsResult
	err := c.send(ctx, http.MethodPost, "/v1/positions", body, &r)
	return r, err
}

// CreateVolume declares a new volume.
func (c *Client) CreateVolume(ctx context.Context, in VolumeInput) (Volume, error) {
	var v Volume
	err := c.doOnce(ctx, http.MethodPost, "/v1/volumes", in, &v)
	return v, err
}

// AlertResolution returns the resolution of an alert for the caller's own
// aircraft: a *Problem 404 when it concerns none of them, 410 when it
// cleared.
func (c *Client) AlertResolution(ctx context.Context, id string) (Resolution, error) {
	var r Resolution
	err := c.do(ctx, http.MethodGet, "/v1/alerts/"+url.PathEscape(id)+"/resolution", nil, &r)
	return r, err
}

// VolumeAlternatives asks, storing nothing, which volumes in would
// conflict with and for its nearest conflict-free variants.
func (c *Client) VolumeAlternatives(ctx context.Context, in VolumeInput) (conflicts []Volume, alternatives []Alternative, err error) {
	var out struct {
		Conflicts    []Volume      `json:"conflicts"`
		Alternatives []Alternative `json:"alternatives"`
	}
	err = c.do(ctx, http.MethodPost, "/v1/volumes/alternatives", in, &out)
	return out.Conflicts, out.Alternatives, err
}

// UpdateVolume replaces volume id; in.Version must name the version
// replaced.
func (c *Client) UpdateVolume(ctx context.Context, id string, in VolumeInput) (Volume, error) {
	var v Volume
	err := c.doOnce(ctx, http.MethodPut, "/v1/volumes/"+url.PathEscape(id), in, &v)
	return v, err
}

// SetVolumeState moves volume id, at version, to state.
func (c *Client) SetVolumeState(ctx context.Context, id, state, version string) (Volume, error) {
	var v Volume
	err := c.doOnce(ctx, http.MethodPost, "/v1/volumes/"+url.PathEscape(id)+"/state",
		map[string]string{"state": state, "version": version}, &v)
	return v, err
}

// GetVolume returns one volume.
func (c *Client) GetVolume(ctx context.Context, id string) (Volume, error) {
	var v Volume
	err := c.do(ctx, http.MethodGet, "/v1/volumes/"+url.PathEscape(id), nil, &v)
	return v, err
}

// Alerts returns the open alerts concerning the caller.
func (c *Client) Alerts(ctx context.Context) ([]Alert, error) {
	var r struct {
		Alerts []Alert `json:"alerts"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/alerts", nil, &r)
	return r.Alerts, err
}

// PostMessage sends a hotline message.
func (c *Client) PostMessage(ctx context.Context, m NewMessage) (Message, error) {
	var out Message
	err := c.doOnce(ctx, http.MethodPost, "/v1/hotline/messages", m, &out)
	return out, err
}

// Messages lists the hotline messages the caller sent or received, of one
// thread ("" for all), created at or after since (zero for all).
func (c *Client) Messages(ctx context.Context, thread string, since time.Time) ([]Message, error) {
	q := url.Values{}
	if thread != "" {
		q.Set("thread", thread)
	}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	path := "/v1/hotline/messages"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var r struct {
		Messages []Message `json:"messages"`
	}
	err := c.do(ctx, http.MethodGet, path, nil, &r)
	return r.Messages, err
}

// AckMessage acknowledges a hotline item, with an optional reply.
func (c *Client) AckMessage(ctx context.Context, id, reply string) (Message, error) {
	var m Message
	var body any = struct{}{}
	if reply != "" {
		body = map[string]string{"reply": reply}
	}
	err := c.do(ctx, http.MethodPost, "/v1/hotline/messages/"+url.PathEscape(id)+"/ack", body, &m)
	return m, err
}

// Rules returns the rules in force.
func (c *Client) Rules(ctx context.Context) (rules.Rules, error) {
	var r rules.Rules
	err := c.do(ctx, http.MethodGet, "/v1/rules", nil, &r)
	return r, err
}

// PreviewVolumes sends an airspace file (format "openair" or "geojson") to
// POST /v1/volumes/preview with the query (start, end, ground_m,
// unlimited_m) and returns what each airspace would become; nothing is
// written. A query that holds a parameter more than once, or format
// (which the argument gives), is refused before anything is sent: the
// server refuses a parameter given twice, and which of two values was
// meant is not the client's to choose.
func (c *Client) PreviewVolumes(ctx context.Context, format string, query url.Values, file []byte) ([]PreviewItem, error) {
	q := url.Values{}
	for k, v := range query {
		switch {
		case k == "format":
			return nil, fmt.Errorf("client: preview: format is given as the format argument, not in the query")
		case len(v) > 1:
			return nil, fmt.Errorf("client: preview: query parameter %q given %d times: give it once", k, len(v))
		}
		q[k] = v
	}
	q.Set("format", format)
	var out struct {
		Items []PreviewItem `json:"items"`
	}
	if file == nil {
		file = []byte{}
	}
	err := c.send(ctx, "POST", "/v1/volumes/preview?"+q.Encode(), file, &out)
	return out.Items, err
}

// VolumesAs returns the volumes the party may see in another format
// (GET /v1/volumes?format=geojson|kml|openair), as the server writes it.
func (c *Client) VolumesAs(ctx context.Context, format string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.baseURL+"/v1/volumes?format="+url.QueryEscape(format), nil)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: GET /v1/volumes: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, readProblem(resp)
	}
	return c.readAll(resp.Body, "GET /v1/volumes")
}

// RulesAnswer is the answer of a write of the rules (a proposal, an
// acceptance, a rejection): the proposal as the write left it and, when
// the write brought it into force, how many findings are still to be
// announced.
type RulesAnswer struct {
	rules.Proposal
	// FindingsPending is the answer's Findings-Pending header: of what
	// the activation of the rules found (volumes that break them, pairs
	// that conflict only under them), how many the request left to the
	// server's periodic job, which announces them (volume_flagged,
	// volume_conflict) within seconds. 0 when the header is absent (or
	// not a count):
	// the write did not bring rules into force, or announced everything
	// they found, or its answer was replayed from the one kept for its
	// Idempotency-Key (ErrReplayed, or a send made again after a lost
	// answer), which does not carry it.
	FindingsPending int64
}

// headerReader is a result that also reads the header of the 2xx answer
// decoded into it.
type headerReader interface {
	readHeader(h http.Header)
}

// findingsPendingHeader is internal/api.FindingsPendingHeader.
const findingsPendingHeader = "Findings-Pending"

// readHeader reads Findings-Pending. A value that is not a count (the
// server writes none) reads as 0: the count is for information, and the
// write it answers was done; failing the call would say otherwise.
func (a *RulesAnswer) readHeader(h http.Header) {
	a.FindingsPending = 0
	if n, err := strconv.ParseInt(h.Get(findingsPendingHeader), 10, 64); err == nil && n > 0 {
		a.FindingsPending = n
	}
}

// ProposeRules proposes a change of the rules (the operator's token):
// fields is a JSON object of the rules fields that change. The answer is
// the proposal, which comes into force once every party accepted it (at
// once when there is no party to ask: see RulesAnswer.FindingsPending).
func (c *Client) ProposeRules(ctx context.Context, fields []byte) (RulesAnswer, error) {
	var a RulesAnswer
	err := c.sendOnce(ctx, http.MethodPut, "/v1/rules", fields, &a)
	return a, err
}

// RulesProposals lists the open proposals.
func (c *Client) RulesProposals(ctx context.Context) ([]rules.Proposal, error) {
	var r struct {
		Proposals []rules.Proposal `json:"proposals"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/rules/proposals", nil, &r)
	return r.Proposals, err
}

// AcceptRules accepts the open proposal of a version of the rules as it
// reads it now (GET /v1/rules/proposals): AcceptProposal of it. The last
// acceptance the proposal waited for brings it into force (see
// RulesAnswer.FindingsPending). A version that is not open is
// ErrNoOpenProposal.
func (c *Client) AcceptRules(ctx context.Context, version int64) (RulesAnswer, error) {
	open, err := c.RulesProposals(ctx)
	if err != nil {
		return RulesAnswer{}, err
	}
	i := slices.IndexFunc(open, func(p rules.Proposal) bool { return p.Version == version })
	if i < 0 {
		return RulesAnswer{}, fmt.Errorf("%w: version %d", ErrNoOpenProposal, version)
	}
	return c.AcceptProposal(ctx, open[i])
}

// ErrNoOpenProposal: AcceptRules found no open proposal of the version.
var ErrNoOpenProposal = errors.New("client: no open proposal of the rules of that version")

// ErrProposalDigest: the digest a proposal states is not that of its rules
// as this client reads them (a field it does not know, or an answer
// altered): accepting it would accept content the caller did not see.
var ErrProposalDigest = errors.New("client: the proposal's rules_sha256 is not the digest of its rules as read")

// AcceptProposal accepts proposal p, naming the content accepted: the
// digest of p's rules computed here (rules.ContentSHA256), sent as the
// body's rules_sha256 (signed with it, when the client signs), so that the
// acceptance binds the rules the caller read, not only the version number.
// The server refuses it (409 rules-content-differs) when it holds other
// rules under that version; a proposal whose stated digest differs from
// the computed one is ErrProposalDigest, sent nowhere.
func (c *Client) AcceptProposal(ctx context.Context, p rules.Proposal) (RulesAnswer, error) {
	digest, err := rules.ContentSHA256(p.Rules)
	if err != nil {
		return RulesAnswer{}, fmt.Errorf("client: %w", err)
	}
	if p.RulesSHA256 != "" && p.RulesSHA256 != digest {
		return RulesAnswer{}, fmt.Errorf("%w: version %d states %s, its rules read as %s", ErrProposalDigest, p.Version, p.RulesSHA256, digest)
	}
	var a RulesAnswer
	err = c.doOnce(ctx, http.MethodPost, "/v1/rules/"+strconv.FormatInt(p.Version, 10)+"/accept", map[string]string{"rules_sha256": digest}, &a)
	return a, err
}

// RejectRules rejects the proposal of a version of the rules, which
// closes it.
func (c *Client) RejectRules(ctx context.Context, version int64, reason string) (RulesAnswer, error) {
	var a RulesAnswer
	err := c.doOnce(ctx, http.MethodPost, "/v1/rules/"+strconv.FormatInt(version, 10)+"/reject", map[string]string{"reason": reason}, &a)
	return a, err
}

// TracksJSON returns GET /v1/tracks (query: its query string, "" for
// none) as the server wrote it: the tracks the party may see.
func (c *Client) TracksJSON(ctx context.Context, query string) ([]byte, error) {
	path := "/v1/tracks"
	if query != "" {
		path += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, "GET", c.baseURL+path, nil)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: GET /v1/tracks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, readProblem(resp)
	}
	return c.readAll(resp.Body, "GET /v1/tracks")
}
