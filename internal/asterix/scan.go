package asterix

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
)

// Stats counts what a Stream saw. Safe for concurrent reading while the
// Stream runs.
type Stats struct {
	Frames atomic.Int64
	// Blocks and Records count well-formed blocks and their records, per
	// category (records only for the categories decoded).
	Blocks  [256]atomic.Int64
	Records [256]atomic.Int64
	// Malformed counts blocks and frames skipped, per reason.
	Malformed [numReasons]atomic.Int64
}

// MalformedTotal is the number of blocks and frames skipped as malformed.
func (s *Stats) MalformedTotal() int64 {
	var n int64
	for i := range s.Malformed {
		n += s.Malformed[i].Load()
	}
	return n
}

// String is a one-line summary: records per decoded category, blocks of
// the other categories, malformed input per reason (only what is not zero).
func (s *Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "frames=%d", s.Frames.Load())
	for cat := range s.Blocks {
		if n := s.Blocks[cat].Load(); n > 0 {
			if Decoded(cat) {
				fmt.Fprintf(&b, " cat%03d=%d/%d", cat, s.Records[cat].Load(), n)
			} else {
				fmt.Fprintf(&b, " cat%03d_blocks_skipped=%d", cat, n)
			}
		}
	}
	for _, r := range Reasons() {
		if n := s.Malformed[r].Load(); n > 0 {
			fmt.Fprintf(&b, " malformed_%s=%d", r, n)
		}
	}
	return b.String()
}

// Block is one data block of a stream, as Stream hands it over.
type Block struct {
	// Index counts the blocks of the stream from 0, blocks of every
	// category and malformed ones included.
	Index    int
	Category int
	// Data is the block's octets (CAT, LEN, records) when its header could
	// be read whole, valid during the callback.
	Data []byte
	// Records are the block's records (categories decoded only), valid
	// during the callback.
	Records []Record
	// Err is set for a malformed block (Records is nil then).
	Err *Error
	// Frame is the frame the block came in.
	Frame *Frame
}

// Stream cuts frames into blocks and blocks into records, counting as it
// goes. It is not safe for concurrent use (its Stats are).
type Stream struct {
	Stats  Stats
	dec    Decoder
	blocks int
}

// Payload handles the blocks of one frame (a UDP datagram, a FINAL frame,
// a block of a raw recording), calling fn for each block. It returns fn's
// error, if any; malformed input is counted and reported to fn through
// Block.Err, not returned.
func (s *Stream) Payload(f *Frame, fn func(*Block) error) error {
	s.Stats.Frames.Add(1)
	p := f.Payload
	for len(p) > 0 {
		block, rest, r := NextBlock(p)
		if r != ReasonNone {
			// What is left cannot be framed: one malformed block.
			s.Stats.Malformed[r].Add(1)
			b := Block{Index: s.blocks, Category: int(p[0]), Frame: f,
				Err: &Error{Reason: r, Category: int(p[0]), Record: -1}}
			s.blocks++
			return fn(&b)
		}
		p = rest
		b := Block{Index: s.blocks, Category: int(block[0]), Data: block, Frame: f}
		s.blocks++
		recs, err := s.dec.Block(block)
		if err != nil {
			var e *Error
			errors.As(err, &e)
			b.Err = e
			s.Stats.Malformed[e.Reason].Add(1)
		} else {
			b.Records = recs
			s.Stats.Blocks[b.Category].Add(1)
			s.Stats.Records[b.Category].Add(int64(len(recs)))
		}
		if err := fn(&b); err != nil {
			return err
		}
	}
	return nil
}

// Recording handles every frame of fr (see Payload). Frames that cannot be
// read are counted as malformed and passed over; it returns at the end of
// the recording, on an I/O error or with fn's error.
func (s *Stream) Recording(fr FrameReader, fn func(*Block) error) error {
	for {
		f, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var fe *FrameError
		if errors.As(err, &fe) {
			s.Stats.Malformed[fe.Reason].Add(1)
			continue
		}
		if err != nil {
			return err
		}
		if err := s.Payload(&f, fn); err != nil {
			return err
		}
	}
}
