package airspace

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/volume"
)

// DefaultUnlimitedM is the altitude that stands for an unlimited upper
// limit (OpenAir UNL) when none is given: FL660, the top of the airspace
// that air traffic services control in Europe.
var DefaultUnlimitedM = geo.FlightLevelToM(660)

// ImportOptions say what an airspace file does not.
type ImportOptions struct {
	// Start and End bound the window of interest: an airspace without
	// activation times (or active by NOTAM) is declared for it, open ends
	// of activation intervals are closed by it, and intervals are cut to
	// it. Zero is unbounded.
	Start, End time.Time
	// GroundM is the ground elevation under heights above ground (AGL).
	GroundM float64
	// UnlimitedM is the altitude of an unlimited upper limit.
	UnlimitedM float64
}

// Item is one volume to declare: an airspace gives one per activation
// interval (one when it has none).
type Item struct {
	Index int    // the airspace's position in the file
	Line  int    // its OpenAir line, or its GeoJSON feature index
	Name  string // its name
	Input volume.Input
	// Err says why the airspace cannot become this volume (nil: it can,
	// as far as the file goes; the volume's own validation comes next).
	Err error
}

// Items turns airspaces into volume inputs, in file order.
func Items(as []Airspace, opt ImportOptions) []Item {
	if opt.UnlimitedM == 0 {
		opt.UnlimitedM = DefaultUnlimitedM
	}
	var out []Item
	for i, a := range as {
		base := Item{Index: i, Line: a.Line, Name: a.Name}
		if a.Err != nil {
			base.Err = a.Err
			out = append(out, base)
			continue
		}
		in := volume.Input{
			Footprint: Footprint(a.Shape),
			AltLowerM: a.Lower.Meters(opt.GroundM, opt.UnlimitedM),
			AltUpperM: a.Upper.Meters(opt.GroundM, opt.UnlimitedM),
			State:     volume.Accepted,
		}
		if v := a.Volume; v != nil {
			if v.Priority != nil {
				in.Priority = *v.Priority
			}
			if v.State != "" {
				in.State = volume.State(v.State)
			}
			in.Details = v.Details
		}
		if in.Details == nil {
			in.Details = details(a)
		}
		windows, err := windowsOf(a, opt)
		if err != nil {
			base.Err = err
			out = append(out, base)
			continue
		}
		for _, w := range windows {
			it := base
			it.Input = in
			it.Input.Start, it.Input.End = w.Start, w.End
			out = append(out, it)
		}
	}
	return out
}

// label puts in m the airspace's name, class and type, those it has.
func (a Airspace) label(m map[string]any) {
	for k, v := range map[string]string{"name": a.Name, "class": a.Class, "type": a.Type} {
		if v != "" {
			m[k] = v
		}
	}
}

// details are the private details of an imported volume: where it came
// from and what the file called it.
func details(a Airspace) json.RawMessage {
	d := map[string]any{"source_line": a.Line}
	a.label(d)
	if a.Lower.Datum == GND && a.Lower != Surface || a.Upper.Datum == GND {
		d["limits"] = a.Lower.String() + " to " + a.Upper.String()
	}
	b, _ := json.Marshal(d)
	return b
}

func windowsOf(a Airspace, opt ImportOptions) ([]Activation, error) {
	errf := func(format string, args ...any) error {
		if a.Volume != nil || a.Line == 0 {
			return featureErrorf(a.Line, format, args...)
		}
		return lineErrorf(a.Line, format, args...)
	}
	var acts []Activation
	switch {
	case a.Volume != nil && (a.Volume.Start != nil || a.Volume.End != nil):
		var w Activation
		if a.Volume.Start != nil {
			w.Start = *a.Volume.Start
		}
		if a.Volume.End != nil {
			w.End = *a.Volume.End
		}
		acts = []Activation{w}
	case len(a.Activations) > 0:
		acts = a.Activations
	default:
		acts = []Activation{{}}
	}
	var out []Activation
	for _, w := range acts {
		if w.Start.IsZero() || !opt.Start.IsZero() && w.Start.Before(opt.Start) {
			w.Start = opt.Start
		}
		if w.End.IsZero() || !opt.End.IsZero() && w.End.After(opt.End) {
			w.End = opt.End
		}
		switch {
		case w.Start.IsZero() && w.End.IsZero():
			return nil, errf("no time window: the file gives none, give --start and --end")
		case w.Start.IsZero():
			return nil, errf("no start: the file gives none, give --start")
		case w.End.IsZero():
			return nil, errf("no end: the file gives none, give --end")
		case !w.End.After(w.Start):
			continue // outside the window of interest
		}
		out = append(out, Activation{Start: w.Start.UTC(), End: w.End.UTC()})
	}
	if len(out) == 0 {
		return nil, errf("no activation time falls between --start and --end")
	}
	return out, nil
}

// Footprint returns the shape as a volume footprint.
func Footprint(s Shape) volume.Footprint {
	pos := func(p orb.Point) []float64 { return []float64{p[0], p[1]} }
	line := func(l []orb.Point) [][]float64 {
		out := make([][]float64, len(l))
		for i, p := range l {
			out[i] = pos(p)
		}
		return out
	}
	switch s.Type {
	case CircleShape:
		return volume.Footprint{Type: "Circle", Center: pos(s.Center), RadiusM: s.RadiusM}
	case OrbitShape:
		return volume.Footprint{Type: "Orbit", Points: line(s.Line), WidthM: s.WidthM}
	case CorridorShape:
		return volume.Footprint{Type: "Corridor", Line: line(s.Line), WidthM: s.WidthM}
	default:
		return volume.Footprint{Type: "Polygon", Coordinates: [][][]float64{line(s.FootprintRing())}}
	}
}

// FromVolume returns a volume as an airspace, for export: named by its id,
// its band as limits in meters above mean sea level, its window as its
// one activation interval and its volume fields kept.
func FromVolume(v volume.Volume) (Airspace, error) {
	fp := v.Footprint
	s, err := ShapeFromFootprint(fp)
	if err != nil {
		return Airspace{}, fmt.Errorf("volume %s: %w", v.ID, err)
	}
	start, end := v.Start.UTC(), v.End.UTC()
	prio := v.Priority
	return Airspace{
		Name:        v.ID,
		Class:       "UNC",
		Lower:       Limit{Value: v.AltLowerM, Unit: Meters, Datum: MSL},
		Upper:       Limit{Value: v.AltUpperM, Unit: Meters, Datum: MSL},
		Shape:       s,
		Activations: []Activation{{Start: start, End: end}},
		Volume: &VolumeFields{ID: v.ID, Party: v.Party, Version: v.Version, State: string(v.State),
			Priority: &prio, Start: &start, End: &end, Details: v.Details},
	}, nil
}

var ringField = regexp.MustCompile(`^footprint\.(?:coordinates\[0\]|line|points)\[(\d+)\]`)

// LineOf returns the OpenAir line (or GeoJSON feature index) that a volume
// field error about this airspace's input points at: the line of a ring
// position when the field names one, of AL or AH when it names a limit,
// else the airspace's own.
func (a Airspace) LineOf(field string) int {
	if m := ringField.FindStringSubmatch(field); m != nil && a.Shape.Type == PolygonShape {
		if i, err := strconv.Atoi(m[1]); err == nil {
			if l := a.Shape.LineOf(i); l != 0 {
				return l
			}
		}
	}
	switch {
	case strings.HasPrefix(field, "alt_lower_") && a.LowerLine != 0:
		return a.LowerLine
	case strings.HasPrefix(field, "alt_upper_") && a.UpperLine != 0:
		return a.UpperLine
	}
	return a.Line
}

// UnlimitedAdvice says, for an airspace with an unlimited upper limit
// (OpenAir UNL) whose volume input in has a band higher than maxBandM (the
// rules' max_alt_range_m), what UNL was taken as and how to import the
// airspace; "" otherwise. An unlimited upper limit stands for an altitude
// (ImportOptions.UnlimitedM, FL660 by default) that from the ground makes
// a band higher than the default rules allow.
func (a Airspace) UnlimitedAdvice(in volume.Input, maxBandM float64) string {
	if !a.Upper.Unlimited || in.AltUpperM-in.AltLowerM <= maxBandM {
		return ""
	}
	where := ""
	if a.UpperLine != 0 {
		where = fmt.Sprintf(" (line %d)", a.UpperLine)
	}
	return fmt.Sprintf("the upper limit UNL%s is taken as %s m (FL660 unless --unlimited-m, the preview's unlimited_m, says otherwise) "+
		"and the rules' max_alt_range_m is %s m: import it with --unlimited-m %s or lower (its lower limit plus max_alt_range_m), "+
		"or agree rules with a higher max_alt_range_m",
		where, formatMeters(in.AltUpperM), formatMeters(maxBandM), formatMeters(math.Floor(in.AltLowerM+maxBandM)))
}

func formatMeters(m float64) string { return strconv.FormatFloat(math.Round(m*10)/10, 'f', -1, 64) }
