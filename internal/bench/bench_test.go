package bench

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/rules"
)

// The measurements run by hand on large sizes; these runs at small sizes
// keep their plumbing honest. Timings are not asserted, only that every
// part measured something and the checks inside held.

func quiet(string, ...any) {}

func TestHTTPMeasuresIngestAndEveryLatencySample(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server for a few seconds")
	}
	res, err := HTTP(context.Background(), HTTPOptions{Scenario: "global", ObserverAircraft: 20, TracksSamples: 10, NeedToKnowRounds: 1,
		LoadOptions: LoadOptions{Aircraft: 300, Batch: 100, Clients: 2, Duration: time.Second, Samples: 6}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if res.HTTPReportsPerS <= 0 || res.BaselineReportsPerS <= 0 || res.LatencySamples != 6 {
		t.Errorf("result %+v", res)
	}
	// Every encounter raised an alert at both parties' streams, and the
	// coalition sees its 3 + 6 encounters still open at the end.
	if res.IdleP50Ms <= 0 || res.LatencyMaxMs < res.LatencyP50Ms || res.AlertsAtEnd < 9 {
		t.Errorf("result %+v", res)
	}
	// Need to know: the observer sees its own 20 and, of the world's
	// traffic, only what flies near them; without it, everything.
	if res.IngestWithoutNeedToKnowPerS <= 0 || res.NeedToKnowOverWithout <= 0 || res.TracksP99Ms <= 0 || res.TracksCPUMs <= 0 ||
		res.TracksAnswered < 20 || res.TracksWithoutNeedToKnow != 320 || res.TracksAnswered >= res.TracksWithoutNeedToKnow ||
		res.LargePartyTracksAnswered < 150 {
		t.Errorf("need to know figures %+v", res)
	}
}

func TestStartupServesEveryStoredVolume(t *testing.T) {
	res, err := Startup(StartupOptions{Volumes: 150, Runs: 1}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if res.VolumesServed != 150 || res.EmptyStartMs <= 0 || res.FullStartMs <= 0 {
		t.Errorf("result %+v", res)
	}
}

func TestAuditExportsAndVerifiesEveryRecord(t *testing.T) {
	res, err := Audit(AuditOptions{Records: 300, Batch: 50})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExportedRows != 300 || res.ExportMB <= 0 || res.VerifyS <= 0 {
		t.Errorf("result %+v", res)
	}
}

func TestResolutionMeasuresBandsAndIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs servers for a few seconds")
	}
	res, err := Resolution(context.Background(), ResolutionOptions{Scenario: "theatre", Scenes: 20, Intruders: 20, OnDemandEvery: 200 * time.Millisecond,
		LoadOptions: LoadOptions{Aircraft: 300, Batch: 100, Clients: 2, Duration: time.Second, Samples: 1}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if res.BandsCPUP50Us <= 0 || res.GridCPUP50Us <= 0 || res.BandsOverGrid <= 0 || res.MedianReachKm <= 0 {
		t.Errorf("bands figures %+v", res)
	}
	if res.IngestWithPerS <= 0 || res.IngestWithoutPerS <= 0 || res.WithOverWithout <= 0 || res.OnDemand == 0 || res.OpenAlerts == 0 {
		t.Errorf("ingest figures %+v", res)
	}
	// The client went round the open alerts (two phases of 500 ms, a
	// round every 200 ms) and counted the rounds behind among them; how
	// many were behind depends on the machine's speed, which a unit test
	// does not assert (TestResolutionTextSaysWhatWasAsked checks how they
	// are reported).
	if res.OnDemandRounds == 0 || res.OnDemandBehind > res.OnDemandRounds {
		t.Errorf("on-demand rounds %d, %d of them behind", res.OnDemandRounds, res.OnDemandBehind)
	}
	t.Logf("resolutions for events: %.1f/s, %.3f ms each, %d skipped, %d late", res.ResolutionsPerS, res.ResolutionCPUMs, res.ResolutionsSkipped, res.ResolutionsLate)
}

// TestSignedIngestCountsOnlyAcceptedBatches: every batch of both parties
// is accepted whole (a refused report fails the measurement: a bench that
// posted reports ahead of the clock once measured refusals), sequentially
// and from several clients at once.
func TestSignedIngestCountsOnlyAcceptedBatches(t *testing.T) {
	for _, clients := range []int{1, 3} {
		r, err := signedIngest(TrustOptions{SignedBatch: 50, Batches: 30}, clients)
		if err != nil {
			t.Fatalf("%d clients: %v", clients, err)
		}
		if r.unsigned <= 0 || r.signed <= 0 || r.unsignedCPU <= 0 || r.signedCPU <= 0 {
			t.Errorf("%d clients: %+v", clients, r)
		}
	}
}

func TestAppendWithTreeMeasuresBothSides(t *testing.T) {
	// appendWithTree itself fails unless the tree ends holding every record.
	plain, withTree, plainCPU, withTreeCPU, err := appendWithTree(TrustOptions{Records: 1000, Batch: 30})
	if err != nil {
		t.Fatal(err)
	}
	if plain <= 0 || withTree <= 0 || plainCPU <= 0 || withTreeCPU <= 0 {
		t.Errorf("records/s %.0f and %.0f, per CPU second %.0f and %.0f", plain, withTree, plainCPU, withTreeCPU)
	}
}

// TestDeploymentCountsResolutionWork: the figures bench --resolution
// prints of the resolutions for events are the servers' own counts: two
// aircraft of two parties closing head-on raise a conflict whose
// resolution is computed for its events, in some CPU time, and counted.
func TestDeploymentCountsResolutionWork(t *testing.T) {
	ctx := context.Background()
	d, done, err := startOne(ctx, deploymentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	before := d.resolutionWork()
	now := time.Now()
	// 10 km apart on one parallel, closing at 400 m/s: a loss of
	// separation in about 25 s.
	pair := []aircraft{
		{party: "coalition", id: "east", latDeg: 35, lonDeg: 36, altM: 3000, velEastMps: 200},
		{party: "russia", id: "west", latDeg: 35, lonDeg: 36.11, altM: 3000, velEastMps: -200},
	}
	for _, a := range pair {
		if err := post(ctx, d.replica(a.party, 0), batchBody(nil, []aircraft{a}, now)); err != nil {
			t.Fatal(err)
		}
	}
	got := d.resolutionWork().sub(before)
	if got.computed+got.late < 1 {
		t.Fatalf("a conflict raised, resolution work counted %+v", got)
	}
	if got.computed > 0 && got.cpuS <= 0 && runtime.GOOS == "linux" {
		t.Fatalf("resolutions computed in no CPU time: %+v", got)
	}
}

// TestResolutionTextSaysWhatWasAsked: a run without on-demand requests
// says none were asked, rather than "every 0s"; one with them gives their
// count and latency, and both the work of the resolutions for events.
func TestResolutionTextSaysWhatWasAsked(t *testing.T) {
	for _, tc := range []struct {
		res  ResolutionResult
		want string
	}{
		{ResolutionResult{OnDemandEvery: "0s", OpenAlerts: 7, ResolutionsPerS: 12, ResolutionsLate: 3}, "on demand during ingest: none asked (7 open alerts)"},
		{ResolutionResult{OnDemandEvery: "5s", OnDemand: 40, OnDemandP50Ms: 1.5, OnDemandRounds: 2, OpenAlerts: 7, ResolutionsPerS: 12, ResolutionsLate: 3}, "every 5s): 40 resolutions, p50 1.5 ms"},
		{ResolutionResult{OnDemandEvery: "5s", OnDemand: 40, OnDemandP50Ms: 1.5, OnDemandRounds: 3, OnDemandBehind: 2, OpenAlerts: 7, ResolutionsPerS: 12, ResolutionsLate: 3}, "fell behind: 2 of 3 rounds over the open alerts took longer than 5s"},
		{ResolutionResult{OnDemandEvery: "5s", OnDemand: 40, OnDemandP50Ms: 1.5, OnDemandRounds: 2, OnDemandRefused: 9, OnDemandRefusedWaitS: 11, OpenAlerts: 7, ResolutionsPerS: 12, ResolutionsLate: 3}, "refused by the party's budget of resolutions (the default): 9 requests (429), waited 11.0 s"},
	} {
		var b strings.Builder
		if err := tc.res.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), tc.want) || !strings.Contains(b.String(), "12 resolutions/s") || !strings.Contains(b.String(), "3 late") {
			t.Errorf("text\n%s\nwants %q, the resolutions per second and the late ones", b.String(), tc.want)
		}
		if behind := strings.Contains(b.String(), "fell behind"); behind != (tc.res.OnDemandBehind > 0) {
			t.Errorf("text\n%s\nsays the client fell behind: %v, with %d of %d rounds late", b.String(), behind, tc.res.OnDemandBehind, tc.res.OnDemandRounds)
		}
	}
}

// A deployment measures the service, not the limits it puts on a party:
// the rules it runs under agree fleets as large as the rules can, so that
// a bench of --aircraft over two parties (100,000 and up: 50,000 a party,
// the default fleet) is not cut short.
func TestDeploymentLiftsThePartyLimits(t *testing.T) {
	d, done, err := startOne(context.Background(), deploymentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if got := d.services[0].MaxAircraftFor("coalition"); got != rules.MaxAircraftBound {
		t.Errorf("a party of the deployment may fly %d aircraft, want %d", got, rules.MaxAircraftBound)
	}
}
