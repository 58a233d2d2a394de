package encounter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/testutil/reference"
)

// compareResults checks two result CSVs as reference.CompareResults does,
// and that they have the header of this package.
func compareResults(t *testing.T, got, want string, tol float64) {
	t.Helper()
	if header, _, _ := strings.Cut(got, "\n"); header != Header {
		t.Fatalf("header %q, want %q", header, Header)
	}
	reference.CompareResults(t, got, want, tol)
}

func TestRunMatchesReference(t *testing.T) {
	inPath, wantPath := reference.Encounters(t)
	in, err := os.Open(inPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	want, err := os.ReadFile(wantPath)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rows, err := Run(in, &out, Local, Cylinder)
	if err != nil {
		t.Fatal(err)
	}
	if rows != strings.Count(strings.TrimSpace(string(want)), "\n") {
		t.Fatalf("%d rows", rows)
	}
	compareResults(t, out.String(), string(want), 1e-3)
}

// TestDO365MatchesDAIDALUS runs the DAIDALUS reference encounters through
// the do365_wcv detector and expects DAIDALUS's detection and alert columns
// (rows marked boundary_sensitive may go either way).
func TestDO365MatchesDAIDALUS(t *testing.T) {
	inPath, wantPath := reference.DAIDALUSDO365(t)
	in, err := os.Open(inPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	want, err := os.ReadFile(wantPath)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rows, err := Run(in, &out, Local, DO365WCV)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 400 {
		t.Fatalf("%d rows", rows)
	}
	if header, _, _ := strings.Cut(out.String(), "\n"); header != DO365Header {
		t.Fatalf("header %q", header)
	}
	reference.CompareDO365(t, out.String(), string(want), 1e-3, reference.DO365BoundarySensitive(t))
	// The reference has rows at every level and with conflicts that are
	// not alerted: the comparison above covered each kind of line.
	for _, s := range []string{",0,,,0,,,0\n", ",1,0.000000,", ",3\n", ",2\n", ",1\n"} {
		if !strings.Contains(out.String(), s) {
			t.Fatalf("no output line contains %q", s)
		}
	}
}

// TestWGS84MatchesLocal places each reference encounter somewhere on earth
// (including next to the antimeridian and a pole), with the ownship's
// frame as the flat frame, and expects the local results from the wgs84
// input.
func TestWGS84MatchesLocal(t *testing.T) {
	inPath, _ := reference.Encounters(t)
	data, err := os.ReadFile(inPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, origin := range []geo.LLA{{LatDeg: 35.4, LonDeg: 38.1}, {LatDeg: -12, LonDeg: 179.95}, {LatDeg: 89.5, LonDeg: -60}} {
		rd, err := NewReader(bytes.NewReader(data), Local, Cylinder)
		if err != nil {
			t.Fatal(err)
		}
		var local, wgs bytes.Buffer
		local.WriteString(Header + "\n")
		wgs.WriteString("id,own_lat,own_lon,own_alt_m,own_vx_mps,own_vy_mps,own_vz_mps,int_lat,int_lon,int_alt_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n")
		var e Encounter
		for {
			if err := rd.Read(&e); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			f := geo.NewFrame(geo.LLA{LatDeg: origin.LatDeg, LonDeg: origin.LonDeg, AltM: e.OwnPos.Z})
			// The ownship at the origin of the flat frame; the flat
			// frame's axes are the ownship's east, north, up.
			rel := geo.ENU{EastM: e.IntPos.X - e.OwnPos.X, NorthM: e.IntPos.Y - e.OwnPos.Y, UpM: e.IntPos.Z - e.OwnPos.Z}
			own, intr := f.Origin(), f.FromENU(rel)
			// The intruder reports its velocity in its own frame.
			iv := geo.NewFrame(intr).VelocityFrom(own, geo.ENU{EastM: e.IntVel.X, NorthM: e.IntVel.Y, UpM: e.IntVel.Z})
			fmt.Fprintf(&wgs, "%s,%.12f,%.12f,%.6f,%g,%g,%g,%.12f,%.12f,%.6f,%.12f,%.12f,%.12f,%g,%g,%g\n", e.ID,
				own.LatDeg, own.LonDeg, own.AltM, e.OwnVel.X, e.OwnVel.Y, e.OwnVel.Z,
				intr.LatDeg, intr.LonDeg, intr.AltM, iv.EastM, iv.NorthM, iv.UpM,
				e.Sep.HorizontalM, e.Sep.VerticalM, e.LookaheadS)
			local.Write(AppendResult(nil, e.ID, e.Result(Local)))
		}
		var out bytes.Buffer
		if _, err := Run(bytes.NewReader(wgs.Bytes()), &out, WGS84, Cylinder); err != nil {
			t.Fatal(err)
		}
		// Printing degrees to 12 decimals moves a point by 0.1 µm, and
		// the round trip through ECEF by less than a micrometer: far below
		// the 1e-3 of the reference.
		compareResults(t, out.String(), local.String(), 1e-3)

		// The same rows through do365_wcv: its thresholds, not the rows'.
		var localDO, wgsDO bytes.Buffer
		if _, err := Run(bytes.NewReader(data), &localDO, Local, DO365WCV); err != nil {
			t.Fatal(err)
		}
		if _, err := Run(bytes.NewReader(wgs.Bytes()), &wgsDO, WGS84, DO365WCV); err != nil {
			t.Fatal(err)
		}
		reference.CompareDO365(t, wgsDO.String(), localDO.String(), 1e-3, nil)
	}
}

// TestBandsWGS84 runs the DAIDALUS reference through --bands with the
// encounters placed on the earth, the ownship's east-north-up frame as
// the flat frame: the bands agree with DAIDALUS's as in the flat frame.
func TestBandsWGS84(t *testing.T) {
	inPath, _ := reference.DAIDALUSDO365(t)
	data, err := os.ReadFile(inPath)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(bytes.NewReader(data), Local, DO365WCV)
	if err != nil {
		t.Fatal(err)
	}
	var wgs bytes.Buffer
	wgs.WriteString("id,own_lat,own_lon,own_alt_m,own_vx_mps,own_vy_mps,own_vz_mps,int_lat,int_lon,int_alt_m,int_vx_mps,int_vy_mps,int_vz_mps\n")
	var e Encounter
	for {
		if err := rd.Read(&e); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		f := geo.NewFrame(geo.LLA{LatDeg: 35.4, LonDeg: 38.1, AltM: e.OwnPos.Z})
		rel := geo.ENU{EastM: e.IntPos.X - e.OwnPos.X, NorthM: e.IntPos.Y - e.OwnPos.Y, UpM: e.IntPos.Z - e.OwnPos.Z}
		own, intr := f.Origin(), f.FromENU(rel)
		iv := geo.NewFrame(intr).VelocityFrom(own, geo.ENU{EastM: e.IntVel.X, NorthM: e.IntVel.Y, UpM: e.IntVel.Z})
		fmt.Fprintf(&wgs, "%s,%.12f,%.12f,%.6f,%g,%g,%g,%.12f,%.12f,%.6f,%.12f,%.12f,%.12f\n", e.ID,
			own.LatDeg, own.LonDeg, own.AltM, e.OwnVel.X, e.OwnVel.Y, e.OwnVel.Z,
			intr.LatDeg, intr.LonDeg, intr.AltM, iv.EastM, iv.NorthM, iv.UpM)
	}
	var out bytes.Buffer
	if _, err := RunBands(bytes.NewReader(wgs.Bytes()), &out, WGS84); err != nil {
		t.Fatal(err)
	}
	reference.CompareDO365Bands(t, out.String(), reference.DO365BoundarySensitive(t))
}

func TestReaderErrors(t *testing.T) {
	const header = "id,kind,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n"
	const good = "7,head_on,0,0,1000,100,0,0,20000,0,1000,-100,0,0,9260,304.8,300\n"
	replace := func(col, val string) string {
		names := strings.Split(strings.TrimSpace(header), ",")
		fields := strings.Split(strings.TrimSpace(good), ",")
		for i, n := range names {
			if n == col {
				fields[i] = val
			}
		}
		return header + good + strings.Join(fields, ",") + "\n"
	}
	for _, c := range []struct {
		name, in string
		frame    Frame
		line     int
		column   string
		msg      string
	}{
		{"empty", "", Local, 1, "", "empty input"},
		{"missing columns", "id,own_x_m\n" + good, Local, 1, "", "missing columns for frame local and detector cylinder: own_vx_mps"},
		{"local file read as wgs84", header + good, WGS84, 1, "", "own_lat"},
		{"duplicate column", strings.Replace(header, "kind", "D_m", 1) + good, Local, 1, "D_m", "twice"},
		// A file without its header, or separated by semicolons, is
		// told so.
		{"no header", good + good, Local, 1, "", "the first line must be the header"},
		{"semicolons", strings.ReplaceAll(header, ",", ";") + good, Local, 1, "", "the first line must be the header"},
		{"not a number", replace("own_y_m", "abc"), Local, 3, "own_y_m", `"abc" is not a number`},
		{"empty number", replace("int_vz_mps", ""), Local, 3, "int_vz_mps", "not a number"},
		{"NaN", replace("own_z_m", "NaN"), Local, 3, "own_z_m", "not a finite number"},
		{"infinity", replace("int_x_m", "-Inf"), Local, 3, "int_x_m", "not a finite number"},
		{"huge", replace("own_vx_mps", "1e300"), Local, 3, "own_vx_mps", "beyond"},
		// A number beyond any float64 is said to be beyond the bound,
		// not "not a number".
		{"beyond float64", replace("own_z_m", "1e309"), Local, 3, "own_z_m", "1e309 is beyond ±1e+09"},
		{"beyond float64, negative", replace("D_m", "-1e400"), Local, 3, "D_m", "beyond"},
		// The id is written back as it is: a control character in it
		// would break the output's lines or a terminal's display.
		{"id with an escape", replace("id", "a\x1b[2Jb"), Local, 3, "id", "U+001B"},
		{"id with a lone carriage return", replace("id", "a\rb"), Local, 3, "id", "U+000D"},
		// The id is written back unquoted: one a spreadsheet reads as a
		// formula would run when an analyst opens the output.
		{"id as a formula", replace("id", "=1+2"), Local, 3, "id", "run it as a formula"},
		{"id as a formula after spaces", replace("id", "  =cmd|' /C calc'!A0"), Local, 3, "id", "formula"},
		{"id starting with plus", replace("id", "+1+2"), Local, 3, "id", "formula"},
		{"id starting with minus", replace("id", "-2+3"), Local, 3, "id", "formula"},
		{"id starting with at", replace("id", "@SUM(A1:A2)"), Local, 3, "id", "formula"},
		{"negative D", replace("D_m", "-1"), Local, 3, "D_m", "must not be negative"},
		{"negative H", replace("H_m", "-0.5"), Local, 3, "H_m", "must not be negative"},
		{"negative T", replace("T_s", "-300"), Local, 3, "T_s", "must not be negative"},
		{"empty id", replace("id", " "), Local, 3, "id", "empty"},
		{"too few fields", header + good + "8,x,1,2\n", Local, 3, "", "4 fields, the header has 17"},
		{"too many fields", header + good + strings.TrimSpace(good) + ",1,2\n", Local, 3, "", "more than 17 fields"},
		{"quoted", header + `"7",` + good[2:], Local, 2, "", "quoted"},
		// Old Mac line endings: the file read as one header line that
		// named no column, or (past a megabyte) as a line too long, with
		// no hint why.
		{"CR-only line endings", strings.ReplaceAll(header+good+good, "\n", "\r"), Local, 1, "", "line endings are CR only"},
		{"CR-only line endings, long", strings.ReplaceAll(header+strings.Repeat(good, 20_000), "\n", "\r"), Local, 1, "", "line endings are CR only"},
		{"latitude", "id,own_lat,own_lon,own_alt_m,own_vx_mps,own_vy_mps,own_vz_mps,int_lat,int_lon,int_alt_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n" +
			"1,91,0,0,0,0,0,0,0,0,0,0,0,1,1,1\n", WGS84, 2, "own_lat", "within [-90, 90]"},
		{"longitude", "id,own_lat,own_lon,own_alt_m,own_vx_mps,own_vy_mps,own_vz_mps,int_lat,int_lon,int_alt_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n" +
			"1,0,0,0,0,0,0,0,180.5,0,0,0,0,1,1,1\n", WGS84, 2, "int_lon", "within [-180, 180]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Run(strings.NewReader(c.in), &out, c.frame, Cylinder)
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v, want an InputError", err)
			}
			if ie.Line != c.line || ie.Column != c.column || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q (line %d, column %q), want line %d, column %q, containing %q", err, ie.Line, ie.Column, c.line, c.column, c.msg)
			}
			if want := fmt.Sprintf("line %d", c.line); !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("error %q does not start with %q", err, want)
			}
		})
	}
}

func TestReaderAcceptsVariants(t *testing.T) {
	// Columns in any order, extra columns, CRLF, a byte order mark,
	// spaces around fields and blank lines all read as the plain file.
	plain := "id,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n" +
		"a,0,0,1000,100,0,0,20000,0,1000,-100,0,0,9260,304.8,300\n" +
		"b,0,0,1000,100,0,0,20000,50000,1000,-100,0,0,9260,304.8,300\n"
	variant := "\ufeffT_s,H_m,D_m,note,int_vz_mps,int_vy_mps,int_vx_mps,int_z_m,int_y_m,int_x_m,own_vz_mps,own_vy_mps,own_vx_mps,own_z_m,own_y_m,own_x_m,id\r\n" +
		"300, 304.8 ,9260,x,0,0,-100,1000,0,20000,0,0,100,1000,0,0,a\r\n" +
		"\r\n" +
		"300,304.8,9260,y,0,0,-100,1000,50000,20000,0,0,100,1000,0,0,b\r\n"
	var a, b bytes.Buffer
	if _, err := Run(strings.NewReader(plain), &a, Local, Cylinder); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(strings.NewReader(variant), &b, Local, Cylinder); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Fatalf("plain:\n%s\nvariant:\n%s", a.String(), b.String())
	}
	// Both rows are evaluated, not just echoed: the first is head on.
	if !strings.Contains(a.String(), "\na,1,") || !strings.Contains(a.String(), "\nb,0,,,") {
		t.Fatalf("unexpected results:\n%s", a.String())
	}
	// Unnamed columns (a spreadsheet's trailing commas) are extra
	// columns too; they were refused as appearing twice, naming none.
	b.Reset()
	unnamed := strings.ReplaceAll(strings.ReplaceAll(plain, ",own_x_m,", ",,own_x_m,"), "\n", ",,\n")
	unnamed = strings.ReplaceAll(unnamed, "a,0,", "a,,0,")
	unnamed = strings.ReplaceAll(unnamed, "b,0,", "b,,0,")
	if _, err := Run(strings.NewReader(unnamed), &b, Local, Cylinder); err != nil || a.String() != b.String() {
		t.Fatalf("with unnamed columns: %v\n%s", err, b.String())
	}
}

func TestAppendResultMatchesPair(t *testing.T) {
	r := detect.Pair(detect.Vec3{}, detect.Vec3{X: 100}, detect.Vec3{X: 20_000}, detect.Vec3{X: -100}, detect.Cylinder{HorizontalM: 9260, VerticalM: 304.8}, 300)
	line := string(AppendResult(nil, "x", r))
	want := fmt.Sprintf("x,1,%.6f,%.6f,%.6f,%.6f,%.6f\n", r.TInS, r.TOutS, r.TCPAS, r.DHCPAM, r.DVCPAM)
	if line != want {
		t.Fatalf("%q, want %q", line, want)
	}
}

func FuzzReader(f *testing.F) {
	const header = "id,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n"
	f.Add(header+"1,0,0,1000,100,0,0,20000,0,1000,-100,0,0,9260,304.8,300\n", false, false)
	f.Add(header+"1,0,0,1000,100,0,0,20000,0,1000,-100,0,0,9260,304.8,300\n2,1e3,-0,5,0,0,0,0,0,0,0,0,0,0,0,0\n", false, false)
	f.Add(header+"1,0,0,NaN,100,0,0,20000,0,1000,-100,0,0,9260,304.8,300\n", false, false)
	f.Add(header+"1,0,0,0,0,0,0,0,0,0,0,0,0,-1,1,1\n", false, false)
	f.Add(header+"1,2,3\n", false, false)
	f.Add("id,own_lat,own_lon,own_alt_m,own_vx_mps,own_vy_mps,own_vz_mps,int_lat,int_lon,int_alt_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n"+
		"1,35,38,9000,200,0,0,35,38.2,9000,-200,0,0,9260,304.8,300\n", true, false)
	f.Add("id,own_lat,own_lon,own_alt_m,own_vx_mps,own_vy_mps,own_vz_mps,int_lat,int_lon,int_alt_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n"+
		"1,89.99,179.9,9000,200,0,0,89.99,-179.9,9000,-200,0,0,9260,304.8,300\n", true, false)
	f.Add("id,kind,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps\n"+
		"dev-0012,already_inside,0,0,1000,100,0,0,500,0,1050,-100,0,0\n", false, true)
	f.Add(header+"1,0,0,1000,0,0,0,1222.32,0,1137.16,0,0,0,9260,304.8,300\n", false, true)
	f.Add("", false, false)
	f.Add("\ufeffid\r\n\r\n", false, false)
	f.Fuzz(func(t *testing.T, in string, wgs84, do365 bool) {
		frame, det, header, fields := Local, Cylinder, Header, 7
		if wgs84 {
			frame = WGS84
		}
		if do365 {
			det, header, fields = DO365WCV, DO365Header, 8
		}
		var out bytes.Buffer
		rows, err := Run(strings.NewReader(in), &out, frame, det)
		for _, l := range outputLines(t, rows, err, out.String(), header) {
			fs := strings.Split(l, ",")
			if len(fs) != fields || (fs[1] != "0" && fs[1] != "1") || (fs[1] == "0") != (fs[2] == "") {
				t.Fatalf("malformed output line %q", l)
			}
			if do365 && ((fs[4] != "0" && fs[4] != "1") || (fs[4] == "0") != (fs[5] == "") || len(fs[7]) != 1 || fs[7] < "0" || fs[7] > "3") {
				t.Fatalf("malformed output line %q", l)
			}
			for _, v := range fs[2:] {
				if v == "" {
					continue
				}
				x, err := strconv.ParseFloat(v, 64)
				if err != nil || x < 0 || math.IsNaN(x) || math.IsInf(x, 0) {
					t.Fatalf("output field %q in %q", v, l)
				}
			}
		}
	})
}

// TestRunReportsFirstBadRowAcrossBatches: rows are parsed in parallel
// batches, but the error reported is the first in input order.
func TestRunReportsFirstBadRowAcrossBatches(t *testing.T) {
	const n = 5 * batchRows
	var b strings.Builder
	b.WriteString("id,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n")
	badLines := map[int]bool{4000: true, 2500: true} // line numbers; header is line 1
	for i := range n {
		h := "304.8"
		if badLines[i+2] {
			h = "-1"
		}
		fmt.Fprintf(&b, "%d,0,0,1000,100,0,0,%d,0,1000,-100,0,0,9260,%s,300\n", i, 20_000+i, h)
	}
	var out bytes.Buffer
	written, err := Run(strings.NewReader(b.String()), &out, Local, Cylinder)
	var ie *InputError
	if !errors.As(err, &ie) || ie.Line != 2500 || ie.Column != "H_m" {
		t.Fatalf("error %v, want line 2500, column H_m", err)
	}
	// What went out before the fault is the header and whole lines of
	// the rows counted, the rows of the batches before the fault's, so
	// that a caller can say exactly what the output holds.
	if lines := strings.Split(out.String(), "\n"); written != 2*batchRows || len(lines) != written+2 || lines[written+1] != "" ||
		!strings.HasPrefix(lines[written], strconv.Itoa(written-1)+",") {
		t.Fatalf("%d rows counted; the output has %d lines, ending %q", written, len(lines), out.String()[max(0, out.Len()-80):])
	}

	// Without the bad rows every row comes back, in order.
	good := strings.ReplaceAll(b.String(), ",-1,", ",304.8,")
	out.Reset()
	rows, err := Run(strings.NewReader(good), &out, Local, Cylinder)
	if err != nil || rows != n {
		t.Fatalf("%d rows, error %v", rows, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for i, l := range lines[1:] {
		if !strings.HasPrefix(l, strconv.Itoa(i)+",") {
			t.Fatalf("output line %d is %q", i+2, l)
		}
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestRunReadError(t *testing.T) {
	in := "id,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n" +
		strings.Repeat("1,0,0,1000,100,0,0,20000,0,1000,-100,0,0,9260,304.8,300\n", 3000)
	broken := errors.New("disk on fire")
	_, err := Run(&failingReader{data: []byte(in), err: broken}, io.Discard, Local, Cylinder)
	var ie *InputError
	if !errors.Is(err, broken) || errors.As(err, &ie) {
		t.Fatalf("error %v, want the read error and not an input error", err)
	}
}

// FuzzRunBands: `encounter --bands` on any file gives, for each row it
// accepts, its detection columns and the four band columns, or an
// InputError with a line; never a panic, whatever values the row holds
// (each bounded by maxMagnitude).
func FuzzRunBands(f *testing.F) {
	const header = "id,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps\n"
	f.Add(header+"1,0,0,1000,100,0,0,20000,0,1000,-100,0,0\n", false)
	f.Add(header+"1,0,0,1000,0,0,0,1222.32,0,1137.16,0,0,0\n", false)
	f.Add(header+"1,0,0,1e9,1e9,-1e9,1e9,-1e9,1e9,-1e9,1e9,1e9,-1e9\n", false)
	f.Add(header+"1,0,0,0,0,0,0,0,0,0,0,0,0\n2,0,0,1000,100,0,0,500,0,1050,-100,0,0\n", false)
	f.Add("id,own_lat,own_lon,own_alt_m,own_vx_mps,own_vy_mps,own_vz_mps,int_lat,int_lon,int_alt_m,int_vx_mps,int_vy_mps,int_vz_mps\n"+
		"1,89.99,179.9,9000,200,0,0,89.99,-179.9,9000,-200,0,0\n", true)
	f.Fuzz(func(t *testing.T, in string, wgs84 bool) {
		frame := Local
		if wgs84 {
			frame = WGS84
		}
		var out bytes.Buffer
		rows, err := RunBands(strings.NewReader(in), &out, frame)
		for _, l := range outputLines(t, rows, err, out.String(), DO365Header+","+BandsColumns) {
			fs := strings.Split(l, ",")
			if len(fs) != 12 {
				t.Fatalf("output line %q has %d fields, want 12", l, len(fs))
			}
			// Each band column is low:high:REGION items, finite, each
			// low at most its high, in ascending order; tracks within
			// [0, 360] degrees.
			for c, col := range fs[8:] {
				if col == "" {
					continue
				}
				prevHigh := math.Inf(-1)
				for _, item := range strings.Split(col, ";") {
					parts := strings.Split(item, ":")
					if len(parts) != 3 || parts[2] == "" || strings.Trim(parts[2], "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != "" {
						t.Fatalf("band item %q in %q", item, l)
					}
					low, lerr := strconv.ParseFloat(parts[0], 64)
					high, herr := strconv.ParseFloat(parts[1], 64)
					if lerr != nil || herr != nil || math.IsInf(low, 0) || math.IsInf(high, 0) || math.IsNaN(low) || math.IsNaN(high) ||
						low > high || low < prevHigh-1e-6 || (c == 0 && (low < 0 || high > 360)) {
						t.Fatalf("band item %q (after %g) in column %d of %q", item, prevHigh, c, l)
					}
					prevHigh = high
				}
			}
		}
	})
}

// outputLines checks what a run over a fuzzed file gave: an InputError
// naming its line, or the header and one line per row. It returns the
// rows' lines (none after an error).
func outputLines(t *testing.T, rows int, err error, out, header string) []string {
	t.Helper()
	if err != nil {
		var ie *InputError
		if !errors.As(err, &ie) || ie.Line < 1 || !strings.HasPrefix(err.Error(), "line ") {
			t.Fatalf("error %v is not an InputError with a line", err)
		}
		return nil
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != rows+1 || lines[0] != header {
		t.Fatalf("%d rows but output %q", rows, out)
	}
	return lines[1:]
}

// TestRunWithProgress: progress hears, after each batch written, how many
// rows are out, growing to the last row; a long run can show how far it
// is.
func TestRunWithProgress(t *testing.T) {
	const n = 3*batchRows + 7
	var b strings.Builder
	b.WriteString("id,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps\n")
	for i := range n {
		fmt.Fprintf(&b, "%d,0,0,1000,100,0,0,%d,0,1000,-100,0,0\n", i, 2_000+i)
	}
	var heard []int
	var out bytes.Buffer
	rows, err := RunWithProgress(strings.NewReader(b.String()), &out, Local, DO365WCV, true, func(rows int) {
		heard = append(heard, rows)
	})
	if err != nil || rows != n {
		t.Fatalf("%d rows, %v", rows, err)
	}
	if want := []int{batchRows, 2 * batchRows, 3 * batchRows, n}; !slices.Equal(heard, want) {
		t.Fatalf("heard %v, want %v", heard, want)
	}
	if _, err := RunWithProgress(strings.NewReader(b.String()), io.Discard, Local, Cylinder, true, nil); err == nil {
		t.Fatal("bands of the cylinder detector accepted")
	}
}

// TestBatchesAreBoundedInBytes: rows near the longest a line may be (an
// extra column of notes) are handed to the workers a megabyte or so at a
// time, not batchRows at a time: 1024 rows of a megabyte made a gigabyte
// a batch, a few batches in flight, and memory grew with the file. The
// batches are what progress hears.
func TestBatchesAreBoundedInBytes(t *testing.T) {
	const rowBytes = 300 << 10
	var b strings.Builder
	b.WriteString("id,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps,note\n")
	note := strings.Repeat("n", rowBytes)
	const n = 40
	for i := range n {
		fmt.Fprintf(&b, "%d,0,0,1000,100,0,0,%d,0,1000,-100,0,0,%s\n", i, 2_000+i, note)
	}
	var heard []int
	rows, err := RunWithProgress(strings.NewReader(b.String()), io.Discard, Local, DO365WCV, false, func(rows int) { heard = append(heard, rows) })
	if err != nil || rows != n {
		t.Fatalf("%d rows, %v", rows, err)
	}
	prev := 0
	for _, h := range heard {
		if (h-prev)*rowBytes > batchBytes+rowBytes {
			t.Fatalf("a batch of %d rows of %d bytes (batches %v)", h-prev, rowBytes, heard)
		}
		prev = h
	}
}
