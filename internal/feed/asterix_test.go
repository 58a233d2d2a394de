package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/asterix"
	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/testutil/reference"
	"github.com/deconflict/deconflict/internal/track"
	"pgregory.net/rapid"
)

// asterixRef reads the ASTERIX reference recording.
func asterixRef(t testing.TB) []byte {
	t.Helper()
	return reference.ReadFile(t, filepath.Join(reference.ASTERIX(t), "fj_cat062.ast"))
}

// asterixRecording reads one of the real ASTERIX recordings.
func asterixRecording(t testing.TB, name string) []byte {
	t.Helper()
	return reference.ReadFile(t, filepath.Join(reference.ASTERIXRecordings(t), name))
}

// replayAll replays a recording as fast as possible on a fake clock and
// returns the reports.
func replayAll(t *testing.T, d *ASTERIXDecoder, data []byte) []client.Report {
	t.Helper()
	fr, _, err := asterix.NewFrameReader(bytes.NewReader(data), asterix.FramingAuto)
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	pacer := &Pacer{Speed: 1, Now: func() time.Time { return wall },
		Sleep: func(_ context.Context, d time.Duration) error { wall = wall.Add(d); return nil }}
	out := make(chan client.Report, 1<<20)
	if err := d.Replay(context.Background(), fr, pacer, out); err != nil {
		t.Fatal(err)
	}
	close(out)
	var reps []client.Report
	for r := range out {
		reps = append(reps, r)
	}
	return reps
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestASTERIXReferenceReports: the seven system tracks of the reference
// recording become seven reports with the values of its expected CSV in SI
// units, the geometric altitude, and the ICAO address (or the track number
// for the track without one).
func TestASTERIXReferenceReports(t *testing.T) {
	d := NewASTERIXDecoder(nil)
	reps := replayAll(t, d, asterixRef(t))
	if len(reps) != 7 {
		t.Fatalf("%d reports: %s", len(reps), d)
	}
	first := reps[0]
	if first.Aircraft != "406EC8" || first.Callsign != "BCS4907" || first.AltSource != AltGeometric ||
		!near(first.LatDeg, 49.280285239219666, 1e-12) || !near(first.LonDeg, 6.495441198348999, 1e-12) ||
		!near(first.AltM, geo.FeetToM(26287.5), 1e-9) || first.VelEastMps != -104 || first.VelNorthMps != 197 || first.VelUpMps != 0 {
		t.Errorf("first report %+v", first)
	}
	if reps[4].Aircraft != "TRK062-6-128-6077" || reps[4].Callsign != "" {
		t.Errorf("track without address: %+v", reps[4])
	}
	if !near(reps[6].VelUpMps, geo.FeetPerMinToMps(-1912.5), 1e-12) {
		t.Errorf("vertical rate %+v", reps[6])
	}
	for _, r := range reps {
		if !r.Time.Equal(reps[0].Time) {
			t.Errorf("times %v and %v: one time of track for the block", r.Time, reps[0].Time)
		}
	}
}

// TestASTERIXCategoriesMapped: CAT021 reports carry the ground vector and
// the geometric height when there is one; CAT048 reports need the radar
// and carry the Mode C level as barometric and I048/200 as their velocity;
// service messages are counted.
func TestASTERIXCategoriesMapped(t *testing.T) {
	d := NewASTERIXDecoder(nil)
	reps := replayAll(t, d, asterixRecording(t, "zr_cat21.ast"))
	if len(reps) == 0 {
		t.Fatalf("no CAT021 report: %s", d)
	}
	for _, r := range reps {
		if r.AltSource == "" || math.Hypot(r.VelEastMps, r.VelNorthMps) == 0 {
			t.Errorf("CAT021 report %+v", r)
		}
	}

	gps := asterixRecording(t, "cc_parsegps.gps")
	d = NewASTERIXDecoder(nil)
	if reps := replayAll(t, d, gps); len(reps) != 0 || d.Stats.NoRadar.Load() == 0 || d.Stats.Service.Load() != 3 {
		t.Fatalf("CAT048 without a radar: %d reports, %s", len(reps), d)
	}
	radar := geo.LLA{LatDeg: 45.8, LonDeg: 16.0, AltM: 200}
	d = NewASTERIXDecoder(&radar)
	reps = replayAll(t, d, gps)
	if len(reps) == 0 {
		t.Fatalf("CAT048 with a radar: no report: %s", d)
	}
	for _, r := range reps {
		if r.AltSource != AltBarometric || geo.GreatCircleM(radar, geo.LLA{LatDeg: r.LatDeg, LonDeg: r.LonDeg}) > geo.NMToM(256) {
			t.Errorf("CAT048 report %+v", r)
		}
	}
	// The first report is the first CAT048 record with a validated Mode C
	// level: its velocity is I048/200's ground speed and heading, its
	// altitude the level.
	fr, _, err := asterix.NewFrameReader(bytes.NewReader(gps), asterix.FramingAuto)
	if err != nil {
		t.Fatal(err)
	}
	var first *asterix.Record
	var s asterix.Stream
	s.Recording(fr, func(b *asterix.Block) error {
		for i := range b.Records {
			if r := b.Records[i]; first == nil && r.Cat == asterix.Cat048 && r.FlightLevelValid && r.Has&asterix.HasPolarVelocity != 0 {
				first = &r
			}
		}
		return nil
	})
	if first == nil {
		t.Fatal("no CAT048 record with a level and a velocity")
	}
	gs, hdg := geo.KnotsToMps(first.GroundSpeedKt()), first.HeadingDeg()*math.Pi/180
	if r := reps[0]; !near(r.VelEastMps, gs*math.Sin(hdg), 1e-9) || !near(r.VelNorthMps, gs*math.Cos(hdg), 1e-9) || r.VelUpMps != 0 ||
		!near(r.AltM, geo.FlightLevelToM(first.FlightLevelFL()), 1e-9) || gs == 0 {
		t.Errorf("first CAT048 report %+v, from ground speed %g m/s heading %g deg at FL%g", r, gs, first.HeadingDeg(), first.FlightLevelFL())
	}
}

// TestPolarToWGS84: the position found from slant range, azimuth and
// height is at that slant range from the radar (measured in ECEF on the
// ellipsoid), at that azimuth and height.
func TestPolarToWGS84(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		radar := geo.LLA{
			LatDeg: rapid.Float64Range(-70, 70).Draw(t, "lat"),
			LonDeg: rapid.Float64Range(-180, 180).Draw(t, "lon"),
			AltM:   rapid.Float64Range(0, 2000).Draw(t, "radar_alt"),
		}
		rangeM := rapid.Float64Range(1_000, geo.NMToM(250)).Draw(t, "range")
		az := rapid.Float64Range(0, 360).Draw(t, "azimuth")
		alt := rapid.Float64Range(0, 15_000).Draw(t, "alt")
		// A slant range shorter than the height difference has no solution.
		if rangeM < math.Abs(alt-radar.AltM)*1.01 {
			t.Skip("no such target")
		}
		p := PolarToWGS84(radar, rangeM, az, &alt)
		a, b := geo.ToECEF(radar), geo.ToECEF(p)
		slant := math.Sqrt((a.XM-b.XM)*(a.XM-b.XM) + (a.YM-b.YM)*(a.YM-b.YM) + (a.ZM-b.ZM)*(a.ZM-b.ZM))
		// The sphere stands for the ellipsoid: 0.5 % of the range.
		if math.Abs(slant-rangeM) > 0.005*rangeM+10 || p.AltM != alt {
			t.Fatalf("slant %.0f m, want %.0f; altitude %g", slant, rangeM, p.AltM)
		}
		e := geo.NewFrame(radar).ToENU(p)
		bearing := math.Mod(math.Atan2(e.EastM, e.NorthM)*180/math.Pi+360, 360)
		if d := math.Abs(math.Mod(bearing-az+540, 360) - 180); d > 0.2 {
			t.Fatalf("bearing %.3f, want %.3f", bearing, az)
		}
	})
}

// TestASTERIXLive: a datagram's time of day is the report's time when it
// is near the clock; far from it, the time of receipt is, and counted.
// Corrupt datagrams are counted and change nothing; every block of a
// datagram is decoded.
func TestASTERIXLive(t *testing.T) {
	ref := asterixRef(t)
	tod := 76810.3984375
	day := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	todTime := day.Add(time.Duration(tod * float64(time.Second)))
	var got []client.Report
	emit := func(r client.Report) error { got = append(got, r); return nil }

	d := NewASTERIXDecoder(nil)
	for _, garbage := range [][]byte{ref[:40], {62, 0, 2}, {0xff}, append(bytes.Clone(ref), 62)} {
		if err := d.Live(garbage, todTime, emit); err != nil {
			t.Fatal(err)
		}
	}
	if d.Stream.Stats.MalformedTotal() != 4 || len(got) != 7 {
		// The last datagram holds the whole reference block, then one octet.
		t.Fatalf("%d reports, %s", len(got), d)
	}
	got = nil
	now := todTime.Add(2 * time.Second)
	if err := d.Live(ref, now, emit); err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 || !got[0].Time.Equal(todTime) {
		t.Fatalf("reports %v at %v, want at %v", len(got), got[0].Time, todTime)
	}
	got = nil
	later := todTime.Add(10 * time.Minute)
	if err := d.Live(ref, later, emit); err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 || !got[0].Time.Equal(later) || d.Stats.ClockOff.Load() != 7 {
		t.Fatalf("reports %v, clock off %d", got, d.Stats.ClockOff.Load())
	}
	// A datagram of two blocks: both are decoded.
	got = nil
	blocks := d.Stream.Stats.Blocks[asterix.Cat062].Load()
	if err := d.Live(append(bytes.Clone(ref), ref...), now, emit); err != nil {
		t.Fatal(err)
	}
	if len(got) != 14 || d.Stream.Stats.Blocks[asterix.Cat062].Load() != blocks+2 {
		t.Fatalf("two blocks in a datagram: %d reports, %s", len(got), d)
	}
	// Just after midnight, a record of 23:59:59 belongs to the day before.
	if t0 := onNearestDay(86399*time.Second, day.Add(time.Second)); !t0.Equal(day.Add(-time.Second)) {
		t.Errorf("over midnight: %v", t0)
	}
}

// BenchmarkASTERIXFeed runs a 30-minute CAT062 recording (34,957 tracks)
// through the whole feed as fast as it goes: framing, decoding, assembly,
// batching, JSON encoding and POSTs to a loopback server that reads each
// batch and accepts it. Its reports/s is what the feed can offer a server;
// BENCHMARKS.md compares it with what the server ingests.
func BenchmarkASTERIXFeed(b *testing.B) {
	data := asterixRecording(b, "jade_062_30min.ff")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(client.PositionsResult{Accepted: bytes.Count(body, []byte(`"aircraft":`))})
	}))
	defer srv.Close()
	cl := client.New(srv.URL, "t")
	sent := int64(0)
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	for b.Loop() {
		fr, _, err := asterix.NewFrameReader(bytes.NewReader(data), asterix.FramingFinal)
		if err != nil {
			b.Fatal(err)
		}
		stats := &Stats{}
		s := &Sender{Post: cl.PostPositions, Stats: stats, MaxBatch: DefaultMaxBatch, MaxAge: time.Hour}
		in := make(chan client.Report, 4*DefaultMaxBatch)
		done := make(chan error, 1)
		go func() { done <- s.Run(context.Background(), in) }()
		d := NewASTERIXDecoder(nil)
		wall := time.Now()
		pacer := &Pacer{Now: func() time.Time { wall = wall.Add(time.Microsecond); return wall },
			Sleep: func(context.Context, time.Duration) error { return nil }}
		if err := d.Replay(context.Background(), fr, pacer, in); err != nil {
			b.Fatal(err)
		}
		close(in)
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if stats.Undeliverable.Load() != 0 {
			b.Fatalf("undeliverable: %s", stats)
		}
		sent += stats.Sent.Load()
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "reports/s")
	b.ReportMetric(float64(sent)/cpu.Seconds(), "reports/cpu-s")
}

// FuzzASTERIXLive: no datagram stops or crashes the live feed, and every
// report it makes passes the server's rule for a report.
func FuzzASTERIXLive(f *testing.F) {
	ref := asterixRef(f)
	f.Add(ref)
	f.Add(asterixRecording(f, "jas_cat021ed2.1.bin"))
	f.Add(asterixRecording(f, "jas_cat048ed1.23.bin"))
	f.Add(ref[:50])
	radar := geo.LLA{LatDeg: 45, LonDeg: 16, AltM: 300}
	now := time.Date(2026, 3, 4, 21, 20, 10, 0, time.UTC)
	f.Fuzz(func(t *testing.T, datagram []byte) {
		d := NewASTERIXDecoder(&radar)
		err := d.Live(datagram, now, func(r client.Report) error {
			tr := track.Report{Party: "p", Aircraft: r.Aircraft, Callsign: r.Callsign, AltSource: r.AltSource,
				Pos:        geo.LLA{LatDeg: r.LatDeg, LonDeg: r.LonDeg, AltM: r.AltM},
				VelEastMps: r.VelEastMps, VelNorthMps: r.VelNorthMps, VelUpMps: r.VelUpMps, Time: r.Time}
			if err := tr.Validate(); err != nil && !isRangeError(err) {
				t.Fatalf("report %+v: %v", r, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// isRangeError tells a value out of the plausible ranges (which arbitrary
// octets produce, and the server refuses) from a malformed report.
func isRangeError(err error) bool {
	s := err.Error()
	for _, f := range []string{"alt_m", "vel_east_mps", "vel_north_mps", "vel_up_mps", "lat", "lon"} {
		if strings.HasPrefix(s, f+":") {
			return true
		}
	}
	return false
}
