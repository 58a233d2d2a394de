package resolve_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/resolve"
	"github.com/deconflict/deconflict/internal/testutil/reference"
)

var dimNames = [4]string{"track", "gs", "vs", "alt"}

// readEncounters reads the DAIDALUS reference's inputs.
func readEncounters(t testing.TB) (ids []string, own, intr []resolve.Aircraft) {
	t.Helper()
	in, _ := reference.DAIDALUSDO365(t)
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(data), "\r\n", "\n")), "\n")
	header := strings.Split(lines[0], ",")
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		row := map[string]float64{}
		for i, h := range header {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				row[h] = v
			}
		}
		vec := func(p, unit string) detect.Vec3 {
			return detect.Vec3{X: row[p+"x_"+unit], Y: row[p+"y_"+unit], Z: row[p+"z_"+unit]}
		}
		ids = append(ids, f[0])
		own = append(own, resolve.Aircraft{Pos: vec("own_", "m"), Vel: vec("own_v", "mps")})
		intr = append(intr, resolve.Aircraft{Pos: vec("int_", "m"), Vel: vec("int_v", "mps")})
	}
	return ids, own, intr
}

// TestBandsMatchDAIDALUS checks the bands against NASA DAIDALUS's on
// every row of the reference, in the four dimensions: the same region at
// every candidate DAIDALUS tests, except within one step of one of its
// edges (reference.CompareDO365Bands). Rows marked boundary_sensitive may
// differ: their pair is exactly at a threshold (the intruder at exactly
// DTHR with the same velocity, or exactly 450 ft above), where DAIDALUS's
// answer, with its tolerances in the cylinder of the recovery search,
// turns on the last bit of an input.
func TestBandsMatchDAIDALUS(t *testing.T) {
	ids, own, intr := readEncounters(t)
	sep := resolve.DO365()
	cfg := resolve.DefaultConfig()
	var out []byte
	out = append(out, "id,track_bands_deg,gs_bands_mps,vs_bands_mps,alt_bands_m\n"...)
	for i, id := range ids {
		b := resolve.Compute(own[i], []resolve.Intruder{{Aircraft: intr[i], Sep: &sep}}, &cfg)
		out = append(out, id...)
		for _, rs := range [][]resolve.Range{b.TrackDeg, b.GsMps, b.VsMps, b.AltM} {
			out = append(out, ',')
			out = resolve.AppendDAIDALUS(out, rs)
		}
		out = append(out, '\n')
	}
	sensitive := reference.DO365BoundarySensitive(t)
	differ := reference.CompareDO365Bands(t, string(out), sensitive)
	t.Logf("%d rows; %d dimensions of the %d boundary-sensitive rows differ", len(ids), differ, len(sensitive))
}
