package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/deconflict/deconflict/internal/track"
)

// MaxPayload is the largest notification payload the relay sends: the
// PostgreSQL limit is 8000 bytes, less a margin.
const MaxPayload = 7900

// wireReport is a report as a JSON array (party, aircraft, callsign, time
// in Unix nanoseconds, lat, lon, alt_m, vel_east_mps, vel_north_mps,
// vel_up_mps): about half the size of an object, so more reports fit in
// one notification.
type wireReport track.Report

func (w wireReport) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{w.Party, w.Aircraft, w.Callsign, w.Time.UnixNano(),
		w.Pos.LatDeg, w.Pos.LonDeg, w.Pos.AltM, w.VelEastMps, w.VelNorthMps, w.VelUpMps})
}

var reportFields = [...]string{"party", "aircraft", "callsign", "time", "lat", "lon", "alt_m", "vel_east_mps", "vel_north_mps", "vel_up_mps"}

func (w *wireReport) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw) != len(reportFields) {
		return fmt.Errorf("%d fields, want %d", len(raw), len(reportFields))
	}
	var nanos int64
	dst := []any{&w.Party, &w.Aircraft, &w.Callsign, &nanos,
		&w.Pos.LatDeg, &w.Pos.LonDeg, &w.Pos.AltM, &w.VelEastMps, &w.VelNorthMps, &w.VelUpMps}
	for i, d := range dst {
		if err := json.Unmarshal(raw[i], d); err != nil {
			return fmt.Errorf("%s: %w", reportFields[i], err)
		}
	}
	w.Time = time.Unix(0, nanos).UTC()
	return nil
}

// payload is one notification of the position channel.
type payload struct {
	Origin  string       `json:"o"`
	Reports []wireReport `json:"r"`
}

// EncodePositions splits reports into notification payloads of at most
// MaxPayload bytes, in order, each naming the origin replica. A report that
// alone exceeds the limit (absurdly long names) is an error.
func EncodePositions(origin string, reports []track.Report) ([]string, error) {
	head, err := json.Marshal(origin)
	if err != nil {
		return nil, err
	}
	prefix := `{"o":` + string(head) + `,"r":[`
	const suffix = `]}`
	var out []string
	buf := []byte(prefix)
	n := 0
	for i := range reports {
		b, err := json.Marshal(wireReport(reports[i]))
		if err != nil {
			return nil, fmt.Errorf("replica: encoding report %d: %w", i, err)
		}
		if len(prefix)+len(b)+len(suffix) > MaxPayload {
			return nil, fmt.Errorf("replica: report %d (aircraft %q) does not fit in one notification", i, reports[i].Aircraft)
		}
		if len(buf)+1+len(b)+len(suffix) > MaxPayload {
			out = append(out, string(append(buf, suffix...)))
			buf, n = []byte(prefix), 0
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, b...)
		n++
	}
	if n > 0 {
		out = append(out, string(append(buf, suffix...)))
	}
	return out, nil
}

// DecodePositions parses one payload of EncodePositions.
func DecodePositions(s string) (origin string, reports []track.Report, err error) {
	var p payload
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return "", nil, fmt.Errorf("replica: position payload: %w", err)
	}
	if p.Origin == "" {
		return "", nil, errors.New("replica: position payload: o: missing origin")
	}
	reports = make([]track.Report, len(p.Reports))
	for i, w := range p.Reports {
		reports[i] = track.Report(w)
	}
	return p.Origin, reports, nil
}
