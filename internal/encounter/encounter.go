// Package encounter owns the analysts' batch format for pairwise encounters:
// reading a CSV of encounters (in a local flat frame or in WGS84), running
// each through a detector of detect (the separation cylinder of each row,
// or DO-365 well clear with its alert level and, on request, DAIDALUS's
// instantaneous bands of the ownship from package resolve), and writing
// the results in input order. It streams: memory stays flat however long
// the file.
package encounter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/lineend"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/resolve"
)

// Frame says how positions are given in the input.
type Frame int

const (
	// Local: x east, y north, z up in meters, in one flat frame.
	Local Frame = iota
	// WGS84: latitude and longitude in degrees, altitude in meters; each
	// pair is projected into the east-north-up frame of its ownship.
	WGS84
)

func (f Frame) String() string {
	if f == WGS84 {
		return "wgs84"
	}
	return "local"
}

// ParseFrame parses "local" or "wgs84".
func ParseFrame(s string) (Frame, error) {
	switch s {
	case "local":
		return Local, nil
	case "wgs84":
		return WGS84, nil
	}
	return Local, fmt.Errorf("unknown frame %q: want local or wgs84", s)
}

// Detector selects the detection a run applies, and so the columns it reads
// and writes.
type Detector int

const (
	// Cylinder: detect.Pair with each row's separation cylinder and
	// lookahead (columns D_m, H_m, T_s); the output is Header.
	Cylinder Detector = iota
	// DO365WCV: DO-365B Phase I well clear without SUM (detect.DO365BPhaseI,
	// its thresholds and 180 s lookahead, so no parameter columns); the
	// output is DO365Header: the corrective and preventive intervals and
	// the alert level, as DAIDALUS computes them.
	DO365WCV
)

func (d Detector) String() string {
	if d == DO365WCV {
		return "do365_wcv"
	}
	return "cylinder"
}

// ParseDetector parses "cylinder" or "do365_wcv".
func ParseDetector(s string) (Detector, error) {
	switch s {
	case "cylinder":
		return Cylinder, nil
	case "do365_wcv":
		return DO365WCV, nil
	}
	return Cylinder, fmt.Errorf("unknown detector %q: want cylinder or do365_wcv", s)
}

// Encounter is one input row.
type Encounter struct {
	ID string
	// OwnPos and IntPos are the positions in the Local frame, meters.
	OwnPos, IntPos detect.Vec3
	// OwnLLA and IntLLA are the positions in the WGS84 frame.
	OwnLLA, IntLLA geo.LLA
	// OwnVel and IntVel are east, north, up velocities in m/s: in the flat
	// frame for Local, in each aircraft's own east-north-up frame for WGS84.
	OwnVel, IntVel detect.Vec3
	// Sep and LookaheadS are the row's parameters for the Cylinder
	// detector; zero for DO365WCV.
	Sep        detect.Cylinder
	LookaheadS float64
}

// Result runs the pairwise conflict math on e, read in frame f.
func (e *Encounter) Result(f Frame) detect.PairResult {
	if f == WGS84 {
		return detect.PairGeodetic(e.OwnLLA, enu(e.OwnVel), e.IntLLA, enu(e.IntVel), e.Sep, e.LookaheadS)
	}
	return detect.Pair(e.OwnPos, e.OwnVel, e.IntPos, e.IntVel, e.Sep, e.LookaheadS)
}

// Relative returns the intruder's position and velocity relative to the
// ownship (intruder minus ownship), read in frame f: for WGS84 in the
// east-north-up frame of the ownship, as PairGeodetic projects them.
func (e *Encounter) Relative(f Frame) (pos, vel detect.Vec3) {
	if f == WGS84 {
		fr := geo.NewFrame(e.OwnLLA)
		ip := fr.ToENU(e.IntLLA)
		iv := fr.VelocityFrom(e.IntLLA, enu(e.IntVel))
		return detect.Vec3{X: ip.EastM, Y: ip.NorthM, Z: ip.UpM}, detect.Vec3{X: iv.EastM, Y: iv.NorthM, Z: iv.UpM}.Sub(e.OwnVel)
	}
	return e.IntPos.Sub(e.OwnPos), e.IntVel.Sub(e.OwnVel)
}

func enu(v detect.Vec3) geo.ENU { return geo.ENU{EastM: v.X, NorthM: v.Y, UpM: v.Z} }

// InputError is a fault in the input, located by line (1 is the header)
// and, where one is to blame, column.
type InputError struct {
	Line   int
	Column string
	Err    error
}

func (e *InputError) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("line %d, column %s: %v", e.Line, e.Column, e.Err)
	}
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

// A numeric column and where its value goes.
type column struct {
	name string
	set  func(e *Encounter, v float64)
	// check rejects values outside the column's domain; nil accepts any
	// finite value.
	check func(v float64) error
	index int
}

func nonNegative(v float64) error {
	if v < 0 {
		return errors.New("must not be negative")
	}
	return nil
}

func latitude(v float64) error {
	if v < -90 || v > 90 {
		return errors.New("latitude must be within [-90, 90]")
	}
	return nil
}

func longitude(v float64) error {
	if v < -180 || v > 180 {
		return errors.New("longitude must be within [-180, 180]")
	}
	return nil
}

func columns(f Frame, d Detector) []column {
	cols := []column{
		{name: "own_vx_mps", set: func(e *Encounter, v float64) { e.OwnVel.X = v }},
		{name: "own_vy_mps", set: func(e *Encounter, v float64) { e.OwnVel.Y = v }},
		{name: "own_vz_mps", set: func(e *Encounter, v float64) { e.OwnVel.Z = v }},
		{name: "int_vx_mps", set: func(e *Encounter, v float64) { e.IntVel.X = v }},
		{name: "int_vy_mps", set: func(e *Encounter, v float64) { e.IntVel.Y = v }},
		{name: "int_vz_mps", set: func(e *Encounter, v float64) { e.IntVel.Z = v }},
	}
	if d == Cylinder {
		cols = append(cols,
			column{name: "D_m", set: func(e *Encounter, v float64) { e.Sep.HorizontalM = v }, check: nonNegative},
			column{name: "H_m", set: func(e *Encounter, v float64) { e.Sep.VerticalM = v }, check: nonNegative},
			column{name: "T_s", set: func(e *Encounter, v float64) { e.LookaheadS = v }, check: nonNegative},
		)
	}
	if f == WGS84 {
		return append(cols,
			column{name: "own_lat", set: func(e *Encounter, v float64) { e.OwnLLA.LatDeg = v }, check: latitude},
			column{name: "own_lon", set: func(e *Encounter, v float64) { e.OwnLLA.LonDeg = v }, check: longitude},
			column{name: "own_alt_m", set: func(e *Encounter, v float64) { e.OwnLLA.AltM = v }},
			column{name: "int_lat", set: func(e *Encounter, v float64) { e.IntLLA.LatDeg = v }, check: latitude},
			column{name: "int_lon", set: func(e *Encounter, v float64) { e.IntLLA.LonDeg = v }, check: longitude},
			column{name: "int_alt_m", set: func(e *Encounter, v float64) { e.IntLLA.AltM = v }},
		)
	}
	return append(cols,
		column{name: "own_x_m", set: func(e *Encounter, v float64) { e.OwnPos.X = v }},
		column{name: "own_y_m", set: func(e *Encounter, v float64) { e.OwnPos.Y = v }},
		column{name: "own_z_m", set: func(e *Encounter, v float64) { e.OwnPos.Z = v }},
		column{name: "int_x_m", set: func(e *Encounter, v float64) { e.IntPos.X = v }},
		column{name: "int_y_m", set: func(e *Encounter, v float64) { e.IntPos.Y = v }},
		column{name: "int_z_m", set: func(e *Encounter, v float64) { e.IntPos.Z = v }},
	)
}

// maxMagnitude bounds every number (m, m/s, s): far beyond anything that
// flies, and small enough that no square in the pair math overflows.
const maxMagnitude = 1e9

// maxLineBytes bounds one row, so that a file without newlines cannot
// take all memory.
const maxLineBytes = 1 << 20

// Reader reads encounters from a CSV whose header names the columns: id
// and, for Local, own_x_m, own_y_m, own_z_m, int_x_m, int_y_m, int_z_m, or,
// for WGS84, own_lat, own_lon, own_alt_m, int_lat, int_lon, int_alt_m; and
// in both own_vx_mps, own_vy_mps, own_vz_mps, int_vx_mps, int_vy_mps,
// int_vz_mps (east, north, up), and for the Cylinder detector D_m, H_m,
// T_s. Other columns are ignored, in any order. Fields are plain: no
// quoting. Ids are printable (package printable) and do not start as a
// spreadsheet formula does (=, +, -, @): they are written back as they
// are, so the output needs no quoting either, and opened in a spreadsheet
// runs nothing.
type Reader struct {
	sc      *bufio.Scanner
	line    int
	nFields int
	idIndex int
	cols    []column
	fields  []string
}

// NewReader reads the header and returns a Reader positioned at the first
// row.
func NewReader(r io.Reader, f Frame, d Detector) (*Reader, error) {
	// A file saved with CR-only line endings read as one header line
	// naming no known column, or one too long to read, with no hint why.
	r, crOnly := lineend.Peek(r)
	if crOnly {
		return nil, &InputError{Line: 1, Err: lineend.ErrCROnly}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	rd := &Reader{sc: sc, cols: columns(f, d)}
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, rd.scanError(err)
		}
		return nil, &InputError{Line: 1, Err: errors.New("empty input: expected a header line")}
	}
	rd.line = 1
	header := strings.TrimPrefix(strings.TrimSuffix(sc.Text(), "\r"), "\ufeff")
	if strings.ContainsRune(header, '"') {
		return nil, &InputError{Line: 1, Err: errors.New("quoted fields are not supported")}
	}
	names := strings.Split(header, ",")
	wanted := map[string]bool{"id": true}
	for _, c := range rd.cols {
		wanted[c.name] = true
	}
	at := make(map[string]int, len(names))
	for i, n := range names {
		n = strings.TrimSpace(n)
		if !wanted[n] {
			// A column nobody reads, named or not (a spreadsheet's
			// trailing comma), may come any number of times.
			continue
		}
		if _, dup := at[n]; dup {
			return nil, &InputError{Line: 1, Column: n, Err: errors.New("appears twice in the header")}
		}
		at[n] = i
	}
	var missing []string
	var ok bool
	if rd.idIndex, ok = at["id"]; !ok {
		missing = append(missing, "id")
	}
	for i := range rd.cols {
		if rd.cols[i].index, ok = at[rd.cols[i].name]; !ok {
			missing = append(missing, rd.cols[i].name)
		}
	}
	if len(missing) > 0 {
		hint := ""
		if len(missing) == len(rd.cols)+1 {
			// Not one name known: a file without its header, or
			// separated by something other than commas.
			hint = " (the first line must be the header, its names separated by commas)"
		}
		return nil, &InputError{Line: 1, Err: fmt.Errorf("missing columns for frame %s and detector %s: %s%s", f, d, strings.Join(missing, ", "), hint)}
	}
	rd.nFields = len(names)
	rd.fields = make([]string, 0, len(names))
	return rd, nil
}

// Line is the line number of the row last read (1 is the header).
func (r *Reader) Line() int { return r.line }

func (r *Reader) scanError(err error) error {
	if errors.Is(err, bufio.ErrTooLong) {
		return &InputError{Line: r.line + 1, Err: fmt.Errorf("line longer than %d bytes", maxLineBytes)}
	}
	return fmt.Errorf("reading line %d: %w", r.line+1, err)
}

// Read fills e with the next row. It returns io.EOF after the last row, an
// *InputError for a malformed row, or the underlying read error. Blank
// lines are skipped.
func (r *Reader) Read(e *Encounter) error {
	text, line, err := r.next()
	if err != nil {
		return err
	}
	r.fields, err = r.parse(text, line, r.fields, e)
	return err
}

// next returns the next non-blank line and its number, without parsing it.
func (r *Reader) next() (string, int, error) {
	for {
		if !r.sc.Scan() {
			if err := r.sc.Err(); err != nil {
				return "", 0, r.scanError(err)
			}
			return "", 0, io.EOF
		}
		r.line++
		if len(bytes.TrimSpace(r.sc.Bytes())) > 0 {
			// One string per row; the fields are slices of it.
			return strings.TrimSuffix(r.sc.Text(), "\r"), r.line, nil
		}
	}
}

// parse reads one row into e. It only reads the Reader's header layout,
// so several goroutines may parse at once, each with its own fields
// scratch slice, which it returns for reuse.
func (r *Reader) parse(text string, line int, fields []string, e *Encounter) ([]string, error) {
	if strings.ContainsRune(text, '"') {
		return fields, &InputError{Line: line, Err: errors.New("quoted fields are not supported")}
	}
	fields = fields[:0]
	for {
		i := strings.IndexByte(text, ',')
		if i < 0 {
			fields = append(fields, text)
			break
		}
		fields = append(fields, text[:i])
		text = text[i+1:]
		if len(fields) > r.nFields {
			break
		}
	}
	if len(fields) != r.nFields {
		return fields, &InputError{Line: line, Err: fmt.Errorf("%s fields, the header has %d", countFields(fields, r.nFields), r.nFields)}
	}
	*e = Encounter{ID: strings.TrimSpace(fields[r.idIndex])}
	if e.ID == "" {
		return fields, &InputError{Line: line, Column: "id", Err: errors.New("empty")}
	}
	// The id is written back as it is: a control character (a lone
	// carriage return, an escape sequence) would break the output's lines
	// for the programs that read it, or what a terminal shows.
	if err := printable.Check(e.ID); err != nil {
		return fields, &InputError{Line: line, Column: "id", Err: err}
	}
	if err := checkNotFormula(e.ID); err != nil {
		return fields, &InputError{Line: line, Column: "id", Err: err}
	}
	for i := range r.cols {
		c := &r.cols[i]
		s := strings.TrimSpace(fields[c.index])
		v, err := strconv.ParseFloat(s, 64)
		if errors.Is(err, strconv.ErrRange) && math.IsInf(v, 0) {
			// 1e309: a number, beyond any float64.
			return fields, &InputError{Line: line, Column: c.name, Err: fmt.Errorf("%s is beyond ±%g", s, maxMagnitude)}
		}
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return fields, &InputError{Line: line, Column: c.name, Err: fmt.Errorf("%q is not a number", s)}
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fields, &InputError{Line: line, Column: c.name, Err: fmt.Errorf("%q is not a finite number", s)}
		}
		if math.Abs(v) > maxMagnitude {
			return fields, &InputError{Line: line, Column: c.name, Err: fmt.Errorf("%s is beyond ±%g", s, maxMagnitude)}
		}
		if c.check != nil {
			if err := c.check(v); err != nil {
				return fields, &InputError{Line: line, Column: c.name, Err: fmt.Errorf("%s: %s", s, err)}
			}
		}
		c.set(e, v)
	}
	return fields, nil
}

// formulaStarts are the first characters that make a spreadsheet read a
// cell as a formula (OWASP's list for CSV injection; tab and carriage
// return are refused as control characters already).
const formulaStarts = "=+-@\t\r"

// checkNotFormula refuses an id a spreadsheet would run as a formula when
// an analyst opens the output ("=HYPERLINK(...)", "@SUM(...)", "-2+3"):
// the id is written back as it is, unquoted, so that the output reads
// back as the input gave it; escaping it instead (a leading apostrophe)
// would change the id tools read back. Such an id is refused naming its
// line and column, for the analyst to rename (a letter before the sign).
func checkNotFormula(id string) error {
	if id != "" && strings.IndexByte(formulaStarts, id[0]) >= 0 {
		return fmt.Errorf("%q starts with %q, which makes a spreadsheet opening the output run it as a formula: start the id with a letter or a digit", id, id[:1])
	}
	return nil
}

// countFields describes a wrong field count; the split stops one past the
// header's count, so beyond that it is "more than".
func countFields(fields []string, want int) string {
	if len(fields) > want {
		return fmt.Sprintf("more than %d", want)
	}
	return strconv.Itoa(len(fields))
}

// Header is the first line of the output.
const Header = "id,conflict,t_in_s,t_out_s,t_cpa_s,d_h_cpa_m,d_v_cpa_m"

// AppendResult appends one output line (with its newline) for the row id:
// six decimals, the interval fields empty when there is no conflict.
func AppendResult(dst []byte, id string, r detect.PairResult) []byte {
	dst = append(dst, id...)
	if r.Conflict {
		dst = append(dst, ",1,"...)
		dst = strconv.AppendFloat(dst, r.TInS, 'f', 6, 64)
		dst = append(dst, ',')
		dst = strconv.AppendFloat(dst, r.TOutS, 'f', 6, 64)
	} else {
		dst = append(dst, ",0,,"...)
	}
	dst = append(dst, ',')
	dst = strconv.AppendFloat(dst, r.TCPAS, 'f', 6, 64)
	dst = append(dst, ',')
	dst = strconv.AppendFloat(dst, r.DHCPAM, 'f', 6, 64)
	dst = append(dst, ',')
	dst = strconv.AppendFloat(dst, r.DVCPAM, 'f', 6, 64)
	return append(dst, '\n')
}

// DO365Header is the first line of the output of the DO365WCV detector: the
// detection and alert columns of the DAIDALUS reference's expected.csv.
const DO365Header = "id,corrective_conflict,corrective_t_in_s,corrective_t_out_s,preventive_conflict,preventive_t_in_s,preventive_t_out_s,alert_level"

// do365 is the alerter of the DO365WCV detector; its preventive and
// corrective levels give the two intervals written.
var do365 = detect.DO365BPhaseI()

// AppendDO365Result appends one DO365Header line (with its newline) for the
// row id: the corrective and preventive intervals over the lookahead (six
// decimals, empty when there is no conflict) and the alert level.
func AppendDO365Result(dst []byte, id string, corrective, preventive detect.Loss, level int) []byte {
	dst = append(dst, id...)
	for _, l := range []detect.Loss{corrective, preventive} {
		if !l.Conflict {
			dst = append(dst, ",0,,"...)
			continue
		}
		dst = append(dst, ",1,"...)
		// +0 turns a -0 into 0, which prints without a sign.
		dst = strconv.AppendFloat(dst, l.TInS+0, 'f', 6, 64)
		dst = append(dst, ',')
		dst = strconv.AppendFloat(dst, l.TOutS+0, 'f', 6, 64)
	}
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(level), 10)
	return append(dst, '\n')
}

// BandsColumns are the columns the bands add to DO365Header: the
// ownship's track, ground-speed, vertical-speed and altitude bands in the
// band string format of the DAIDALUS reference (README section 2).
const BandsColumns = "track_bands_deg,gs_bands_mps,vs_bands_mps,alt_bands_m"

// Bands computation of the DO-365 detector: DAIDALUS's DO-365B Phase I
// configuration (resolve.DO365, resolve.DefaultConfig).
var (
	bandsSep = resolve.DO365()
	bandsCfg = resolve.DefaultConfig()
)

// AppendRow appends the output line of e for detector d, read in frame f;
// with bands (DO365WCV only), the four band columns after the others.
func AppendRow(dst []byte, e *Encounter, f Frame, d Detector, bands bool) []byte {
	if d == Cylinder {
		return AppendResult(dst, e.ID, e.Result(f))
	}
	r, v := e.Relative(f)
	preventive := do365.Levels[detect.DO365Preventive-1].Detector.Loss(r, v, 0, do365.LookaheadS)
	corrective := do365.Levels[detect.DO365Corrective-1].Detector.Loss(r, v, 0, do365.LookaheadS)
	dst = AppendDO365Result(dst, e.ID, corrective, preventive, do365.Level(r, v))
	if !bands {
		return dst
	}
	own, intr := e.local(f)
	b := resolve.Compute(own, []resolve.Intruder{{Aircraft: intr, Sep: &bandsSep}}, &bandsCfg)
	dst = dst[:len(dst)-1] // the newline
	for _, rs := range [][]resolve.Range{b.TrackDeg, b.GsMps, b.VsMps, b.AltM} {
		dst = append(dst, ',')
		dst = resolve.AppendDAIDALUS(dst, rs)
	}
	return append(dst, '\n')
}

// local returns both aircraft in one flat frame with altitude up: the
// input frame for Local; for WGS84 the east-north-up frame of the ownship
// raised to its altitude, so that altitude bands are altitudes.
func (e *Encounter) local(f Frame) (own, intr resolve.Aircraft) {
	if f == Local {
		return resolve.Aircraft{Pos: e.OwnPos, Vel: e.OwnVel}, resolve.Aircraft{Pos: e.IntPos, Vel: e.IntVel}
	}
	r, v := e.Relative(f)
	base := detect.Vec3{Z: e.OwnLLA.AltM}
	return resolve.Aircraft{Pos: base, Vel: e.OwnVel},
		resolve.Aircraft{Pos: detect.Vec3{X: r.X, Y: r.Y, Z: r.Z + base.Z}, Vel: detect.Vec3{X: v.X + e.OwnVel.X, Y: v.Y + e.OwnVel.Y, Z: v.Z + e.OwnVel.Z}}
}

// A batch of rows handed to a worker at once holds batchRows rows, or
// fewer that reach batchBytes of text: large enough to amortise the
// channel operations, small enough that the rows in flight stay a few
// megabytes, however long each row (up to maxLineBytes: 1024 rows of a
// megabyte each made a gigabyte a batch, and the run's memory grew with
// the file).
const (
	batchRows  = 1024
	batchBytes = 1 << 20
)

// batch is a run of consecutive rows, parsed and evaluated by one worker.
type batch struct {
	lines   []string
	lineNos []int
	out     []byte
	// err is the first fault of the batch: a malformed row (set by the
	// worker) or, after the rows, a read error (set by the producer).
	err  error
	done chan struct{}
}

// Run reads encounters from in and writes one result line per row of
// detector d to out, in input order, after its header (Header or
// DO365Header). It returns the number of rows. On an *InputError (the
// first bad row in input order) the output is incomplete: it holds the
// header and the whole lines of the rows counted (the batches before the
// fault's), and callers writing a file discard it.
func Run(in io.Reader, out io.Writer, f Frame, d Detector) (rows int, err error) {
	return run(in, out, f, d, false, nil)
}

// RunBands is Run with the DO365WCV detector and the ownship's bands: the
// columns of DO365Header, then BandsColumns.
func RunBands(in io.Reader, out io.Writer, f Frame) (rows int, err error) {
	return run(in, out, f, DO365WCV, true, nil)
}

// RunWithProgress is Run (RunBands when bands is set) that calls progress,
// from the caller's goroutine, with the number of rows written so far
// after each batch of rows (some thousand): a long file's run can show
// how far it is.
func RunWithProgress(in io.Reader, out io.Writer, f Frame, d Detector, bands bool, progress func(rows int)) (rows int, err error) {
	if bands && d != DO365WCV {
		return 0, errors.New("encounter: bands need the do365_wcv detector")
	}
	return run(in, out, f, d, bands, progress)
}

// run is Run, with the bands columns when bands is set, calling progress
// (when not nil) after each batch written.
//
// Parsing dominates the cost, so batches of rows are parsed and evaluated
// by one worker per CPU while a single producer reads lines and the caller's
// goroutine writes the batches back in order. At most a few batches per
// worker are in flight: memory stays flat whatever the input size.
func run(in io.Reader, out io.Writer, f Frame, d Detector, bands bool, progress func(rows int)) (rows int, err error) {
	rd, err := NewReader(in, f, d)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(out, 64<<10)
	header := Header
	if d == DO365WCV {
		header = DO365Header
	}
	if bands {
		header += "," + BandsColumns
	}
	if _, err := w.WriteString(header + "\n"); err != nil {
		return 0, err
	}

	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan *batch, workers)
	order := make(chan *batch, 2*workers)
	// Written batches come back for reuse, so that their buffers are
	// allocated once per run, not once per batch.
	free := make(chan *batch, 3*workers+1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)

	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		defer close(order)
		for {
			var b *batch
			select {
			case b = <-free:
				// The old rows' text goes with them.
				clear(b.lines)
				b.lines, b.lineNos, b.out = b.lines[:0], b.lineNos[:0], b.out[:0]
			default:
				b = &batch{}
			}
			b.done = make(chan struct{})
			var readErr error
			for size := 0; len(b.lines) < batchRows && size < batchBytes; {
				text, line, err := rd.next()
				if err != nil {
					readErr = err
					break
				}
				b.lines = append(b.lines, text)
				b.lineNos = append(b.lineNos, line)
				size += len(text)
			}
			if readErr != io.EOF {
				b.err = readErr
			}
			if len(b.lines) == 0 && b.err == nil {
				return
			}
			select {
			case order <- b:
			case <-stop:
				return
			}
			select {
			case jobs <- b:
			case <-stop:
				return
			}
			if readErr != nil {
				return
			}
		}
	}()

	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var e Encounter
			var fields []string
			for b := range jobs {
				for i, text := range b.lines {
					var err error
					fields, err = rd.parse(text, b.lineNos[i], fields, &e)
					if err != nil {
						b.err = err
						break
					}
					b.out = AppendRow(b.out, &e, f, d, bands)
				}
				close(b.done)
			}
		}()
	}

	for b := range order {
		<-b.done
		// A bad row or read error ends the run; the rows parsed before it
		// in this batch would only make a partial output longer.
		if b.err != nil {
			// The rows before are written whole, so that rows
			// counts exactly what the output holds.
			if err := w.Flush(); err != nil {
				return rows, err
			}
			return rows, b.err
		}
		if _, err := w.Write(b.out); err != nil {
			return rows, err
		}
		rows += len(b.lines)
		if progress != nil {
			progress(rows)
		}
		select {
		case free <- b:
		default:
		}
	}
	return rows, w.Flush()
}
