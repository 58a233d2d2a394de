package replica

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/track"
)

// MaxPayload is the largest notification payload the relay sends: the
// PostgreSQL limit is 8000 bytes, less a margin.
const MaxPayload = 7900

// The payload is base64 (a notification carries text) of a binary record:
// a format version, the origin replica, then the reports one after the
// other, each as its four names (party, aircraft, callsign, altitude
// source, class; length-prefixed), its time in Unix nanoseconds (varint)
// and six float64 (lat, lon, alt_m, vel_east_mps, vel_north_mps,
// vel_up_mps). It is about the size of compact JSON, and several times
// cheaper to write and read: both replicas do it for every report, so it
// counts in the ingest rate. Older versions are still read: version 2 had
// no class (its reports are of the default class), version 1 no altitude
// source either.
const codecVersion = 3

var enc = base64.RawStdEncoding

// EncodePositions splits reports into notification payloads of at most
// MaxPayload bytes, in order, each naming the origin replica. A report that
// alone exceeds the limit (absurdly long names) is an error.
func EncodePositions(origin string, reports []track.Report) ([]string, error) {
	head := binary.AppendUvarint([]byte{codecVersion}, uint64(len(origin)))
	head = append(head, origin...)
	var out []string
	buf := append([]byte(nil), head...)
	n := 0
	var rec []byte
	for i := range reports {
		rec = appendReport(rec[:0], &reports[i])
		if enc.EncodedLen(len(head)+len(rec)) > MaxPayload {
			return nil, fmt.Errorf("replica: report %d (aircraft %q) does not fit in one notification", i, reports[i].Aircraft)
		}
		if enc.EncodedLen(len(buf)+len(rec)) > MaxPayload {
			out = append(out, enc.EncodeToString(buf))
			buf, n = append(buf[:0], head...), 0
		}
		buf = append(buf, rec...)
		n++
	}
	if n > 0 {
		out = append(out, enc.EncodeToString(buf))
	}
	return out, nil
}

func appendReport(b []byte, r *track.Report) []byte {
	for _, s := range []string{r.Party, r.Aircraft, r.Callsign, r.AltSource, r.Class} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, r.Time.UnixNano())
	for _, f := range []float64{r.Pos.LatDeg, r.Pos.LonDeg, r.Pos.AltM, r.VelEastMps, r.VelNorthMps, r.VelUpMps} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	return b
}

// reader reads the fields of a payload, remembering the first failure.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(field, msg string) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %s", field, msg)
	}
}

func (r *reader) uvarint(field string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(field, "truncated or overlong length")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str(field string) string {
	n := r.uvarint(field)
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail(field, "truncated")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) varint(field string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(field, "truncated or overlong")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) f64(field string) float64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail(field, "truncated")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

// DecodePositions parses one payload of EncodePositions. Each report must
// pass track.Report.Validate, as the replica that sent it checked: the
// channel is anyone's who may NOTIFY on the database, and a report the
// engine refuses (a NaN latitude) would still reach the picture the
// parties are shown. A payload holding one is refused whole, naming it.
func DecodePositions(s string) (origin string, reports []track.Report, err error) {
	b, err := enc.DecodeString(s)
	if err != nil {
		return "", nil, fmt.Errorf("replica: position payload: %w", err)
	}
	if len(b) == 0 || b[0] < 1 || b[0] > codecVersion {
		return "", nil, errors.New("replica: position payload: version: not 1, 2 or 3")
	}
	version := b[0]
	r := &reader{b: b[1:]}
	origin = r.str("origin")
	if r.err == nil && origin == "" {
		r.fail("origin", "missing")
	}
	for r.err == nil && len(r.b) > 0 {
		var t track.Report
		t.Party = r.str("party")
		t.Aircraft = r.str("aircraft")
		t.Callsign = r.str("callsign")
		if version >= 2 {
			t.AltSource = r.str("alt_source")
		}
		if version >= 3 {
			t.Class = r.str("class")
		}
		nanos := r.varint("time")
		t.Pos = geo.LLA{LatDeg: r.f64("lat"), LonDeg: r.f64("lon"), AltM: r.f64("alt_m")}
		t.VelEastMps = r.f64("vel_east_mps")
		t.VelNorthMps = r.f64("vel_north_mps")
		t.VelUpMps = r.f64("vel_up_mps")
		if r.err != nil {
			return "", nil, fmt.Errorf("replica: position payload: reports[%d].%w", len(reports), r.err)
		}
		t.Time = time.Unix(0, nanos).UTC()
		if err := t.Validate(); err != nil {
			return "", nil, fmt.Errorf("replica: position payload: reports[%d].%w", len(reports), err)
		}
		reports = append(reports, t)
	}
	if r.err != nil {
		return "", nil, fmt.Errorf("replica: position payload: %w", r.err)
	}
	return origin, reports, nil
}
