package geo

import "math"

// Frame is a local east-north-up tangent frame at an origin: east and north
// in the plane tangent to the ellipsoid at the origin, up along its normal.
// It is an exact rotation and translation of ECEF, so distances are kept:
// nothing is lost to a flat-earth approximation however far a point lies.
type Frame struct {
	origin LLA
	o      ECEF
	// sine and cosine of the origin's latitude and longitude: the rotation.
	sinLat, cosLat, sinLon, cosLon float64
}

// NewFrame returns the east-north-up frame at origin.
func NewFrame(origin LLA) Frame {
	f := Frame{origin: origin, o: ToECEF(origin)}
	f.sinLat, f.cosLat = math.Sincos(rad(origin.LatDeg))
	f.sinLon, f.cosLon = math.Sincos(rad(origin.LonDeg))
	return f
}

// Origin returns the origin the frame was made at.
func (f Frame) Origin() LLA { return f.origin }

// ToENU returns p in this frame, in meters.
func (f Frame) ToENU(p LLA) ENU {
	e := ToECEF(p)
	return f.rotate(e.XM-f.o.XM, e.YM-f.o.YM, e.ZM-f.o.ZM)
}

// FromENU returns the geodetic position of a point given in this frame.
func (f Frame) FromENU(v ENU) LLA {
	x, y, z := f.unrotate(v)
	return FromECEF(ECEF{XM: f.o.XM + x, YM: f.o.YM + y, ZM: f.o.ZM + z})
}

// VelocityFrom rotates a velocity v (m/s) expressed in the local
// east-north-up frame at `at` into this frame. Two aircraft report their
// velocities in their own local frames; comparing them needs one frame.
func (f Frame) VelocityFrom(at LLA, v ENU) ENU {
	x, y, z := NewFrame(at).unrotate(v)
	return f.rotate(x, y, z)
}

// FromECEF returns the point e (ECEF) in this frame: ToENU for a point
// already in earth-centred coordinates, without the trigonometry of its
// latitude and longitude.
func (f Frame) FromECEF(e ECEF) ENU {
	return f.rotate(e.XM-f.o.XM, e.YM-f.o.YM, e.ZM-f.o.ZM)
}

// VelocityFromECEF rotates a velocity (m/s) given in ECEF axes into this
// frame: VelocityFrom for a velocity already in earth-centred axes.
func (f Frame) VelocityFromECEF(v ECEF) ENU { return f.rotate(v.XM, v.YM, v.ZM) }

// rotate turns an ECEF difference vector into east-north-up components.
func (f Frame) rotate(dx, dy, dz float64) ENU {
	return ENU{
		EastM:  -f.sinLon*dx + f.cosLon*dy,
		NorthM: -f.sinLat*f.cosLon*dx - f.sinLat*f.sinLon*dy + f.cosLat*dz,
		UpM:    f.cosLat*f.cosLon*dx + f.cosLat*f.sinLon*dy + f.sinLat*dz,
	}
}

// unrotate is the inverse (transpose) of rotate.
func (f Frame) unrotate(v ENU) (dx, dy, dz float64) {
	dx = -f.sinLon*v.EastM - f.sinLat*f.cosLon*v.NorthM + f.cosLat*f.cosLon*v.UpM
	dy = f.cosLon*v.EastM - f.sinLat*f.sinLon*v.NorthM + f.cosLat*f.sinLon*v.UpM
	dz = f.cosLat*v.NorthM + f.sinLat*v.UpM
	return dx, dy, dz
}
