package volume

// This file holds what need to know (package disclose) asks of a volume:
// whether a position is near it, a ball around it for a spatial index, and
// whether it conflicts with another party's volumes; and the observer that
// tells disclose of every committed change of the registry.

import (
	"math"

	"github.com/golang/geo/s2"

	"github.com/deconflict/deconflict/internal/geo"
)

// NearPoint reports whether pos lies within horizontalM of the footprint
// (inside it counts as zero) and within verticalM of the altitude band.
// The horizontal test uses the package's conservative angle (see the
// package doc): it may count a point up to about 1% of horizontalM (plus
// the circle's radius) further away as near, never the other way.
func (v *Volume) NearPoint(pos geo.LLA, horizontalM, verticalM float64) bool {
	if !(pos.AltM >= v.AltLowerM-verticalM && pos.AltM <= v.AltUpperM+verticalM) {
		return false
	}
	s := v.shape
	if s == nil {
		return false
	}
	p := s2.PointFromLatLng(s2.LatLngFromDegrees(pos.LatDeg, pos.LonDeg))
	lim := conservativeAngle(horizontalM)
	if s.circle {
		return s.center.Distance(p) <= s.radius+lim
	}
	if s.bound.Center().Distance(p) > s.bound.Radius()+lim {
		return false
	}
	return loopNearPoint(s.loop, s.bound, p, lim)
}

// HorizontalReachM is how far, in earth-centred meters, a point whose
// horizontal distance NearPoint measures as within horizontalM can be from
// the nearest point of the footprint at the same altitude, at any altitude
// up to maxAltM: NearPoint's angle (horizontalM over the smallest radius of
// curvature) times the largest radius of curvature plus the altitude.
func HorizontalReachM(horizontalM, maxAltM float64) float64 {
	return conservativeAngle(horizontalM).Radians() * (maxCurvatureRadiusM + max(maxAltM, 0))
}

// BoundingBall returns a point (ECEF meters) and a radius such that every
// point of the volume (footprint times altitude band) lies within the
// radius of the point. In geodetic coordinates the ellipsoid's metric at
// height h is at most (a²/b + h) times the unit sphere's, so a point of the
// footprint is within that many meters per radian of the cap's centre at
// its own height, and a height within the band within half the band of its
// middle.
func (v *Volume) BoundingBall() (centerECEF [3]float64, radiusM float64) {
	s := v.shape
	if s == nil {
		return [3]float64{}, math.Inf(1)
	}
	c := s2.LatLngFromPoint(s.bound.Center())
	mid := (v.AltLowerM + v.AltUpperM) / 2
	e := geo.ToECEF(geo.LLA{LatDeg: c.Lat.Degrees(), LonDeg: c.Lng.Degrees(), AltM: mid})
	r := s.bound.Radius().Radians()*(maxCurvatureRadiusM+max(v.AltUpperM, 0)) + (v.AltUpperM-v.AltLowerM)/2
	// A meter for the rounding of the conversions.
	return [3]float64{e.XM, e.YM, e.ZM}, r + 1
}

// ConflictsWithParty reports whether v conflicts (package doc: footprint,
// band and window, with the separation and the time buffer) with a live
// volume of party.
func (r *Registry) ConflictsWithParty(v Volume, party string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	stored, ok := r.all[v.ID]
	if !ok {
		return false
	}
	for _, o := range r.idx.Conflicts(stored) {
		if o.Party == party {
			return true
		}
	}
	return false
}

// ConflictingWith returns the ids of the other parties' live volumes that
// conflict with a live volume of party: what need to know shows of them.
// Its cost follows the party's own volumes, not all volumes.
func (r *Registry) ConflictingWith(party string) map[string]bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string]bool{}
	for _, own := range r.live[party] {
		for _, o := range r.idx.Conflicts(own) {
			out[o.ID] = true
		}
	}
	return out
}

// Observe makes the registry call fn with every committed state of a
// volume it takes in (Load, Sync, a write's catch-up, Apply), in the order
// it takes them, with its lock held: fn must be quick and must not call the
// registry. Set it before Load.
func (r *Registry) Observe(fn func(*Volume)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observe = fn
}

// EachLive calls fn with every live volume, for a consumer that starts
// after the registry was loaded.
func (r *Registry) EachLive(fn func(*Volume)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, vs := range r.live {
		for _, v := range vs {
			fn(v)
		}
	}
}
