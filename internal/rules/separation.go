package rules

import (
	"fmt"
	"math"
	"slices"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
)

// Aircraft classes that every version of the rules knows. A position report
// without a class is of ClassManned.
const (
	ClassManned = "manned"
	ClassUAS    = "uas"
)

// Kinds of pair detector (the detectors of internal/detect).
const (
	// DetectorCylinder is the separation cylinder: a loss is a horizontal
	// distance below horizontal_m and at the same time a vertical one
	// below vertical_m.
	DetectorCylinder = "cylinder"
	// DetectorDO365WCV is RTCA DO-365 well clear (DAIDALUS's WCV_TAUMOD):
	// horizontal distance threshold dthr_m with the modified tau against
	// tthr_s, vertical threshold zthr_m with the time to co-altitude
	// against tcoa_s.
	DetectorDO365WCV = "do365_wcv"
)

// Detector names a pair detector and its parameters. Only the parameters
// of its kind are set; the others are absent (nil), so that a missing
// parameter is told from a zero one.
type Detector struct {
	Kind        string   `json:"kind"`
	HorizontalM *float64 `json:"horizontal_m,omitempty"`
	VerticalM   *float64 `json:"vertical_m,omitempty"`
	DTHRM       *float64 `json:"dthr_m,omitempty"`
	ZTHRM       *float64 `json:"zthr_m,omitempty"`
	TTHRS       *float64 `json:"tthr_s,omitempty"`
	TCOAS       *float64 `json:"tcoa_s,omitempty"`
}

// Cylinder is the cylinder detector with these minima.
func Cylinder(horizontalM, verticalM float64) Detector {
	return Detector{Kind: DetectorCylinder, HorizontalM: &horizontalM, VerticalM: &verticalM}
}

// DO365WCV is the DO-365 well-clear detector with these thresholds.
func DO365WCV(dthrM, zthrM, tthrS, tcoaS float64) Detector {
	return Detector{Kind: DetectorDO365WCV, DTHRM: &dthrM, ZTHRM: &zthrM, TTHRS: &tthrS, TCOAS: &tcoaS}
}

// Param returns a parameter's value, 0 when absent.
func Param(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// SeparationLevel is one alert level of a separation entry: a pair is at
// least at this level when its detector predicts a loss of separation that
// starts within MaxTimeToLoSS seconds (for do365_wcv, strictly before
// that time as DO-365 and DAIDALUS count it, the alerting time).
type SeparationLevel struct {
	Name          string  `json:"name"`
	MaxTimeToLoSS float64 `json:"max_time_to_los_s"`
	// Detector, when set, is this level's own detector (of the entry's
	// kind): DO-365's preventive level watches a taller volume than its
	// corrective and warning levels.
	Detector *Detector `json:"detector,omitempty"`
}

// Separation is one entry of the separation table: how two aircraft of
// the two classes (in either order; the same class twice for pairs within
// one class) are kept apart.
type Separation struct {
	Classes    []string `json:"classes"`
	Detector   Detector `json:"detector"`
	LookaheadS float64  `json:"lookahead_s"`
	// Levels, ordered from the least to the most severe (decreasing
	// MaxTimeToLoSS).
	Levels []SeparationLevel `json:"levels"`
}

// LevelDetector is the detector of level i: its own, or the entry's.
func (s *Separation) LevelDetector(i int) Detector {
	if d := s.Levels[i].Detector; d != nil {
		return *d
	}
	return s.Detector
}

// DefaultClasses are the classes of the default rules.
func DefaultClasses() []string { return []string{ClassManned, ClassUAS} }

// DefaultSeparation is the table of the default rules, with manned-manned
// taken from the cylinder, lookahead and levels given (the top-level
// fields of the rules, so that manned-only traffic is detected exactly as
// before the table existed):
//   - manned-manned: that cylinder;
//   - manned-uas: DO-365B Phase I well clear (DTHR 0.66 NM, ZTHR 450 ft,
//     TTHR 35 s, TCOA 0 s), 180 s ahead, with its alert levels without
//     SUM: preventive (ZTHR 700 ft) and corrective within 55 s, warning
//     within 25 s;
//   - uas-uas: a cylinder of 50 m and 15 m, 60 s ahead, advisory within
//     60 s, caution within 30 s, warning within 15 s.
func DefaultSeparation(horizontalM, verticalM, lookaheadS float64, levels []Level) []Separation {
	mm := Separation{Classes: []string{ClassManned, ClassManned}, Detector: Cylinder(horizontalM, verticalM), LookaheadS: lookaheadS}
	for _, l := range levels {
		mm.Levels = append(mm.Levels, SeparationLevel{Name: l.Name, MaxTimeToLoSS: l.MaxTimeToLoSS})
	}
	preventive := DO365WCV(geo.NMToM(0.66), geo.FeetToM(700), 35, 0)
	return []Separation{
		mm,
		{
			Classes:    []string{ClassManned, ClassUAS},
			Detector:   DO365WCV(geo.NMToM(0.66), geo.FeetToM(450), 35, 0),
			LookaheadS: 180,
			Levels: []SeparationLevel{
				{Name: "preventive", MaxTimeToLoSS: 55, Detector: &preventive},
				{Name: "corrective", MaxTimeToLoSS: 55},
				{Name: "warning", MaxTimeToLoSS: 25},
			},
		},
		{
			Classes:    []string{ClassUAS, ClassUAS},
			Detector:   Cylinder(50, 15),
			LookaheadS: 60,
			Levels: []SeparationLevel{
				{Name: "advisory", MaxTimeToLoSS: 60},
				{Name: "caution", MaxTimeToLoSS: 30},
				{Name: "warning", MaxTimeToLoSS: 15},
			},
		},
	}
}

// FillTable gives rules without classes or without a separation table
// (stored before the table existed, or sent in that older shape) the
// default classes and the default table built from their own top-level
// minima, lookahead and levels, so that they keep detecting exactly as
// they did. A table that is present, even empty, is left as it is. So are
// the performance limits: absent, each class gets its default
// (fillPerformance).
func (r *Rules) FillTable() {
	if r.Classes == nil {
		r.Classes = DefaultClasses()
	}
	if r.Separation == nil {
		r.Separation = DefaultSeparation(r.HorizontalSepM, r.VerticalSepM, r.LookaheadS, r.Levels)
	}
	r.fillPerformance()
}

// SeparationFor returns the entry for a pair of classes (in either order),
// or nil when the table has none.
func (r *Rules) SeparationFor(a, b string) *Separation {
	for i := range r.Separation {
		s := &r.Separation[i]
		if (s.Classes[0] == a && s.Classes[1] == b) || (s.Classes[0] == b && s.Classes[1] == a) {
			return s
		}
	}
	return nil
}

// HasClass reports whether the rules know the class.
func (r *Rules) HasClass(c string) bool { return slices.Contains(r.Classes, c) }

// Limits of the table.
const (
	maxClasses = 16
	maxTauS    = 300
)

// validClassName: 1 to 32 bytes of lower-case letters, digits, '-' and '_'.
func validClassName(c string) bool {
	if c == "" || len(c) > 32 {
		return false
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// validateTable checks the classes and the separation table: every pair of
// classes has exactly one entry, and every detector has the parameters of
// its kind, each within bounds.
func (r *Rules) validateTable() error {
	if len(r.Classes) == 0 || len(r.Classes) > maxClasses {
		return fielderr.Errorf("classes", "from 1 to %d classes are needed", maxClasses)
	}
	for i, c := range r.Classes {
		f := fmt.Sprintf("classes[%d]", i)
		if !validClassName(c) {
			return fielderr.New(f, "a class is 1 to 32 bytes of a-z, 0-9, '-' and '_'")
		}
		if slices.Index(r.Classes, c) != i {
			return fielderr.New(f, "duplicate class "+c)
		}
	}
	for _, c := range DefaultClasses() {
		if !r.HasClass(c) {
			return fielderr.Errorf("classes", "must include %q (reports without a class are %q)", c, ClassManned)
		}
	}
	if len(r.Separation) > maxClasses*(maxClasses+1)/2 {
		return fielderr.Errorf("separation", "at most one entry per pair of classes")
	}
	for i := range r.Separation {
		if err := r.Separation[i].validate(fmt.Sprintf("separation[%d]", i), r.Classes); err != nil {
			return err
		}
		s := &r.Separation[i]
		if r.SeparationFor(s.Classes[0], s.Classes[1]) != s {
			return fielderr.Errorf(fmt.Sprintf("separation[%d].classes", i), "a second entry for %s and %s", s.Classes[0], s.Classes[1])
		}
	}
	for i, a := range r.Classes {
		for _, b := range r.Classes[i:] {
			if r.SeparationFor(a, b) == nil {
				return fielderr.Errorf("separation", "no entry for the classes %s and %s", a, b)
			}
		}
	}
	return nil
}

func (s *Separation) validate(f string, classes []string) error {
	if len(s.Classes) != 2 {
		return fielderr.New(f+".classes", "names exactly two classes (the same twice for pairs within a class)")
	}
	for j, c := range s.Classes {
		if !slices.Contains(classes, c) {
			return fielderr.Errorf(fmt.Sprintf("%s.classes[%d]", f, j), "unknown class %q (not in classes)", c)
		}
	}
	if err := s.Detector.validate(f + ".detector"); err != nil {
		return err
	}
	if err := checkDuration(f+".lookahead_s", s.LookaheadS, maxLookaheadS); err != nil {
		return err
	}
	if len(s.Levels) == 0 || len(s.Levels) > maxLevels {
		return fielderr.Errorf(f+".levels", "from 1 to %d alert levels are needed", maxLevels)
	}
	for i, l := range s.Levels {
		lf := fmt.Sprintf("%s.levels[%d]", f, i)
		if err := checkLevelName(lf+".name", l.Name); err != nil {
			return err
		}
		for _, o := range s.Levels[:i] {
			if o.Name == l.Name {
				return fielderr.New(lf+".name", "duplicate level name "+l.Name)
			}
		}
		if err := checkAlertingTime(lf+".max_time_to_los_s", l.MaxTimeToLoSS, s.LookaheadS, "the entry's lookahead_s"); err != nil {
			return err
		}
		if i > 0 && l.MaxTimeToLoSS > s.Levels[i-1].MaxTimeToLoSS {
			return fielderr.New(lf+".max_time_to_los_s", "levels must be ordered from least to most severe (time not increasing)")
		}
		if l.Detector != nil {
			if err := l.Detector.validate(lf + ".detector"); err != nil {
				return err
			}
			if l.Detector.Kind != s.Detector.Kind {
				return fielderr.Errorf(lf+".detector.kind", "must be the entry's kind, %s", s.Detector.Kind)
			}
		}
	}
	return nil
}

// detectorParam is one parameter of a detector kind with its bounds.
type detectorParam struct {
	name     string
	get      func(*Detector) *float64
	zeroOK   bool
	min, max float64
}

// The thresholds of a detector are at least minSepM and its times zero or
// at least minDurationS (see minSepM): DO-365's are 0.66 NM and 450 ft,
// 35 s and 0 s.
var detectorParams = []detectorParam{
	{"horizontal_m", func(d *Detector) *float64 { return d.HorizontalM }, false, minSepM, maxSepM},
	{"vertical_m", func(d *Detector) *float64 { return d.VerticalM }, false, minSepM, maxVSepM},
	{"dthr_m", func(d *Detector) *float64 { return d.DTHRM }, false, minSepM, maxSepM},
	{"zthr_m", func(d *Detector) *float64 { return d.ZTHRM }, false, minSepM, maxVSepM},
	{"tthr_s", func(d *Detector) *float64 { return d.TTHRS }, true, minDurationS, maxTauS},
	{"tcoa_s", func(d *Detector) *float64 { return d.TCOAS }, true, minDurationS, maxTauS},
}

// kindParams lists the parameters of each kind.
var kindParams = map[string][]string{
	DetectorCylinder: {"horizontal_m", "vertical_m"},
	DetectorDO365WCV: {"dthr_m", "zthr_m", "tthr_s", "tcoa_s"},
}

func (d *Detector) validate(f string) error {
	names, ok := kindParams[d.Kind]
	if !ok {
		return fielderr.Errorf(f+".kind", "unknown detector %q: want %s or %s", d.Kind, DetectorCylinder, DetectorDO365WCV)
	}
	for _, p := range detectorParams {
		v := p.get(d)
		mine := slices.Contains(names, p.name)
		switch {
		case !mine && v != nil:
			return fielderr.Errorf(f+"."+p.name, "not a parameter of the %s detector", d.Kind)
		case mine && v == nil:
			return fielderr.Errorf(f+"."+p.name, "required by the %s detector", d.Kind)
		case mine:
			if err := checkBounded(f+"."+p.name, *v, p.zeroOK, p.min, p.max); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkBounded refuses a figure that is not finite, below minValue (when
// zero is allowed: negative, or above zero and below minValue), or above
// maxValue. Negative zero is zero.
func checkBounded(field string, v float64, zeroOK bool, minValue, maxValue float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fielderr.New(field, "must be a finite number")
	case zeroOK && v < 0:
		return fielderr.New(field, "must be zero or more")
	case zeroOK && v > 0 && v < minValue:
		return fielderr.Errorf(field, "must be zero or at least %g", minValue)
	case !zeroOK && v < minValue:
		return fielderr.Errorf(field, "must be at least %g", minValue)
	case v > maxValue:
		return fielderr.Errorf(field, "must be at most %g", maxValue)
	}
	return nil
}

// minDurationS is the shortest duration of the rules that must be above
// zero: a lookahead, a staleness, a deadline, a window, a witness's age,
// a level's alerting time.
// Below a second a figure means no time at all where it is counted in
// whole units, and no time a person or a surveillance source can work
// to: a deadline of 1e-10 s converted to 0 ns, and every hotline item
// escalated the moment it was posted and again at every tick of the
// jobs, each time with an audit record and an event. A second is what
// the demo scales its deadlines down to at most.
const minDurationS = 1

// checkAlertingTime refuses a level's alerting time (max_time_to_los_s)
// that is not finite, below minDurationS or beyond the lookahead it is
// looked for in (named by lookaheadName). A level is a warning ahead of a
// loss of separation: one of 1e-300 s holds no sooner than the loss
// itself, no time a person or a surveillance source (a report a second at
// best) can work to.
func checkAlertingTime(field string, v, lookaheadS float64, lookaheadName string) error {
	if err := checkDuration(field, v, math.Inf(1)); err != nil {
		return err
	}
	if v > lookaheadS {
		return fielderr.Errorf(field, "must be at most %s", lookaheadName)
	}
	return nil
}

// checkDuration refuses a duration in seconds that is not finite, below
// minDurationS or above max.
func checkDuration(field string, v, maxValue float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fielderr.New(field, "must be a finite number")
	case v < minDurationS:
		return fielderr.Errorf(field, "must be at least %d s", minDurationS)
	case v > maxValue:
		return fielderr.Errorf(field, "must be at most %g", maxValue)
	}
	return nil
}
