package main

import (
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// encounterReference returns the paths of the reference encounters and
// their expected results, beside the repository root.
func encounterReference(t *testing.T) (in, expected string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "shared", "reference"))
	if err != nil {
		t.Fatal(err)
	}
	in, expected = filepath.Join(dir, "encounters.csv"), filepath.Join(dir, "encounters_expected.csv")
	if _, err := os.Stat(in); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("reference encounters absent: %s does not exist (CI places ../shared beside the clone)", in)
	}
	return in, expected
}

// encounterSameResults compares result CSVs: ids, verdicts and empty fields
// exactly, numbers within 1e-3, line endings aside.
func encounterSameResults(t *testing.T, got, want string) {
	t.Helper()
	g := strings.Split(strings.TrimSpace(strings.ReplaceAll(got, "\r\n", "\n")), "\n")
	w := strings.Split(strings.TrimSpace(strings.ReplaceAll(want, "\r\n", "\n")), "\n")
	if len(g) != len(w) || g[0] != w[0] {
		t.Fatalf("%d lines (header %q), want %d (header %q)", len(g), g[0], len(w), w[0])
	}
	for i := 1; i < len(g); i++ {
		gf, wf := strings.Split(g[i], ","), strings.Split(w[i], ",")
		if len(gf) != len(wf) || gf[0] != wf[0] || gf[1] != wf[1] {
			t.Fatalf("line %d: %q, want %q", i+1, g[i], w[i])
		}
		for j := 2; j < len(gf); j++ {
			if gf[j] == "" || wf[j] == "" {
				if gf[j] != wf[j] {
					t.Fatalf("line %d: %q, want %q", i+1, g[i], w[i])
				}
				continue
			}
			gv, err1 := strconv.ParseFloat(gf[j], 64)
			wv, err2 := strconv.ParseFloat(wf[j], 64)
			if err1 != nil || err2 != nil || math.Abs(gv-wv) > 1e-3 {
				t.Fatalf("line %d: %q, want %q", i+1, g[i], w[i])
			}
		}
	}
}

func TestEncounterReferenceToFileAndStdout(t *testing.T) {
	in, expected := encounterReference(t)
	want, err := os.ReadFile(expected)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "results.csv")
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"encounter", "--in", in, "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Fatalf("wrote to stdout with --out: %q", stdout.String()[:min(stdout.Len(), 200)])
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	encounterSameResults(t, string(got), string(want))
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the output", len(entries))
	}

	stdout.Reset()
	if code := runMain([]string{"encounter", "--in", in}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stdout.String() != string(got) {
		t.Fatal("standard output differs from the --out file")
	}
}

func TestEncounterErrors(t *testing.T) {
	const header = "id,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n"
	const good = "1,0,0,1000,100,0,0,20000,0,1000,-100,0,0,9260,304.8,300\n"
	for _, c := range []struct {
		name, input string
		args        []string
		want        []string // all in the error message
	}{
		{"missing columns", "id,own_x_m\n1,2\n", nil, []string{"line 1", "missing columns", "D_m"}},
		{"not a number", header + good + strings.Replace(good, "20000", "2O000", 1), nil, []string{"line 3", "column int_x_m", "not a number"}},
		{"NaN", header + good + good + strings.Replace(good, "304.8", "NaN", 1), nil, []string{"line 4", "column H_m", "finite"}},
		{"negative D", header + strings.Replace(good, "9260", "-9260", 1), nil, []string{"line 2", "column D_m", "negative"}},
		{"negative H", header + strings.Replace(good, "304.8", "-304.8", 1), nil, []string{"line 2", "column H_m", "negative"}},
		{"negative T", header + strings.Replace(good, ",300\n", ",-300\n", 1), nil, []string{"line 2", "column T_s", "negative"}},
		{"wrong field count", header + good + "2,0,0\n", nil, []string{"line 3", "3 fields, the header has 16"}},
		{"local file as wgs84", header + good, []string{"--frame", "wgs84"}, []string{"line 1", "own_lat"}},
		{"unknown frame", header + good, []string{"--frame", "ecef"}, []string{"--frame", "ecef"}},
		{"stray argument", header + good, []string{"extra"}, []string{"unexpected argument"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in.csv"), filepath.Join(dir, "out.csv")
			if err := os.WriteFile(in, []byte(c.input), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			args := append([]string{"encounter", "--in", in, "--out", out}, c.args...)
			if code := runMain(args, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", code, stderr.String())
			}
			for _, w := range c.want {
				if !strings.Contains(stderr.String(), w) {
					t.Fatalf("stderr %q lacks %q", stderr.String(), w)
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				names := []string{}
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Fatalf("output left behind: %v", names)
			}
		})
	}

	t.Run("existing output untouched", func(t *testing.T) {
		dir := t.TempDir()
		in, out := filepath.Join(dir, "in.csv"), filepath.Join(dir, "out.csv")
		if err := os.WriteFile(in, []byte(header+good+"2,x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		const before = "previous results\n"
		if err := os.WriteFile(out, []byte(before), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if code := runMain([]string{"encounter", "--in", in, "--out", out}, &stdout, &stderr); code != 2 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		if b, _ := os.ReadFile(out); string(b) != before {
			t.Fatalf("output file changed to %q", b)
		}
	})

	t.Run("missing --in and missing file", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if code := runMain([]string{"encounter"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "--in") {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		stderr.Reset()
		missing := filepath.Join(t.TempDir(), "nope.csv")
		if code := runMain([]string{"encounter", "--in", missing}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "nope.csv") {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	})
}
