package feed

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/asterix"
	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/printable"
)

// The tests of this file build CAT062 records item by item (edition 1.18,
// the FRNs of its UAP) to check how the feed maps what a record carries,
// and what it lacks, onto reports.

// cat062Track is what a test CAT062 record carries; nil and zero fields
// leave their item out.
type cat062Track struct {
	todS            float64  // I062/070 (0: absent)
	address         uint32   // I062/380 ADR (0: absent)
	callsign        string   // I062/245 (empty: absent)
	latDeg, lonDeg  *float64 // I062/105
	vxMps, vyMps    *float64 // I062/185
	geoAltFt        *float64 // I062/130
	verticalRateFpm *float64 // I062/220
	// fplCallsign is the 7 octets of I062/390 subfield CSN, as sent
	// (empty: absent).
	fplCallsign string
}

func ptr(v float64) *float64 { return &v }

// sixBit encodes an identification in the 6-bit characters of ICAO Annex
// 10 Vol IV (letters 1-26, space 32, digits 48-57), 8 characters in 6
// octets.
func sixBit(s string) []byte {
	var v uint64
	for i := range 8 {
		c := byte(' ')
		if i < len(s) {
			c = s[i]
		}
		code := uint64(c)
		if c >= 'A' && c <= 'Z' {
			code = uint64(c - 'A' + 1)
		}
		v = v<<6 | code
	}
	out := make([]byte, 8)
	binary.BigEndian.PutUint64(out, v<<16)
	return out[:6]
}

// record encodes the track as one CAT062 record: FSPEC, then the items
// present in FRN order.
func (tr cat062Track) record() []byte {
	items := map[int][]byte{1: {6, 128}} // I062/010 SAC 6 SIC 128
	if tr.todS != 0 {
		v := uint32(math.Round(tr.todS * 128))
		items[4] = []byte{byte(v >> 16), byte(v >> 8), byte(v)}
	}
	if tr.latDeg != nil {
		b := make([]byte, 8)
		binary.BigEndian.PutUint32(b, uint32(int32(math.Round(*tr.latDeg/asterix.LatLon062LSB))))
		binary.BigEndian.PutUint32(b[4:], uint32(int32(math.Round(*tr.lonDeg/asterix.LatLon062LSB))))
		items[5] = b
	}
	if tr.vxMps != nil {
		b := make([]byte, 4)
		binary.BigEndian.PutUint16(b, uint16(int16(math.Round(*tr.vxMps/asterix.VelocityLSB))))
		binary.BigEndian.PutUint16(b[2:], uint16(int16(math.Round(*tr.vyMps/asterix.VelocityLSB))))
		items[7] = b
	}
	if tr.callsign != "" {
		items[10] = append([]byte{0}, sixBit(tr.callsign)...)
	}
	if tr.address != 0 {
		// Compound I062/380: primary subfield with ADR (the first) only.
		items[11] = []byte{0x80, byte(tr.address >> 16), byte(tr.address >> 8), byte(tr.address)}
	}
	if tr.geoAltFt != nil {
		items[18] = binary.BigEndian.AppendUint16(nil, uint16(int16(math.Round(*tr.geoAltFt/asterix.GeometricAltLSB))))
	}
	if tr.verticalRateFpm != nil {
		items[20] = binary.BigEndian.AppendUint16(nil, uint16(int16(math.Round(*tr.verticalRateFpm/asterix.VerticalRateLSB))))
	}
	if tr.fplCallsign != "" {
		// Compound I062/390: primary subfield with CSN (the second) only.
		csn := []byte(tr.fplCallsign + "       ")[:7]
		items[21] = append([]byte{0x40}, csn...)
	}
	frns := make([]int, 0, len(items))
	for frn := range items {
		frns = append(frns, frn)
	}
	slices.Sort(frns)
	fspec := make([]byte, (frns[len(frns)-1]+6)/7)
	for _, frn := range frns {
		fspec[(frn-1)/7] |= 0x80 >> ((frn - 1) % 7)
	}
	for i := range len(fspec) - 1 {
		fspec[i] |= 1 // FX: another octet follows
	}
	rec := fspec
	for _, frn := range frns {
		rec = append(rec, items[frn]...)
	}
	return rec
}

// cat062Block is one data block of the records.
func cat062Block(tracks ...cat062Track) []byte {
	b := []byte{62, 0, 0}
	for _, tr := range tracks {
		b = append(b, tr.record()...)
	}
	binary.BigEndian.PutUint16(b[1:], uint16(len(b)))
	return b
}

// TestCat062BuilderAgreesWithTheDecoder: the records built here decode to
// what they were built from (so that the tests below test the feed, not
// the builder).
func TestCat062BuilderAgreesWithTheDecoder(t *testing.T) {
	tr := cat062Track{todS: 3600.5, address: 0x4ca123, callsign: "RYR12AB", latDeg: ptr(53.25), lonDeg: ptr(-6.5),
		vxMps: ptr(-100.25), vyMps: ptr(50), geoAltFt: ptr(35000), verticalRateFpm: ptr(-1250)}
	var d asterix.Decoder
	recs, err := d.Block(cat062Block(tr))
	if err != nil || len(recs) != 1 {
		t.Fatalf("%v %d", err, len(recs))
	}
	r := recs[0]
	lat, lon := r.LatLonDeg()
	vx, vy := r.VelocityMps()
	if r.TimeOfDaySeconds() != 3600.5 || r.AddressHex() != "4ca123" || r.CallsignText() != "RYR12AB" ||
		!near(lat, 53.25, asterix.LatLon062LSB/2) || !near(lon, -6.5, asterix.LatLon062LSB/2) || vx != -100.25 || vy != 50 ||
		r.GeometricAltFt() != 35000 || r.VerticalRateFpm() != -1250 {
		t.Fatalf("decoded %+v", r)
	}
}

// TestASTERIXRecordsContributeWhatTheyCarry: as with BaseStation messages,
// a record without a position adds what it has (callsign, altitude,
// velocity) to its aircraft's state and makes no report; a later record
// with only a position completes a report from that state. Without an
// altitude or a velocity, no report is made.
func TestASTERIXRecordsContributeWhatTheyCarry(t *testing.T) {
	const addr = 0x4ca123
	d := NewASTERIXDecoder(nil)
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	var got []client.Report
	emit := func(r client.Report) error { got = append(got, r); return nil }
	live := func(at time.Time, tr cat062Track) {
		t.Helper()
		if err := d.Live(cat062Block(tr), at, emit); err != nil {
			t.Fatal(err)
		}
	}
	// A position alone, with nothing known: no altitude, no velocity.
	live(now, cat062Track{address: addr, latDeg: ptr(53), lonDeg: ptr(-6)})
	// The callsign alone, then the altitude and velocity without a position.
	live(now.Add(time.Second), cat062Track{address: addr, callsign: "RYR12AB"})
	live(now.Add(2*time.Second), cat062Track{address: addr, geoAltFt: ptr(10000), vxMps: ptr(100), vyMps: ptr(-20), verticalRateFpm: ptr(600)})
	if len(got) != 0 {
		t.Fatalf("reports before a position with an altitude and a velocity: %+v", got)
	}
	// The position completes the report from what came before.
	live(now.Add(3*time.Second), cat062Track{address: addr, latDeg: ptr(53.1), lonDeg: ptr(-6.1)})
	if len(got) != 1 {
		t.Fatalf("%d reports, want 1: %s", len(got), d)
	}
	r := got[0]
	if r.Aircraft != "4CA123" || r.Callsign != "RYR12AB" || !near(r.LatDeg, 53.1, asterix.LatLon062LSB/2) || !near(r.LonDeg, -6.1, asterix.LatLon062LSB/2) ||
		!near(r.AltM, geo.FeetToM(10000), 1e-9) || r.AltSource != AltGeometric || r.VelEastMps != 100 || r.VelNorthMps != -20 ||
		!near(r.VelUpMps, geo.FeetPerMinToMps(600), 1e-12) || !r.Time.Equal(now.Add(3*time.Second)) {
		t.Fatalf("report %+v", r)
	}
	// Another aircraft's state is its own: a position of a new address
	// makes no report.
	live(now.Add(4*time.Second), cat062Track{address: addr + 1, latDeg: ptr(53.1), lonDeg: ptr(-6.1)})
	if len(got) != 1 {
		t.Fatalf("a report for an aircraft with no altitude: %+v", got[1:])
	}
}

// replayPaced replays data through the feed at speed on a fake wall clock
// that starts at wall0 and moves only when the pacer sleeps.
func replayPaced(t *testing.T, data []byte, framing asterix.Framing, speed float64, wall0 time.Time) []client.Report {
	t.Helper()
	fr, _, err := asterix.NewFrameReader(bytes.NewReader(data), framing)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: wall0}
	out := make(chan client.Report, 1<<17)
	d := NewASTERIXDecoder(nil)
	if err := d.Replay(context.Background(), fr, &Pacer{Speed: speed, Now: clock.Now, Sleep: clock.Sleep}, out); err != nil {
		t.Fatal(err)
	}
	close(out)
	var reps []client.Report
	for r := range out {
		reps = append(reps, r)
	}
	return reps
}

// finalFrames wraps each block in a FINAL frame (the recorder's time of
// day in 10 ms).
func finalFrames(todS float64, blocks ...[]byte) []byte {
	var out []byte
	for _, b := range blocks {
		n := 8 + len(b) + 4
		tod := uint32(todS * 100)
		out = append(out, byte(n>>8), byte(n), 0, 0, 0, byte(tod>>16), byte(tod>>8), byte(tod))
		out = append(out, b...)
		out = append(out, 0xa5, 0xa5, 0xa5, 0xa5)
	}
	return out
}

// TestASTERIXReplayMapsTimesOfDayOntoThePresent: a recording is replayed
// at its recorded pace times --speed: the first record is sent now, every
// later one at its time of day's distance from the first divided by the
// speed, across midnight too (23:59:58 is followed by 00:00:01, 3 s later).
func TestASTERIXReplayMapsTimesOfDayOntoThePresent(t *testing.T) {
	wall0 := time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC)
	track := func(todS, lat float64) cat062Track {
		return cat062Track{todS: todS, address: 0x3c0001, latDeg: ptr(lat), lonDeg: ptr(8), vxMps: ptr(0), vyMps: ptr(200), geoAltFt: ptr(20000)}
	}
	// The recorder's frame times are those of the records, a little later.
	data := finalFrames(86399, cat062Block(track(86398, 50)), cat062Block(track(86399.5, 50.01)), cat062Block(track(1, 50.02)))
	for _, speed := range []float64{1, 4} {
		reps := replayPaced(t, data, asterix.FramingFinal, speed, wall0)
		if len(reps) != 3 {
			t.Fatalf("speed %g: %d reports", speed, len(reps))
		}
		for i, offS := range []float64{0, 1.5, 3} {
			want := wall0.Add(time.Duration(offS / speed * float64(time.Second)))
			if !reps[i].Time.Equal(want) {
				t.Errorf("speed %g: report %d at %v, want %v", speed, i, reps[i].Time, want)
			}
		}
	}

	// A real recording: 30 minutes of CAT062 from one tracker replayed at
	// 100 times its pace spans its own span of times of day / 100.
	rec := asterixRecording(t, "jade_062_30min.ff")
	var dump bytes.Buffer
	if _, _, err := asterix.Dump(bytes.NewReader(rec), asterix.FramingAuto, &dump); err != nil {
		t.Fatal(err)
	}
	rows := bytes.Split(bytes.TrimSpace(dump.Bytes()), []byte("\n"))[1:]
	todOf := func(row []byte) float64 {
		v, err := strconv.ParseFloat(string(bytes.Split(row, []byte(","))[7]), 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	firstTod, lastTod := todOf(rows[0]), todOf(rows[len(rows)-1])
	if lastTod-firstTod < 25*60 {
		t.Fatalf("the recording spans %g s", lastTod-firstTod)
	}
	reps := replayPaced(t, rec, asterix.FramingAuto, 100, wall0)
	if len(reps) < 30_000 {
		t.Fatalf("%d reports", len(reps))
	}
	span := reps[len(reps)-1].Time.Sub(wall0).Seconds()
	if want := (lastTod - firstTod) / 100; math.Abs(span-want) > 0.1 {
		t.Errorf("replay spans %.3f s of wall time, want %.3f", span, want)
	}
	if !reps[0].Time.Equal(wall0) {
		t.Errorf("first report at %v, want %v", reps[0].Time, wall0)
	}
}

// TestASTERIXFlightPlanCallsignIsPrintable: the flight plan callsign of
// I062/390 is octets copied as sent. A control character or a byte that
// is not UTF-8 among them must not reach the report: the server refuses
// a whole batch for such a callsign, the reports of every other aircraft
// in it too. A printable one is the report's callsign.
func TestASTERIXFlightPlanCallsignIsPrintable(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	for _, csn := range []string{"BAW\x1b[2J", "AB\xffCD", "\x00\x00\x00\x00\x00\x00\x01", "RYR\x7f12"} {
		d := NewASTERIXDecoder(nil)
		var got []client.Report
		tr := cat062Track{address: 0x4ca123, fplCallsign: csn, latDeg: ptr(53), lonDeg: ptr(-6),
			vxMps: ptr(100), vyMps: ptr(0), geoAltFt: ptr(10000)}
		if err := d.Live(cat062Block(tr), now, func(r client.Report) error { got = append(got, r); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("CSN %q: %d reports, want 1: %s", csn, len(got), d)
		}
		if err := printable.Check(got[0].Callsign); err != nil {
			t.Errorf("CSN %q: the report's callsign %q: %v", csn, got[0].Callsign, err)
		}
	}
	d := NewASTERIXDecoder(nil)
	var got []client.Report
	tr := cat062Track{address: 0x4ca123, fplCallsign: "EZY12AB", latDeg: ptr(53), lonDeg: ptr(-6),
		vxMps: ptr(100), vyMps: ptr(0), geoAltFt: ptr(10000)}
	if err := d.Live(cat062Block(tr), now, func(r client.Report) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Callsign != "EZY12AB" {
		t.Fatalf("reports %+v, want one with the callsign EZY12AB", got)
	}
}

// TestASTERIXReplayIgnoresATimeOfDayBeyondTheDay: a time of day of 24 h or
// more (the items hold up to 36 h) is no time of day. In a replay it must
// not move the recording's clock: read on the nearest day, one such
// record made the replay wait hours, and every record after it was
// stamped that far in the past. The record takes its frame's time, as a
// record without a time of day does.
func TestASTERIXReplayIgnoresATimeOfDayBeyondTheDay(t *testing.T) {
	wall0 := time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC)
	track := func(todS, lat float64) cat062Track {
		return cat062Track{todS: todS, address: 0x3c0001, latDeg: ptr(lat), lonDeg: ptr(8), vxMps: ptr(0), vyMps: ptr(200), geoAltFt: ptr(20000)}
	}
	var data []byte
	data = append(data, finalFrames(100, cat062Block(track(100, 50)))...)
	data = append(data, finalFrames(101, cat062Block(track(100_000, 50.01)))...)
	data = append(data, finalFrames(102, cat062Block(track(102, 50.02)))...)
	reps := replayPaced(t, data, asterix.FramingFinal, 1, wall0)
	if len(reps) != 3 {
		t.Fatalf("%d reports, want 3", len(reps))
	}
	for i, offS := range []float64{0, 1, 2} {
		if want := wall0.Add(time.Duration(offS * float64(time.Second))); !reps[i].Time.Equal(want) {
			t.Errorf("report %d at %v, want %v", i, reps[i].Time, want)
		}
	}
}

// TestASTERIXReportBeyondTheServersLimitsIsCountedNotSent: a record's
// items reach beyond what the server takes of a report (I062/130 up to
// 62 km, I062/185 up to 8 km/s); such a report is not sent but counted
// in the status line naming its field (beyond_limits_<field>), by the
// server's own rule. It was sent, refused by the server and counted
// undeliverable without a reason.
func TestASTERIXReportBeyondTheServersLimitsIsCountedNotSent(t *testing.T) {
	d := NewASTERIXDecoder(nil)
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	var got []client.Report
	emit := func(r client.Report) error { got = append(got, r); return nil }
	for i, tr := range []cat062Track{
		{address: 0x4ca001, latDeg: ptr(53), lonDeg: ptr(-6), geoAltFt: ptr(150_000), vxMps: ptr(100), vyMps: ptr(0)},
		{address: 0x4ca002, latDeg: ptr(53), lonDeg: ptr(-6), geoAltFt: ptr(10_000), vxMps: ptr(4000), vyMps: ptr(0)},
		{address: 0x4ca003, latDeg: ptr(53), lonDeg: ptr(-6), geoAltFt: ptr(10_000), vxMps: ptr(100), vyMps: ptr(0)},
	} {
		if err := d.Live(cat062Block(tr), now.Add(time.Duration(i)*time.Second), emit); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 1 || got[0].Aircraft != "4CA003" {
		t.Errorf("reports %+v, want only that of 4CA003, within the server's limits", got)
	}
	for _, want := range []string{" beyond_limits_alt_m=1", " beyond_limits_vel_east_mps=1"} {
		if !strings.Contains(d.String(), want) {
			t.Errorf("status %q, want %q", d.String(), want)
		}
	}
}
