package airspace

import (
	"fmt"
	"path/filepath"
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
