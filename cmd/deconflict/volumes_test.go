package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/airspace"
	"github.com/deconflict/deconflict/internal/api"
	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/service"
	"github.com/deconflict/deconflict/internal/store/sqlite"
	"github.com/deconflict/deconflict/internal/testutil/reference"
	"github.com/deconflict/deconflict/internal/volume"
)

// apiServer runs the real API on a fresh embedded store and returns its URL
// and a token file with the parties' tokens.
func apiServer(t *testing.T, parties ...string) (string, string) {
	t.Helper()
	url, tokens, _ := apiServerWith(t, api.Options{}, parties...)
	return url, tokens
}

// apiServerWith is apiServer with the API's options opt; it returns the
// service too.
func apiServerWith(t *testing.T, opt api.Options, parties ...string) (string, string, *service.Service) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(ctx, service.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHandler(svc, opt))
	t.Cleanup(func() {
		svc.EndStreams()
		srv.Close()
		_ = svc.Close(context.Background())
		st.Close()
	})
	var lines []string
	for _, name := range parties {
		tok, err := svc.AddParty(ctx, party.Principal{Party: "operator", Operator: true}, name)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, name+" "+tok)
	}
	return srv.URL, writeFile(t, "tokens", strings.Join(lines, "\n")+"\n"), svc
}

// TestVolumesImportOpenAIPFiles imports openAIP's OpenAir test files: the
// valid ones are declared (same count as the parser reads), the invalid
// ones refused naming the line; a second import of the same file reports
// the conflicts with what the other party declared; export gives back the
// volumes in every format.
func TestVolumesImportOpenAIPFiles(t *testing.T) {
	dir := reference.OpenAir(t)
	url, tokens := apiServer(t, "coalition", "russia")
	start := time.Now().UTC().Truncate(time.Second)
	end := start.Add(2 * time.Hour)
	run := func(party string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		args = append(args, "--party", party, "--server", url, "--token-file", tokens)
		err := runVolumes(args, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	window := []string{"--start", start.Format(time.RFC3339), "--end", end.Format(time.RFC3339)}

	out, err := run("coalition", append([]string{"import", "--openair", "--file", filepath.Join(dir, "arc-cw.txt")}, window...)...)
	if err != nil || !strings.Contains(out, "ED-R56 Kummersdorf MON-FRI") || !strings.Contains(out, "1 items: 1 declared") {
		t.Fatalf("arc-cw: %v\n%s", err, out)
	}
	// The same airspace declared by the other party conflicts; a dry run
	// says so without declaring.
	out, err = run("russia", append([]string{"import", "--openair", "--dry-run", "--file", filepath.Join(dir, "arc-cw.txt")}, window...)...)
	if err == nil || !strings.Contains(out, "conflicting") || !strings.Contains(out, "with coalition's ") {
		t.Fatalf("conflicting dry run: %v\n%s", err, out)
	}
	// With its alternatives: the band moved up or down, the window later.
	if !strings.Contains(out, "; alternative ") || !strings.Contains(out, start.Add(2*time.Hour+2*time.Minute).Format(time.RFC3339)) {
		t.Fatalf("the conflicting item lacks its alternatives:\n%s", out)
	}
	// The invalid files are refused with the line at fault.
	for name, line := range map[string]string{
		"circular-invalid.txt":                  "line 11",
		"ceiling-definitions-al-greater-ah.txt": "line 10",
		"invalid-coordinates.txt":               "line 14",
		"start-end-coordinates-not-equal.txt":   "line 2",
	} {
		out, err := run("coalition", append([]string{"import", "--openair", "--file", filepath.Join(dir, name)}, window...)...)
		if err == nil || !strings.Contains(out, line+" ") || !strings.Contains(out, "refused") {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
	// The activation times of the extended format become the windows: of
	// the four, two lie in the first day of 2025, the one open at its start
	// is cut to that day, the one starting in March is outside it.
	out, err = run("coalition", "import", "--openair", "--dry-run", "--file", filepath.Join(dir, "activation-times.txt"),
		"--start", "2025-01-01T00:00:00Z", "--end", "2025-01-02T00:00:00Z")
	if err != nil || !strings.Contains(out, "3 items: 3 would declare") {
		t.Fatalf("activation times: %v\n%s", err, out)
	}
	// Without a window, an airspace without activation times is refused.
	out, err = run("coalition", "import", "--openair", "--file", filepath.Join(dir, "polygon.txt"))
	if err == nil || !strings.Contains(out, "--start") {
		t.Fatalf("no window: %v\n%s", err, out)
	}

	// Export: GeoJSON, KML and OpenAir of what coalition sees.
	for _, f := range []string{"geojson", "kml", "openair"} {
		path := filepath.Join(t.TempDir(), "out."+f)
		if out, err := run("coalition", "export", "--format", f, "--out", path); err != nil {
			t.Fatalf("export %s: %v\n%s", f, err, out)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var as []airspace.Airspace
		switch f {
		case "geojson":
			as, err = airspace.ReadGeoJSON(data)
		case "openair":
			as, err = airspace.ParseOpenAir(bytes.NewReader(data))
		default:
			if !bytes.Contains(data, []byte("ED-R56")) && !bytes.Contains(data, []byte("<Placemark>")) {
				t.Fatalf("kml without the volume:\n%s", data)
			}
			continue
		}
		if err != nil || len(as) != 1 || airspace.FirstError(as) != nil {
			t.Fatalf("export %s read back: %v %+v", f, err, as)
		}
	}
	// The GeoJSON export imports again (as another party: it conflicts).
	path := filepath.Join(t.TempDir(), "export.geojson")
	if _, err := run("coalition", "export", "--format", "geojson", "--out", path); err != nil {
		t.Fatal(err)
	}
	out, err = run("russia", "import", "--geojson", "--dry-run", "--file", path)
	if err == nil || !strings.Contains(out, "feature 0") || !strings.Contains(out, "conflicting") {
		t.Fatalf("geojson round trip: %v\n%s", err, out)
	}
	if _, err := run("coalition", "import", "--file", path); err == nil {
		t.Fatal("an import without --geojson or --openair was accepted")
	}
}

// TestVolumesImportUnlimited: openAIP's GND-UNL test airspace is refused
// under the default rules, the report naming the AH line, the rules' band
// limit and the --unlimited-m that imports it; with that flag it is
// declared up to that altitude.
func TestVolumesImportUnlimited(t *testing.T) {
	file := filepath.Join(reference.OpenAir(t), "laser-beam.txt") // AL GND, AH UNL
	url, tokens := apiServer(t, "coalition")
	start := time.Now().UTC().Truncate(time.Second)
	args := []string{"import", "--openair", "--file", file, "--start", start.Format(time.RFC3339),
		"--end", start.Add(time.Hour).Format(time.RFC3339), "--party", "coalition", "--server", url, "--token-file", tokens}
	var out bytes.Buffer
	err := runVolumes(args, &out, &out)
	if err == nil || !strings.Contains(out.String(), "line 4 ") || !strings.Contains(out.String(), "refused") ||
		!strings.Contains(out.String(), "max_alt_range_m is 15000 m") || !strings.Contains(out.String(), "--unlimited-m 15000 or lower") {
		t.Fatalf("GND-UNL under the default rules: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := runVolumes(append(args, "--unlimited-m", "15000"), &out, &out); err != nil || !strings.Contains(out.String(), "1 items: 1 declared") {
		t.Fatalf("GND-UNL with --unlimited-m 15000: %v\n%s", err, out.String())
	}
}

// TestVolumesImportWaitsOutTheRateLimit: against a server that lets a
// party one request now and then, an import is refused with 429 and
// Retry-After again and again; it waits each out and goes on, and
// declares every airspace of the file exactly once. It used to stop at
// the first 429 with the rest undeclared, and importing the file again
// declared the first ones twice.
func TestVolumesImportWaitsOutTheRateLimit(t *testing.T) {
	url, tokens, svc := apiServerWith(t, api.Options{RatePerSecond: 2, RateBurst: 1}, "coalition")
	const airspaces = 3
	var file strings.Builder
	for i := range airspaces {
		fmt.Fprintf(&file, "AC R\nAN C%d\nAL GND\nAH FL100\nV X=%02d:00:00 N 013:00:00 E\nDC 1\n", i, 10+i)
	}
	path := writeFile(t, "circles.txt", file.String())
	start := time.Now().UTC().Truncate(time.Second)
	var out, errOut bytes.Buffer
	err := runVolumes([]string{"import", "--openair", "--file", path, "--start", start.Format(time.RFC3339),
		"--end", start.Add(time.Hour).Format(time.RFC3339), "--party", "coalition", "--server", url, "--token-file", tokens}, &out, &errOut)
	if err != nil || !strings.Contains(out.String(), fmt.Sprintf("%d items: %d declared", airspaces, airspaces)) {
		t.Fatalf("import at a tiny request rate: %v\n%s%s", err, out.String(), errOut.String())
	}
	// The declarations themselves waited (their lines say so).
	if !regexp.MustCompile(`(?m)^line \d+: .*429.*Retry-After`).MatchString(errOut.String()) {
		t.Fatalf("no declaration met a 429 (the test's rate is not tiny enough):\n%s", errOut.String())
	}
	// Once each.
	vs, err := svc.QueryVolumes(party.Principal{Party: "coalition"}, nil, volume.Extent{LowerM: -1e6, UpperM: 1e6, From: start.Add(-time.Hour), To: start.Add(2 * time.Hour)})
	if err != nil || len(vs) != airspaces {
		t.Fatalf("after the import: %d volumes (%v), want %d", len(vs), err, airspaces)
	}
}

// TestVolumesImportSaysAlternativesWereNotSearched: when the party's
// budget of searches of alternatives does not hold a search, the server
// answers a conflicting item without alternatives and says why; the
// import says they were not searched, not that there are none. A search
// reserves what it may cost among the volumes near it: the budget (its
// least burst, the reading of a 1 MiB body) holds the search near one
// volume, not the one among 41 stacked (1,140,288 checks).
func TestVolumesImportSaysAlternativesWereNotSearched(t *testing.T) {
	url, tokens, _ := apiServerWith(t, api.Options{AlternativesChecksPerSecond: 0.001, AlternativesChecksBurst: 1}, "coalition", "russia")
	var file strings.Builder
	fmt.Fprintf(&file, "AC R\nAN C0\nAL GND\nAH FL100\nV X=10:00:00 N 013:00:00 E\nDC 1\n")
	for i := range 41 {
		fmt.Fprintf(&file, "AC R\nAN S%d\nAL FL%d\nAH FL%d\nV X=11:00:00 N 013:00:00 E\nDC 1\n", i, 10+10*i, 15+10*i)
	}
	coalition := writeFile(t, "coalition.txt", file.String())
	file.Reset()
	fmt.Fprintf(&file, "AC R\nAN R0\nAL GND\nAH FL100\nV X=10:00:00 N 013:00:00 E\nDC 1\n")
	fmt.Fprintf(&file, "AC R\nAN R1\nAL GND\nAH FL100\nV X=11:00:00 N 013:00:00 E\nDC 1\n")
	russia := writeFile(t, "russia.txt", file.String())
	start := time.Now().UTC().Truncate(time.Second)
	run := func(party, path string, args ...string) string {
		var out, errOut bytes.Buffer
		_ = runVolumes(append([]string{"import", "--openair", "--file", path, "--start", start.Format(time.RFC3339),
			"--end", start.Add(time.Hour).Format(time.RFC3339), "--party", party, "--server", url, "--token-file", tokens}, args...), &out, &errOut)
		return out.String() + errOut.String()
	}
	if out := run("coalition", coalition); !strings.Contains(out, "42 items: 42 declared") {
		t.Fatalf("coalition's import:\n%s", out)
	}
	out := run("russia", russia, "--dry-run")
	if strings.Count(out, "; alternative ") == 0 || strings.Count(out, "alternatives not searched (budget") != 1 {
		t.Fatalf("russia's dry run, its budget holding the search near one volume, not the one among 41: want one item with alternatives and one saying they were not searched:\n%s", out)
	}
}

// TestVolumesImportWaitIsBounded: a server (hostile, or a proxy gone
// wrong) asking with 429 to wait a day, or refusing every send again after
// a second, does not keep the import waiting for ever: it stops with the
// 429 once the server asks for more than it waits in all. It used to sleep
// whatever Retry-After said, and send again without end. (The contexts'
// deadlines only stop the test should the import wait: they are far
// beyond what it takes.)
func TestVolumesImportWaitIsBounded(t *testing.T) {
	refused := func(retryAfter time.Duration) error {
		return &client.Problem{Status: http.StatusTooManyRequests, Title: "Too many requests", RetryAfter: retryAfter}
	}
	t.Run("a day", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sends := 0
		err := waitOut429(ctx, io.Discard, "preview", func() error { sends++; return refused(24 * time.Hour) })
		var p *client.Problem
		if sends != 1 || ctx.Err() != nil || !errors.As(err, &p) || p.Status != http.StatusTooManyRequests {
			t.Fatalf("Retry-After of a day: %d sends, %v (ctx %v), want one send and its 429 at once", sends, err, ctx.Err())
		}
	})
	t.Run("again and again", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sends := 0
		err := waitOut429Within(ctx, io.Discard, "line 1", 2*time.Second, func() error { sends++; return refused(time.Second) })
		var p *client.Problem
		if sends != 3 || ctx.Err() != nil || !errors.As(err, &p) || p.Status != http.StatusTooManyRequests {
			t.Fatalf("refused every time, Retry-After 1 s, 2 s waited at most: %d sends, %v (ctx %v), want 3 and the 429", sends, err, ctx.Err())
		}
	})
}
