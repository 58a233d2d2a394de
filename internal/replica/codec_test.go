package replica

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/track"
	"pgregory.net/rapid"
)

func genReport(t *rapid.T) track.Report {
	return track.Report{
		Party:     rapid.StringMatching(`[a-z]{1,12}`).Draw(t, "party"),
		Aircraft:  rapid.StringMatching(`[A-Za-z0-9 ._-]{1,64}`).Draw(t, "aircraft"),
		Callsign:  rapid.StringMatching(`[A-Z0-9 ]{0,16}`).Draw(t, "callsign"),
		AltSource: rapid.SampledFrom([]string{"", track.AltGeometric, track.AltBarometric}).Draw(t, "alt_source"),
		Class:     rapid.SampledFrom([]string{"", "manned", "uas"}).Draw(t, "class"),
		Pos: geo.LLA{
			LatDeg: rapid.Float64Range(-90, 90).Draw(t, "lat"),
			LonDeg: rapid.Float64Range(-180, 180).Draw(t, "lon"),
			AltM:   rapid.Float64Range(-500, 30000).Draw(t, "alt"),
		},
		VelEastMps:  rapid.Float64Range(-1000, 1000).Draw(t, "ve"),
		VelNorthMps: rapid.Float64Range(-1000, 1000).Draw(t, "vn"),
		VelUpMps:    rapid.Float64Range(-100, 100).Draw(t, "vu"),
		Time:        time.Unix(0, rapid.Int64Range(0, 4e18).Draw(t, "nanos")).UTC(),
	}
}

// TestEncodePositionsRoundTrip: every payload fits in a notification, and
// decoding the payloads in order gives back exactly the reports, with their
// origin.
func TestEncodePositionsRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		reports := rapid.SliceOfN(rapid.Custom(genReport), 0, 400).Draw(t, "reports")
		origin := rapid.StringN(1, 40, -1).Draw(t, "origin")
		payloads, err := EncodePositions(origin, reports)
		if err != nil {
			t.Fatal(err)
		}
		var got []track.Report
		for i, p := range payloads {
			if len(p) > MaxPayload {
				t.Fatalf("payload %d has %d bytes, limit %d", i, len(p), MaxPayload)
			}
			o, rs, err := DecodePositions(p)
			if err != nil {
				t.Fatalf("payload %d: %v", i, err)
			}
			if o != origin {
				t.Fatalf("payload %d: origin %q, want %q", i, o, origin)
			}
			if len(rs) == 0 {
				t.Fatalf("payload %d is empty", i)
			}
			got = append(got, rs...)
		}
		if len(got) != len(reports) {
			t.Fatalf("%d reports decoded, %d encoded", len(got), len(reports))
		}
		for i := range reports {
			if got[i] != reports[i] {
				t.Fatalf("report %d: got %+v, want %+v", i, got[i], reports[i])
			}
		}
	})
}

func TestEncodePositionsRefusesAnOversizedReport(t *testing.T) {
	r := track.Report{Party: "p", Aircraft: strings.Repeat("x", MaxPayload), Time: time.Unix(1, 0)}
	if _, err := EncodePositions("a", []track.Report{r}); err == nil || !strings.Contains(err.Error(), "report 0") {
		t.Fatalf("err = %v, want one naming report 0", err)
	}
}

func TestDecodePositionsNamesTheField(t *testing.T) {
	good, err := EncodePositions("a", []track.Report{{Party: "p", Aircraft: "x", Callsign: "c", Time: time.Unix(1, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := enc.DecodeString(good[0])
	cut := func(n int) string { return enc.EncodeToString(raw[:len(raw)-n]) }
	for _, tc := range []struct{ in, want string }{
		{cut(1), "reports[0].vel_up_mps: truncated"},
		{cut(8 * 5), "reports[0].lon: truncated"},
		{enc.EncodeToString([]byte{codecVersion, 0}), "origin: missing"},
		{enc.EncodeToString([]byte{4, 1, 'a'}), "version"},
		{"not base64!", "position payload"},
		{encodeUnchecked(track.Report{Party: "p", Aircraft: "x", Pos: geo.LLA{LatDeg: math.NaN()}, Time: time.Unix(1, 0)}), "reports[0].lat: "},
		{encodeUnchecked(track.Report{Party: "p", Aircraft: "x", Pos: geo.LLA{AltM: math.Inf(1)}, Time: time.Unix(1, 0)}), "reports[0].alt_m: "},
		{encodeUnchecked(track.Report{Party: "p", Aircraft: "x", VelUpMps: math.NaN(), Time: time.Unix(1, 0)}), "reports[0].vel_up_mps: "},
		{encodeUnchecked(track.Report{Party: "p", Aircraft: "", Time: time.Unix(1, 0)}), "reports[0].aircraft: "},
		{encodeUnchecked(track.Report{Party: "p", Aircraft: "x\u202e", Time: time.Unix(1, 0)}), "reports[0].aircraft: "},
	} {
		_, _, err := DecodePositions(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodePositions(%q) = %v, want an error mentioning %q", tc.in, err, tc.want)
		}
	}
}

// encodeUnchecked is the payload of one report, whatever it holds.
func encodeUnchecked(r track.Report) string {
	p, err := EncodePositions("a", []track.Report{r})
	if err != nil {
		panic(err)
	}
	return p[0]
}

// TestDecodePositionsOlderVersions: payloads of replicas not yet upgraded
// still decode: version 2 (no class: the default class) and version 1 (no
// altitude source either).
func TestDecodePositionsOlderVersions(t *testing.T) {
	want := track.Report{Party: "p", Aircraft: "x", Callsign: "c", Pos: geo.LLA{LatDeg: 35, LonDeg: 36, AltM: 6000}, VelEastMps: 200, Time: time.Unix(1, 5).UTC()}
	v3, err := EncodePositions("a", []track.Report{want})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := enc.DecodeString(v3[0])
	// Version 3 has the empty altitude source and class (one zero length
	// each) after the callsign: 1 version, 2 origin, 2+2+2 names.
	if raw[9] != 0 || raw[10] != 0 {
		t.Fatalf("layout changed: % x", raw)
	}
	v2 := append(append([]byte{2}, raw[1:10]...), raw[11:]...)
	v1 := append(append([]byte{1}, raw[1:9]...), raw[11:]...)
	for _, p := range [][]byte{v2, v1} {
		origin, got, err := DecodePositions(enc.EncodeToString(p))
		if err != nil || origin != "a" || len(got) != 1 || got[0] != want {
			t.Fatalf("version %d: %q %+v %v", p[0], origin, got, err)
		}
	}
}

func FuzzDecodePositions(f *testing.F) {
	seed, _ := EncodePositions("a", []track.Report{{Party: "p", Aircraft: "x", Callsign: "c", Pos: geo.LLA{LatDeg: 35, LonDeg: 36, AltM: 6000}, VelEastMps: 200, Time: time.Unix(1, 5)}})
	f.Add(seed[0])
	f.Add(enc.EncodeToString([]byte{codecVersion, 1, 'a'}))
	f.Add(enc.EncodeToString([]byte{codecVersion, 1, 'a', 200}))
	f.Add("")
	nan, _ := EncodePositions("a", []track.Report{{Party: "p", Aircraft: "x", Pos: geo.LLA{LatDeg: math.NaN(), LonDeg: math.Inf(1)}, Time: time.Unix(1, 5)}})
	f.Add(nan[0])
	f.Fuzz(func(t *testing.T, s string) {
		origin, reports, err := DecodePositions(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "replica: position payload: ") {
				t.Fatalf("error %q does not say what it refused", err)
			}
			return
		}
		// A payload is from a peer, or from anyone who may NOTIFY the
		// channel: what decodes is a report the engine takes (finite,
		// in range), never one it refuses while the picture keeps it.
		for i := range reports {
			if err := reports[i].Validate(); err != nil {
				t.Fatalf("decoded report %d, which does not validate: %v: %+v", i, err, reports[i])
			}
		}
		// What decodes re-encodes to payloads that decode to the same.
		payloads, err := EncodePositions(origin, reports)
		if err != nil {
			return // a report too long for one notification
		}
		var again []track.Report
		for _, p := range payloads {
			_, rs, err := DecodePositions(p)
			if err != nil {
				t.Fatalf("re-encoded payload does not decode: %v", err)
			}
			again = append(again, rs...)
		}
		if len(again) != len(reports) {
			t.Fatalf("%d reports after a round trip, %d before", len(again), len(reports))
		}
		for i := range again {
			a, b := again[i], reports[i]
			// NaN != NaN: compare the encodings instead of the values.
			if string(appendReport(nil, &a)) != string(appendReport(nil, &b)) {
				t.Fatalf("report %d changed in a round trip: %+v, %+v", i, a, b)
			}
		}
	})
}
