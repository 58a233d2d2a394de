package reference

import (
	"fmt"
	"os"
	"path/filepath"
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
