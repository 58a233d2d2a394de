package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/testutil/reference"
)

// TestASTERIXFeedMeasuresBoth: on the reference recording (7 system tracks
// in one block), every round measures the server's ingest, the feed into
// it and the feed into a sink, and the feed delivers every report.
func TestASTERIXFeedMeasuresBoth(t *testing.T) {
	rec := filepath.Join(reference.ASTERIX(t), "fj_cat062.ast")
	res, err := ASTERIXFeed(context.Background(), ASTERIXFeedOptions{Recording: rec, Clients: 2, Rounds: 2, Duration: 300 * time.Millisecond}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reports != 7 || res.Aircraft != 7 || res.Framing != "raw" || res.FeedUndeliverable != 0 {
		t.Fatalf("result %+v", res)
	}
	for _, runs := range [][]float64{res.ServerIngestRuns, res.FeedDeliveredRuns, res.FeedOfferedRuns} {
		if len(runs) != 2 || runs[0] <= 0 || runs[1] <= 0 {
			t.Fatalf("runs %v in %+v", runs, res)
		}
	}
	if res.FeedOverServer <= 0 || res.OfferedOverServer <= 0 || res.ServerIngestPerCPUS <= 0 || res.FeedDeliveredPerCPU <= 0 {
		t.Fatalf("result %+v", res)
	}
	if _, err := ASTERIXFeed(context.Background(), ASTERIXFeedOptions{Recording: filepath.Join(t.TempDir(), "none"), Clients: 1, Rounds: 1, Duration: time.Millisecond}, quiet); !os.IsNotExist(err) {
		t.Fatalf("a missing recording: %v", err)
	}
}

// TestPreparedBody: a batch encoded once and stamped at each send is the
// batch encoding/json writes, report i at t0 plus i microseconds.
func TestPreparedBody(t *testing.T) {
	reports := []client.Report{
		{Aircraft: "406EC8", Callsign: "BCS4907", LatDeg: 45.5, LonDeg: 9.25, AltM: 10000, AltSource: "geometric", VelEastMps: 200, VelNorthMps: -10},
		{Aircraft: `odd "id" \ é`, LatDeg: -1, LonDeg: -2, AltM: 3, VelUpMps: 5},
	}
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	body := prepare(reports).body(nil, t0)
	var got struct {
		Reports []client.Report `json:"reports"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(got.Reports) != len(reports) {
		t.Fatalf("%d reports: %s", len(got.Reports), body)
	}
	for i, r := range reports {
		r.Time = t0.Add(time.Duration(i) * time.Microsecond)
		if g := got.Reports[i]; g != r {
			t.Errorf("report %d: %+v, want %+v", i, g, r)
		}
	}
}
