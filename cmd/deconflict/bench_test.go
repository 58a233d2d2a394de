package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/testutil/reference"
)

// The bench modes are measured by hand on large sizes; these runs at small
// sizes keep their plumbing honest: the JSON they print has the fields the
// issue names, and the exactness checks inside them hold.
func TestBenchAirspaceReportsIdenticalConflictSets(t *testing.T) {
	for _, scenario := range []string{"global", "theatre", "metro"} {
		var out, errOut bytes.Buffer
		// 400 aircraft over the 300 hubs of the full-size global scenario
		// meet nobody: 5 hubs keep the density of the full size (N/83), so
		// that "identical" compares conflict sets that are not empty.
		code := runMain([]string{"bench", "--scenario", scenario, "--aircraft", "400", "--hubs", "5",
			"--updates", "10", "--repeats", "1", "--brute-force-samples", "1", "--json"}, &out, &errOut)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", scenario, code, errOut.String())
		}
		var got map[string]any
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatalf("%s: output is not one JSON object: %v\n%s", scenario, err, out.String())
		}
		for _, field := range []string{"scenario", "aircraft", "reports", "conflicts", "full_cycle_ms",
			"brute_force_ms", "speedup", "update_p50_us", "update_p99_us", "identical"} {
			if _, ok := got[field]; !ok {
				t.Errorf("%s: no %q in %s", scenario, field, out.String())
			}
		}
		if c, _ := got["conflicts"].(float64); c < 1 {
			t.Errorf("%s: %v conflicts: identical sets of nothing prove nothing: %s", scenario, got["conflicts"], out.String())
		}
		if got["identical"] != true || got["compared_with_brute_force"] != true {
			t.Errorf("%s: the engine's conflict set differs from brute force, or was not compared: %s", scenario, out.String())
		}
		if got["scenario"] != scenario || got["aircraft"] != float64(400) {
			t.Errorf("%s: echoed the wrong run: %s", scenario, out.String())
		}
		// The class mix and each used entry's grid: metro flies 400
		// drones among its 200 manned aircraft, identical above over
		// the three entries of the table.
		classes, _ := got["classes"].(map[string]any)
		grids, _ := got["grids"].([]any)
		wantClasses, wantGrids := map[string]any{"manned": float64(400)}, 1
		if scenario == "metro" {
			wantClasses, wantGrids = map[string]any{"manned": float64(200), "uas": float64(400)}, 3
		}
		if !reflect.DeepEqual(classes, wantClasses) || len(grids) != wantGrids {
			t.Errorf("%s: classes %v and grids %v, want %v and %d grids", scenario, classes, grids, wantClasses, wantGrids)
		}
	}
}

// TestBenchAirspaceSkipsTheBruteForceAndSaysSo: --skip-brute-force leaves
// the comparison out and the result says it was not compared, never that
// the sets are identical.
func TestBenchAirspaceSkipsTheBruteForceAndSaysSo(t *testing.T) {
	var out, errOut bytes.Buffer
	code := runMain([]string{"bench", "--scenario", "global", "--aircraft", "400", "--hubs", "5",
		"--updates", "10", "--repeats", "1", "--skip-brute-force"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "not compared") || strings.Contains(out.String(), "brute force, measured once") ||
		strings.Contains(errOut.String(), "brute force 1/") {
		t.Errorf("a run without the brute force:\n%s\n%s", out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	code = runMain([]string{"bench", "--aircraft", "400", "--skip-brute-force", "--brute-force-samples", "2"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "exclude each other") {
		t.Errorf("--skip-brute-force with --brute-force-samples 2: exit %d, %s", code, errOut.String())
	}
}

func TestBenchVolumesFindsNoUnannouncedConflict(t *testing.T) {
	var out, errOut bytes.Buffer
	code := runMain([]string{"bench", "--volumes", "2000", "--writers", "2", "--seconds", "1", "--json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var got struct {
		Check struct {
			Volumes    int `json:"volumes"`
			Mismatches int `json:"mismatches"`
		} `json:"check"`
		Dense struct {
			Writes       int `json:"writes"`
			Unannounced  int `json:"unannounced_conflicts"`
			ConflictPair int `json:"conflict_pairs"`
		} `json:"dense"`
	}
	if err := json.NewDecoder(strings.NewReader(out.String())).Decode(&got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if got.Check.Volumes != 2000 || got.Check.Mismatches != 0 {
		t.Errorf("index and scan disagree, or wrong size: %+v", got.Check)
	}
	if got.Dense.Writes == 0 || got.Dense.Unannounced != 0 {
		t.Errorf("dense writes: %+v", got.Dense)
	}
}

// bench --asterix-feed prints the server's ingest, the feed's delivery and
// their ratio; without a recording it is a usage error.
func TestBenchASTERIXFeed(t *testing.T) {
	var out, errOut bytes.Buffer
	rec := filepath.Join(reference.ASTERIX(t), "fj_cat062.ast")
	code := runMain([]string{"bench", "--asterix-feed", "--recording", rec, "--rounds", "1", "--duration", "200ms", "--json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var got struct {
		Server float64 `json:"server_ingest_reports_per_s"`
		Feed   float64 `json:"feed_delivered_reports_per_s"`
		Ratio  float64 `json:"feed_over_server"`
		Load   string  `json:"load_average"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Server <= 0 || got.Feed <= 0 || got.Ratio <= 0 || got.Load == "" {
		t.Fatalf("%v: %s", err, out.String())
	}
	if code := runMain([]string{"bench", "--asterix-feed"}, &out, &errOut); code != 2 {
		t.Errorf("no recording: exit %d", code)
	}
}
