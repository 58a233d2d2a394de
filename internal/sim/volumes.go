package sim

import (
	"math"

	"github.com/deconflict/deconflict/internal/geo"
)

// Default volume shape of a sortie (VolumeSpec fields left at zero).
const (
	defaultVolumeRadiusM = 80_000
	defaultMarginM       = 12_000
	defaultAltMarginM    = 300
	defaultLeadS         = 600
	defaultTrailS        = 600
)

// VolumeDecl is one volume a party declares for a flight: a circle, an
// altitude band and a time window in scenario seconds.
type VolumeDecl struct {
	Flight    string
	Party     string
	Index     int // position in the flight's chain
	LatDeg    float64
	LonDeg    float64
	RadiusM   float64
	AltLowerM float64
	AltUpperM float64
	FromS     float64
	ToS       float64
	Priority  int
}

// Volumes covers the flight's whole path with circles. A racetrack gets
// one circle around it for the time on station. The rest of the path is
// sampled every 20 s and cut into pieces whose samples all lie within
// RadiusM-MarginM of the piece's first sample, which becomes the circle's
// centre; between two samples an aircraft moves a few kilometres at most,
// well inside the margin, so it never leaves the union of its volumes while
// it flies as planned. Each circle has the altitude band and the time
// window of its own piece (widened by the margins), so a volume claims only
// where and when the aircraft really is.
func (f *Flight) Volumes() []VolumeDecl {
	spec := f.Volume
	if spec.None {
		return nil
	}
	radius := orDefault(spec.RadiusM, defaultVolumeRadiusM)
	margin := orDefault(spec.MarginM, defaultMarginM)
	reach := radius - margin

	var out []VolumeDecl
	var cur *VolumeDecl
	var centre geo.LLA
	add := func(t float64, st State) {
		if cur == nil {
			centre = st.Pos
			cur = &VolumeDecl{
				LatDeg: st.Pos.LatDeg, LonDeg: st.Pos.LonDeg, RadiusM: radius,
				AltLowerM: st.Pos.AltM, AltUpperM: st.Pos.AltM, FromS: t, ToS: t,
			}
		}
		cur.AltLowerM = math.Min(cur.AltLowerM, st.Pos.AltM)
		cur.AltUpperM = math.Max(cur.AltUpperM, st.Pos.AltM)
		cur.ToS = t
	}
	closePiece := func() {
		if cur != nil {
			out = append(out, *cur)
			cur = nil
		}
	}
	for _, l := range f.legs {
		if o := l.orbit; o != nil {
			closePiece()
			for t := l.t0; ; t += sampleEveryS {
				st, _ := f.At(min(t, l.t1))
				add(min(t, l.t1), st)
				if t >= l.t1 {
					break
				}
			}
			cur.LatDeg, cur.LonDeg = o.LatDeg, o.LonDeg
			cur.RadiusM = math.Max(radius, o.LengthM/2+o.WidthM/2+margin)
			closePiece()
			continue
		}
		for t := l.t0; ; t += sampleEveryS {
			st, _ := f.At(min(t, l.t1))
			if cur != nil && geo.GeodesicM(centre, st.Pos) > reach {
				// The border sample belongs to both pieces, so that what
				// is flown between two samples is inside one of them.
				add(min(t, l.t1), st)
				closePiece()
			}
			add(min(t, l.t1), st)
			if t >= l.t1 {
				break
			}
		}
	}
	closePiece()
	altMargin := orDefault(spec.AltMarginM, defaultAltMarginM)
	lead := orDefault(spec.LeadS, defaultLeadS)
	trail := orDefault(spec.TrailS, defaultTrailS)
	for i := range out {
		v := &out[i]
		v.Flight, v.Party, v.Index, v.Priority = f.ID, f.Party, i, spec.Priority
		v.AltLowerM = math.Max(0, v.AltLowerM-altMargin)
		v.AltUpperM += altMargin
		// Consecutive pieces overlap in time: a sample at a piece's border
		// may be flown a little before or after plan.
		v.FromS -= lead
		v.ToS += trail
	}
	return out
}

func orDefault(v, def float64) float64 {
	if v > 0 {
		return v
	}
	return def
}
