package asterix

import "io"

// Dump decodes the recording r (framing f, or detected when FramingAuto)
// and writes one CSV row per record of CAT021, 034, 048, 062 and 065 to w
// (CSVWriter). It returns the stream's counters; malformed blocks and
// frames are counted there, not returned as errors.
func Dump(r io.Reader, f Framing, w io.Writer) (*Stats, Framing, error) {
	fr, f, err := NewFrameReader(r, f)
	if err != nil {
		return nil, f, err
	}
	cw, err := NewCSVWriter(w)
	if err != nil {
		return nil, f, err
	}
	var s Stream
	err = s.Recording(fr, func(b *Block) error {
		for i := range b.Records {
			if err := cw.Write(b.Index, i, &b.Records[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if ferr := cw.Flush(); err == nil {
		err = ferr
	}
	return &s.Stats, f, err
}
