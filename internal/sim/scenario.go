package sim

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/jsonlimit"
	"github.com/deconflict/deconflict/internal/lineend"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// Scenario is one scenario file. See the package doc for the format.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Epoch is the scenario's time zero; every *_s field counts seconds
	// from it. Only used to print scenario times; runs re-base onto now.
	Epoch time.Time `json:"epoch"`
	// DemoStartS is where `deconflict demo` starts: shortly before the first
	// designed encounter, so that nobody waits through the quiet hours.
	DemoStartS float64 `json:"demo_start_s"`
	// ReportEveryS is the interval between two reports of an aircraft.
	ReportEveryS float64 `json:"report_every_s"`
	// PilotReactionS is how long a pilot takes to start flying the
	// suggestion of an alert about their aircraft (default 10 s), in runs
	// that follow resolutions.
	PilotReactionS float64        `json:"pilot_reaction_s,omitempty"`
	Parties        []Party        `json:"parties"`
	Bases          []Base         `json:"bases"`
	AircraftTypes  []AircraftType `json:"aircraft_types"`
	Sorties        []Sortie       `json:"sorties"`
	// Encounters are the designed losses of separation: the test of the
	// scenario checks each with the pair math.
	Encounters []Encounter `json:"encounters"`
	// Rules are the fields of the agreed rules the scenario runs under,
	// over the defaults, as PUT /v1/rules takes them (`deconflict demo`
	// proposes them and has every party accept).
	Rules map[string]json.RawMessage `json:"rules,omitempty"`
}

// Party is one side of the scenario.
type Party struct {
	Name string `json:"name"`
	// NoAck lists sorties whose tactical alerts this party deliberately
	// leaves unacknowledged, so that they escalate.
	NoAck []string `json:"no_ack,omitempty"`
}

// Base is an air base or a carrier (a fixed point for the scenario).
type Base struct {
	Name   string  `json:"name"`
	Party  string  `json:"party"`
	LatDeg float64 `json:"lat"`
	LonDeg float64 `json:"lon"`
	ElevM  float64 `json:"elev_m"`
}

// AircraftType holds the performance the kinematics use.
type AircraftType struct {
	Name string `json:"name"`
	// Class is the class its reports carry ("manned" when empty, "uas"
	// for drones): the rules separate each pair by its classes.
	Class       string  `json:"class,omitempty"`
	CruiseMps   float64 `json:"cruise_mps"`
	ClimbMps    float64 `json:"climb_mps"`
	CeilingM    float64 `json:"ceiling_m"`
	MaxSpeedMps float64 `json:"max_mps,omitempty"`
}

// Point is a waypoint. AltM, when set, is the altitude flown toward on the
// leg that ends here (else the sortie's). AtS, when set, is the time the
// aircraft must be over the point: the leg's speed is chosen to make it,
// which is how encounters are designed.
type Point struct {
	LatDeg float64  `json:"lat"`
	LonDeg float64  `json:"lon"`
	AltM   *float64 `json:"alt_m,omitempty"`
	AtS    *float64 `json:"at_s,omitempty"`
}

// Orbit is a racetrack: two straight legs of LengthM along AxisDeg joined
// by half circles of diameter WidthM, centred on Center.
type Orbit struct {
	LatDeg  float64 `json:"lat"`
	LonDeg  float64 `json:"lon"`
	AxisDeg float64 `json:"axis_deg"`
	LengthM float64 `json:"length_m"`
	WidthM  float64 `json:"width_m"`
}

// Sortie is one flight: from a base, through waypoints, then an orbit
// (optional), then back to its base (or LandAt).
type Sortie struct {
	ID       string  `json:"id"`
	Callsign string  `json:"callsign"`
	Party    string  `json:"party"`
	Type     string  `json:"type"`
	Base     string  `json:"base"`
	LandAt   string  `json:"land_at,omitempty"`
	StartS   float64 `json:"start_s"`
	// DurationS is the airborne time of an orbit sortie (the orbit is left
	// in time to fly home); for a route it is optional and only checked.
	DurationS float64 `json:"duration_s,omitempty"`
	AltM      float64 `json:"alt_m"`
	Waypoints []Point `json:"waypoints,omitempty"`
	Orbit     *Orbit  `json:"orbit,omitempty"`
	// Repeat flies the same sortie Count times, EveryS apart (ids and
	// callsigns get a suffix -1, -2, ...).
	Repeat *Repeat `json:"repeat,omitempty"`
	// Volume shapes the volumes declared for the sortie.
	Volume VolumeSpec `json:"volume"`
	// Fixed sorties are not jittered by the seed (designed encounters).
	Fixed bool `json:"fixed,omitempty"`
}

// Repeat is a sortie flown several times.
type Repeat struct {
	Count  int     `json:"count"`
	EveryS float64 `json:"every_s"`
}

// VolumeSpec says how a sortie's flight path becomes declared volumes: a
// chain of circles of RadiusM covering the whole path (take-off to
// landing) with at least MarginM on each side, from the ground to the
// highest altitude plus AltMarginM, over the airborne window widened by
// LeadS before and TrailS after.
type VolumeSpec struct {
	None       bool    `json:"none,omitempty"`
	RadiusM    float64 `json:"radius_m,omitempty"`
	MarginM    float64 `json:"margin_m,omitempty"`
	AltMarginM float64 `json:"alt_margin_m,omitempty"`
	LeadS      float64 `json:"lead_s,omitempty"`
	TrailS     float64 `json:"trail_s,omitempty"`
	Priority   int     `json:"priority,omitempty"`
}

// Encounter is a designed loss of separation between the aircraft of two
// sorties (ids as planned: with the -N suffix for repeated sorties) around
// AtS.
type Encounter struct {
	A    string  `json:"a"`
	B    string  `json:"b"`
	AtS  float64 `json:"at_s"`
	Note string  `json:"note,omitempty"`
}

// fieldErr refuses the field of a scenario at fault, e.g.
// "sorties[3].waypoints[1].at_s": a *fielderr.Error, said to be the
// scenario's.
func fieldErr(field, format string, args ...any) error {
	return fmt.Errorf("scenario: %w", fielderr.Errorf(field, format, args...))
}

//go:embed scenarios/*.json
var builtin embed.FS

// BuiltinNames lists the scenarios compiled into the binary.
func BuiltinNames() []string {
	ents, _ := builtin.ReadDir("scenarios")
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(names)
	return names
}

// Builtin loads a scenario compiled into the binary, e.g. "syria-2015".
func Builtin(name string) (*Scenario, error) {
	b, err := builtin.ReadFile("scenarios/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("sim: no built-in scenario %q (have %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	return Load(bytes.NewReader(b))
}

// MaxScenarioBytes bounds a scenario file: the built-in day is 12 KB, and
// a file is read whole before it is checked, so a huge one (or a device
// that never ends) must not take the memory.
const MaxScenarioBytes = 4 << 20

// Load reads and validates a scenario file (JSON): one document, nothing
// after it but white space, at most MaxScenarioBytes. Unknown fields are
// errors: a typo in a scenario should not silently change the flight. A
// fault of the JSON names its line and column.
func Load(r io.Reader) (*Scenario, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxScenarioBytes+1))
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if len(data) > MaxScenarioBytes {
		return nil, fmt.Errorf("scenario: longer than %d bytes", MaxScenarioBytes)
	}
	// An editor's byte order mark is not part of the document.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("scenario: empty: expected a JSON document")
	}
	// A member given twice (a second "sorties" silently replaced the
	// first), text that is not UTF-8 (its bytes read as U+FFFD), or
	// nesting no scenario has, is refused naming the member.
	if err := jsonlimit.Check(data); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("scenario: %s%w", jsonPosition(data, err, dec.InputOffset()), err)
	}
	end := dec.InputOffset()
	if rest := bytes.TrimLeft(data[end:], " \t\r\n"); len(rest) > 0 {
		return nil, fmt.Errorf("scenario: %sdata after the scenario's JSON document", position(data, int64(len(data)-len(rest))))
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// jsonPosition is "line L, column C: " of a decoding error: the last byte
// read for a syntax or type error (the decoder's offsets count it), the
// end of the file for one that ends inside the document, else where the
// decoder stopped.
func jsonPosition(data []byte, err error, stopped int64) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return position(data, syntax.Offset-1)
	case errors.As(err, &typ):
		return position(data, typ.Offset-1)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return position(data, int64(len(data)))
	}
	return position(data, stopped)
}

// position is "line L, column C: " (1-based, the column in bytes) of the
// byte at offset off of data. In a file saved with CR-only line endings
// (which JSON reads as white space, so that the file loads) the lines are
// counted at its carriage returns, and the position says so: counted at
// line feeds, every fault was on "line 1" of a file the editor shows as
// many lines.
func position(data []byte, off int64) string {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	end, note := byte('\n'), ""
	if lineend.CROnly(data) {
		end, note = '\r', " ("+lineend.ErrCROnly.Error()+")"
	}
	line := bytes.Count(before, []byte{end}) + 1
	col := len(before) - bytes.LastIndexByte(before, end)
	return fmt.Sprintf("line %d, column %d%s: ", line, col, note)
}

// Validate checks references, ranges and that every timed waypoint can be
// made at a plausible speed, naming the field at fault.
func (s *Scenario) Validate() error {
	if s.Name == "" {
		return fieldErr("name", "required")
	}
	if !finite(s.PilotReactionS) || s.PilotReactionS < 0 || s.PilotReactionS > 300 {
		return fieldErr("pilot_reaction_s", "must be within [0, 300]")
	}
	if !finite(s.ReportEveryS) || s.ReportEveryS < minReportEveryS || s.ReportEveryS > 30 {
		return fieldErr("report_every_s", "must be within [%g, 30]", minReportEveryS)
	}
	if !finite(s.DemoStartS) || s.DemoStartS < 0 || s.DemoStartS > maxScenarioS {
		return fieldErr("demo_start_s", "must be within [0, %d]", maxScenarioS)
	}
	if len(s.Parties) > maxParties {
		return fieldErr("parties", "%d parties, above the %d a scenario may have (a run follows an event stream per party)", len(s.Parties), maxParties)
	}
	flights := 0
	for i, so := range s.Sorties {
		n := 1
		if so.Repeat != nil {
			n = max(so.Repeat.Count, 1)
		}
		// Counted before the repeats are checked, so a count beyond
		// theirs is bounded here too.
		if flights += min(n, maxFlights+1); flights > maxFlights {
			return fieldErr(fmt.Sprintf("sorties[%d]", i), "the scenario flies more than %d flights (with the repeats) by this sortie: more than a run drives", maxFlights)
		}
	}
	if len(s.Rules) > 0 {
		r, err := rules.Amend(rules.Default(), s.Rules)
		if err == nil {
			err = r.Validate()
		}
		var fe *fielderr.Error
		if errors.As(err, &fe) {
			return fieldErr("rules."+fe.Field, "%s", fe.Msg)
		}
		if err != nil {
			return fieldErr("rules", "%s", err.Error())
		}
	}
	parties := map[string]bool{}
	for i, p := range s.Parties {
		if p.Name == "" || parties[p.Name] {
			return fieldErr(fmt.Sprintf("parties[%d].name", i), "empty or duplicate")
		}
		// The runner acts as each party: a name the server refuses
		// would have every report of it refused.
		if err := party.ValidateName(p.Name); err != nil {
			return fieldErr(fmt.Sprintf("parties[%d].name", i), "%s", err.(*fielderr.Error).Msg)
		}
		parties[p.Name] = true
	}
	if len(parties) < 2 {
		return fieldErr("parties", "at least two parties are needed")
	}
	bases := map[string]bool{}
	for i, b := range s.Bases {
		f := fmt.Sprintf("bases[%d]", i)
		if b.Name == "" || bases[b.Name] {
			return fieldErr(f+".name", "empty or duplicate")
		}
		bases[b.Name] = true
		if !parties[b.Party] {
			return fieldErr(f+".party", "unknown party %q", b.Party)
		}
		if err := checkLatLon(f, b.LatDeg, b.LonDeg); err != nil {
			return err
		}
		if !finite(b.ElevM) || b.ElevM < track.MinAltM || b.ElevM > track.MaxAltM {
			return fieldErr(f+".elev_m", "must be within [%d, %d] m, the altitudes a report may carry", track.MinAltM, track.MaxAltM)
		}
	}
	types := map[string]AircraftType{}
	for i, t := range s.AircraftTypes {
		f := fmt.Sprintf("aircraft_types[%d]", i)
		if t.Name == "" {
			return fieldErr(f+".name", "required")
		}
		if !validClass(t.Class) {
			return fieldErr(f+".class", "at most 32 bytes of a-z, 0-9, '-' and '_'")
		}
		for _, v := range []struct {
			name string
			v    float64
		}{{"cruise_mps", t.CruiseMps}, {"climb_mps", t.ClimbMps}, {"ceiling_m", t.CeilingM}} {
			if !finite(v.v) || v.v <= 0 {
				return fieldErr(f+"."+v.name, "must be above zero")
			}
		}
		if t.CeilingM > track.MaxAltM {
			return fieldErr(f+".ceiling_m", "must be at most %d m, the highest altitude a report may carry", track.MaxAltM)
		}
		if !finite(t.MaxSpeedMps) || t.MaxSpeedMps < 0 {
			return fieldErr(f+".max_mps", "must be zero (absent) or more")
		}
		// The fastest the plan flies it (a timed leg at its top speed, or
		// the cruise jittered up), climbing at its rate, is a speed a
		// report may carry.
		if top := math.Hypot(max(t.topSpeedMps(), maxCruiseJitter*t.CruiseMps), t.ClimbMps); !(top <= track.MaxSpeedMps) {
			field := "cruise_mps"
			if t.MaxSpeedMps > 0 {
				field = "max_mps"
			}
			return fieldErr(f+"."+field, "with climb_mps, a speed of %.0f m/s, above the %d m/s a report may carry", top, track.MaxSpeedMps)
		}
		types[t.Name] = t
	}
	ids := map[string]bool{}
	for i, so := range s.Sorties {
		f := fmt.Sprintf("sorties[%d]", i)
		if so.ID == "" || ids[so.ID] {
			return fieldErr(f+".id", "empty or duplicate")
		}
		ids[so.ID] = true
		if !parties[so.Party] {
			return fieldErr(f+".party", "unknown party %q", so.Party)
		}
		if err := checkNames(f, so); err != nil {
			return err
		}
		t, ok := types[so.Type]
		if !ok {
			return fieldErr(f+".type", "unknown aircraft type %q", so.Type)
		}
		if !bases[so.Base] {
			return fieldErr(f+".base", "unknown base %q", so.Base)
		}
		if so.LandAt != "" && !bases[so.LandAt] {
			return fieldErr(f+".land_at", "unknown base %q", so.LandAt)
		}
		if !finite(so.StartS) || so.StartS < 0 || so.StartS > maxScenarioS {
			return fieldErr(f+".start_s", "must be within [0, %d]", maxScenarioS)
		}
		if !finite(so.AltM) || so.AltM <= 0 || so.AltM > t.CeilingM {
			return fieldErr(f+".alt_m", "must be above zero and at most the type's ceiling %g m", t.CeilingM)
		}
		if len(so.Waypoints) == 0 && so.Orbit == nil {
			return fieldErr(f, "needs waypoints or an orbit")
		}
		for j, w := range so.Waypoints {
			wf := fmt.Sprintf("%s.waypoints[%d]", f, j)
			if err := checkLatLon(wf, w.LatDeg, w.LonDeg); err != nil {
				return err
			}
			if w.AltM != nil && (!finite(*w.AltM) || *w.AltM <= 0 || *w.AltM > t.CeilingM) {
				return fieldErr(wf+".alt_m", "must be above zero and at most the type's ceiling")
			}
			if w.AtS != nil && (!finite(*w.AtS) || *w.AtS <= so.StartS) {
				return fieldErr(wf+".at_s", "must be after the sortie's start_s")
			}
		}
		if o := so.Orbit; o != nil {
			if err := checkLatLon(f+".orbit", o.LatDeg, o.LonDeg); err != nil {
				return err
			}
			if !finite(o.LengthM) || o.LengthM < 0 || o.LengthM > 300_000 {
				return fieldErr(f+".orbit.length_m", "must be in [0, 300000]")
			}
			if !finite(o.WidthM) || o.WidthM < 2000 || o.WidthM > 100_000 {
				return fieldErr(f+".orbit.width_m", "must be in [2000, 100000]")
			}
			if !finite(so.DurationS) || so.DurationS <= 0 {
				return fieldErr(f+".duration_s", "an orbit sortie needs its airborne duration")
			}
		}
		if r := so.Repeat; r != nil && (r.Count < 1 || r.Count > 100 || !finite(r.EveryS) || r.EveryS <= 0 || float64(r.Count-1)*r.EveryS > maxScenarioS) {
			return fieldErr(f+".repeat", "count in [1, 100] and every_s above zero, the last one starting within %d s", maxScenarioS)
		}
		v := so.Volume
		for _, x := range []struct {
			name string
			v    float64
		}{{"radius_m", v.RadiusM}, {"margin_m", v.MarginM}, {"alt_margin_m", v.AltMarginM}, {"lead_s", v.LeadS}, {"trail_s", v.TrailS}} {
			if !finite(x.v) || x.v < 0 {
				return fieldErr(f+".volume."+x.name, "must be zero or more")
			}
		}
		if v.RadiusM > 0 && v.RadiusM <= v.MarginM {
			return fieldErr(f+".volume.radius_m", "must exceed margin_m")
		}
	}
	for i, p := range s.Parties {
		for j, id := range p.NoAck {
			if !ids[id] {
				return fieldErr(fmt.Sprintf("parties[%d].no_ack[%d]", i, j), "unknown sortie %q", id)
			}
		}
	}
	for i, e := range s.Encounters {
		f := fmt.Sprintf("encounters[%d]", i)
		if !ids[e.A] {
			return fieldErr(f+".a", "unknown sortie %q", e.A)
		}
		if !ids[e.B] {
			return fieldErr(f+".b", "unknown sortie %q", e.B)
		}
	}
	// Timed waypoints must be reachable: Plan computes the legs.
	p, err := s.Plan(0)
	if err != nil {
		return err
	}
	for _, f := range p.Flights {
		if f.EndS > maxScenarioS {
			i := slices.IndexFunc(s.Sorties, func(so Sortie) bool { return so.ID == f.Sortie })
			return fieldErr(fmt.Sprintf("sorties[%d]", i), "flight %s lands at %.0f s, beyond the %d s (%d days) a scenario may span",
				f.ID, f.EndS, maxScenarioS, maxScenarioS/86400)
		}
	}
	return nil
}

// Bounds of a scenario's time. A run steps through the scenario every
// report_every_s and Flight.Volumes samples each path every 20 s, so an
// interval that does not advance the time (1e-300 s), or flights that
// land in 1e18 s (a huge start_s, duration_s or repeat, or a crawling
// cruise_mps), would loop without end. A scenario is a day of operations;
// a week leaves room, and keeps the sampling to some thirty thousand
// steps per flight.
const (
	minReportEveryS = 0.1
	maxScenarioS    = 7 * 86400
)

// Bounds of a scenario's size. A run drives every flight through the
// server's API, declares each one's volumes and follows an event stream
// per party: the built-in day has 69 flights and 4 parties; ten thousand
// flights is a theatre at its busiest (the whole-airspace benchmarks go
// beyond through the API's batches, not through a scenario).
const (
	maxFlights = 10_000
	maxParties = 64
)

// checkNames checks that the aircraft ids and callsigns of a sortie's
// flights (with the suffixes of its repeats; the id is the callsign when
// it has none) are ones a report may carry.
func checkNames(field string, so Sortie) error {
	id, callsign := so.ID, so.Callsign
	if so.Repeat != nil && so.Repeat.Count > 0 {
		id = fmt.Sprintf("%s-%d", so.ID, so.Repeat.Count)
		callsign = fmt.Sprintf("%s%d", so.Callsign, so.Repeat.Count)
	}
	if err := printable.Check(so.ID); err != nil {
		return fieldErr(field+".id", "%s", err)
	}
	if len(id) > track.MaxIDBytes {
		return fieldErr(field+".id", "an aircraft id of %d bytes (with the repeat's suffix), above the %d a report may carry", len(id), track.MaxIDBytes)
	}
	if callsign == "" {
		callsign = id
	}
	if err := printable.Check(so.Callsign); err != nil {
		return fieldErr(field+".callsign", "%s", err)
	}
	if len(callsign) > track.MaxCallsignLen {
		return fieldErr(field+".callsign", "a callsign of %d bytes (the id when absent, with the repeat's suffix), above the %d a report may carry", len(callsign), track.MaxCallsignLen)
	}
	return nil
}

func checkLatLon(field string, lat, lon float64) error {
	if !finite(lat) || lat < -90 || lat > 90 {
		return fieldErr(field+".lat", "%g outside [-90, 90]", lat)
	}
	if !finite(lon) || lon < -180 || lon > 180 {
		return fieldErr(field+".lon", "%g outside [-180, 180]", lon)
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// sortie returns the scenario sortie with id, or a zero Sortie.
func (s *Scenario) sortie(id string) Sortie {
	for _, so := range s.Sorties {
		if so.ID == id {
			return so
		}
	}
	return Sortie{}
}

// validClass is the shape of a class name in the rules (or empty).
func validClass(c string) bool {
	if len(c) > 32 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if b := c[i]; !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}
