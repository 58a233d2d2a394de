package volume

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/golang/geo/s1"
	"github.com/golang/geo/s2"

	"github.com/deconflict/deconflict/internal/rules"
)

// preferredLevel is the S2 level of the index cells when the separation
// allows it (about 10 to 20 km across): coarse enough that a small volume
// grown by 5 NM touches a handful of cells, fine enough that a cluster of
// operations spreads over several.
const preferredLevel = 9

// maxExpansions bounds the rings of neighbour cells that grow a polygon's
// covering by the separation; the level is lowered until it suffices.
const maxExpansions = 2

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
		bufNs:   min(rl.TimeBuffer(), rules.MaxTimeBuffer).Nanoseconds(), // see checkRules
		sepM:    rl.HorizontalSepM,
		maxVert: rl.MaxVertices,
		maxWM:   rl.MaxFootprintM,
	}
}

// grownWindowNs is v's window grown by bufNs on both sides, in Unix
// nanoseconds, saturating instead of wrapping around.
func grownWindowNs(v *Volume, bufNs int64) (startNs, endNs int64) {
	startNs, endNs = v.Start.UnixNano(), v.End.UnixNano()
	if startNs < math.MinInt64+bufNs {
		startNs = math.MinInt64
	} else {
		startNs -= bufNs
	}
	if endNs > math.MaxInt64-bufNs {
		endNs = math.MaxInt64
	} else {
		endNs += bufNs
	}
	return startNs, endNs
}

// conflict is the exact test between two volumes (see the package doc).
func conflict(a, b *Volume, p params) bool {
	if a.Party == b.Party || a.ID == b.ID || !a.State.Live() || !b.State.Live() {
		return false
	}
	return closeInAltAndTime(a, b, p) && a.shape.near(b.shape, p.lim)
}

// closeInAltAndTime is the cheap half of the test: the altitude bands are
// closer than the vertical separation and the windows, each grown by the
// buffer, overlap.
func closeInAltAndTime(a, b *Volume, p params) bool {
	if !(a.AltLowerM < b.AltUpperM+p.vsepM && b.AltLowerM < a.AltUpperM+p.vsepM) {
		return false
	}
	as, ae := grownWindowNs(a, p.bufNs)
	bs, be := grownWindowNs(b, p.bufNs)
	return as < be && bs < ae
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

// bucketNs is the length of the time buckets of the index: about the
// length of a typical operation, so that a volume sits in a few buckets and
// a check meets only the volumes of its own hours.
const bucketNs = int64(time.Hour)

// longBuckets is the most hour buckets a volume is listed under in each
// cell: a volume whose window, grown by the buffer, spans more is listed
// once per cell, under longBucket, and every lookup of the cell meets it.
// Otherwise a volume's listings grow with its window times its footprint:
// a month-long window and a day of buffer over the largest footprint the
// rules allow (1,000,000 km², 31 days) took 3 million listings, 390 MB and
// most of a second for one write, and any party could write a few. The
// default rules (a day's window) stay within it: their volumes are listed
// by the hour as before. Few volumes are that long, so what the long
// listings add to a lookup of a cell is small.
const longBuckets = 48

// longBucket is the bucket of the long listings of a cell, below every
// hour bucket of the times accepted (wiretime: 1970 to 2199, with the
// buffer clamped to a day).
const longBucket = math.MinInt64

// key is one space-time bucket: an S2 cell and an hour.
type key struct {
	cell   s2.CellID
	bucket int64
}

// entry is one listing of a volume, with what the cheap filters need
// inline so that they do not chase the pointer.
type entry struct {
	v              *Volume
	serial         uint64 // the same in every listing of one Put
	startNs, endNs int64  // the window grown by the buffer
	lowerM, upperM float64
	first          int64 // first bucket of the volume
	party          uint32
}

// Index is the space-time index of live volumes: every volume's footprint,
// grown by the horizontal separation, is covered by S2 cells of one level,
// and its window, grown by the time buffer, by hour buckets; the volume is
// listed under every (cell, hour) pair, or, when its window spans more
// than longBuckets hours, once per cell (longBucket). A check collects the volumes
// sharing a pair with the new volume, filters them by altitude and time,
// then runs the exact test, so it finds exactly what a scan finds.
// An Index is not safe for concurrent writes; Registry guards it.
type Index struct {
	p       params
	level   int
	rings   int // rings of neighbours that grow a polygon's covering
	coverer *s2.RegionCoverer
	// buckets lists volumes by cell, then by hour: a cell with nothing in
	// it costs one lookup whatever the window.
	buckets map[s2.CellID]map[int64][]entry
	parties map[string]uint32 // party name -> small number, for entries
	serial  uint64            // numbers volumes as they are put, to dedupe candidates
	byID    map[string]*Volume
	keys    map[string][]key
	// scanAbove: a query whose cells times hours exceed this many times
	// the number of volumes scans them all instead (tests raise it).
	scanAbove float64
	// longAbove is the most buckets a volume is listed under in one
	// cell before it is listed once, as a long one (tests lower it).
	longAbove int64
}

// NewIndex returns an empty index for the rules' separation.
func NewIndex(rl rules.Rules) *Index {
	p := paramsOf(rl)
	level, rings := indexLevel(p.lim)
	return &Index{
		p:         p,
		level:     level,
		rings:     rings,
		coverer:   &s2.RegionCoverer{MinLevel: level, MaxLevel: level, LevelMod: 1, MaxCells: 1 << 20},
		buckets:   map[s2.CellID]map[int64][]entry{},
		scanAbove: 0.25,
		longAbove: longBuckets,
		parties:   map[string]uint32{},
		byID:      map[string]*Volume{},
		keys:      map[string][]key{},
	}
}

// indexLevel picks the finest level, at most preferredLevel, at which a
// few rings of neighbour cells (each at least the level's minimum cell
// width) reach past the separation.
func indexLevel(lim s1.Angle) (level, rings int) {
	for level = preferredLevel; level > 0; level-- {
		rings = int(math.Ceil(lim.Radians() / s2.MinWidthMetric.Value(level)))
		if rings <= maxExpansions {
			return level, max(rings, 1)
		}
	}
	return 0, max(rings, 1)
}

// Len is the number of live volumes in the index.
func (x *Index) Len() int { return len(x.byID) }

// sameRules reports whether the index was built for these rules' geometry.
// Only the separation, the vertical separation and the buffer matter: the
// declaration limits do not change what is indexed.
func (x *Index) sameRules(rl rules.Rules) bool {
	p := paramsOf(rl)
	return p.lim == x.p.lim && p.vsepM == x.p.vsepM && p.bufNs == x.p.bufNs
}

// grownCovering covers every point within the separation of the footprint.
func (x *Index) grownCovering(s *shape) []s2.CellID {
	if s.circle {
		return x.capCovering(s2.CapFromCenterAngle(s.center, s.radius+x.p.lim))
	}
	if s.spine != nil {
		return x.tubeCovering(s, s.radius+x.p.lim)
	}
	cu := x.coverer.Covering(s.loop)
	// Each ring of neighbours adds at least a cell's minimum width; the
	// rings together exceed the separation.
	for range x.rings {
		cu.ExpandAtLevel(x.level)
	}
	// Normalising merges four siblings into their parent: bring every
	// cell back to the index level so that lookups are exact matches.
	cu.Denormalize(x.level, 1)
	return cu
}

func (x *Index) covering(s *shape) []s2.CellID {
	if s.circle {
		return x.capCovering(s.bound)
	}
	if s.spine != nil {
		return x.tubeCovering(s, s.radius)
	}
	cu := x.coverer.Covering(s.loop)
	cu.Denormalize(x.level, 1)
	return cu
}

// tubeCovering covers every point within reach of an orbit's or a
// corridor's spine: the cells of the spine's edges, grown by rings of
// neighbours that together reach past it.
func (x *Index) tubeCovering(s *shape, reach s1.Angle) []s2.CellID {
	line := s2.Polyline(s.spine)
	cu := x.coverer.Covering(&line)
	for range tubeRings(x.level, reach+capSlack) {
		cu.ExpandAtLevel(x.level)
	}
	cu.Denormalize(x.level, 1)
	return cu
}

// capSlack grows a cap before its cells are listed, so that rounding in
// the cell test never drops a cell that only touches the rim (a nanoradian
// is about 6 mm).
const capSlack = s1.Angle(1e-9)

// floodCells bounds the caps covered by capCovering, in cells of the index
// level; larger ones (query areas) go through the RegionCoverer.
const floodCells = 256

// capCovering lists the cells of the index level that meet c: a flood from
// the cell of its centre over cells sharing an edge. A cap smaller than a
// hemisphere is convex, so the cells meeting it are connected that way (two
// that meet only at a corner both meet a third across an edge, or the cap
// holds the corner and so meets all the cells around it). It lists what the
// RegionCoverer lists (property tested), several times cheaper than the
// coverer's descent from the cube faces, which was most of the cost of
// loading the stored volumes.
func (x *Index) capCovering(c s2.Cap) []s2.CellID {
	if c.Area() > floodCells*s2.AvgAreaMetric.Value(x.level) || c.Radius() >= math.Pi/2 {
		cu := x.coverer.Covering(c)
		cu.Denormalize(x.level, 1)
		return cu
	}
	c = c.Expanded(capSlack)
	out := make([]s2.CellID, 1, 16)
	out[0] = s2.CellIDFromLatLng(s2.LatLngFromPoint(c.Center())).Parent(x.level)
	var seenBuf [64]s2.CellID
	seen := append(seenBuf[:0], out[0])
	for i := 0; i < len(out); i++ {
		for _, n := range out[i].EdgeNeighbors() {
			if slices.Contains(seen, n) {
				continue
			}
			seen = append(seen, n)
			if c.IntersectsCell(s2.CellFromCellID(n)) {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// bucketRange returns the first and last hour buckets of [fromNs, toNs].
func bucketRange(fromNs, toNs int64) (int64, int64) {
	return floorDiv(fromNs, bucketNs), floorDiv(toNs, bucketNs)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Put inserts or replaces v (by id). Volumes that are not live are removed.
// The index keeps the pointer: v must not be changed afterwards.
func (x *Index) Put(v *Volume) { x.put(v, nil) }

// put is Put with v's grown covering computed beforehand (nil: compute it
// here), so that a Load can cover volumes in parallel.
func (x *Index) put(v *Volume, cells []s2.CellID) {
	x.Remove(v.ID)
	if !v.State.Live() || v.shape == nil {
		return
	}
	// Both windows grow by the buffer, so a volume is listed over its
	// window grown by the buffer and a check looks over its own window
	// grown by the buffer: two windows that conflict share an instant
	// there, hence a bucket.
	x.serial++
	startNs, endNs := grownWindowNs(v, x.p.bufNs)
	e := entry{v: v, serial: x.serial, startNs: startNs, endNs: endNs,
		lowerM: v.AltLowerM, upperM: v.AltUpperM, party: x.partyNumber(v.Party)}
	first, last := bucketRange(e.startNs, e.endNs)
	e.first = first
	if last-first+1 > x.longAbove {
		first, last = longBucket, longBucket
	}
	if cells == nil {
		cells = x.grownCovering(v.shape)
	}
	keys := make([]key, 0, len(cells)*int(last-first+1))
	for _, c := range cells {
		inner := x.buckets[c]
		if inner == nil {
			inner = make(map[int64][]entry, min(last-first+1, x.longAbove))
			x.buckets[c] = inner
		}
		for b := first; b <= last; b++ {
			inner[b] = append(inner[b], e)
			keys = append(keys, key{c, b})
		}
	}
	x.byID[v.ID] = v
	x.keys[v.ID] = keys
}

// partyNumber interns a party name.
func (x *Index) partyNumber(party string) uint32 {
	n, ok := x.parties[party]
	if !ok {
		n = uint32(len(x.parties)) + 1
		x.parties[party] = n
	}
	return n
}

// Remove drops the volume with this id, if present.
func (x *Index) Remove(id string) {
	old, ok := x.byID[id]
	if !ok {
		return
	}
	for _, k := range x.keys[id] {
		inner := x.buckets[k.cell]
		list := inner[k.bucket]
		if i := slices.IndexFunc(list, func(e entry) bool { return e.v == old }); i >= 0 {
			list[i] = list[len(list)-1]
			list = list[:len(list)-1]
		}
		switch {
		case len(list) > 0:
			inner[k.bucket] = list
		case len(inner) > 1:
			delete(inner, k.bucket)
		default:
			delete(x.buckets, k.cell)
		}
	}
	delete(x.byID, id)
	delete(x.keys, id)
}

// candidates returns the distinct volumes listed under the cells and the
// buckets of [fromNs, toNs] whose entry pre accepts. pre should be cheap:
// it runs once per listing, before duplicates are removed.
func (x *Index) candidates(cover []s2.CellID, fromNs, toNs int64, pre func(*entry) bool) []*Volume {
	first, last := bucketRange(fromNs, toNs)
	type found struct {
		serial uint64
		v      *Volume
	}
	var all []found
	take := func(b int64, list []entry) {
		for i := range list {
			e := &list[i]
			// A volume listed in several buckets of this cell is taken
			// only in the first bucket both windows share.
			if max(e.first, first) == b && pre(e) {
				all = append(all, found{e.serial, e.v})
			}
		}
	}
	for _, c := range cover {
		inner := x.buckets[c]
		// A long volume is listed once in the cell: taken when its
		// buckets meet [first, last], as if listed under each of them.
		for i, list := 0, inner[longBucket]; i < len(list); i++ {
			e := &list[i]
			if e.first <= last && first <= floorDiv(e.endNs, bucketNs) && pre(e) {
				all = append(all, found{e.serial, e.v})
			}
		}
		if int64(len(inner)) < last-first+1 {
			for b, list := range inner {
				if first <= b && b <= last {
					take(b, list)
				}
			}
			continue
		}
		for b := first; b <= last; b++ {
			take(b, inner[b])
		}
	}
	if len(cover) > 1 {
		// A volume listed under several cells: keep it once.
		slices.SortFunc(all, func(a, b found) int { return cmp.Compare(a.serial, b.serial) })
		all = slices.CompactFunc(all, func(a, b found) bool { return a.serial == b.serial })
	}
	out := make([]*Volume, len(all))
	for i, f := range all {
		out[i] = f.v
	}
	return out
}

// listings returns how many listings candidates visits over cover and
// [fromNs, toNs], without visiting them: what listing the volumes there
// costs, known beforehand.
func (x *Index) listings(cover []s2.CellID, fromNs, toNs int64) int {
	first, last := bucketRange(fromNs, toNs)
	n := 0
	for _, c := range cover {
		inner := x.buckets[c]
		n += len(inner[longBucket])
		if int64(len(inner)) < last-first+1 {
			for b, list := range inner {
				if first <= b && b <= last {
					n += len(list)
				}
			}
			continue
		}
		for b := first; b <= last; b++ {
			n += len(inner[b])
		}
	}
	return n
}

// Conflicts returns the live volumes of other parties that conflict with v,
// sorted by id. v itself (same id) is never returned.
func (x *Index) Conflicts(v *Volume) []*Volume {
	if v.shape == nil || !v.State.Live() {
		return nil
	}
	fromNs, toNs := grownWindowNs(v, x.p.bufNs)
	party := x.parties[v.Party] // 0 when the party has no volume yet
	lo, hi := v.AltLowerM-x.p.vsepM, v.AltUpperM+x.p.vsepM
	cands := x.candidates(x.covering(v.shape), fromNs, toNs, func(e *entry) bool {
		return e.party != party && e.lowerM < hi && lo < e.upperM && e.startNs < toNs && fromNs < e.endNs
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

// region is the spatial filter of a query: what it covers at the index
// level, its size (steradians) and the exact test against a footprint.
type region struct {
	cover  func(x *Index) []s2.CellID
	sizeSr float64
	meets  func(*shape) bool
}

// shapeArea is a query area given as a footprint.
func shapeArea(a *shape) *region {
	return &region{
		cover:  func(x *Index) []s2.CellID { return x.covering(a) },
		sizeSr: a.bound.Area(),
		meets:  func(s *shape) bool { return a.near(s, touching) },
	}
}

// query returns the live volumes whose footprint meets the area (nil: any),
// whose band meets [lowerM, upperM] and whose window meets [fromNs, toNs].
func (x *Index) query(a *region, lowerM, upperM float64, fromNs, toNs int64) []*Volume {
	keep := func(o *Volume) bool {
		return o.AltLowerM <= upperM && lowerM <= o.AltUpperM &&
			o.Start.UnixNano() <= toNs && fromNs <= o.End.UnixNano() &&
			(a == nil || a.meets(o.shape))
	}
	first, last := bucketRange(fromNs, toNs)
	if a == nil || float64(last-first+1)*a.sizeSr > x.scanAbove*float64(len(x.byID))*s2.AvgAreaMetric.Value(x.level) {
		// A large area or a long period costs more lookups than
		// scanning everything.
		var out []*Volume
		for _, o := range x.byID {
			if keep(o) {
				out = append(out, o)
			}
		}
		sortByID(out)
		return out
	}
	out := x.candidates(a.cover(x), fromNs, toNs, func(e *entry) bool { return keep(e.v) })
	sortByID(out)
	return out
}

// touching is the distance below which a query area meets a footprint.
const touching = s1.Angle(1e-12)

// conformsAt returns whether p lies inside a volume of party that is active
// at tNs and whose band contains altM.
func (x *Index) conformsAt(party string, p s2.Point, altM float64, tNs int64) bool {
	c := s2.CellIDFromLatLng(s2.LatLngFromPoint(p)).Parent(x.level)
	inner := x.buckets[c]
	for _, b := range [...]int64{floorDiv(tNs, bucketNs), longBucket} {
		for _, e := range inner[b] {
			v := e.v
			if v.Party == party && active(v, tNs) && v.AltLowerM <= altM && altM <= v.AltUpperM && v.shape.containsPoint(p) {
				return true
			}
		}
	}
	return false
}

// active is the conformance notion of an active volume: activated, or
// accepted, with t inside its window.
func active(v *Volume, tNs int64) bool {
	return (v.State == Activated || v.State == Accepted) && v.Start.UnixNano() <= tNs && tNs <= v.End.UnixNano()
}
