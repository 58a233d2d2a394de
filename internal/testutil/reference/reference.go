// Package reference gives tests the independent reference data that CI
// places beside the clone (../shared): the reference encounters, compared
// with their expected results, the OpenAir and ASTERIX recordings. It is
// imported by tests only.
package reference

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Encounters returns the paths of the reference encounters and of their
// expected results, found beside the repository root above the working
// directory. It fails the test when they are absent: agreement with the
// reference is what CI checks, and a skipped check passes unseen.
func Encounters(t testing.TB) (in, expected string) {
	t.Helper()
	ref := filepath.Join(sharedDir(t), "reference")
	in, expected = filepath.Join(ref, "encounters.csv"), filepath.Join(ref, "encounters_expected.csv")
	for _, p := range []string{in, expected} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("reference encounters: %v (CI places ../shared beside the clone)", err)
		}
	}
	return in, expected
}

// DAIDALUSDO365 returns the paths of the DAIDALUS DO-365B reference
// encounters (../shared/reference/daidalus_do365, described by its
// README.md) and of DAIDALUS's outputs for them. Unlike Encounters it fails
// the test when they are absent: agreement with DAIDALUS is what CI checks.
func DAIDALUSDO365(t testing.TB) (in, expected string) {
	t.Helper()
	dir := filepath.Join(sharedDir(t), "reference", "daidalus_do365")
	in, expected = filepath.Join(dir, "encounters.csv"), filepath.Join(dir, "expected.csv")
	for _, p := range []string{in, expected} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("DAIDALUS reference: %v (CI places ../shared beside the clone)", err)
		}
	}
	return in, expected
}

// OpenAir returns the folder of openAIP's OpenAir test files and their
// GeoJSON outputs (../shared/recordings/openair); it fails the test when
// the folder is absent.
func OpenAir(t testing.TB) string {
	t.Helper()
	return Dir(t, "recordings", "openair")
}

// ASTERIX returns the folder of the ASTERIX reference recording and its
// expected values (../shared/reference/asterix), failing the test when it
// is absent.
func ASTERIX(t testing.TB) string {
	t.Helper()
	return Dir(t, "reference", "asterix")
}

// ASTERIXRecordings returns the folder of the real ASTERIX recordings
// (../shared/recordings/asterix), failing the test when it is absent.
func ASTERIXRecordings(t testing.TB) string {
	t.Helper()
	return Dir(t, "recordings", "asterix")
}

// Dir returns the folder of ../shared named by the path elements, failing
// the test when it is absent.
func Dir(t testing.TB, elem ...string) string {
	t.Helper()
	dir := filepath.Join(append([]string{sharedDir(t)}, elem...)...)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("%s: %v (CI places ../shared beside the clone)", filepath.Join(elem...), err)
	}
	return dir
}

// ReadFile reads a file the test depends on (of ../shared, found with the
// functions above), failing the test when it cannot.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (CI places ../shared beside the clone)", err)
	}
	return b
}

// sharedDir is ../shared beside the repository root above the working
// directory.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	return filepath.Join(dir, "..", "shared")
}

// CompareResults checks two result CSVs line by line: the same header, the
// same ids in the same order, the same conflict verdict and empty fields,
// numbers with six decimals and within tol. Line endings may differ (the
// reference file has CRLF).
func CompareResults(t testing.TB, got, want string, tol float64) {
	t.Helper()
	got, want = strings.ReplaceAll(got, "\r\n", "\n"), strings.ReplaceAll(want, "\r\n", "\n")
	g := strings.Split(strings.TrimSpace(got), "\n")
	w := strings.Split(strings.TrimSpace(want), "\n")
	if len(g) != len(w) || g[0] != w[0] {
		t.Fatalf("%d lines (header %q), want %d (header %q)", len(g), g[0], len(w), w[0])
	}
	if len(w) < 2 {
		t.Fatal("no rows to compare: an empty comparison would pass unseen")
	}
	for i := 1; i < len(g); i++ {
		gf, wf := strings.Split(g[i], ","), strings.Split(w[i], ",")
		if len(gf) != 7 || len(wf) != 7 || gf[0] != wf[0] || gf[1] != wf[1] {
			t.Fatalf("line %d: %q, want %q", i+1, g[i], w[i])
		}
		for j := 2; j < 7; j++ {
			if (gf[j] == "") != (wf[j] == "") {
				t.Fatalf("line %d field %d: %q, want %q", i+1, j+1, g[i], w[i])
			}
			if gf[j] == "" {
				continue
			}
			if !strings.Contains(gf[j], ".") || len(gf[j])-strings.IndexByte(gf[j], '.')-1 != 6 {
				t.Fatalf("line %d field %d: %q is not six decimals", i+1, j+1, gf[j])
			}
			gv, err1 := strconv.ParseFloat(gf[j], 64)
			wv, err2 := strconv.ParseFloat(wf[j], 64)
			if err1 != nil || err2 != nil || math.Abs(gv-wv) > tol {
				t.Fatalf("line %d field %d: %q, want %q", i+1, j+1, g[i], w[i])
			}
		}
	}
}

// DO365BoundarySensitive returns the ids of the DAIDALUS reference rows
// marked boundary_sensitive: their answer depends on the last bit of an
// input, so either verdict is right (README section 7).
func DO365BoundarySensitive(t testing.TB) map[string]bool {
	t.Helper()
	_, expected := DAIDALUSDO365(t)
	data, err := os.ReadFile(expected)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(data), "\r\n", "\n")), "\n")
	header := strings.Split(lines[0], ",")
	col := -1
	for i, h := range header {
		if h == "boundary_sensitive" {
			col = i
		}
	}
	if col < 0 {
		t.Fatal("expected.csv has no boundary_sensitive column")
	}
	out := map[string]bool{}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if f[col] == "1" {
			out[f[0]] = true
		}
	}
	return out
}

// CompareDO365 checks a DO-365 result CSV (the detection and alert columns
// of the DAIDALUS reference: id, then conflict, t_in, t_out for the
// corrective and the preventive detector, then alert_level) against
// another, or against expected.csv itself, whose further columns are
// ignored: the same ids in the same order, the same verdicts, levels and
// empty fields, times with six decimals and within tol. Rows in eitherWay
// may differ in anything but their id.
func CompareDO365(t testing.TB, got, want string, tol float64, eitherWay map[string]bool) {
	t.Helper()
	const cols = 8
	g := strings.Split(strings.TrimSpace(strings.ReplaceAll(got, "\r\n", "\n")), "\n")
	w := strings.Split(strings.TrimSpace(strings.ReplaceAll(want, "\r\n", "\n")), "\n")
	if len(g) != len(w) || g[0] != strings.Join(strings.Split(w[0], ",")[:min(cols, len(strings.Split(w[0], ",")))], ",") {
		t.Fatalf("%d lines (header %q), want %d (header %q)", len(g), g[0], len(w), w[0])
	}
	if len(w) < 2 {
		t.Fatal("no rows to compare: an empty comparison would pass unseen")
	}
	checkExceptions(t, w[1:], eitherWay)
	for i := 1; i < len(g); i++ {
		gf, wf := strings.Split(g[i], ","), strings.Split(w[i], ",")
		if len(gf) != cols || len(wf) < cols || gf[0] != wf[0] {
			t.Fatalf("line %d: %q, want %q", i+1, g[i], w[i])
		}
		if eitherWay[gf[0]] {
			continue
		}
		for _, j := range []int{1, 4, 7} {
			if gf[j] != wf[j] {
				t.Fatalf("line %d field %d: %q, want %q", i+1, j+1, g[i], w[i])
			}
		}
		for _, j := range []int{2, 3, 5, 6} {
			if (gf[j] == "") != (wf[j] == "") {
				t.Fatalf("line %d field %d: %q, want %q", i+1, j+1, g[i], w[i])
			}
			if gf[j] == "" {
				continue
			}
			if !strings.Contains(gf[j], ".") || len(gf[j])-strings.IndexByte(gf[j], '.')-1 != 6 || strings.HasPrefix(gf[j], "-") {
				t.Fatalf("line %d field %d: %q is not six decimals without a sign", i+1, j+1, gf[j])
			}
			gv, err1 := strconv.ParseFloat(gf[j], 64)
			wv, err2 := strconv.ParseFloat(wf[j], 64)
			if err1 != nil || err2 != nil || math.Abs(gv-wv) > tol {
				t.Fatalf("line %d field %d: %q, want %q", i+1, j+1, g[i], w[i])
			}
		}
	}
}

// checkExceptions fails the test when the rows that may go either way
// (lines, or ids, of the reference, each starting with its id) are more
// than a tenth of them: the reference marks 22 of 400 boundary
// sensitive, and a comparison that excepted most rows would pass unseen.
func checkExceptions(t testing.TB, rows []string, eitherWay map[string]bool) {
	t.Helper()
	excepted := 0
	for _, r := range rows {
		id, _, _ := strings.Cut(r, ",")
		if eitherWay[id] {
			excepted++
		}
	}
	if excepted*10 > len(rows) {
		t.Fatalf("%d of the %d rows may go either way: the comparison would check too little", excepted, len(rows))
	}
}

// DAIDALUS's band candidates in the DO-365 reference (README sections 3.1
// and 6.1): steps of 1°, 5 kt, 100 fpm and 100 ft; ground speed 10 to
// 700 kt, vertical speed ±6000 fpm, altitude 100 to 50,000 ft.
var (
	do365BandColumns = [4]string{"track_bands_deg", "gs_bands_mps", "vs_bands_mps", "alt_bands_m"}
	do365Steps       = [4]float64{1, 5.0 * (1852.0 / 3600.0), 100.0 * (0.3048 / 60.0), 100 * 0.3048}
	do365Spans       = [4][2]float64{{0, 360}, {10.0 * (1852.0 / 3600.0), 700.0 * (1852.0 / 3600.0)}, {-6000.0 * (0.3048 / 60.0), 6000.0 * (0.3048 / 60.0)}, {100 * 0.3048, 50000 * 0.3048}}
	do365Regions     = map[string]int{"NONE": 0, "FAR": 1, "MID": 2, "NEAR": 3, "RECOVERY": 4}
)

// band is one item of a band string: low:high:REGION.
type band struct {
	lo, hi float64
	region int
}

func parseBandString(s string) ([]band, error) {
	var out []band
	for _, item := range strings.Split(s, ";") {
		f := strings.Split(item, ":")
		if len(f) != 3 {
			return nil, errors.New("band " + strconv.Quote(item) + " is not low:high:REGION")
		}
		lo, err1 := strconv.ParseFloat(f[0], 64)
		hi, err2 := strconv.ParseFloat(f[1], 64)
		r, ok := do365Regions[f[2]]
		if err1 != nil || err2 != nil || !ok || !(lo < hi) {
			return nil, errors.New("band " + strconv.Quote(item) + " is not low:high:REGION")
		}
		for _, v := range f[:2] {
			if !strings.Contains(v, ".") || len(v)-strings.IndexByte(v, '.')-1 != 6 || v == "-0.000000" {
				return nil, errors.New("band " + strconv.Quote(item) + ": not six decimals")
			}
		}
		if n := len(out); n > 0 && out[n-1].hi != lo {
			return nil, errors.New("band string " + strconv.Quote(s) + " has a gap")
		}
		out = append(out, band{lo, hi, r})
	}
	return out, nil
}

// regionAt is the most severe region of the bands holding x (an edge
// belongs to both its bands).
func regionAt(bs []band, x float64) int {
	r := -1
	for _, b := range bs {
		if b.lo <= x && x <= b.hi {
			r = max(r, b.region)
		}
	}
	return r
}

// do365Candidates are the values DAIDALUS tests in dimension d for an
// ownship with velocity (vx, vy, vz) (README section 6.1), within the
// dimension's span: val + k·step, the altitude grid from its lowest.
func do365Candidates(d int, vx, vy, vz float64) []float64 {
	lo, hi := do365Spans[d][0], do365Spans[d][1]
	var val float64
	switch d {
	case 0:
		val = math.Mod(math.Atan2(vx, vy)*180/math.Pi+360, 360)
		lo, hi = val-180, val+180
	case 1:
		val = math.Hypot(vx, vy)
	case 2:
		val = vz
	case 3:
		val = lo
	}
	var out []float64
	for k := -1000; k <= 1000; k++ {
		x := val + float64(k)*do365Steps[d]
		if x < lo || x > hi {
			continue
		}
		if d == 0 {
			x = math.Mod(x+360, 360)
		}
		out = append(out, x)
	}
	return out
}

// CompareDO365Bands checks the band columns of got (a CSV with an id
// column and the four band columns of the DAIDALUS reference, rows in the
// reference's order) against DAIDALUS's, with the README's behavioural
// check (section 7): well-formed band strings covering each span, and at
// every candidate DAIDALUS tests the same region, except within one step
// of an edge of DAIDALUS's bands. So every edge is within one step of
// DAIDALUS's and the regions between are equal, while ranges narrower than
// a step may come and go between DAIDALUS's candidates. Rows in eitherWay
// may differ; it returns how many of their dimensions did.
func CompareDO365Bands(t testing.TB, got string, eitherWay map[string]bool) (differ int) {
	t.Helper()
	in, expected := DAIDALUSDO365(t)
	read := func(name, text string) ([]string, []map[string]string) {
		lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(text, "\r\n", "\n")), "\n")
		header := strings.Split(lines[0], ",")
		var rows []map[string]string
		for i, l := range lines[1:] {
			f := strings.Split(l, ",")
			if len(f) != len(header) {
				t.Fatalf("%s line %d: %d fields, the header has %d", name, i+2, len(f), len(header))
			}
			m := map[string]string{}
			for j, h := range header {
				m[h] = f[j]
			}
			rows = append(rows, m)
		}
		return lines, rows
	}
	file := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	_, inputs := read("encounters.csv", file(in))
	_, want := read("expected.csv", file(expected))
	_, rows := read("output", got)
	if len(rows) != len(want) || len(want) == 0 {
		t.Fatalf("%d rows, the reference has %d", len(rows), len(want))
	}
	var ids []string
	for _, w := range want {
		ids = append(ids, w["id"])
	}
	checkExceptions(t, ids, eitherWay)
	for i, row := range rows {
		id := want[i]["id"]
		if row["id"] != id {
			t.Fatalf("row %d: id %q, want %q", i+1, row["id"], id)
		}
		num := func(k string) float64 {
			v, err := strconv.ParseFloat(inputs[i][k], 64)
			if err != nil {
				t.Fatalf("encounters.csv %s %s: %v", id, k, err)
			}
			return v
		}
		vx, vy, vz := num("own_vx_mps"), num("own_vy_mps"), num("own_vz_mps")
		for d, col := range do365BandColumns {
			g, err := parseBandString(row[col])
			if err != nil {
				t.Fatalf("%s %s: %v", id, col, err)
			}
			w, err := parseBandString(want[i][col])
			if err != nil {
				t.Fatalf("expected.csv %s %s: %v", id, col, err)
			}
			if g[0].lo != do365Spans[d][0] || g[len(g)-1].hi != do365Spans[d][1] {
				// The printed ends: six decimals of the span.
				lo, _ := strconv.ParseFloat(strconv.FormatFloat(do365Spans[d][0], 'f', 6, 64), 64)
				hi, _ := strconv.ParseFloat(strconv.FormatFloat(do365Spans[d][1], 'f', 6, 64), 64)
				if g[0].lo != lo || g[len(g)-1].hi != hi {
					t.Fatalf("%s %s: %q does not span %v", id, col, row[col], do365Spans[d])
				}
			}
			var edges []float64
			for j := 1; j < len(w); j++ {
				if w[j].region != w[j-1].region {
					edges = append(edges, w[j].lo)
				}
			}
			step := do365Steps[d]
			for _, x := range do365Candidates(d, vx, vy, vz) {
				if regionAt(g, x) == regionAt(w, x) {
					continue
				}
				near := false
				for _, e := range edges {
					near = near || math.Abs(x-e) <= step*(1+1e-9)+2e-6
				}
				if near {
					continue
				}
				msg := fmt.Sprintf("%s %s: at %f the region differs\n got  %s\n want %s", id, col, x, row[col], want[i][col])
				if eitherWay[id] {
					differ++
					t.Log("boundary sensitive, either answer is right: " + msg)
				} else {
					t.Error(msg)
				}
				break
			}
		}
	}
	return differ
}
