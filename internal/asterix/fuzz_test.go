package asterix

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/deconflict/deconflict/internal/testutil/reference"
)

// seedBlocks adds the first blocks of every recording to a fuzz corpus.
func seedBlocks(f *testing.F, add func(block []byte)) {
	paths, err := filepath.Glob(filepath.Join(reference.ASTERIXRecordings(f), "*.*"))
	if err != nil || len(paths) < 20 {
		f.Fatalf("the recordings of ../shared/recordings/asterix: %v (%d)", err, len(paths))
	}
	paths = append(paths, filepath.Join(reference.ASTERIX(f), "fj_cat062.ast"))
	for _, p := range paths {
		if filepath.Ext(p) == ".md" {
			continue
		}
		fr, _, err := NewFrameReader(bytes.NewReader(reference.ReadFile(f, p)), FramingAuto)
		if err != nil {
			f.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			fm, err := fr.Next()
			if err != nil {
				break
			}
			for rest := fm.Payload; len(rest) > 0; {
				b, r, reason := NextBlock(rest)
				if reason != ReasonNone {
					break
				}
				add(bytes.Clone(b))
				rest = r
			}
		}
	}
}

// FuzzDecodeBlock: any octets, with the block length made to agree with
// them, decode without a panic into records that tile the block, or into
// an error that says why and where within the block.
func FuzzDecodeBlock(f *testing.F) {
	seedBlocks(f, func(b []byte) { f.Add(b) })
	f.Add([]byte{62, 0, 5, 0x40, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 3 && len(b) <= 0xffff {
			binary.BigEndian.PutUint16(b[1:], uint16(len(b)))
		}
		var d Decoder
		recs, err := d.Block(b)
		var e *Error
		switch {
		case err == nil:
			// The records tile the block: decoding them one by one ends
			// exactly at its end.
			p := 3
			for range recs {
				n, r, _, _ := decodeRecord(uapOf(int(b[0])), b[p:], &Record{})
				if r != ReasonNone || n == 0 {
					t.Fatalf("record at %d: %v", p, r)
				}
				p += n
			}
			if Decoded(int(b[0])) && p != len(b) {
				t.Fatalf("records end at %d of %d", p, len(b))
			}
			cw, _ := NewCSVWriter(io.Discard)
			for i := range recs {
				if err := cw.Write(0, i, &recs[i]); err != nil {
					t.Fatal(err)
				}
			}
		case errors.As(err, &e):
			if e.Reason == ReasonNone || e.Offset > len(b) || recs != nil {
				t.Fatalf("%+v %v", e, recs)
			}
		default:
			t.Fatal(err)
		}
	})
}

// FuzzPayload: any datagram is cut into blocks, every block is handed over
// once, and each is counted as well-formed or malformed.
func FuzzPayload(f *testing.F) {
	seedBlocks(f, func(b []byte) { f.Add(append(b, b...)) })
	f.Add([]byte{62, 0, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		var s Stream
		calls := 0
		err := s.Payload(&Frame{Payload: p}, func(b *Block) error {
			calls++
			if b.Err != nil && b.Records != nil || b.Err == nil && len(b.Data) < 3 {
				t.Fatalf("block %+v", b)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var counted int64
		for cat := range s.Stats.Blocks {
			counted += s.Stats.Blocks[cat].Load()
		}
		if counted+s.Stats.MalformedTotal() != int64(calls) {
			t.Fatalf("%d blocks handed over, %s", calls, &s.Stats)
		}
	})
}

// FuzzFrameReader: every framing reads any input to its end, making
// progress at every step (so corrupt recordings never hang a replay).
func FuzzFrameReader(f *testing.F) {
	for _, name := range []string{"cc_cat_062_065.pcap", "jade_062_one2.ff", "jade_nats_048.ff", "cc_cat21_re.ast", "jas_cat048ed1.23.bin"} {
		data := reference.ReadFile(f, filepath.Join(reference.ASTERIXRecordings(f), name))
		for fr := FramingAuto; fr <= FramingGPS; fr++ {
			f.Add(data, uint8(fr))
		}
	}
	gps := append(bytes.Repeat([]byte{0xcd}, gpsHeaderLen), 48, 0, 6, 0x80, 1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0)
	f.Add(gps, uint8(FramingGPS))
	f.Fuzz(func(t *testing.T, data []byte, framing uint8) {
		fr, _, err := NewFrameReader(bytes.NewReader(data), Framing(framing%5))
		if err != nil {
			return // undetectable, or not a capture
		}
		var s Stream
		for steps := 0; ; steps++ {
			if steps > len(data)+2 {
				t.Fatalf("no end after %d steps over %d octets", steps, len(data))
			}
			fm, err := fr.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			var fe *FrameError
			if errors.As(err, &fe) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(fm.Payload) > len(data) {
				t.Fatalf("payload of %d from %d octets", len(fm.Payload), len(data))
			}
			s.Payload(&fm, func(*Block) error { return nil })
		}
	})
}
