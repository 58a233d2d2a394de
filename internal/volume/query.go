package volume

// This file answers reads from the index: Get, Query, QueryBox and the
// conformance check of the tactical side.

import (
	"math"
	"time"

	"github.com/golang/geo/s2"

	"github.com/deconflict/deconflict/internal/geo"
)

// Get returns volume id as viewer sees it (reduced unless viewer owns it).
func (r *Registry) Get(viewer, id string) (Volume, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.all[id]
	if !ok {
		return Volume{}, ErrNotFound
	}
	return v.ViewFor(viewer), nil
}

// Extent is what a query meets besides an area: the altitude band
// [LowerM, UpperM] over the window [From, To].
type Extent struct {
	LowerM, UpperM float64
	From, To       time.Time
}

// Query returns the live volumes of all parties whose footprint meets area
// (nil: anywhere) and whose band and window meet e, each as viewer sees it,
// sorted by id.
func (r *Registry) Query(viewer string, area *Footprint, e Extent) ([]Volume, error) {
	var a *region
	if area != nil {
		s, err := compile(*area, math.MaxInt, math.Inf(1))
		if err != nil {
			return nil, err
		}
		a = shapeArea(s)
	}
	return r.query(viewer, a, e), nil
}

// QueryBox is Query over a latitude/longitude box (see Box).
func (r *Registry) QueryBox(viewer string, b Box, e Extent) ([]Volume, error) {
	s, err := newBox(b)
	if err != nil {
		return nil, err
	}
	return r.query(viewer, s.region(), e), nil
}

func (r *Registry) query(viewer string, a *region, e Extent) []Volume {
	r.mu.RLock()
	defer r.mu.RUnlock()
	found := r.idx.query(a, e.LowerM, e.UpperM, e.From.UnixNano(), e.To.UnixNano())
	out := make([]Volume, len(found))
	for i, v := range found {
		out[i] = v.ViewFor(viewer)
	}
	return out
}

// Conforms is the conformance check of the tactical side: whether a
// position of party at t lies inside one of the party's active volumes
// (footprint and altitude band). applies is false when the party has no
// active volume at t, in which case conforming is meaningless (false).
// Active means activated, or accepted, with t inside the window: a party
// that flies what it declared and agreed is conforming even if it did not
// activate, since activation is a formality the parties may skip.
func (r *Registry) Conforms(party string, pos geo.LLA, t time.Time) (conforming, applies bool) {
	tNs := t.UnixNano()
	p := s2.PointFromLatLng(s2.LatLngFromDegrees(pos.LatDeg, pos.LonDeg))
	altM := pos.AltM
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.idx.conformsAt(party, p, altM, tNs) {
		return true, true
	}
	for _, v := range r.live[party] {
		if active(v, tNs) {
			return false, true
		}
	}
	return false, false
}
