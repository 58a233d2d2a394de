package volume

import (
	"slices"
	"sort"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"
)

// preferredLevel is the S2 level of the index cells when the separation
// allows it (about 10 to 20 km across): coarse enough that a small volume
// grown by 5 NM touches a handful of cells, fine enough that a cluster of
// operations spreads over several.
const preferredLevel = 9

// params are the rules as the conflict test uses them.
type params struct {
	lim     s1.Angle // horizontal separation, conservative angle
	vsepM   float64
	bufNs   int64 // time buffer; each window grows by it on both sides
	sepM    float64
	maxVert int
	maxWM   float64
}

func paramsOf(rl rules.Rules) params {
	return params{
		lim:     conservativeAngle(rl.HorizontalSepM),
		vsepM:   rl.VerticalSepM,
		bufNs:   int64(rl.TimeBufferS * 1e9),
		sepM:    rl.HorizontalSepM,
		maxVert: rl.MaxVertices,
		maxWM:   rl.MaxFootprintM,
	}
}

// conflict is the exact test between two volumes (see the package doc).
func conflict(a, b *Volume, p params) bool {
	if a.Party == b.Party || a.ID == b.ID || !a.State.Live() || !b.State.Live() {
		return false
	}
	if !(a.AltLowerM < b.AltUpperM+p.vsepM && b.AltLowerM < a.AltUpperM+p.vsepM) {
		return false
	}
	as, ae := a.Start.UnixNano()-p.bufNs, a.End.UnixNano()+p.bufNs
	bs, be := b.Start.UnixNano()-p.bufNs, b.End.UnixNano()+p.bufNs
	if !(as < be && bs < ae) {
		return false
	}
	return a.shape.near(b.shape, p.lim)
}

// Conflict reports whether two volumes conflict under the rules: different
// parties, both live, and close in space, altitude and time. The volumes
// must have been produced by this package (Parse, Decode, the registry).
func Conflict(a, b Volume, rl rules.Rules) bool {
	if a.shape == nil || b.shape == nil {
		return false
	}
	return conflict(&a, &b, paramsOf(rl))
}

// ScanConflicts is the plain baseline: the exact test of v against every
// volume of all. Results are sorted by id.
func ScanConflicts(all []*Volume, v *Volume, rl rules.Rules) []*Volume {
	p := paramsOf(rl)
	var out []*Volume
	for _, o := range all {
		if conflict(v, o, p) {
			out = append(out, o)
		}
	}
	sortByID(out)
	return out
}

func sortByID(vs []*Volume) {
	sort.Slice(vs, func(i, j int) bool { return vs[i].ID < vs[j].ID })
}

// Index is the space-time index of live volumes: every volume's footprint,
// grown by the horizontal separation, is covered by S2 cells of one level;
// a check collects the volumes sharing a cell with the new footprint's
// covering, filters them by altitude and time, then runs the exact test.
// An Index is not safe for concurrent writes; Registry guards it.
type Index struct {
	p       params
	level   int
	coverer *s2.RegionCoverer
	cells   map[s2.CellID][]*Volume
	byID    map[string]*Volume
	covers  map[string][]s2.CellID
}

// NewIndex returns an empty index for the rules' separation.
func NewIndex(rl rules.Rules) *Index {
	p := paramsOf(rl)
	level := min(preferredLevel, s2.MinWidthMetric.MaxLevel(p.lim.Radians()))
	return &Index{
		p:       p,
		level:   level,
		coverer: &s2.RegionCoverer{MinLevel: level, MaxLevel: level, LevelMod: 1, MaxCells: 1 << 20},
		cells:   map[s2.CellID][]*Volume{},
		byID:    map[string]*Volume{},
		covers:  map[string][]s2.CellID{},
	}
}

// Len is the number of live volumes in the index.
func (x *Index) Len() int { return len(x.byID) }

// sameRules reports whether the index was built for these rules' geometry.
func (x *Index) sameRules(rl rules.Rules) bool {
	return paramsOf(rl) == x.p
}

// grownCovering covers every point within the separation of the footprint.
func (x *Index) grownCovering(s *shape) []s2.CellID {
	var cu s2.CellUnion
	if s.circle {
		cu = x.coverer.Covering(s2.CapFromCenterAngle(s.center, s.radius+x.p.lim))
	} else {
		cu = x.coverer.Covering(s.loop)
		// One ring of neighbours at this level is at least a cell's
		// minimum width, which the level was chosen to exceed the
		// separation.
		cu.ExpandAtLevel(x.level)
	}
	// Normalising merges four siblings into their parent: bring every
	// cell back to the index level so that lookups are exact matches.
	cu.Denormalize(x.level, 1)
	return cu
}

func (x *Index) covering(s *shape) []s2.CellID {
	var cu s2.CellUnion
	if s.circle {
		cu = x.coverer.Covering(s.bound)
	} else {
		cu = x.coverer.Covering(s.loop)
	}
	cu.Denormalize(x.level, 1)
	return cu
}

// Put inserts or replaces v (by id). Volumes that are not live are removed.
// The index keeps the pointer: v must not be changed afterwards.
func (x *Index) Put(v *Volume) {
	x.Remove(v.ID)
	if !v.State.Live() || v.shape == nil {
		return
	}
	cells := x.grownCovering(v.shape)
	for _, c := range cells {
		x.cells[c] = append(x.cells[c], v)
	}
	x.byID[v.ID] = v
	x.covers[v.ID] = cells
}

// Remove drops the volume with this id, if present.
func (x *Index) Remove(id string) {
	old, ok := x.byID[id]
	if !ok {
		return
	}
	for _, c := range x.covers[id] {
		list := x.cells[c]
		if i := slices.Index(list, old); i >= 0 {
			list[i] = list[len(list)-1]
			list = list[:len(list)-1]
		}
		if len(list) == 0 {
			delete(x.cells, c)
		} else {
			x.cells[c] = list
		}
	}
	delete(x.byID, id)
	delete(x.covers, id)
}

// candidates returns the distinct volumes sharing a cell with the covering.
func (x *Index) candidates(cover []s2.CellID, keep func(*Volume) bool) []*Volume {
	var out []*Volume
	for _, c := range cover {
		for _, v := range x.cells[c] {
			if keep(v) {
				out = append(out, v)
			}
		}
	}
	if len(cover) > 1 {
		sortByID(out)
		out = slices.CompactFunc(out, func(a, b *Volume) bool { return a == b })
	}
	return out
}

// Conflicts returns the live volumes of other parties that conflict with v,
// sorted by id. v itself (same id) is never returned.
func (x *Index) Conflicts(v *Volume) []*Volume {
	if v.shape == nil {
		return nil
	}
	cands := x.candidates(x.covering(v.shape), func(o *Volume) bool {
		return o.Party != v.Party && o.ID != v.ID
	})
	out := cands[:0]
	for _, o := range cands {
		if conflict(v, o, x.p) {
			out = append(out, o)
		}
	}
	sortByID(out)
	return out
}

// query returns the live volumes whose footprint meets the area (nil: any),
// whose band meets [lowerM, upperM] and whose window meets [fromNs, toNs].
func (x *Index) query(area *shape, lowerM, upperM float64, fromNs, toNs int64) []*Volume {
	keep := func(o *Volume) bool {
		return o.AltLowerM <= upperM && lowerM <= o.AltUpperM &&
			o.Start.UnixNano() <= toNs && fromNs <= o.End.UnixNano() &&
			(area == nil || area.near(o.shape, touching))
	}
	var out []*Volume
	if area == nil || area.bound.Area() > 0.25*float64(len(x.byID))*s2.AvgAreaMetric.Value(x.level) {
		// A large area costs more cells than scanning everything.
		for _, o := range x.byID {
			if keep(o) {
				out = append(out, o)
			}
		}
		sortByID(out)
		return out
	}
	return x.candidates(x.covering(area), keep)
}

// touching is the distance below which a query area meets a footprint.
const touching = s1.Angle(1e-12)

// conformsAt returns whether p lies inside a volume of party that is active
// at tNs and whose band contains altM.
func (x *Index) conformsAt(party string, p s2.Point, altM float64, tNs int64) bool {
	c := s2.CellIDFromLatLng(s2.LatLngFromPoint(p)).Parent(x.level)
	for _, v := range x.cells[c] {
		if v.Party == party && active(v, tNs) && v.AltLowerM <= altM && altM <= v.AltUpperM && v.shape.containsPoint(p) {
			return true
		}
	}
	return false
}

// active is the conformance notion of an active volume: activated, or
// accepted, with t inside its window.
func active(v *Volume, tNs int64) bool {
	return (v.State == Activated || v.State == Accepted) && v.Start.UnixNano() <= tNs && tNs <= v.End.UnixNano()
}
