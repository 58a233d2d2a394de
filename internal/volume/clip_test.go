package volume

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
)

// TestClippedToShowsOnlyWhereTheProbeMeets: another party's volume, as a
// probe's answer shows it to a party that may not see it, keeps its
// ref, state and priority, takes the probe's footprint, and its band and
// window cut to the probe's grown by the reach of the conflict test (the
// vertical separation, two time buffers); its details and its own shape
// are gone.
func TestClippedToShowsOnlyWhereTheProbeMeets(t *testing.T) {
	rl := rules.Default()
	t0 := time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)
	hidden := mkVol(t, "h", "russia", input(regular(35, 37, 30_000, 7, 0.3), 4000, 9000, t0, t0.Add(5*time.Hour)))
	hidden.Details = json.RawMessage(`{"mission":"secret"}`)
	hidden.Priority = 1
	probe := input(circle(35, 37, 1000), 6000, 6500, t0.Add(2*time.Hour), t0.Add(3*time.Hour))
	c := hidden.ClippedTo(probe, rl)
	if !c.Clipped || c.ID != "h" || c.Party != "russia" || c.Version != hidden.Version || c.State != hidden.State || c.Priority != 1 {
		t.Fatalf("clipped: %+v", c)
	}
	if len(c.Details) != 0 || len(c.Conflicts) != 0 {
		t.Fatalf("clipped keeps details %s or conflicts %v", c.Details, c.Conflicts)
	}
	got, _ := json.Marshal(c.Footprint)
	want, _ := json.Marshal(probe.Footprint)
	if string(got) != string(want) {
		t.Fatalf("footprint %s, want the probe's %s", got, want)
	}
	if c.AltLowerM != 6000-rl.VerticalSepM || c.AltUpperM != 6500+rl.VerticalSepM {
		t.Fatalf("band %g-%g, want the probe's grown by the separation", c.AltLowerM, c.AltUpperM)
	}
	reach := 2 * time.Duration(rl.TimeBufferS*float64(time.Second))
	if !c.Start.Equal(probe.Start.Add(-reach)) || !c.End.Equal(probe.End.Add(reach)) {
		t.Fatalf("window %s-%s, want the probe's grown by two time buffers", c.Start, c.End)
	}
	// Where the hidden volume ends within the reach, its own edge shows.
	edge := input(circle(35, 37, 1000), 8800, 9500, t0.Add(4*time.Hour+30*time.Minute), t0.Add(6*time.Hour))
	c = hidden.ClippedTo(edge, rl)
	if c.AltLowerM != 8800-rl.VerticalSepM || c.AltUpperM != 9000 || !c.Start.Equal(edge.Start.Add(-reach)) || !c.End.Equal(hidden.End) {
		t.Fatalf("at the edge: band %g-%g window %s-%s", c.AltLowerM, c.AltUpperM, c.Start, c.End)
	}
	// The stored volume is unchanged.
	if hidden.AltLowerM != 4000 || len(hidden.Details) == 0 || hidden.Clipped {
		t.Fatalf("the volume itself changed: %+v", hidden)
	}
}
