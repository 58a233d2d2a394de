package airspace

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paulmach/orb"

	"github.com/deconflict/deconflict/internal/geo"
)

// MaxOpenAirLineBytes bounds one line of an OpenAir file.
const MaxOpenAirLineBytes = 4096

// ParseOpenAir reads an OpenAir file: the original WinPilot format and
// Naviter's extended format (AY, AF, AG, AX, AA, AI). Records:
//
//	AC class      starts an airspace           AN name
//	AL, AH        lower and upper limit        AY type (extended)
//	AF, AG        frequency and station name   AX transponder code
//	AA            activation interval or NONE  AI identifier (ignored)
//	DP point      polygon vertex               DC radius   circle around V X=
//	DA r,a1,a2    arc by bearings around X     DB p1, p2   arc between points
//	DY point      airway point (V W= width)    V X=point, V D=+|-, V W=nm
//	SP, SB, AT, TO, TC, V Z=   display hints, ignored
//
// Lines starting with '*' are comments, and '*' starts a comment anywhere
// else. Radii and widths are nautical miles. The centre (V X=) and the
// direction (V D=, clockwise by default) hold until set again within one
// airspace and are reset at each AC. Every error names its line. An error
// before the first AC refuses the file (the error returned); an error in
// an airspace refuses that airspace (its Err, the other fields but Name,
// Class and Line left empty) and reading goes on at the next AC. Errors:
// an unknown record, a malformed value, a record before the first AC, a
// second AL, AH or AN, the name after the limits or the geometry, an arc or
// circle without a centre, a polygon whose last point does not repeat its
// first, fewer than three distinct points, a ring that crosses itself, a
// lower limit not below the upper one, AG without AF, an activation
// interval that ends before it starts or AA NONE beside intervals.
func ParseOpenAir(r io.Reader) ([]Airspace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), MaxOpenAirLineBytes)
	var p openAirParser
	line := 0
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if line == 1 {
			text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf"))
		}
		var err error
		if !utf8.Valid(text) {
			err = lineErrorf(line, "not UTF-8 text")
		} else {
			err = p.line(line, string(text))
		}
		if err != nil {
			if p.cur == nil {
				return nil, err // before the first AC: not an OpenAir file
			}
			// The airspace is refused; the file goes on at the next AC.
			if p.cur.err == nil {
				p.cur.err = err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, lineErrorf(line+1, "longer than %d bytes", MaxOpenAirLineBytes)
		}
		return nil, err
	}
	p.finish()
	return p.out, nil
}

// FirstError returns the first airspace's error, or nil: for callers that
// take a file whole or not at all.
func FirstError(as []Airspace) error {
	for _, a := range as {
		if a.Err != nil {
			return a.Err
		}
	}
	return nil
}

type openAirParser struct {
	out []Airspace
	cur *block
}

// block is the airspace being read.
type block struct {
	a                     Airspace
	nameLine, lowerLine   int
	upperLine, stationLne int
	firstNonHeader        int // first limit or shape record before any AN
	center                *orb.Point
	ccw                   bool
	widthM                float64
	// The outline as read: points and arcs in order.
	elems   []element
	circle  *element
	airway  []element
	aaNONE  int   // line of AA NONE
	aaTimes int   // line of the first AA interval
	err     error // why the airspace is refused: the rest of it is skipped
}

// element is one DP point, or one DA/DB arc, of a polygon; or one DY point.
type element struct {
	line   int
	pt     orb.Point // DP, DY
	isArc  bool
	center orb.Point
	ccw    bool
	// A DA arc gives bearings and a radius; a DB arc gives its end points.
	fromPt, toPt   *orb.Point
	b1, b2, radius float64
	radiusM        float64 // DC
}

var (
	inlineComment = regexp.MustCompile(`\s*\*.*$`)
	frequencyRe   = regexp.MustCompile(`^\d{3}\.\d{1,3}$`)
	squawkRe      = regexp.MustCompile(`^[0-7]{4}$`)
)

func (p *openAirParser) line(n int, text string) error {
	text = strings.TrimSpace(text)
	if text == "" || strings.HasPrefix(text, "*") {
		return nil
	}
	text = strings.TrimSpace(inlineComment.ReplaceAllString(text, ""))
	rec, arg, _ := strings.Cut(text, " ")
	arg = strings.TrimSpace(arg)
	rec = strings.ToUpper(rec)
	switch rec {
	case "SP", "SB", "AT", "TO", "TC":
		return nil // display hints
	case "AC":
		p.finish()
		p.cur = &block{a: Airspace{Class: arg, Line: n}}
		if arg == "" || strings.ContainsAny(arg, " \t") {
			return lineErrorf(n, "AC needs one airspace class (e.g. \"AC R\"), got %q", arg)
		}
		return nil
	}
	b := p.cur
	if b != nil && b.err != nil {
		return nil // a refused airspace: skip to the next AC
	}
	if b == nil {
		if rec == "V" || isKnown(rec) {
			return lineErrorf(n, "%s before the first AC: every airspace begins with AC", rec)
		}
		return lineErrorf(n, "unknown record %q", rec)
	}
	if b.nameLine == 0 && b.firstNonHeader == 0 && (rec == "AL" || rec == "AH" || !strings.HasPrefix(rec, "A")) {
		b.firstNonHeader = n // where the name was due, if it never comes
	}
	switch rec {
	case "AN":
		if b.nameLine != 0 {
			return lineErrorf(n, "second AN: the name was given on line %d", b.nameLine)
		}
		if arg == "" {
			return lineErrorf(n, "AN needs a name")
		}
		b.a.Name, b.nameLine = arg, n
	case "AY":
		b.a.Type = arg
	case "AI":
	case "AF":
		if !frequencyRe.MatchString(arg) {
			return lineErrorf(n, "AF needs a frequency in MHz like 123.505, got %q", arg)
		}
		b.a.Frequency = arg
	case "AG":
		b.a.Station, b.stationLne = arg, n
	case "AX":
		if !squawkRe.MatchString(arg) {
			return lineErrorf(n, "AX needs a transponder code of four octal digits (0-7), got %q", arg)
		}
		b.a.Transponder = arg
	case "AA":
		return b.activation(n, arg)
	case "AL", "AH":
		lim, err := parseLimit(arg)
		if err != nil {
			return lineErrorf(n, "%s: %v", rec, err)
		}
		if rec == "AL" {
			if b.lowerLine != 0 {
				return lineErrorf(n, "second AL: the lower limit was given on line %d", b.lowerLine)
			}
			if lim.Unlimited {
				return lineErrorf(n, "AL: UNL is an upper limit")
			}
			b.a.Lower, b.lowerLine = lim, n
		} else {
			if b.upperLine != 0 {
				return lineErrorf(n, "second AH: the upper limit was given on line %d", b.upperLine)
			}
			b.a.Upper, b.upperLine = lim, n
		}
		if b.lowerLine != 0 && b.upperLine != 0 {
			lo, hi, ok := comparable(b.a.Lower, b.a.Upper)
			if ok && lo >= hi {
				return lineErrorf(n, "the lower limit %s (line %d) is not below the upper limit %s (line %d)",
					b.a.Lower, b.lowerLine, b.a.Upper, b.upperLine)
			}
		}
	case "V":
		return b.variable(n, arg)
	case "DP", "DY":
		pt, err := parsePoint(arg)
		if err != nil {
			return lineErrorf(n, "%s: %v", rec, err)
		}
		if rec == "DP" {
			if b.circle != nil || len(b.airway) > 0 {
				return lineErrorf(n, "DP after a %s shape: an airspace has one shape", b.kind())
			}
			b.elems = append(b.elems, element{line: n, pt: pt})
			return nil
		}
		if b.circle != nil || len(b.elems) > 0 {
			return lineErrorf(n, "DY after a %s shape: an airspace has one shape", b.kind())
		}
		if b.widthM <= 0 {
			return lineErrorf(n, "DY without a width: set one with V W= (nautical miles) first")
		}
		b.airway = append(b.airway, element{line: n, pt: pt, radiusM: b.widthM})
	case "DA", "DB":
		if b.center == nil {
			return lineErrorf(n, "%s arc without a centre: set one with V X= first", rec)
		}
		if b.circle != nil || len(b.airway) > 0 {
			return lineErrorf(n, "%s after a %s shape: an airspace has one shape", rec, b.kind())
		}
		e := element{line: n, isArc: true, center: *b.center, ccw: b.ccw}
		if rec == "DA" {
			f := splitList(arg)
			if len(f) != 3 {
				return lineErrorf(n, "DA needs radius, start bearing, end bearing, got %q", arg)
			}
			var vals [3]float64
			for i, s := range f {
				v, err := strconv.ParseFloat(s, 64)
				if err != nil || !finite(v) {
					return lineErrorf(n, "DA: %q is not a number", s)
				}
				vals[i] = v
			}
			if vals[0] <= 0 || vals[0] > maxRadiusNM {
				return lineErrorf(n, "DA: radius %v NM outside (0, %v]", vals[0], maxRadiusNM)
			}
			e.radius, e.b1, e.b2 = geo.NMToM(vals[0]), math.Mod(vals[1]+360, 360), math.Mod(vals[2]+360, 360)
			if math.Abs(vals[1]) > 360 || math.Abs(vals[2]) > 360 {
				return lineErrorf(n, "DA: bearings must be within ±360 degrees")
			}
		} else {
			a, c, ok := strings.Cut(arg, ",")
			if !ok {
				return lineErrorf(n, "DB needs two points separated by a comma, got %q", arg)
			}
			// A point may itself be written "lat, lon": accept the split
			// only where both halves are points.
			p1, err1 := parsePoint(a)
			p2, err2 := parsePoint(c)
			if err1 != nil || err2 != nil {
				if err1 != nil {
					return lineErrorf(n, "DB first point: %v", err1)
				}
				return lineErrorf(n, "DB second point: %v", err2)
			}
			e.fromPt, e.toPt = &p1, &p2
		}
		b.elems = append(b.elems, e)
	case "DC":
		if b.center == nil {
			return lineErrorf(n, "DC circle without a centre: set one with V X= first")
		}
		if len(b.elems) > 0 || len(b.airway) > 0 || b.circle != nil {
			return lineErrorf(n, "DC after a %s shape: an airspace has one shape", b.kind())
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || !finite(r) || r <= 0 || r > maxRadiusNM {
			return lineErrorf(n, "DC needs a radius in nautical miles in (0, %v], got %q", maxRadiusNM, arg)
		}
		b.circle = &element{line: n, center: *b.center, radiusM: geo.NMToM(r)}
	default:
		return lineErrorf(n, "unknown record %q", rec)
	}
	return nil
}

// maxRadiusNM bounds radii and widths: larger is a typo, not an airspace.
const maxRadiusNM = 1000

func isKnown(rec string) bool {
	switch rec {
	case "AN", "AY", "AI", "AF", "AG", "AX", "AA", "AL", "AH", "DP", "DY", "DA", "DB", "DC":
		return true
	}
	return false
}

func (b *block) kind() string {
	switch {
	case b.circle != nil:
		return "circle (DC)"
	case len(b.airway) > 0:
		return "airway (DY)"
	default:
		return "polygon (DP, DA, DB)"
	}
}

func splitList(s string) []string {
	f := strings.Split(s, ",")
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return f
}

func (b *block) variable(n int, arg string) error {
	name, val, ok := strings.Cut(arg, "=")
	if !ok {
		return lineErrorf(n, "V needs NAME=value, got %q", arg)
	}
	name, val = strings.ToUpper(strings.TrimSpace(name)), strings.TrimSpace(val)
	switch name {
	case "X":
		pt, err := parsePoint(val)
		if err != nil {
			return lineErrorf(n, "V X=: %v", err)
		}
		b.center = &pt
	case "D":
		switch val {
		case "+":
			b.ccw = false
		case "-":
			b.ccw = true
		default:
			return lineErrorf(n, "V D= must be + (clockwise) or - (counterclockwise), got %q", val)
		}
	case "W":
		w, err := strconv.ParseFloat(val, 64)
		if err != nil || !finite(w) || w <= 0 || w > maxRadiusNM {
			return lineErrorf(n, "V W= needs a width in nautical miles in (0, %v], got %q", maxRadiusNM, val)
		}
		b.widthM = geo.NMToM(w)
	case "Z", "T":
		// Zoom level and airway width type: display hints.
	default:
		return lineErrorf(n, "unknown variable V %s=", name)
	}
	return nil
}

func (b *block) activation(n int, arg string) error {
	if b.aaNONE != 0 {
		return lineErrorf(n, "AA after AA NONE (line %d): activation by NOTAM allows no other times", b.aaNONE)
	}
	if strings.EqualFold(arg, "NONE") {
		if b.aaTimes != 0 {
			return lineErrorf(n, "AA NONE after activation times (line %d): activation by NOTAM allows no other times", b.aaTimes)
		}
		b.aaNONE, b.a.ByNOTAM = n, true
		return nil
	}
	s, e, ok := strings.Cut(arg, "/")
	if !ok {
		return lineErrorf(n, "AA needs START/END (ISO 8601, UTC, NONE for open) or NONE, got %q", arg)
	}
	var act Activation
	var err error
	if act.Start, err = parseActivationTime(s); err != nil {
		return lineErrorf(n, "AA start: %v", err)
	}
	if act.End, err = parseActivationTime(e); err != nil {
		return lineErrorf(n, "AA end: %v", err)
	}
	switch {
	case act.Start.IsZero() && act.End.IsZero():
		return lineErrorf(n, "AA NONE/NONE: give a start, an end, or AA NONE alone")
	case !act.Start.IsZero() && !act.End.IsZero() && !act.Start.Before(act.End):
		return lineErrorf(n, "AA: the start %s is not before the end %s", s, e)
	}
	if b.aaTimes == 0 {
		b.aaTimes = n
	}
	b.a.Activations = append(b.a.Activations, act)
	return nil
}

// parseActivationTime reads an ISO 8601 UTC time of AA ("2025-01-01T12:00Z",
// seconds optional, "T24:00Z" the end of the day) or NONE (zero time).
func parseActivationTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "NONE") {
		return time.Time{}, nil
	}
	day := false
	if strings.HasSuffix(s, "T24:00Z") || strings.HasSuffix(s, "T24:00:00Z") {
		s, day = s[:strings.Index(s, "T24:")]+"T00:00Z", true
	}
	for _, layout := range []string{"2006-01-02T15:04Z07:00", "2006-01-02T15:04:05Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil && strings.HasSuffix(s, "Z") {
			if day {
				t = t.AddDate(0, 0, 1)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 UTC time like 2025-01-01T12:00Z", s)
}

// The forms of an altitude limit.
var (
	flightLevelRe = regexp.MustCompile(`^FL\s*(\d+(?:\.\d+)?)$`)
	heightRe      = regexp.MustCompile(`^(\d+(?:\.\d+)?)\s*(FT|F|FEET|M|METER|METERS)?\s*(AMSL|MSL|AGL|AGND|GND|SFC|ASFC|ALT|STD)?$`)
)

// parseLimit reads an AL or AH value.
func parseLimit(s string) (Limit, error) {
	u := strings.ToUpper(strings.Join(strings.Fields(s), " "))
	switch u {
	case "GND", "SFC", "0":
		return Surface, nil
	case "MSL":
		return Limit{Unit: Feet, Datum: MSL}, nil
	case "UNL", "UNLTD", "UNLIM", "UNLIMITED":
		return Limit{Unlimited: true}, nil
	}
	if m := flightLevelRe.FindStringSubmatch(u); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		if v > 999 {
			return Limit{}, fmt.Errorf("flight level %v above FL999", v)
		}
		return Limit{Value: v, Unit: FlightLevel, Datum: STD}, nil
	}
	m := heightRe.FindStringSubmatch(u)
	if m == nil {
		return Limit{}, fmt.Errorf("unknown altitude %q (e.g. GND, FL95, 3500ft AMSL, 500ft AGL, 1000m AMSL, UNL)", s)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	l := Limit{Value: v, Unit: Feet, Datum: MSL}
	switch m[2] {
	case "M", "METER", "METERS":
		l.Unit = Meters
	}
	switch m[3] {
	case "AGL", "AGND", "GND", "SFC", "ASFC":
		l.Datum = GND
	case "STD":
		return Limit{}, fmt.Errorf("%q: STD goes with flight levels (FL95)", s)
	}
	if geo.FeetToM(v) > 1e5 && l.Unit == Feet || l.Unit == Meters && v > 1e5 {
		return Limit{}, fmt.Errorf("altitude %q above 100 km", s)
	}
	return l, nil
}

// coordRe matches one latitude or longitude: degrees, minutes (decimal or
// followed by seconds) and a hemisphere, as DD:MM:SS N, DD:MM.mmm N or the
// compact DDMMSS.ssN.
var (
	sexagesimalRe = regexp.MustCompile(`^(\d{1,3}):(\d{1,2}(?:\.\d+)?)(?::(\d{1,2}(?:\.\d+)?))?\s*([NSEW])`)
	compactRe     = regexp.MustCompile(`^(\d{2,3})(\d{2})(\d{2}(?:\.\d+)?)\s*([NSEW])`)
)

// parsePoint reads "lat lon" as OpenAir writes it ("52:07:36 N 013:23:34 E",
// "29:58.917 N 081:59.533 W", "265644.00N 0500434.00E").
func parsePoint(s string) (orb.Point, error) {
	rest := strings.TrimSpace(strings.ToUpper(s))
	lat, rest, err := coordinate(rest, "NS", 90)
	if err != nil {
		return orb.Point{}, fmt.Errorf("latitude: %v in %q", err, s)
	}
	rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ","))
	lon, rest, err := coordinate(rest, "EW", 180)
	if err != nil {
		return orb.Point{}, fmt.Errorf("longitude: %v in %q", err, s)
	}
	if strings.TrimSpace(rest) != "" {
		return orb.Point{}, fmt.Errorf("unexpected %q after the point %q", strings.TrimSpace(rest), s)
	}
	return orb.Point{lon, lat}, nil
}

func coordinate(s, hemispheres string, maxDeg float64) (float64, string, error) {
	m := sexagesimalRe.FindStringSubmatch(s)
	if m == nil {
		m = compactRe.FindStringSubmatch(s)
	}
	if m == nil {
		return 0, "", fmt.Errorf("not DD:MM:SS, DD:MM.mmm or DDMMSS with a hemisphere")
	}
	if !strings.Contains(hemispheres, m[4]) {
		return 0, "", fmt.Errorf("hemisphere %s, want %c or %c", m[4], hemispheres[0], hemispheres[1])
	}
	deg, _ := strconv.ParseFloat(m[1], 64)
	minutes, _ := strconv.ParseFloat(m[2], 64)
	var seconds float64
	if m[3] != "" {
		if strings.Contains(m[2], ".") {
			return 0, "", fmt.Errorf("decimal minutes followed by seconds")
		}
		seconds, _ = strconv.ParseFloat(m[3], 64)
	}
	if minutes >= 60 {
		return 0, "", fmt.Errorf("%v minutes (must be below 60)", minutes)
	}
	if seconds >= 60 {
		return 0, "", fmt.Errorf("%v seconds (must be below 60)", seconds)
	}
	v := deg + minutes/60 + seconds/3600
	if v > maxDeg {
		return 0, "", fmt.Errorf("%v degrees, more than %v", v, maxDeg)
	}
	if m[4] == "S" || m[4] == "W" {
		v = -v
	}
	return v, s[len(m[0]):], nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// finish closes the airspace being read: checked and shaped, or refused
// with the error that names its line.
func (p *openAirParser) finish() {
	b := p.cur
	if b == nil {
		return
	}
	p.cur = nil
	a := b.a
	a.LowerLine, a.UpperLine = b.lowerLine, b.upperLine
	if b.err == nil {
		b.err = b.complete(&a)
	}
	if b.err != nil {
		a = Airspace{Name: b.a.Name, Class: b.a.Class, Line: b.a.Line, Err: b.err}
	}
	p.out = append(p.out, a)
}

// complete checks what a block must have and builds its shape.
func (b *block) complete(a *Airspace) error {
	var missing []string
	if b.nameLine == 0 {
		if b.firstNonHeader != 0 {
			// Name the first record where the name was due, as openAIP's
			// parser does: the name belongs right after the class.
			return lineErrorf(b.firstNonHeader, "the airspace that begins on line %d has no name (AN)", a.Line)
		}
		missing = append(missing, "AN (name)")
	}
	if b.lowerLine == 0 {
		missing = append(missing, "AL (lower limit)")
	}
	if b.upperLine == 0 {
		missing = append(missing, "AH (upper limit)")
	}
	if b.circle == nil && len(b.elems) == 0 && len(b.airway) == 0 {
		missing = append(missing, "a shape (DP, DA, DB, DC or DY)")
	}
	if len(missing) > 0 {
		return lineErrorf(a.Line, "the airspace %q that begins here has no %s", a.Name, strings.Join(missing, ", no "))
	}
	if b.stationLne != 0 && a.Frequency == "" {
		return lineErrorf(b.stationLne, "AG (station) without AF (frequency)")
	}
	switch {
	case b.circle != nil:
		a.Shape = Shape{Type: CircleShape, Center: b.circle.center, RadiusM: b.circle.radiusM}
	case len(b.airway) > 0:
		if len(b.airway) < 2 {
			return lineErrorf(b.airway[0].line, "an airway needs at least two DY points")
		}
		a.Shape = Shape{Type: CorridorShape, WidthM: b.airway[0].radiusM}
		for _, e := range b.airway {
			if e.radiusM != a.Shape.WidthM {
				return lineErrorf(e.line, "the width (V W=) changes along the airway: declare one airway per width")
			}
			a.Shape.Line = append(a.Shape.Line, e.pt)
		}
	default:
		s, err := polygon(b.elems, a.Line)
		if err != nil {
			return err
		}
		a.Shape = s
	}
	return nil
}
