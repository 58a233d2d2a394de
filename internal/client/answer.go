package client

import (
	"errors"
	"fmt"
	"io"
)

// DefaultMaxAnswerBytes bounds what the client reads of one answer (the
// body of a 2xx answer; a problem is read up to 1 MiB, an event of the
// stream up to maxEventBytes). A server, or whoever sits between, could
// otherwise send an answer without end and take the client's memory. The
// largest legitimate answers are exports of every volume a party may see;
// a deployment whose exports exceed this raises it (WithMaxAnswerBytes).
const DefaultMaxAnswerBytes = 1 << 30

// maxEventBytes bounds one event of the stream (its data lines together):
// the server's largest events (a volume's, a resolution's) are far below.
const maxEventBytes = 16 << 20

// ErrAnswerTooLarge is the error of an answer over the client's bound
// (AnswerTooLargeError). Sending the request again would not help, so
// Retryable is false for it.
var ErrAnswerTooLarge = errors.New("client: the answer is larger than the client reads")

// AnswerTooLargeError is an answer, or an event of the stream, larger than
// MaxBytes.
type AnswerTooLargeError struct {
	What     string // "GET /v1/volumes", "an event"
	MaxBytes int64
}

func (e *AnswerTooLargeError) Error() string {
	return fmt.Sprintf("client: %s: the answer is larger than %d bytes, the most this client reads (WithMaxAnswerBytes)", e.What, e.MaxBytes)
}

func (e *AnswerTooLargeError) Is(target error) bool { return target == ErrAnswerTooLarge }

// WithMaxAnswerBytes returns a copy of c that reads answers of up to n
// bytes (DefaultMaxAnswerBytes when n <= 0).
func (c *Client) WithMaxAnswerBytes(n int64) *Client {
	d := *c
	d.maxAnswerBytes = n
	return &d
}

func (c *Client) answerBound() int64 {
	if c.maxAnswerBytes <= 0 {
		return DefaultMaxAnswerBytes
	}
	return c.maxAnswerBytes
}

// boundedBody reads r, failing with *AnswerTooLargeError once more than
// max bytes come. An answer of exactly max bytes reads whole.
type boundedBody struct {
	r    io.Reader
	left int64
	err  *AnswerTooLargeError
}

func (c *Client) bounded(r io.Reader, what string) *boundedBody {
	max := c.answerBound()
	return &boundedBody{r: r, left: max, err: &AnswerTooLargeError{What: what, MaxBytes: max}}
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.left <= 0 {
		// At the bound: the answer is too large if anything follows.
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			return 0, b.err
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// readAll reads a whole answer within the client's bound.
func (c *Client) readAll(r io.Reader, what string) ([]byte, error) {
	return io.ReadAll(c.bounded(r, what))
}
