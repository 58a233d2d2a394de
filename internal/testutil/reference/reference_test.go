package reference

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a test that notes how it would end instead of ending.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	if r.fatal == "" {
		r.fatal = fmt.Sprint(args...)
	}
}
func (r *recorder) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }
func (r *recorder) Skip(args ...any)                  { r.skip = fmt.Sprint(args...) }
func (r *recorder) Skipf(format string, args ...any)  { r.Skip(fmt.Sprintf(format, args...)) }
func (r *recorder) SkipNow()                          { r.skip = "SkipNow" }

// Without ../shared beside the clone, every test that needs the reference
// data fails: a skipped check passes unseen in CI.
func TestMissingReferenceFails(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "clone")
	if err := os.MkdirAll(repo, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(repo)
	for name, get := range map[string]func(testing.TB){
		"Encounters":        func(tb testing.TB) { Encounters(tb) },
		"OpenAir":           func(tb testing.TB) { OpenAir(tb) },
		"DAIDALUSDO365":     func(tb testing.TB) { DAIDALUSDO365(tb) },
		"ASTERIX":           func(tb testing.TB) { ASTERIX(tb) },
		"ASTERIXRecordings": func(tb testing.TB) { ASTERIXRecordings(tb) },
		"ReadFile": func(tb testing.TB) {
			ReadFile(tb, filepath.Join("..", "shared", "reference", "asterix", "fj_cat062.ast"))
		},
	} {
		r := &recorder{TB: t}
		get(r)
		if r.skip != "" || r.fatal == "" {
			t.Errorf("%s without ../shared: skipped %q, failed %q; want a failure", name, r.skip, r.fatal)
		}
	}
}

// With ../shared in place the helpers find the data.
func TestReferencePresent(t *testing.T) {
	r := &recorder{TB: t}
	in, expected := Encounters(r)
	OpenAir(r)
	ReadFile(r, filepath.Join(ASTERIX(r), "fj_cat062.ast"))
	ASTERIXRecordings(r)
	if r.fatal != "" || r.skip != "" {
		t.Fatalf("the reference of ../shared: %s%s", r.fatal, r.skip)
	}
	for _, p := range []string{in, expected} {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestComparisonsCannotPassEmpty: a comparison of no rows (an output and a
// reference both cut to their header, as when a run read nothing), or one
// where most rows are excepted as boundary sensitive, fails: it would
// check nothing and pass.
func TestComparisonsCannotPassEmpty(t *testing.T) {
	const results = "id,conflict,t_in_s,t_out_s,t_cpa_s,d_h_cpa_m,d_v_cpa_m\n"
	const do365 = "id,corrective_conflict,corrective_t_in_s,corrective_t_out_s,preventive_conflict,preventive_t_in_s,preventive_t_out_s,alert_level\n"
	const row = "a,0,,,0,,,0\n"
	all := map[string]bool{"a": true, "b": true}
	for name, compare := range map[string]func(testing.TB){
		"CompareResults, no rows": func(tb testing.TB) { CompareResults(tb, results, results+"\r\n", 1e-3) },
		"CompareDO365, no rows":   func(tb testing.TB) { CompareDO365(tb, do365, do365, 1e-3, nil) },
		"CompareDO365, every row excepted": func(tb testing.TB) {
			CompareDO365(tb, do365+row+"b,1,0.000000,1.000000,1,0.000000,1.000000,3\n", do365+row+"b,0,,,0,,,0\n", 1e-3, all)
		},
		"CompareDO365Bands, every row excepted": func(tb testing.TB) {
			_, expected := DAIDALUSDO365(tb)
			want := string(ReadFile(tb, expected))
			ids := map[string]bool{}
			for _, l := range strings.Split(strings.TrimSpace(want), "\n")[1:] {
				id, _, _ := strings.Cut(l, ",")
				ids[id] = true
			}
			// DAIDALUS's own bands, which agree: only the exceptions fail.
			CompareDO365Bands(tb, want, ids)
		},
	} {
		r := &recorder{TB: t}
		compare(r)
		if want := map[bool]string{true: "either way", false: "no rows"}[strings.Contains(name, "excepted")]; !strings.Contains(r.fatal, want) {
			t.Errorf("%s: failed with %q, want a failure saying %q", name, r.fatal, want)
		}
	}
	// The same comparisons with rows and few exceptions pass.
	r := &recorder{TB: t}
	CompareDO365(r, do365+row+"b,1,0.000000,1.000000,1,0.000000,1.000000,3\n", do365+row+"b,1,0.000000,1.000000,1,0.000000,1.000000,3\n", 1e-3, map[string]bool{"x": true})
	if r.fatal != "" {
		t.Errorf("equal rows: %s", r.fatal)
	}
}
