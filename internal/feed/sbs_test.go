package feed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/track"
)

// Lines as dump1090 writes them on port 30003 (one per transmission type).
var sbsSamples = []string{
	"MSG,1,111,11111,4CA2D6,111111,2015/10/07,06:05:32.123,2015/10/07,06:05:32.160,RYR5KH  ,,,,,,,,0,0,0,0",
	"MSG,2,111,11111,4CA2D6,111111,2015/10/07,06:05:32.500,2015/10/07,06:05:32.510,,0,12,270.0,35.40100,35.94900,,,,,,-1",
	"MSG,3,111,11111,4CA2D6,111111,2015/10/07,06:05:33.004,2015/10/07,06:05:33.020,,37000,,,36.12345,37.54321,,,0,0,0,0",
	"MSG,4,111,11111,4CA2D6,111111,2015/10/07,06:05:33.511,2015/10/07,06:05:33.540,,,452,123.4,,,-64,,0,0,0,0",
	"MSG,5,111,11111,4CA2D6,111111,2015/10/07,06:05:34.020,2015/10/07,06:05:34.030,RYR5KH  ,37025,,,,,,,0,,0,0",
	"MSG,6,111,11111,4CA2D6,111111,2015/10/07,06:05:34.700,2015/10/07,06:05:34.710,,37025,,,,,,7700,0,-1,0,0",
	"MSG,7,111,11111,4CA2D6,111111,2015/10/07,06:05:35.100,2015/10/07,06:05:35.101,,37050,,,,,,,,,,0",
	"MSG,8,111,11111,4CA2D6,111111,2015/10/07,06:05:35.300,2015/10/07,06:05:35.301,,,,,,,,,,,,0",
}

func TestParseSBSSamples(t *testing.T) {
	for _, line := range sbsSamples {
		f := strings.Split(line, ",")
		m, err := ParseSBS(line + "\r\n")
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if strconv.Itoa(m.Type) != f[1] || m.ICAO != f[4] {
			t.Errorf("%s: type %d icao %s", line, m.Type, m.ICAO)
		}
		want, _ := time.Parse("2006/01/02 15:04:05.000", f[6]+" "+f[7])
		if !m.Generated.Equal(want) {
			t.Errorf("%s: generated %v, want %v", line, m.Generated, want)
		}
		if m.Callsign != strings.TrimSpace(f[10]) {
			t.Errorf("%s: callsign %q", line, m.Callsign)
		}
		checkOpt := func(name string, has bool, v float64, field string) {
			t.Helper()
			if has != (field != "") {
				t.Errorf("%s: %s present=%v, field %q", line, name, has, field)
				return
			}
			if has {
				w, _ := strconv.ParseFloat(field, 64)
				if v != w {
					t.Errorf("%s: %s = %v, want %v", line, name, v, w)
				}
			}
		}
		checkOpt("alt", m.HasAlt, m.AltFt, f[11])
		checkOpt("gs", m.HasVelocity, m.GroundSpeedKt, f[12])
		checkOpt("track", m.HasVelocity, m.TrackDeg, f[13])
		checkOpt("lat", m.HasPosition, m.LatDeg, f[14])
		checkOpt("lon", m.HasPosition, m.LonDeg, f[15])
		checkOpt("vrate", m.HasVerticalRate, m.VerticalRateFpm, f[16])
		if m.Squawk != f[17] {
			t.Errorf("%s: squawk %q", line, m.Squawk)
		}
		if m.OnGround != (f[21] == "-1") {
			t.Errorf("%s: on ground %v", line, m.OnGround)
		}
	}
}

func TestParseSBSErrorsNameTheField(t *testing.T) {
	base := strings.Split(sbsSamples[2], ",") // a type 3
	cases := []struct {
		field int // 0-based
		value string
	}{
		{sbsType, "9"},
		{sbsType, "x"},
		{sbsHexIdent, "4CA2D"},
		{sbsHexIdent, "ZZZZZZ"},
		{sbsDateGen, "2015-10-07"},
		{sbsCallsign, "WAY-TOO-LONG"},
		{sbsAltitude, "high"},
		{sbsAltitude, "NaN"},
		{sbsLat, "91"},
		{sbsLat, ""}, // type 3 without a position
		{sbsLon, "-181"},
		{sbsGroundSpeed, "450"}, // speed without track
		{sbsVerticalRate, "1e9"},
		{sbsOnGround, "2"},
		{sbsEmergency, "yes"},
	}
	for _, c := range cases {
		f := append([]string(nil), base...)
		f[c.field] = c.value
		line := strings.Join(f, ",")
		_, err := ParseSBS(line)
		var se *SBSError
		if !errors.As(err, &se) {
			t.Errorf("field %d = %q: err %v, want *SBSError", c.field+1, c.value, err)
			continue
		}
		// A missing half of a pair is reported at its partner's field.
		okField := se.Field == c.field+1 ||
			(c.field == sbsLat && se.Field == sbsLon+1) ||
			(c.field == sbsGroundSpeed && se.Field == sbsTrack+1) ||
			(c.field == sbsDateGen && se.Field == sbsDateGen+1)
		if !okField || !strings.Contains(err.Error(), se.Name) {
			t.Errorf("field %d = %q: error %q names field %d", c.field+1, c.value, err, se.Field)
		}
	}
	if _, err := ParseSBS("MSG,3,1,1,4CA2D6"); err == nil {
		t.Error("short line accepted")
	}
	if _, err := ParseSBS("AIR,,333,1,4CA2D6,,2015/10/07,06:00:00.000,2015/10/07,06:00:00.000,,,,,,,,,,,,"); !errors.Is(err, ErrNotMSG) {
		t.Errorf("AIR line: %v, want ErrNotMSG", err)
	}
	if _, err := ParseSBS("garbage"); err == nil || errors.Is(err, ErrNotMSG) {
		t.Errorf("garbage: %v", err)
	}
}

func mustSBS(t *testing.T, line string) SBSMessage {
	t.Helper()
	m, err := ParseSBS(line)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return m
}

func sbsLine(typ int, icao string, fields map[int]string) string {
	f := make([]string, sbsFields)
	f[0], f[1], f[2], f[3], f[4], f[5] = "MSG", strconv.Itoa(typ), "1", "1", icao, "1"
	for i, v := range fields {
		f[i] = v
	}
	return strings.Join(f, ",")
}

func TestAssemblerJoinsMessagesAndConvertsUnits(t *testing.T) {
	a := NewAssembler()
	t0 := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	icao := "4CA2D6"
	steps := []struct {
		line string
		dt   time.Duration
		emit bool
	}{
		{sbsLine(1, icao, map[int]string{sbsCallsign: "RYR5KH  "}), 0, false},
		// Position but no velocity yet and no earlier position: nothing.
		{sbsLine(3, icao, map[int]string{sbsAltitude: "37000", sbsLat: "36.1", sbsLon: "37.5"}), 100 * time.Millisecond, false},
		{sbsLine(4, icao, map[int]string{sbsGroundSpeed: "452", sbsTrack: "123.4", sbsVerticalRate: "-640"}), 300 * time.Millisecond, false},
		{sbsLine(3, icao, map[int]string{sbsAltitude: "36990", sbsLat: "36.099", sbsLon: "37.502"}), 600 * time.Millisecond, true},
	}
	var got []bool
	for _, s := range steps {
		r, ok := a.Add(mustSBS(t, s.line), t0.Add(s.dt))
		got = append(got, ok)
		if !ok {
			continue
		}
		if r.Aircraft != icao || r.Callsign != "RYR5KH" || !r.Time.Equal(t0.Add(s.dt)) {
			t.Errorf("report ids/time = %+v", r)
		}
		if r.LatDeg != 36.099 || r.LonDeg != 37.502 || r.AltM != geo.FeetToM(36990) {
			t.Errorf("report position = %+v", r)
		}
		gs := math.Hypot(r.VelEastMps, r.VelNorthMps)
		trk := math.Mod(math.Atan2(r.VelEastMps, r.VelNorthMps)*180/math.Pi+360, 360)
		if math.Abs(gs-geo.KnotsToMps(452)) > 1e-9 || math.Abs(trk-123.4) > 1e-9 {
			t.Errorf("ground speed %v m/s track %v deg, want %v and 123.4", gs, trk, geo.KnotsToMps(452))
		}
		if math.Abs(r.VelUpMps-geo.FeetPerMinToMps(-640)) > 1e-12 {
			t.Errorf("vertical %v", r.VelUpMps)
		}
	}
	for i, s := range steps {
		if got[i] != s.emit {
			t.Errorf("step %d emitted %v, want %v", i, got[i], s.emit)
		}
	}
}

func TestAssemblerStaleVelocityIsDerivedOrWithheld(t *testing.T) {
	a := NewAssembler()
	t0 := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	icao := "71BE01"
	add := func(dt time.Duration, fields map[int]string, typ int) (ok bool, vel [3]float64) {
		r, ok := a.Add(mustSBS(t, sbsLine(typ, icao, fields)), t0.Add(dt))
		return ok, [3]float64{r.VelEastMps, r.VelNorthMps, r.VelUpMps}
	}
	add(0, map[int]string{sbsGroundSpeed: "300", sbsTrack: "90"}, 4)
	if ok, _ := add(time.Second, map[int]string{sbsAltitude: "20000", sbsLat: "35.0", sbsLon: "36.0"}, 3); !ok {
		t.Fatal("fresh velocity: no report")
	}
	// 20 s later the velocity is stale: derive it from the two positions.
	dt := 20 * time.Second
	ok, v := add(time.Second+dt, map[int]string{sbsAltitude: "21000", sbsLat: "35.0", sbsLon: "36.05"}, 3)
	if !ok {
		t.Fatal("stale velocity with a recent position: no report")
	}
	dist := geo.GeodesicM(geo.LLA{LatDeg: 35, LonDeg: 36}, geo.LLA{LatDeg: 35, LonDeg: 36.05})
	// Within 0.2%: the displacement is measured at altitude, the geodesic
	// on the ellipsoid.
	if want := dist / dt.Seconds(); math.Abs(math.Hypot(v[0], v[1])-want) > 0.002*want || v[0] <= 0 || math.Abs(v[1]) > 0.2 {
		t.Errorf("derived horizontal velocity %v, want %.2f m/s east", v, dist/dt.Seconds())
	}
	if math.Abs(v[2]-geo.FeetToM(1000)/dt.Seconds()) > 1e-9 {
		t.Errorf("derived vertical velocity %v", v[2])
	}
	// A minute later: neither a fresh velocity nor a close position.
	if ok, _ := add(time.Second+dt+time.Minute, map[int]string{sbsAltitude: "21000", sbsLat: "35.0", sbsLon: "36.3"}, 3); ok {
		t.Error("report without any usable velocity")
	}
}

func TestAssemblerWithholdsWithoutAltitudeOrOnGround(t *testing.T) {
	a := NewAssembler()
	t0 := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	a.Add(mustSBS(t, sbsLine(4, "AAAAAA", map[int]string{sbsGroundSpeed: "250", sbsTrack: "10"})), t0)
	if _, ok := a.Add(mustSBS(t, sbsLine(3, "AAAAAA", map[int]string{sbsLat: "35", sbsLon: "36"})), t0); ok {
		t.Error("report without altitude")
	}
	a.Add(mustSBS(t, sbsLine(5, "AAAAAA", map[int]string{sbsAltitude: "5000"})), t0)
	if _, ok := a.Add(mustSBS(t, sbsLine(3, "AAAAAA", map[int]string{sbsLat: "35", sbsLon: "36"})), t0.Add(time.Second)); !ok {
		t.Error("altitude from a type 5 one second earlier was not used")
	}
	if _, ok := a.Add(mustSBS(t, sbsLine(3, "AAAAAA", map[int]string{sbsLat: "35", sbsLon: "36"})), t0.Add(time.Minute)); ok {
		t.Error("report with an altitude a minute old")
	}
	a.Add(mustSBS(t, sbsLine(4, "BBBBBB", map[int]string{sbsGroundSpeed: "10", sbsTrack: "10"})), t0)
	if _, ok := a.Add(mustSBS(t, sbsLine(3, "BBBBBB", map[int]string{sbsAltitude: "100", sbsLat: "35", sbsLon: "36", sbsOnGround: "-1"})), t0); ok {
		t.Error("report of an aircraft on the ground")
	}
}

// TestAssemblerRefusesAnAltitudeFromTheFuture: messages may come out of
// the order of their times (a recorded file merged from receivers, ASTERIX
// records stamped with their own times of day). An altitude whose time is
// more than MaxAltitudeAge after the position's is no more the
// position's altitude than one as much before it, as for the velocity.
func TestAssemblerRefusesAnAltitudeFromTheFuture(t *testing.T) {
	a := NewAssembler()
	t0 := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	a.Add(mustSBS(t, sbsLine(4, "CCCCCC", map[int]string{sbsGroundSpeed: "250", sbsTrack: "10"})), t0)
	a.Add(mustSBS(t, sbsLine(5, "CCCCCC", map[int]string{sbsAltitude: "35000"})), t0.Add(time.Minute))
	if r, ok := a.Add(mustSBS(t, sbsLine(3, "CCCCCC", map[int]string{sbsLat: "35", sbsLon: "36"})), t0); ok {
		t.Errorf("report with the altitude of a minute later: %+v", r)
	}
	// Within the limit either way, the altitude is used.
	a.Add(mustSBS(t, sbsLine(5, "CCCCCC", map[int]string{sbsAltitude: "34000"})), t0.Add(time.Second))
	if _, ok := a.Add(mustSBS(t, sbsLine(3, "CCCCCC", map[int]string{sbsLat: "35", sbsLon: "36"})), t0); !ok {
		t.Error("an altitude a second after the position was not used")
	}
}

// TestAssemblerKeepsAtMostMaxAircraft: a source that names ever new
// aircraft (ASTERIX datagrams anyone on the network can send, each record
// a new track number) must not grow the assembler without bound: beyond
// MaxAircraft, a message of a new aircraft is refused and counted, while
// the aircraft already kept are still assembled.
func TestAssemblerKeepsAtMostMaxAircraft(t *testing.T) {
	a := NewAssembler()
	a.MaxAircraft = 3
	t0 := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	for i := range 10 {
		a.Update(Update{Aircraft: fmt.Sprintf("TRK062-1-1-%d", i), HasAlt: true, AltM: 3000}, t0)
	}
	if a.Aircraft() != 3 || a.Full.Load() != 7 {
		t.Fatalf("%d aircraft kept, %d refused; want 3 and 7", a.Aircraft(), a.Full.Load())
	}
	a.Update(Update{Aircraft: "TRK062-1-1-0", HasVelocity: true, VelEastMps: 100}, t0)
	if _, ok := a.Update(Update{Aircraft: "TRK062-1-1-0", HasPosition: true, LatDeg: 35, LonDeg: 36}, t0.Add(time.Second)); !ok {
		t.Error("an aircraft kept was not assembled")
	}
	// Those not heard for forgetAfter make room.
	for i := range 4096 {
		a.Update(Update{Aircraft: fmt.Sprintf("NEW%d", i)}, t0.Add(forgetAfter+time.Minute))
	}
	if _, kept := a.aircraft["TRK062-1-1-0"]; kept || a.Aircraft() != 3 {
		t.Errorf("%d aircraft kept (the first still: %v) after it was forgotten, want 3 new ones", a.Aircraft(), kept)
	}
}

// TestSBSDecoderStatusSaysAircraftFull: the BaseStation decoder's status
// says how many messages of new aircraft its assembler refused, live and
// in a replay, as the ASTERIX decoder's does.
func TestSBSDecoderStatusSaysAircraftFull(t *testing.T) {
	d := NewSBSDecoder(&Stats{})
	d.Assembler.MaxAircraft = 1
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	for _, icao := range []string{"4CA2D6", "71BE01", "71BE02"} {
		d.Live(sbsLine(4, icao, map[int]string{sbsGroundSpeed: "420", sbsTrack: "45"}), now)
	}
	if got := d.String(); got != "aircraft_full=2" {
		t.Errorf("live: status %q, want aircraft_full=2", got)
	}
	file := sbsLine(8, "4CA2D6", nil) + "\n" + sbsLine(8, "71BE03", nil) + "\n"
	clk := &fakeClock{now: replayWall0}
	if err := d.Replay(context.Background(), strings.NewReader(file), &Pacer{Speed: 1, Now: clk.Now, Sleep: clk.Sleep}, make(chan client.Report, 1)); err != nil {
		t.Fatal(err)
	}
	if got := d.String(); got != "aircraft_full=3" {
		t.Errorf("after a replay: status %q, want aircraft_full=3", got)
	}
}

// formatSBS writes a message back as a line, the inverse of ParseSBS for
// what it keeps.
func formatSBS(m SBSMessage) string {
	f := map[int]string{sbsCallsign: m.Callsign, sbsSquawk: m.Squawk}
	if !m.Generated.IsZero() {
		f[sbsDateGen] = m.Generated.Format("2006/01/02")
		f[sbsTimeGen] = m.Generated.Format("15:04:05.999999999")
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	if m.HasAlt {
		f[sbsAltitude] = num(m.AltFt)
	}
	if m.HasVelocity {
		f[sbsGroundSpeed], f[sbsTrack] = num(m.GroundSpeedKt), num(m.TrackDeg)
	}
	if m.HasPosition {
		f[sbsLat], f[sbsLon] = num(m.LatDeg), num(m.LonDeg)
	}
	if m.HasVerticalRate {
		f[sbsVerticalRate] = num(m.VerticalRateFpm)
	}
	if m.HasOnGroundField {
		f[sbsOnGround] = map[bool]string{true: "-1", false: "0"}[m.OnGround]
	}
	return sbsLine(m.Type, m.ICAO, f)
}

func FuzzParseSBS(f *testing.F) {
	for _, l := range sbsSamples {
		f.Add(l)
	}
	f.Add("MSG,3,1,1,ABCDEF,1,,,,,,,,,,,,,,,,")
	f.Add("MSG,3,,,ABCDEF,,,,,,,1000,,,-90,180,,,,,,")
	f.Add("SEL,,111,11111,4CA2D6,111111,2015/10/07,06:05:32.123,2015/10/07,06:05:32.160,RYR5KH")
	f.Add("STA,,5,179,400AE7,10103,2008/11/28,14:58:51.153,2008/11/28,14:58:51.153,RM")
	f.Add("MSG,4,1,1,4ca2d6,1,2015/10/07,23:59:59.999,,,,,0,360,,,0,,,,,")
	f.Add("MSG,,,,,,,,,,,,,,,,,,,,,")
	f.Fuzz(func(t *testing.T, line string) {
		m, err := ParseSBS(line)
		if err != nil {
			var se *SBSError
			if !errors.Is(err, ErrNotMSG) && !errors.As(err, &se) {
				t.Fatalf("error %v is neither ErrNotMSG nor *SBSError", err)
			}
			return
		}
		if m.Type < 1 || m.Type > 8 || len(m.ICAO) != 6 || strings.ToUpper(m.ICAO) != m.ICAO {
			t.Fatalf("accepted %+v", m)
		}
		if m.HasPosition && (m.LatDeg < -90 || m.LatDeg > 90 || m.LonDeg < -180 || m.LonDeg > 180) {
			t.Fatalf("position out of range: %+v", m)
		}
		again, err := ParseSBS(formatSBS(m))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", formatSBS(m), err)
		}
		if fmt.Sprintf("%+v", again) != fmt.Sprintf("%+v", m) {
			t.Fatalf("round trip:\n%+v\n%+v", again, m)
		}
		// Assembling never fails, whatever was accepted.
		a := NewAssembler()
		if r, ok := a.Add(m, time.Unix(0, 0)); ok && (math.IsNaN(r.VelEastMps) || math.IsNaN(r.AltM)) {
			t.Fatalf("report with NaN: %+v", r)
		}
	})
}

// TestSBSReportBeyondTheServersLimitsIsCountedNotSent: a velocity derived
// from two positions a second and a degree apart (a position decoded
// wrong, as receivers sometimes do) is far beyond what the server takes
// of a report: it is not sent but counted in the status line naming its
// field, by the server's own rule. It was sent, refused by the server and
// counted undeliverable without a reason.
func TestSBSReportBeyondTheServersLimitsIsCountedNotSent(t *testing.T) {
	d := NewSBSDecoder(&Stats{})
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	pos := func(lat string) string {
		return sbsLine(3, "4CA2D6", map[int]string{sbsAltitude: "30000", sbsLat: lat, sbsLon: "37.0"})
	}
	d.Live(pos("36.0"), now)
	if r, ok := d.Live(pos("37.0"), now.Add(time.Second)); ok {
		t.Errorf("report %+v sent, its speed beyond the server's %d m/s", r, track.MaxSpeedMps)
	}
	if want := "beyond_limits_vel_north_mps=1"; !strings.Contains(d.String(), want) {
		t.Errorf("status %q, want %q", d.String(), want)
	}
	// A derived velocity within the limits is sent.
	if _, ok := d.Live(pos("37.001"), now.Add(2*time.Second)); !ok {
		t.Error("a report within the server's limits was not sent")
	}
}
