package volume

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/jsonlimit"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/wiretime"
)

// The altitudes a volume may use, whatever the rules: from below the
// lowest land (the Dead Sea shore is at -430 m) to above where aircraft
// fly.
const (
	MinAltitudeM = -500
	MaxAltitudeM = 30_000
)

// wireInput is the JSON body of a volume write. Pointers tell a missing
// field from a zero one.
type wireInput struct {
	Footprint  json.RawMessage   `json:"footprint"`
	AltLowerM  *float64          `json:"alt_lower_m"`
	AltLowerFt *float64          `json:"alt_lower_ft"`
	AltLowerFL *float64          `json:"alt_lower_fl"`
	AltUpperM  *float64          `json:"alt_upper_m"`
	AltUpperFt *float64          `json:"alt_upper_ft"`
	AltUpperFL *float64          `json:"alt_upper_fl"`
	Start      *string           `json:"start"`
	End        *string           `json:"end"`
	Priority   *int              `json:"priority"`
	State      string            `json:"state"`
	Details    json.RawMessage   `json:"details"`
	Key        []json.RawMessage `json:"key"`
	Version    string            `json:"version"`
}

// ParseInput decodes the JSON body of a create (POST) or update (PUT) of a
// volume, converting feet ("alt_lower_ft") and flight levels
// ("alt_lower_fl", taken as their nominal altitude on the standard
// atmosphere) to meters, once, here at the edge. It checks the syntax and the units; Validate
// checks the content against the rules. The state defaults to accepted.
func ParseInput(data []byte) (Input, error) {
	if err := jsonlimit.Check(data); err != nil {
		return Input{}, err
	}
	var w wireInput
	if err := decodeStrict(data, &w, ""); err != nil {
		return Input{}, err
	}
	var in Input
	if len(w.Footprint) == 0 || bytes.Equal(w.Footprint, []byte("null")) {
		return Input{}, fielderr.Errorf("footprint", "missing")
	}
	if err := decodeStrict(w.Footprint, &in.Footprint, "footprint."); err != nil {
		return Input{}, err
	}
	for i, raw := range w.Key {
		var k KeyEntry
		if err := decodeStrict(raw, &k, fmt.Sprintf("key[%d].", i)); err != nil {
			return Input{}, err
		}
		in.Key = append(in.Key, k)
	}
	var err error
	if in.AltLowerM, err = altitude("alt_lower", w.AltLowerM, w.AltLowerFt, w.AltLowerFL); err != nil {
		return Input{}, err
	}
	if in.AltUpperM, err = altitude("alt_upper", w.AltUpperM, w.AltUpperFt, w.AltUpperFL); err != nil {
		return Input{}, err
	}
	if in.Start, err = timestamp("start", w.Start); err != nil {
		return Input{}, err
	}
	if in.End, err = timestamp("end", w.End); err != nil {
		return Input{}, err
	}
	if w.Priority != nil {
		in.Priority = *w.Priority
	}
	in.State = State(w.State)
	if in.State == "" {
		in.State = Accepted
	}
	if len(w.Details) > 0 && !bytes.Equal(bytes.TrimSpace(w.Details), []byte("null")) {
		in.Details = w.Details
	}
	in.Version = w.Version
	return in, nil
}

// altitude takes exactly one of the meter, feet and flight-level forms.
func altitude(name string, m, ft, fl *float64) (float64, error) {
	n := 0
	var v float64
	var field string
	if m != nil {
		n, v, field = n+1, *m, name+"_m"
	}
	if ft != nil {
		n, v, field = n+1, geo.FeetToM(*ft), name+"_ft"
	}
	if fl != nil {
		n, v, field = n+1, geo.FlightLevelToM(*fl), name+"_fl"
	}
	switch {
	case n == 0:
		return 0, fielderr.Errorf(name+"_m", "missing")
	case n > 1:
		return 0, fielderr.Errorf(name+"_m", "give exactly one of %[1]s_m, %[1]s_ft and %[1]s_fl", name)
	case !finite(v) || v < MinAltitudeM || v > MaxAltitudeM:
		return 0, fielderr.Errorf(field, "%v m is outside %v m to %v m", v, MinAltitudeM, MaxAltitudeM)
	}
	return v, nil
}

func timestamp(field string, s *string) (time.Time, error) {
	if s == nil {
		return time.Time{}, fielderr.Errorf(field, "missing")
	}
	return wiretime.Parse(field, *s)
}

// decodeStrict decodes exactly one JSON value into v, refusing fields v
// does not have (a misspelt "priorty" must not pass for a default). prefix
// is the JSON path of data within the body ("" for the body itself), for
// the field named in errors.
func decodeStrict(data []byte, v any, prefix string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(err, prefix)
	}
	if dec.More() {
		return fielderr.Errorf("body", "trailing data after the JSON object")
	}
	return nil
}

func jsonFieldError(err error, prefix string) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := prefix + te.Field
		if te.Field == "" {
			field = strings.TrimSuffix(prefix, ".")
		}
		if field == "" {
			field = "body"
		}
		return fielderr.Errorf(field, "expected %s, got JSON %s", te.Type, te.Value)
	}
	// encoding/json reports an unknown field only in its message.
	if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
		name = strings.TrimSuffix(name, `"`)
		if name == "" {
			// A member named "": the object holding it is at fault.
			field := strings.TrimSuffix(prefix, ".")
			if field == "" {
				field = "body"
			}
			return fielderr.Errorf(field, `unknown field ""`)
		}
		return fielderr.Errorf(prefix+name, "unknown field")
	}
	return fielderr.Errorf("body", "invalid JSON: %v", err)
}

// Validate checks an input against the rules and the field constraints.
// It names the first field at fault.
func (in Input) Validate(rl rules.Rules) error {
	_, err := in.compile(rl)
	return err
}

func (in Input) compile(rl rules.Rules) (*shape, error) {
	s, err := compile(in.Footprint, rl.MaxVertices, rl.MaxFootprintM)
	if err != nil {
		return nil, err
	}
	switch {
	case !finite(in.AltLowerM):
		return nil, fielderr.Errorf("alt_lower_m", "NaN or infinite number")
	case !finite(in.AltUpperM):
		return nil, fielderr.Errorf("alt_upper_m", "NaN or infinite number")
	case in.AltLowerM < MinAltitudeM || in.AltLowerM > MaxAltitudeM:
		return nil, fielderr.Errorf("alt_lower_m", "%v m is outside %v m to %v m", in.AltLowerM, MinAltitudeM, MaxAltitudeM)
	case in.AltUpperM < MinAltitudeM || in.AltUpperM > MaxAltitudeM:
		return nil, fielderr.Errorf("alt_upper_m", "%v m is outside %v m to %v m", in.AltUpperM, MinAltitudeM, MaxAltitudeM)
	case in.AltLowerM > in.AltUpperM:
		return nil, fielderr.Errorf("alt_lower_m", "lower altitude %v m is above the upper altitude %v m", in.AltLowerM, in.AltUpperM)
	case in.AltUpperM-in.AltLowerM > rl.MaxAltRangeM:
		return nil, fielderr.Errorf("alt_upper_m", "the band is %v m high, more than the %v m the rules allow", in.AltUpperM-in.AltLowerM, rl.MaxAltRangeM)
	case s.areaM2 > rl.MaxFootprintAreaM2:
		return nil, fielderr.Errorf("footprint", "the footprint covers %.0f km², more than the %.0f km² the rules allow", s.areaM2/1e6, rl.MaxFootprintAreaM2/1e6)
	case in.Start.IsZero():
		return nil, fielderr.Errorf("start", "missing")
	case in.End.IsZero():
		return nil, fielderr.Errorf("end", "missing")
	}
	if err := wiretime.Check("start", in.Start); err != nil {
		return nil, err
	}
	if err := wiretime.Check("end", in.End); err != nil {
		return nil, err
	}
	switch {
	case !in.End.After(in.Start):
		return nil, fielderr.Errorf("end", "must be after start (%s)", in.Start.Format(time.RFC3339))
	case in.End.Sub(in.Start) > rl.MaxWindow():
		return nil, fielderr.Errorf("end", "window of %s is longer than the %s the rules allow",
			in.End.Sub(in.Start), rl.MaxWindow())
	case in.State != "" && !in.State.valid():
		return nil, fielderr.Errorf("state", "%q is not one of proposed, accepted, activated, ended, cancelled", in.State)
	}
	if len(in.Details) > 0 && !json.Valid(in.Details) {
		return nil, fielderr.Errorf("details", "not valid JSON")
	}
	for i, k := range in.Key {
		if k.ID == "" {
			return nil, fielderr.Errorf(fmt.Sprintf("key[%d].id", i), "missing")
		}
		if k.Version == "" {
			return nil, fielderr.Errorf(fmt.Sprintf("key[%d].version", i), "missing")
		}
	}
	return s, nil
}
