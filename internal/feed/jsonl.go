package feed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/wiretime"
)

// ParseJSONLine reads one line holding one position report in the schema of
// the items of POST /v1/positions. Unknown fields are allowed (the wire
// shapes may grow); missing required fields are errors naming the field,
// and so is whatever the server would refuse of the report itself, by its
// own rule (track.Report.Validate: the lengths of the aircraft id,
// callsign and class, the class's syntax, coordinates, altitude and speed
// within their limits, an altitude source it knows, printable texts): the
// line is skipped here, saying why, instead of sent to be refused without
// a reason. Whether the rules know the class is the server's to say.
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
	case in.Time == nil:
		return client.Report{}, fielderr.New("time", "required")
	case in.Lat == nil:
		return client.Report{}, fielderr.New("lat", "required")
	case in.Lon == nil:
		return client.Report{}, fielderr.New("lon", "required")
	case in.AltM == nil:
		return client.Report{}, fielderr.New("alt_m", "required")
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
	if err := CheckReport(r); err != nil {
		return client.Report{}, err
	}
	return r, nil
}

// CheckReport returns a *fielderr.Error naming the first field of r that
// the server refuses, by its own rule for a report (track.Report.Validate):
// a report it would refuse is not sent but skipped, saying why. Whether
// the rules know r's class is the server's to say.
func CheckReport(r client.Report) error {
	// The party is the token's, which the server fills in: any valid name
	// stands for it here.
	tr := track.Report{Party: "feed", Aircraft: r.Aircraft, Callsign: r.Callsign, Class: r.Class, Time: r.Time,
		Pos: geo.LLA{LatDeg: r.LatDeg, LonDeg: r.LonDeg, AltM: r.AltM}, AltSource: r.AltSource,
		VelEastMps: r.VelEastMps, VelNorthMps: r.VelNorthMps, VelUpMps: r.VelUpMps}
	return tr.Validate()
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
