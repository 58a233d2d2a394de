package airspace

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/testutil/reference"
)

// TestImportDeclaresTheEnclosure: an OpenAir polygon with arcs (TMA NICE,
// whose first DB arc's ends lie 96,084 m and 96,244 m from its centre) is
// declared with its enclosure as the footprint, which holds every vertex of
// the ring as drawn; a volume error about one of its positions names the
// line of the arc that computed it. A polygon without arcs is declared as
// written.
func TestImportDeclaresTheEnclosure(t *testing.T) {
	dir := reference.OpenAir(t)
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	opt := ImportOptions{Start: start, End: start.Add(time.Hour)}
	as, err := parseFile(t, filepath.Join(dir, "arc-cw-ccw.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s := as[0].Shape
	if s.Enclosure == nil {
		t.Fatal("no enclosure for a ring with arcs")
	}
	items := Items(as, opt)
	ring := items[0].Input.Footprint.Coordinates[0]
	if len(ring) != len(s.Enclosure) {
		t.Fatalf("footprint of %d positions, the enclosure has %d", len(ring), len(s.Enclosure))
	}
	for i, p := range ring {
		if p[0] != s.Enclosure[i][0] || p[1] != s.Enclosure[i][1] {
			t.Fatalf("footprint position %d %v, enclosure %v", i, p, s.Enclosure[i])
		}
	}
	loop := s2Loop(s.Enclosure)
	for _, p := range s.Ring {
		if !holds(loop, s.Enclosure, p) {
			t.Fatalf("drawn vertex %v outside the footprint by %.1f m", p, distanceToLineM(p, s.Enclosure))
		}
	}
	// Positions computed on the first DB arc (line 9) and the second (line 14).
	seen := map[int]bool{}
	for i := range ring {
		seen[as[0].LineOf(fmt.Sprintf("footprint.coordinates[0][%d]", i))] = true
	}
	for _, line := range []int{9, 14} {
		if !seen[line] {
			t.Errorf("no footprint position names line %d: %v", line, seen)
		}
	}
	for line := range seen {
		if line < 5 || line > 15 {
			t.Errorf("a footprint position names line %d, outside the outline", line)
		}
	}

	as, err = parseFile(t, filepath.Join(dir, "polygon.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if as[0].Shape.Enclosure != nil {
		t.Fatal("an enclosure for a polygon without arcs")
	}
	items = Items(as, opt)
	if got, want := len(items[0].Input.Footprint.Coordinates[0]), len(as[0].Shape.Ring); got != want {
		t.Fatalf("footprint of %d positions, the ring has %d", got, want)
	}
}

// TestUnlimitedAdvice: a GND-UNL airspace, UNL taken as FL660, is higher
// than the default rules' 15,000 m band; the advice names the AH line, the
// altitude UNL was taken as, the rules' limit and the --unlimited-m that
// imports it. Below the limit, or without UNL, there is no advice; a limit
// error names the AL or AH line.
func TestUnlimitedAdvice(t *testing.T) {
	src := "AC Q\nAN Lampedusa\nAL GND\nAH UNL\nV X=35:31:06 N 012:37:50 E\nDC 1\n" +
		"AC R\nAN Capped\nAL GND\nAH FL100\nV X=35:31:06 N 012:37:50 E\nDC 1\n"
	as, err := ParseOpenAir(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	items := Items(as, ImportOptions{Start: start, End: start.Add(time.Hour)})
	advice := as[0].UnlimitedAdvice(items[0].Input, 15000)
	for _, want := range []string{"UNL (line 4)", "taken as 20116.8 m", "FL660", "max_alt_range_m is 15000 m", "--unlimited-m 15000 or lower"} {
		if !strings.Contains(advice, want) {
			t.Errorf("advice %q lacks %q", advice, want)
		}
	}
	if got := as[0].UnlimitedAdvice(items[0].Input, 25000); got != "" {
		t.Errorf("advice below the limit: %q", got)
	}
	if got := as[1].UnlimitedAdvice(items[1].Input, 1000); got != "" {
		t.Errorf("advice without UNL: %q", got)
	}
	for field, want := range map[string]int{"alt_upper_m": 4, "alt_lower_m": 3, "footprint.radius_m": 1} {
		if got := as[0].LineOf(field); got != want {
			t.Errorf("LineOf(%q) = %d, want %d", field, got, want)
		}
	}
	// With UNL taken at 15,000 m, the band fits.
	items = Items(as, ImportOptions{Start: start, End: start.Add(time.Hour), UnlimitedM: 15000})
	if items[0].Input.AltUpperM != 15000 || as[0].UnlimitedAdvice(items[0].Input, 15000) != "" {
		t.Errorf("--unlimited-m 15000: upper %v", items[0].Input.AltUpperM)
	}
}
