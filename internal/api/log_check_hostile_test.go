package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/logcheck"
	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/witness"
)

// rulesServed is the log as the party sees it, but for GET /v1/rules,
// whose witness_max_age_s is served as maxAgeS (the operator is not
// trusted by the party that checks it).
func (l *witnessedLog) rulesServed(t *testing.T, maxAgeS float64) *httptest.Server {
	t.Helper()
	target, _ := url.Parse(l.e.srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = l.e.srv.Client().Transport
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/rules" {
			var rules map[string]any
			l.e.mustDo("GET", "/v1/rules", l.e.tokens["coalition"], nil, 200, &rules)
			rules["witness_max_age_s"] = maxAgeS
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(rules)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return front
}

// TestWitnessCheckTakesNoMaxAgeBeyondTheRulesBound: the log stops
// pushing to the party's witness (it shows the party a record that no
// longer grows, or an older copy) and serves the rules with a
// witness_max_age_s of 9e9 s, which no agreed rules can hold (a day at
// most). Two days later the party's check must be STALE: it took the
// served age as it came, and never reported the log.
func TestWitnessCheckTakesNoMaxAgeBeyondTheRulesBound(t *testing.T) {
	l := newWitnessedLog(t)
	ctx := context.Background()
	checker := l.checker(l.rulesServed(t, 9e9))
	if _, err := checker.Check(ctx); err != nil {
		t.Fatalf("first check: %v", err)
	}
	l.down.Store(true)
	checker.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
	_, err := checker.Check(ctx)
	var f *logcheck.Finding
	if !errors.As(err, &f) || f.Kind != logcheck.Stale {
		t.Fatalf("no cosignature for two days, the server serving witness_max_age_s 9e9: %v, want a STALE finding", err)
	}
}

// TestWitnessCheckFindingShowsNoControlCharacters: what the server answers
// ends up in the party's finding, which the check prints on the party's
// terminal, keeps for its witness and the witness serves to the log. An
// operator answering a proof with a refusal whose text holds a terminal
// escape, a carriage return and "OK: ..." and a bidi override must not
// make the finding read otherwise than it is: the finding, the withheld
// file and the witness's answer hold none of those characters.
func TestWitnessCheckFindingShowsNoControlCharacters(t *testing.T) {
	l := newWitnessedLog(t)
	ctx := context.Background()
	const hostile = "\x1b[2K\rOK: checkpoint of size 9 verified \u202egnihton\u202c"
	checker := l.checker(l.proofsAnswered(t, func(w http.ResponseWriter) {
		http.Error(w, hostile, http.StatusNotFound)
	}))
	first, err := checker.Check(ctx)
	if err != nil {
		t.Fatalf("before the push: %v", err)
	}
	l.write("t")
	published := l.pushHeld(t, first.Size)
	_, err = checker.Check(ctx)
	l.letGo()
	if perr := <-published; perr != nil {
		t.Fatal(perr)
	}
	var f *logcheck.Finding
	if !errors.As(err, &f) || f.Kind != logcheck.Inconsistent {
		t.Fatalf("the log refusing to prove its older checkpoint: %v, want an INCONSISTENT finding", err)
	}
	if !strings.Contains(f.Error(), "OK: checkpoint of size 9") {
		t.Fatalf("the finding %q does not show what the server answered", f.Error())
	}
	if perr := printable.Check(f.Error()); perr != nil {
		t.Errorf("the finding %q %v", f.Error(), perr)
	}
	withheld, err := os.ReadFile(filepath.Join(l.wdir, witness.WithheldFile))
	if err != nil {
		t.Fatal(err)
	}
	if perr := printable.Check(strings.TrimSuffix(string(withheld), "\n")); perr != nil {
		t.Errorf("the finding kept for the witness %q %v", withheld, perr)
	}
}
