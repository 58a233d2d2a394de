package service

import (
	"testing"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/party"
)

// TestRelayedChunkKeepsWhatTheEngineTakes: a chunk relayed by another
// replica holds one report this replica's engine refuses (a class its
// rules do not know: a change of the rules reaches the replicas one after
// the other). The others are applied (a conflict among them is raised),
// and the one refused is not shown to any party; the whole chunk was lost
// to detection, and every report of it, the refused one too, disclosed.
func TestRelayedChunkKeepsWhatTheEngineTakes(t *testing.T) {
	p := newReplicaPair(t)
	c, r := headOnPair(p.clock.now())
	unknown := reportOf("russia", r)
	unknown.Aircraft, unknown.Class = "X9", "zeppelin"
	unknown.Pos.LonDeg = c.LonDeg + 0.01
	p.relay(t, 0, reportOf("coalition", c), unknown, reportOf("russia", r))
	if got := alertEvents(t, p.st); len(got) != 1 {
		t.Fatalf("the leader wrote %v for the relayed conflict, want one raise", got)
	}
	seen := map[string]bool{}
	for _, tr := range p.svc[0].Tracks(party.Principal{Party: "coalition"}, detect.World) {
		seen[tr.Aircraft] = true
	}
	if !seen["R1"] || seen["X9"] {
		t.Fatalf("coalition sees %v, want R1 and not X9 (refused by detection)", seen)
	}
}
