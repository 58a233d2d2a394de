package asterix

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/testutil/reference"
)

// referenceTolerance is the README's tolerance per column (text and
// integer columns are compared exactly).
var referenceTolerance = map[string]float64{
	"tod_s": 1e-6, "rho_nm": 1e-6, "theta_deg": 1e-6, "heading_deg": 1e-6,
	"fl": 1e-9, "baro_alt_fl": 1e-9, "geo_alt_ft": 1e-6, "vrate_ftpm": 1e-6,
	"vx_mps": 1e-9, "vy_mps": 1e-9, "gs_kt": 1e-6,
}

func latLonTolerance(posItem string) float64 {
	if posItem == "I021/131" {
		return 1e-7
	}
	return 1e-6
}

// TestReferenceRecording: the dump reproduces every row of the reference
// recording's expected values, within the tolerances of its README.
func TestReferenceRecording(t *testing.T) {
	var out bytes.Buffer
	stats, framing, err := Dump(bytes.NewReader(reference.ReadFile(t, filepath.Join(reference.ASTERIX(t), "fj_cat062.ast"))), FramingAuto, &out)
	if err != nil {
		t.Fatal(err)
	}
	if framing != FramingRaw || stats.MalformedTotal() != 0 {
		t.Fatalf("framing %v, %s", framing, stats)
	}
	got := parseCSV(t, out.Bytes())
	want := parseCSV(t, reference.ReadFile(t, filepath.Join(reference.ASTERIX(t), "fj_cat062.expected.csv")))
	if len(got) != len(want) || len(want) != 7 {
		t.Fatalf("%d rows, want %d (7)", len(got), len(want))
	}
	header := strings.Split(strings.SplitN(out.String(), "\n", 2)[0], ",")
	wantHeader := strings.Split(strings.SplitN(string(reference.ReadFile(t, filepath.Join(reference.ASTERIX(t), "fj_cat062.expected.csv"))), "\n", 2)[0], ",")
	if strings.Join(header, ",") != strings.Join(wantHeader, ",") {
		t.Fatalf("columns\n%v\nwant\n%v", header, wantHeader)
	}
	for i := range want {
		for _, c := range CSVColumns {
			if c == "agree" {
				continue
			}
			g, w := got[i][c], want[i][c]
			tol, numeric := referenceTolerance[c]
			if c == "lat_deg" || c == "lon_deg" {
				tol, numeric = latLonTolerance(want[i]["pos_item"]), true
			}
			switch {
			case g == w:
			case numeric && g != "" && w != "":
				gv, _ := strconv.ParseFloat(g, 64)
				wv, _ := strconv.ParseFloat(w, 64)
				if math.Abs(gv-wv) > tol {
					t.Errorf("row %d %s: %s, want %s (±%g)", i, c, g, w, tol)
				}
			case c == "icao24" && strings.EqualFold(g, w):
			default:
				t.Errorf("row %d %s: %q, want %q", i, c, g, w)
			}
		}
	}
}

// TestEveryRecordingDecodes: each of the recordings decodes in the framing
// its name says, with records of the categories the README says it holds,
// and nothing malformed.
func TestEveryRecordingDecodes(t *testing.T) {
	framingOf := map[string]Framing{".pcap": FramingPcap, ".ff": FramingFinal, ".gps": FramingGPS, ".raw": FramingRaw, ".ast": FramingRaw, ".bin": FramingRaw}
	for _, path := range recordings(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var out bytes.Buffer
			stats, framing, err := Dump(bytes.NewReader(reference.ReadFile(t, path)), FramingAuto, &out)
			if err != nil {
				t.Fatal(err)
			}
			if want := framingOf[filepath.Ext(path)]; framing != want {
				t.Errorf("framing %v, want %v", framing, want)
			}
			if n := stats.MalformedTotal(); n != 0 {
				t.Errorf("%d malformed: %s", n, stats)
			}
			records := int64(0)
			for _, cat := range []int{Cat021, Cat034, Cat048, Cat062, Cat065} {
				records += stats.Records[cat].Load()
			}
			if rows := int64(strings.Count(out.String(), "\n") - 1); records == 0 || rows != records {
				t.Errorf("%d records, %d rows: %s", records, rows, stats)
			}
			name := filepath.Base(path)
			// goa_sample.ast holds a block each of CAT001, 002, 030, 032
			// and 255, which are skipped by their length and counted.
			if name == "goa_sample.ast" {
				for _, cat := range []int{1, 2, 30, 32, 255} {
					if n := stats.Blocks[cat].Load(); n != 1 || !strings.Contains(stats.String(), fmt.Sprintf("cat%03d_blocks_skipped=1", cat)) {
						t.Errorf("CAT%03d: %d blocks: %s", cat, n, stats)
					}
				}
			}
			for _, cat := range []int{21, 34, 48, 62, 65} {
				tag := "cat0" + strconv.Itoa(cat)
				if strings.Contains(strings.ToLower(name), tag) || strings.Contains(name, "cat"+strconv.Itoa(cat)) {
					if stats.Records[cat].Load() == 0 {
						t.Errorf("no CAT%03d record: %s", cat, stats)
					}
				}
			}
		})
	}
}

// block builds a data block of category cat from records.
func block(cat byte, records ...[]byte) []byte {
	b := []byte{cat, 0, 0}
	for _, r := range records {
		b = append(b, r...)
	}
	binary.BigEndian.PutUint16(b[1:], uint16(len(b)))
	return b
}

func TestMalformedBlocks(t *testing.T) {
	ref := reference.ReadFile(t, filepath.Join(reference.ASTERIX(t), "fj_cat062.ast"))
	// A CAT062 record with I062/010 and I062/040: FSPEC 0x81 0x10.
	good := []byte{0x81, 0x08, 6, 128, 0x12, 0x34}
	cases := []struct {
		name   string
		block  []byte
		reason Reason
		item   Item
	}{
		{"FSPEC past the end", block(62, good, []byte{0x81, 0x81}), ReasonFSPECPastEnd, 0},
		{"item past the end", block(62, good, []byte{0x81, 0x08, 6}), ReasonItemPastEnd, item(62, 10)},
		{"spare FRN 2", block(62, []byte{0x40, 0, 0}), ReasonUndefinedItem, 0},
		{"FRN past the UAP", block(65, []byte{0x01, 0x01, 0x08}), ReasonUndefinedItem, 0},
		{"FSPEC of nine octets", block(62, []byte{1, 1, 1, 1, 1, 1, 1, 1, 0}), ReasonUndefinedItem, 0},
		{"explicit length 0", block(62, []byte{0x01, 0x01, 0x01, 0x01, 0x04, 0}), ReasonBadExplicitLength, item(62, reExpansion)},
		{"explicit length past the end", block(62, []byte{0x01, 0x01, 0x01, 0x01, 0x02, 9, 1}), ReasonItemPastEnd, item(62, specialPurpose)},
		{"compound subfield not defined", block(34, []byte{0x04, 0x40, 0}), ReasonUndefinedItem, item(34, 50)},
		{"compound past the end", block(62, []byte{0x01, 0x02, 0x08, 1}), ReasonItemPastEnd, item(62, 290)},
		{"repetition past the end", block(48, []byte{0x01, 0x20, 2, 1, 2, 3, 4, 5, 6, 7, 8}), ReasonItemPastEnd, item(48, 250)},
		{"extended past the end", block(62, []byte{0x01, 0x04, 0x01, 0x01}), ReasonItemPastEnd, item(62, 80)},
		{"reference record cut short", block(62, ref[3:len(ref)-1]), ReasonItemPastEnd, item(62, 340)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d Decoder
			recs, err := d.Block(c.block)
			var e *Error
			if !errors.As(err, &e) || recs != nil {
				t.Fatalf("records %v, error %v", recs, err)
			}
			if e.Reason != c.reason || e.Item != c.item {
				t.Errorf("%v (item %v), want %v (item %v)", e.Reason, e.Item, c.reason, c.item)
			}
		})
	}
	// The well-formed record alone decodes.
	var d Decoder
	recs, err := d.Block(block(62, good))
	if err != nil || len(recs) != 1 || recs[0].SAC != 6 || recs[0].SIC != 128 || recs[0].TrackNumber != 0x1234 {
		t.Fatalf("%+v %v", recs, err)
	}
}

// TestPayloadGoesOnAfterMalformed: in a datagram, a malformed block is
// counted and the next block still decodes; a length that cannot be true
// ends the datagram, counted once.
func TestPayloadGoesOnAfterMalformed(t *testing.T) {
	good := block(62, []byte{0x81, 0x08, 6, 128, 0, 7})
	bad := block(62, []byte{0x40, 0, 0})
	var p []byte
	p = append(p, bad...)
	p = append(p, good...)
	p = append(p, block(30, []byte{1, 2, 3})...)
	p = append(p, 62, 0, 1) // LEN 1
	var s Stream
	var cats []int
	var errs []Reason
	records := 0
	err := s.Payload(&Frame{Payload: p}, func(b *Block) error {
		cats = append(cats, b.Category)
		if b.Err != nil {
			errs = append(errs, b.Err.Reason)
		}
		records += len(b.Records)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cats) != 4 || records != 1 || len(errs) != 2 || errs[0] != ReasonUndefinedItem || errs[1] != ReasonBadBlockLength {
		t.Fatalf("categories %v, %d records, errors %v", cats, records, errs)
	}
	if s.Stats.Malformed[ReasonUndefinedItem].Load() != 1 || s.Stats.Malformed[ReasonBadBlockLength].Load() != 1 ||
		s.Stats.Blocks[30].Load() != 1 || s.Stats.Records[62].Load() != 1 {
		t.Fatalf("stats %s", &s.Stats)
	}
	for _, tail := range [][]byte{{62}, {62, 0}, append(block(62, []byte{0x81, 0x08, 6, 128, 0, 7}), 0)[:5]} {
		var s Stream
		var got []Reason
		s.Payload(&Frame{Payload: tail}, func(b *Block) error {
			if b.Err != nil {
				got = append(got, b.Err.Reason)
			}
			return nil
		})
		if len(got) != 1 || (got[0] != ReasonTrailingBytes && got[0] != ReasonTruncatedBlock) {
			t.Errorf("% x: %v", tail, got)
		}
	}
}

// TestEveryCutOfARealBlock: a real block cut anywhere (its LEN fixed up to
// the cut) decodes to its first records when the cut falls between records,
// and is malformed otherwise; never a panic.
func TestEveryCutOfARealBlock(t *testing.T) {
	for _, path := range recordings(t) {
		data := reference.ReadFile(t, path)
		fr, _, err := NewFrameReader(bytes.NewReader(data), FramingAuto)
		if err != nil {
			t.Fatal(err)
		}
		for frames := 0; frames < 50; frames++ {
			f, err := fr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			full, _, r := NextBlock(f.Payload)
			if r != ReasonNone || !Decoded(int(full[0])) {
				continue
			}
			var d Decoder
			recs, err := d.Block(full)
			if err != nil {
				t.Fatal(err)
			}
			// Where each record ends.
			ends := map[int]int{3: 0}
			p := 3
			for i := range recs {
				n, r, _, _ := decodeRecord(uapOf(int(full[0])), full[p:], &Record{})
				if r != ReasonNone {
					t.Fatal(r)
				}
				p += n
				ends[p] = i + 1
			}
			for cut := 3; cut < len(full); cut++ {
				b := bytes.Clone(full[:cut])
				binary.BigEndian.PutUint16(b[1:], uint16(cut))
				got, err := d.Block(b)
				if n, boundary := ends[cut]; boundary {
					if err != nil || len(got) != n {
						t.Fatalf("%s: cut at %d: %d records, %v; want %d", path, cut, len(got), err, n)
					}
				} else if err == nil {
					t.Fatalf("%s: cut at %d inside a record decoded", path, cut)
				}
			}
		}
	}
}

func TestDetect(t *testing.T) {
	if got := Detect([]byte{0, 0, 0, 0}); got != FramingAuto {
		t.Errorf("zeros: %v", got)
	}
	if got := Detect(nil); got != FramingAuto {
		t.Errorf("empty: %v", got)
	}
	for _, name := range []string{"auto", "raw", "pcap", "final", "gps"} {
		f, err := ParseFraming(name)
		if err != nil || f.String() != name {
			t.Errorf("%s: %v %v", name, f, err)
		}
	}
	if _, err := ParseFraming("hdlc"); err == nil {
		t.Error("hdlc accepted")
	}
}

// finalFrame wraps blocks in a FINAL frame at time of day tod10ms.
func finalFrame(tod10ms int, blocks ...[]byte) []byte {
	data := bytes.Join(blocks, nil)
	f := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint16(f, uint16(12+len(data)))
	f[5], f[6], f[7] = byte(tod10ms>>16), byte(tod10ms>>8), byte(tod10ms)
	f = append(f, data...)
	return append(f, 0xa5, 0xa5, 0xa5, 0xa5)
}

func frames(t *testing.T, r io.Reader, f Framing) ([]Frame, []Reason) {
	t.Helper()
	fr, got, err := NewFrameReader(r, f)
	if err != nil {
		t.Fatal(err)
	}
	if f != FramingAuto && got != f {
		t.Fatalf("framing %v", got)
	}
	var out []Frame
	var reasons []Reason
	for i := 0; i < 1000; i++ {
		fm, err := fr.Next()
		var fe *FrameError
		switch {
		case errors.Is(err, io.EOF):
			return out, reasons
		case errors.As(err, &fe):
			reasons = append(reasons, fe.Reason)
		case err != nil:
			t.Fatal(err)
		default:
			fm.Payload = bytes.Clone(fm.Payload)
			out = append(out, fm)
		}
	}
	t.Fatal("frame reader does not end")
	return nil, nil
}

func TestFinalFramingResyncs(t *testing.T) {
	b := block(62, []byte{0x81, 0x08, 6, 128, 0, 7})
	good1, good2 := finalFrame(100, b), finalFrame(250, b, b)
	broken := finalFrame(200, b)
	broken[len(broken)-1] = 0 // trailer damaged
	var rec []byte
	for _, f := range [][]byte{good1, broken, good2, good1[:9]} {
		rec = append(rec, f...)
	}
	got, reasons := frames(t, bytes.NewReader(rec), FramingAuto)
	if len(got) != 2 || len(reasons) != 2 {
		t.Fatalf("%d frames, reasons %v", len(got), reasons)
	}
	if got[0].TimeOfDay.Milliseconds() != 1000 || !bytes.Equal(got[1].Payload, append(bytes.Clone(b), b...)) {
		t.Errorf("frames %+v", got)
	}
}

func TestRawFramingResyncs(t *testing.T) {
	b := block(62, []byte{0x81, 0x08, 6, 128, 0, 7})
	rec := append(bytes.Clone(b), 0x3e, 0x00, 0x01, 0xff, 0xff)
	rec = append(rec, b...)
	rec = append(rec, b[:5]...)
	got, reasons := frames(t, bytes.NewReader(rec), FramingRaw)
	if len(got) != 2 || len(reasons) != 2 || reasons[0] != ReasonBadBlockLength || reasons[1] != ReasonTruncatedBlock {
		t.Fatalf("%d frames, reasons %v", len(got), reasons)
	}
}

func TestGPSFraming(t *testing.T) {
	b := block(48, []byte{0x80, 20, 193})
	rec := bytes.Repeat([]byte{0xcd}, gpsHeaderLen)
	for i := range 3 {
		rec = append(rec, b...)
		rec = append(rec, 0, 0, 0, 0, 0, 0, 0, 1, byte(i)) // 1/128 s
		rec = append(rec, 0)
	}
	got, reasons := frames(t, bytes.NewReader(rec), FramingAuto)
	if len(got) != 3 || len(reasons) != 0 {
		t.Fatalf("%d frames, reasons %v", len(got), reasons)
	}
	if got[2].TimeOfDay.Seconds() != 258.0/128 {
		t.Errorf("time %v", got[2].TimeOfDay)
	}
}

// TestKeptItemsComplete: Record.set reads only the items of keptItems (the
// decoder skips calling it for the others): decoding every recording with
// set called for every item gives the same records.
func TestKeptItemsComplete(t *testing.T) {
	for _, path := range recordings(t) {
		fr, _, err := NewFrameReader(bytes.NewReader(reference.ReadFile(t, path)), FramingAuto)
		if err != nil {
			t.Fatal(err)
		}
		var s Stream
		err = s.Recording(fr, func(b *Block) error {
			if len(b.Records) == 0 {
				return nil
			}
			all := slices.Clone(uapOf(b.Category))
			for i := range all {
				all[i].kept = true
			}
			p := 3
			for i := range b.Records {
				rec := Record{Cat: b.Category}
				n, r, _, _ := decodeRecord(all, b.Data[p:], &rec)
				if r != ReasonNone {
					t.Fatal(r)
				}
				p += n
				if rec != b.Records[i] {
					t.Fatalf("%s block %d record %d: set reads an item keptItems lacks:\n%+v\n%+v", path, b.Index, i, rec, b.Records[i])
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
