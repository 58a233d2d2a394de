package feed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/wiretime"
)

// ParseJSONLine reads one line holding one position report in the schema of
// the items of POST /v1/positions. Unknown fields are allowed (the wire
// shapes may grow); missing required fields, impossible coordinates,
// non-finite numbers, an altitude source the server does not know and an
// aircraft id or callsign with a control or invisible formatting character
// are errors naming the field.
func ParseJSONLine(line []byte) (client.Report, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return client.Report{}, fielderr.New("line", "empty")
	}
	// Decode through pointers first so that "absent" and "zero" differ.
	var in struct {
		Aircraft    *string  `json:"aircraft"`
		Callsign    string   `json:"callsign"`
		Class       string   `json:"class"`
		Time        *string  `json:"time"`
		Lat         *float64 `json:"lat"`
		Lon         *float64 `json:"lon"`
		AltM        *float64 `json:"alt_m"`
		AltSource   string   `json:"alt_source"`
		VelEastMps  float64  `json:"vel_east_mps"`
		VelNorthMps float64  `json:"vel_north_mps"`
		VelUpMps    float64  `json:"vel_up_mps"`
	}
	if err := json.Unmarshal(line, &in); err != nil {
		field := "line"
		if te, ok := err.(*json.UnmarshalTypeError); ok && te.Field != "" {
			field = te.Field
		}
		return client.Report{}, fielderr.New(field, "not a report object: "+err.Error())
	}
	switch {
	case in.Aircraft == nil || *in.Aircraft == "":
		return client.Report{}, fielderr.New("aircraft", "required")
	case len(*in.Aircraft) > 64:
		return client.Report{}, fielderr.New("aircraft", "longer than 64 bytes")
	case len(in.Callsign) > 64:
		return client.Report{}, fielderr.New("callsign", "longer than 64 bytes")
	case len(in.Class) > 32:
		return client.Report{}, fielderr.New("class", "longer than 32 bytes")
	case in.Time == nil:
		return client.Report{}, fielderr.New("time", "required")
	case in.Lat == nil:
		return client.Report{}, fielderr.New("lat", "required")
	case in.Lon == nil:
		return client.Report{}, fielderr.New("lon", "required")
	case in.AltM == nil:
		return client.Report{}, fielderr.New("alt_m", "required")
	case in.AltSource != "" && in.AltSource != AltGeometric && in.AltSource != AltBarometric:
		return client.Report{}, fielderr.Errorf("alt_source", "must be %q or %q (or absent)", AltGeometric, AltBarometric)
	}
	// The server refuses a whole batch for one such text: the line is
	// skipped here instead, so that it sinks no other report.
	if err := printable.Check(*in.Aircraft); err != nil {
		return client.Report{}, fielderr.New("aircraft", err.Error())
	}
	if err := printable.Check(in.Callsign); err != nil {
		return client.Report{}, fielderr.New("callsign", err.Error())
	}
	r := client.Report{
		Aircraft: *in.Aircraft, Callsign: in.Callsign, Class: in.Class,
		LatDeg: *in.Lat, LonDeg: *in.Lon, AltM: *in.AltM, AltSource: in.AltSource,
		VelEastMps: in.VelEastMps, VelNorthMps: in.VelNorthMps, VelUpMps: in.VelUpMps,
	}
	// The profile the server reads (wiretime): a line whose time the
	// server would refuse is skipped here, naming its time, instead of
	// sent as an instant its writer may not have meant.
	t, err := wiretime.Parse("time", *in.Time)
	if err != nil {
		return client.Report{}, err
	}
	r.Time = t
	if r.LatDeg < -90 || r.LatDeg > 90 {
		return client.Report{}, fielderr.Errorf("lat", "%g outside [-90, 90]", r.LatDeg)
	}
	if r.LonDeg < -180 || r.LonDeg > 180 {
		return client.Report{}, fielderr.Errorf("lon", "%g outside [-180, 180]", r.LonDeg)
	}
	// encoding/json already refuses NaN and Inf literals; the bounds keep
	// absurd magnitudes out.
	for _, f := range []struct {
		name  string
		v, lo float64
		hi    float64
	}{
		{"alt_m", r.AltM, -1000, 100_000},
		{"vel_east_mps", r.VelEastMps, -3000, 3000},
		{"vel_north_mps", r.VelNorthMps, -3000, 3000},
		{"vel_up_mps", r.VelUpMps, -1000, 1000},
	} {
		if math.IsNaN(f.v) || f.v < f.lo || f.v > f.hi {
			return client.Report{}, fielderr.Errorf(f.name, "%g outside [%g, %g]", f.v, f.lo, f.hi)
		}
	}
	return r, nil
}

// JSONSkipReason names why a JSON line was skipped, the same for every
// line skipped for the same field.
func JSONSkipReason(err error) string {
	var fe *fielderr.Error
	if errors.As(err, &fe) {
		return fmt.Sprintf("bad %s", fe.Field)
	}
	return "malformed"
}
