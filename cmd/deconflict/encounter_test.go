package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/encounter"
	"github.com/deconflict/deconflict/internal/testutil/reference"
)

func TestEncounterReferenceToFileAndStdout(t *testing.T) {
	in, expected := reference.Encounters(t)
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
	reference.CompareResults(t, string(got), string(want), 1e-3)
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

// TestEncounterDO365Reference is the analysts' command on the DAIDALUS
// reference: the README's encounters.csv in, the detection and alert
// columns of its expected.csv out, in input order.
func TestEncounterDO365Reference(t *testing.T) {
	in, expected := reference.DAIDALUSDO365(t)
	want, err := os.ReadFile(expected)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.csv")
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"encounter", "--detector", "do365_wcv", "--in", in, "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	reference.CompareDO365(t, string(got), string(want), 1e-3, reference.DO365BoundarySensitive(t))
}

// TestEncounterDO365Bands is the same with --bands: the detection and
// alert columns as before, then DAIDALUS's four band columns, agreeing
// with the reference (reference.CompareDO365Bands).
func TestEncounterDO365Bands(t *testing.T) {
	in, expected := reference.DAIDALUSDO365(t)
	want, err := os.ReadFile(expected)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"encounter", "--detector", "do365_wcv", "--bands", "--in", in}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	header, _, _ := strings.Cut(stdout.String(), "\n")
	if header != encounter.DO365Header+","+encounter.BandsColumns {
		t.Fatalf("header %q", header)
	}
	// The detection columns alone, then the bands.
	var detection strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		f := strings.Split(line, ",")
		detection.WriteString(strings.Join(f[:8], ",") + "\n")
	}
	sensitive := reference.DO365BoundarySensitive(t)
	reference.CompareDO365(t, detection.String(), string(want), 1e-3, sensitive)
	reference.CompareDO365Bands(t, stdout.String(), sensitive)
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
		{"unknown detector", header + good, []string{"--detector", "tcas"}, []string{"--detector", "tcas", "do365_wcv"}},
		{"do365 needs positions", "id,own_x_m\n1,2\n", []string{"--detector", "do365_wcv"}, []string{"line 1", "detector do365_wcv", "int_vz_mps"}},
		{"stray argument", header + good, []string{"extra"}, []string{"unexpected argument"}},
		{"bands of the cylinder", header + good, []string{"--bands"}, []string{"--bands needs --detector do365_wcv"}},
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

// TestEncounterOutRefusedBeforeWork: an --out that is the input itself
// (named again, or through a link) would replace the analyst's encounters
// with the results; one that is a directory failed only after every row
// was done, with the temporary file's name; one in a folder that does not
// exist named the temporary file. Each is refused first, naming --out as
// given, with the input untouched.
func TestEncounterOutRefusedBeforeWork(t *testing.T) {
	const header = "id,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n"
	// A bad third line: a run that does the work first reports it.
	const input = header + "1,0,0,1000,100,0,0,20000,0,1000,-100,0,0,9260,304.8,300\n2,x\n"
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(in, []byte(input), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.csv")
	if err := os.Symlink(in, link); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "results")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		out  string
		code int
		want string
	}{
		{in, 2, "is the input file"},
		{filepath.Join(dir, ".", "in.csv"), 2, "is the input file"},
		{link, 2, "is the input file"},
		{sub, 2, "is a directory"},
		{filepath.Join(dir, "nope", "out.csv"), 1, "cannot write in " + filepath.Join(dir, "nope")},
	} {
		var stdout, stderr bytes.Buffer
		code := runMain([]string{"encounter", "--in", in, "--out", c.out}, &stdout, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), "--out "+c.out) || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("--out %s: exit %d, stderr %q; want exit %d naming --out %s, %q", c.out, code, stderr.String(), c.code, c.out, c.want)
		}
		if b, _ := os.ReadFile(in); string(b) != input {
			t.Fatalf("--out %s: the input became %q", c.out, b)
		}
	}
	if entries, _ := os.ReadDir(sub); len(entries) != 0 {
		t.Fatalf("left in the directory: %v", entries)
	}
}

// TestEncounterSaysWhatItDid: on success the analyst reads, on stderr, how
// many encounters went where, and is told when the input held none (a
// header alone gave a results file of a header, silently).
func TestEncounterSaysWhatItDid(t *testing.T) {
	in, _ := reference.DAIDALUSDO365(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.csv")
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"encounter", "--detector", "do365_wcv", "--in", in, "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if want := "400 encounters from " + in + " written to " + out; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr.String(), want)
	}
	empty := filepath.Join(dir, "empty.csv")
	if err := os.WriteFile(empty, []byte("id,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := runMain([]string{"encounter", "--detector", "do365_wcv", "--in", empty}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stdout.String() != encounter.DO365Header+"\n" || !strings.Contains(stderr.String(), "no encounters") {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

// TestEncounterStdoutSaysItIsIncomplete: results streamed to standard
// output cannot be taken back when a later row is bad; stderr says that
// what went out is incomplete and how many results it holds, whole lines
// each. A fault in the header, before anything went out, says only the
// fault.
func TestEncounterStdoutSaysItIsIncomplete(t *testing.T) {
	const header = "id,own_x_m,own_y_m,own_z_m,own_vx_mps,own_vy_mps,own_vz_mps,int_x_m,int_y_m,int_z_m,int_vx_mps,int_vy_mps,int_vz_mps,D_m,H_m,T_s\n"
	var b strings.Builder
	b.WriteString(header)
	for i := range 3000 {
		fmt.Fprintf(&b, "%d,0,0,1000,100,0,0,%d,0,1000,-100,0,0,9260,304.8,300\n", i, 20_000+i)
	}
	b.WriteString("bad,x\n")
	in := filepath.Join(t.TempDir(), "in.csv")
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"encounter", "--in", in}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	rows := strings.Count(stdout.String(), "\n") - 1
	if !strings.HasSuffix(stdout.String(), "\n") || rows <= 0 ||
		!strings.Contains(stderr.String(), fmt.Sprintf("INCOMPLETE: standard output holds the header and the results of the first %d encounters only", rows)) ||
		!strings.Contains(stderr.String(), "line 3002") {
		t.Fatalf("%d rows out; stderr %q", rows, stderr.String())
	}

	if err := os.WriteFile(in, []byte("id,own_x_m\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := runMain([]string{"encounter", "--in", in}, &stdout, &stderr); code != 2 || stdout.Len() != 0 || strings.Contains(stderr.String(), "INCOMPLETE") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// TestEncounterShowsProgress: a long run says now and then on stderr how
// many encounters are done (here after every batch, the interval set to
// nothing), then the total.
func TestEncounterShowsProgress(t *testing.T) {
	defer func(every time.Duration) { encounterProgressEvery = every }(encounterProgressEvery)
	encounterProgressEvery = 0
	in, _ := reference.Encounters(t)
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"encounter", "--in", in}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"1024 encounters so far\n", "2048 encounters so far\n", "3000 encounters so far\n", "3000 encounters from " + in} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q lacks %q", stderr.String(), want)
		}
	}
}

// TestEncounterOutThroughALink: an --out that is a link to a file writes
// the file it names, and the link stays a link; the rename replaced the
// link with a file and left the file it named stale.
func TestEncounterOutThroughALink(t *testing.T) {
	in, _ := reference.DAIDALUSDO365(t)
	dir := t.TempDir()
	file, link := filepath.Join(dir, "real.csv"), filepath.Join(dir, "latest.csv")
	if err := os.WriteFile(file, []byte("old results\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.csv", link); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"encounter", "--detector", "do365_wcv", "--in", in, "--out", link}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link is now %v (%v)", st.Mode(), err)
	}
	if b, err := os.ReadFile(file); err != nil || !strings.HasPrefix(string(b), encounter.DO365Header+"\n") || strings.Count(string(b), "\n") != 401 {
		t.Fatalf("the file the link names holds %.100q (%v)", b, err)
	}
}

// TestEncounterOutKeepsItsPermissions: results written over a file the
// analyst keeps private (0600) stay private; they were made readable by
// all (0644).
func TestEncounterOutKeepsItsPermissions(t *testing.T) {
	in, _ := reference.DAIDALUSDO365(t)
	out := filepath.Join(t.TempDir(), "private.csv")
	if err := os.WriteFile(out, []byte("old results\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"encounter", "--detector", "do365_wcv", "--in", in, "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 || st.Size() < 1000 {
		t.Fatalf("%v, %v", st, err)
	}
}
