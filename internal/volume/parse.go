package volume

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

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

// wireInput is the JSON body of a volume write.
type wireInput struct {
	Footprint json.RawMessage `json:"footprint"`
	WriteFields
	Key     []json.RawMessage `json:"key"`
	Version string            `json:"version"`
}

// WriteFields are the members of a volume write other than its footprint,
// key and version, as JSON has them (pointers tell a missing member from a
// zero one). They are also the properties of a GeoJSON feature that stands
// for a volume (package airspace).
type WriteFields struct {
	AltLowerM  *float64        `json:"alt_lower_m"`
	AltLowerFt *float64        `json:"alt_lower_ft"`
	AltLowerFL *float64        `json:"alt_lower_fl"`
	AltUpperM  *float64        `json:"alt_upper_m"`
	AltUpperFt *float64        `json:"alt_upper_ft"`
	AltUpperFL *float64        `json:"alt_upper_fl"`
	Start      *string         `json:"start"`
	End        *string         `json:"end"`
	Priority   *int            `json:"priority"`
	State      string          `json:"state"`
	Details    json.RawMessage `json:"details"`
}

// Limit is one limit of the altitude band as written: the member that
// gives it ("alt_lower_ft") and its value in that member's unit.
type Limit struct {
	Field string
	Value float64
}

// Unit is the unit of the limit's member: "m", "ft" or "fl" (a flight
// level).
func (l Limit) Unit() string { return l.Field[strings.LastIndexByte(l.Field, '_')+1:] }

// Meters is the limit in meters, a flight level taken as its nominal
// altitude on the standard atmosphere.
func (l Limit) Meters() float64 {
	switch l.Unit() {
	case "ft":
		return geo.FeetToM(l.Value)
	case "fl":
		return geo.FlightLevelToM(l.Value)
	}
	return l.Value
}

// Lower and Upper return the limit given in meters, feet or flight levels;
// ok is false when none of the three members is. A limit given twice, or
// not a finite number, is a field error.
func (w WriteFields) Lower() (l Limit, ok bool, err error) {
	return oneLimit("alt_lower", w.AltLowerM, w.AltLowerFt, w.AltLowerFL)
}

// Upper: see Lower.
func (w WriteFields) Upper() (l Limit, ok bool, err error) {
	return oneLimit("alt_upper", w.AltUpperM, w.AltUpperFt, w.AltUpperFL)
}

func oneLimit(name string, m, ft, fl *float64) (Limit, bool, error) {
	var ls []Limit
	for _, f := range []struct {
		unit string
		v    *float64
	}{{"m", m}, {"ft", ft}, {"fl", fl}} {
		if f.v != nil {
			ls = append(ls, Limit{Field: name + "_" + f.unit, Value: *f.v})
		}
	}
	switch {
	case len(ls) == 0:
		return Limit{}, false, nil
	case len(ls) > 1:
		return Limit{}, true, fielderr.Errorf(name+"_m", "give exactly one of %[1]s_m, %[1]s_ft and %[1]s_fl", name)
	case !finite(ls[0].Value):
		return Limit{}, true, fielderr.Errorf(ls[0].Field, "%v is not a finite number", ls[0].Value)
	}
	return ls[0], true, nil
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
	if in.AltLowerM, err = altitude("alt_lower", w.Lower); err != nil {
		return Input{}, err
	}
	if in.AltUpperM, err = altitude("alt_upper", w.Upper); err != nil {
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

// altitude takes the limit that get returns, in meters within the
// altitudes a volume may use.
func altitude(name string, get func() (Limit, bool, error)) (float64, error) {
	l, ok, err := get()
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return 0, fielderr.Errorf(name+"_m", "missing")
	}
	if v := l.Meters(); !finite(v) || v < MinAltitudeM || v > MaxAltitudeM {
		return 0, fielderr.Errorf(l.Field, "%v m is outside %v m to %v m", v, MinAltitudeM, MaxAltitudeM)
	}
	return l.Meters(), nil
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
		field := prefix + jsonPath(te.Field)
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

// jsonPath drops from encoding/json's path of a member the names of the
// embedded Go structs it passes through (WriteFields): those start with a
// capital letter, the members of the API never do.
func jsonPath(path string) string {
	parts := strings.Split(path, ".")
	out := parts[:0]
	for _, p := range parts {
		if p == "" || !unicode.IsUpper(rune(p[0])) {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
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
	case in.AltLowerM == in.AltUpperM && !in.storedBand:
		// A band without height reserves no airspace, yet is kept
		// separated from the others as any volume is.
		return nil, fielderr.Errorf("alt_upper_m", "the band has no height: the upper altitude %v m equals the lower altitude; give it the altitudes it reserves", in.AltUpperM)
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
