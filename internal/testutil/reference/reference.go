// Package reference gives tests the independent reference data that CI
// places beside the clone (../shared): the reference encounters, compared
// with their expected results, and the OpenAir recordings. It is imported by tests only.
package reference

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Encounters returns the paths of the reference encounters and of their
// expected results, found beside the repository root above the working
// directory; it skips the test when they are absent.
func Encounters(t testing.TB) (in, expected string) {
	t.Helper()
	ref := filepath.Join(sharedDir(t), "reference")
	in, expected = filepath.Join(ref, "encounters.csv"), filepath.Join(ref, "encounters_expected.csv")
	if _, err := os.Stat(in); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("reference encounters absent: %s does not exist (CI places ../shared beside the clone)", in)
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
// GeoJSON outputs (../shared/recordings/openair); it skips the test when
// the folder is absent.
func OpenAir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(sharedDir(t), "recordings", "openair")
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("OpenAir recordings absent: %s does not exist (CI places ../shared beside the clone)", dir)
	}
	return dir
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
	if len(g) != len(w) || g[0] != strings.Join(strings.Split(w[0], ",")[:cols], ",") {
		t.Fatalf("%d lines (header %q), want %d (header %q)", len(g), g[0], len(w), w[0])
	}
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
