package track

import "github.com/deconflict/deconflict/internal/geo"

// ecefAxes is the east-north-up frame at latitude 0, longitude 0, sea
// level: its east is ECEF +Y, its north +Z and its up +X, exactly (the sines
// are 0 and the cosines 1). Rotating a velocity into it with
// geo.Frame.VelocityFrom therefore gives its ECEF components.
var ecefAxes = geo.NewFrame(geo.LLA{})

func toECEF(r Report) (pos, vel [3]float64) {
	p := geo.ToECEF(r.Pos)
	v := ecefAxes.VelocityFrom(r.Pos, geo.ENU{EastM: r.VelEastMps, NorthM: r.VelNorthMps, UpM: r.VelUpMps})
	return [3]float64{p.XM, p.YM, p.ZM}, [3]float64{v.UpM, v.EastM, v.NorthM}
}

// VelocityENU expresses an ECEF velocity (m/s) in the east-north-up frame
// at pos.
func VelocityENU(pos geo.LLA, velECEF [3]float64) (eastMps, northMps, upMps float64) {
	v := geo.NewFrame(pos).VelocityFrom(geo.LLA{}, geo.ENU{EastM: velECEF[1], NorthM: velECEF[2], UpM: velECEF[0]})
	return v.EastM, v.NorthM, v.UpM
}
