package disclose

import (
	"sync"
	"time"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/volume"
)

// Picture keeps, for every party, what of the others it may see: fed with
// the same position reports as the detection engine (it keeps its own
// track table with the same acceptance rules and stale time), with the
// alert transitions, and with every committed volume; read by party. It is
// safe for concurrent use: reads share a lock, feeding takes it alone.
type Picture struct {
	mu   sync.RWMutex
	rule Rule

	tracks *track.Table
	// index lists the aircraft (by track id); volIndex the volumes and,
	// while there are volumes, the aircraft (aircraftEntry, volumeEntry).
	index    *detect.Nearby
	volIndex *detect.Nearby
	inVol    []bool // by track id: listed in volIndex
	// listedAt is where each aircraft's cube was last listed (ECEF).
	listedAt [][3]float64

	// By track id.
	party []int32 // the owner's party number
	point []Point
	rows  [][]slot // by party number: how long the track is disclosed
	// ownAt is the track's position in its owner's own list, plus one.
	ownAt []int32
	// allUntil is until when a track is disclosed to every party, known or
	// not, after an alert that concerned everyone (nonconforming) cleared;
	// allAt is its position in lingerAll, plus one.
	allUntil  []int64
	allAt     []int32
	lingerAll []track.ID
	// foundAt marks, by party number, the parties a query has found
	// (equal to epoch); withTracks counts the parties with live tracks.
	foundAt    []uint32
	epoch      uint32
	withTracks int

	// By party number.
	names  []string
	number map[string]int32
	own    [][]track.ID // the party's live tracks
	shown  [][]track.ID // others' tracks with a slot listed for the party
	// alerted counts the open alerts that disclose a track to the party;
	// alertedAll the open alerts that concern everyone (nonconforming).
	alerted    []map[track.Key]int32
	alertedAll map[track.Key]int32
	open       map[string]openAlert

	volumes  map[string]*volEntry
	volSlots []*volEntry // by slot; nil when free
	volFree  []int32
	// volSeen is, by volume id and party name, until when the picture
	// this one was rebuilt from had the volume near the party's
	// aircraft: taken by PutVolume when the volume comes in.
	volSeen map[string]map[string]int64
}

// slot is what one party may see of one track.
type slot struct {
	untilNs int64 // disclosed up to this time (unix ns) by proximity or linger
	at      int32 // position in the party's shown list, plus one; 0: not listed
}

type openAlert struct {
	keys    []track.Key
	parties []int32 // nil with all
	all     bool
}

type volEntry struct {
	v     *volume.Volume
	party int32
	slot  int32
	// seen is, by party number, until when the volume is near one of the
	// party's aircraft (unix ns).
	seen []int64
}

// New makes an empty picture for the rule.
func New(r Rule) *Picture {
	return &Picture{
		rule:       r,
		tracks:     track.NewTable(r.StaleAfter),
		index:      detect.NewNearby(4 * r.halfM),
		volIndex:   detect.NewNearby(4 * r.halfM),
		number:     map[string]int32{},
		alertedAll: map[track.Key]int32{},
		open:       map[string]openAlert{},
		volumes:    map[string]*volEntry{},
	}
}

// Rule returns the rule the picture applies.
func (p *Picture) Rule() Rule { return p.rule }

// slackM is how far an aircraft may move before its listing in the
// indexes is renewed (its cubes are grown by as much).
const slackM = 2000

func dist2(a, b [3]float64) float64 {
	d0, d1, d2 := a[0]-b[0], a[1]-b[1], a[2]-b[2]
	return d0*d0 + d1*d1 + d2*d2
}

// Ids in volIndex: aircraft even, volumes odd, so that one index holds both.
func aircraftEntry(id track.ID) int32 { return 2 * id }
func volumeEntry(slot int32) int32    { return 2*slot + 1 }

// The two kinds of entry of volIndex, listed as its two parties
// (detect.Nearby.Set), so that an aircraft's query passes over the
// other aircraft whole: over a city every aircraft shares its cells with
// every other, and a report looked at all of them to find a few volumes
// (BENCHMARKS.md, "Need to know in a crowded cell").
const (
	aircraftKind int32 = iota
	volumeKind
)

// num returns the party's number, giving it one (write lock held).
func (p *Picture) num(party string) int32 {
	if n, ok := p.number[party]; ok {
		return n
	}
	n := int32(len(p.names))
	p.number[party] = n
	p.names = append(p.names, party)
	p.own = append(p.own, nil)
	p.shown = append(p.shown, nil)
	p.alerted = append(p.alerted, map[track.Key]int32{})
	p.foundAt = append(p.foundAt, 0)
	return n
}

// Ingest applies reports the detection engine accepted (valid reports) at
// now. Each applied report of an aircraft X refreshes, until now plus the
// linger, the disclosure of X to every other party with an aircraft near
// it (one such aircraft per party suffices: the query stops once every
// party with tracks was found) and to the owners of the volumes near it,
// and marks those volumes as near X's party.
func (p *Picture) Ingest(reports []track.Report, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	until := now.UnixNano() + int64(p.rule.Linger)
	for i := range reports {
		if id, ok := p.apply(reports[i], now); ok {
			p.assess(id, now, until)
		}
	}
}

// apply takes a report into the track table and the indexes (write lock
// held); ok is false when the table refused it.
func (p *Picture) apply(r track.Report, now time.Time) (track.ID, bool) {
	id, outcome := p.tracks.Apply(r, now)
	if !outcome.Applied() {
		return id, false
	}
	s, _ := p.tracks.Get(id)
	if outcome == track.Created {
		p.created(id, p.num(s.Party))
	}
	p.point[id] = PointOf(s.Pos)
	// The cube listed is grown by slackM around where it was last
	// listed: while the aircraft stays within slackM of that place the
	// listed cube still holds its true one (so no pair is missed), and
	// the listing, the dearest part of a report, is left as it is.
	if outcome == track.Created || dist2(s.ECEF, p.listedAt[id]) > slackM*slackM {
		p.listedAt[id] = s.ECEF
		p.index.Set(id, p.party[id], s.ECEF, p.rule.halfM+slackM)
		if p.inVol[id] {
			p.volIndex.Set(aircraftEntry(id), aircraftKind, s.ECEF, p.rule.halfM+slackM)
		}
	}
	return id, true
}

// assess evaluates the rule at a report of track id (write lock held):
// its disclosure to the parties near it, and the volumes near it.
func (p *Picture) assess(id track.ID, now time.Time, until int64) {
	s, _ := p.tracks.Get(id)
	pn := p.party[id]
	pt := p.point[id]
	p.epoch++
	if p.epoch == 0 {
		clear(p.foundAt)
		p.epoch = 1
	}
	epoch := p.epoch
	// Every other party with live tracks, at most.
	need := p.withTracks - 1
	found := 0
	if need > 0 {
		// The index passes over pn's own tracks, and each party's once
		// one of its tracks is found, whole: what it hands over is of a
		// party still to be found.
		done := func(on int32) bool { return p.foundAt[on] == epoch }
		p.index.QueryOthersUntil(id, done, func(other int32) bool {
			if !p.rule.Near(pt, p.point[other]) {
				return true
			}
			on := p.party[other]
			p.foundAt[on] = epoch
			p.refresh(id, on, until)
			found++
			return found < need
		})
	}
	if len(p.volumes) == 0 {
		if p.inVol[id] {
			p.volIndex.Remove(aircraftEntry(id))
			p.inVol[id] = false
		}
		return
	}
	if !p.inVol[id] {
		p.volIndex.Set(aircraftEntry(id), aircraftKind, p.listedAt[id], p.rule.halfM+slackM)
		p.inVol[id] = true
	}
	// Only the volumes: the other aircraft are of the same kind.
	p.volIndex.QueryOthersUntil(aircraftEntry(id), func(int32) bool { return false }, func(e int32) bool {
		ve := p.volSlots[e/2]
		if ve.party != pn && p.rule.NearVolume(ve.v, s.Pos, now) {
			p.refresh(id, ve.party, until)
			ve.see(pn, until)
		}
		return true
	})
}

// Rebuild makes the picture of a new rule from the tracks as last
// reported (states), the open alerts and the live volumes at now: every
// track is assessed once all are in place, as if each had just reported,
// and what old (the picture of the rules before, nil for none) still
// discloses at now lasts as long as it would have, so that a rules change
// makes no track flicker.
func Rebuild(r Rule, old *Picture, states []track.State, open []alert.Transition, volumes []*volume.Volume, now time.Time) *Picture {
	p := New(r)
	p.mu.Lock()
	until := now.UnixNano() + int64(r.Linger)
	ids := make([]track.ID, 0, len(states))
	for i := range states {
		if id, ok := p.apply(states[i].Report, now); ok {
			ids = append(ids, id)
		}
	}
	if old != nil {
		p.carryOver(old, now)
	}
	for _, v := range volumes {
		p.putVolume(v)
	}
	for _, id := range ids {
		p.assess(id, now, until)
	}
	p.mu.Unlock()
	p.Alerts(open, now)
	return p
}

// carryOver keeps what old discloses by proximity, volumes or linger at
// now (p's write lock held; old's read lock taken).
func (p *Picture) carryOver(old *Picture, now time.Time) {
	old.mu.RLock()
	defer old.mu.RUnlock()
	nowNs := now.UnixNano()
	idOf := func(oldID track.ID) (track.ID, bool) {
		s, ok := old.tracks.Get(oldID)
		if !ok {
			return 0, false
		}
		return p.tracks.Lookup(s.Key())
	}
	for q, list := range old.shown {
		for _, oldID := range list {
			u := old.rows[oldID][q].untilNs
			if id, ok := idOf(oldID); ok && u >= nowNs {
				p.refresh(id, p.num(old.names[q]), u)
			}
		}
	}
	for _, oldID := range old.lingerAll {
		id, ok := idOf(oldID)
		if u := old.allUntil[oldID]; ok && u >= nowNs {
			p.lingerAllUntil(id, u)
		}
	}
	p.volSeen = map[string]map[string]int64{}
	for vid, ve := range old.volumes {
		for q, u := range ve.seen {
			if u >= nowNs {
				if p.volSeen[vid] == nil {
					p.volSeen[vid] = map[string]int64{}
				}
				p.volSeen[vid][old.names[q]] = u
			}
		}
	}
}

// created sets up the per-track state of a new track (its id may be a
// reused one whose state was cleared at expiry).
func (p *Picture) created(id track.ID, pn int32) {
	for int(id) >= len(p.party) {
		p.party = append(p.party, 0)
		p.point = append(p.point, Point{})
		p.rows = append(p.rows, nil)
		p.ownAt = append(p.ownAt, 0)
		p.inVol = append(p.inVol, false)
		p.listedAt = append(p.listedAt, [3]float64{})
		p.allUntil = append(p.allUntil, 0)
		p.allAt = append(p.allAt, 0)
	}
	p.party[id] = pn
	p.rows[id] = p.rows[id][:0]
	if len(p.own[pn]) == 0 {
		p.withTracks++
	}
	p.own[pn] = append(p.own[pn], id)
	p.ownAt[id] = int32(len(p.own[pn]))
}

// refresh discloses track id to party pn until untilNs at least.
func (p *Picture) refresh(id track.ID, pn int32, untilNs int64) {
	row := p.rows[id]
	for int(pn) >= len(row) {
		row = append(row, slot{})
	}
	p.rows[id] = row
	sl := &row[pn]
	if sl.untilNs < untilNs {
		sl.untilNs = untilNs
	}
	if sl.at == 0 {
		p.shown[pn] = append(p.shown[pn], id)
		sl.at = int32(len(p.shown[pn]))
	}
}

// unlist takes track id out of party pn's shown list.
func (p *Picture) unlist(id track.ID, pn int32) {
	sl := &p.rows[id][pn]
	list := p.shown[pn]
	i := sl.at - 1
	last := list[len(list)-1]
	list[i] = last
	p.rows[last][pn].at = i + 1
	p.shown[pn] = list[:len(list)-1]
	sl.at = 0
}

// unlistAll takes track id out of lingerAll.
func (p *Picture) unlistAll(id track.ID) {
	i := p.allAt[id] - 1
	last := p.lingerAll[len(p.lingerAll)-1]
	p.lingerAll[i] = last
	p.allAt[last] = i + 1
	p.lingerAll = p.lingerAll[:len(p.lingerAll)-1]
	p.allAt[id] = 0
}

func (ve *volEntry) see(pn int32, untilNs int64) {
	for int(pn) >= len(ve.seen) {
		ve.seen = append(ve.seen, 0)
	}
	ve.seen[pn] = max(ve.seen[pn], untilNs)
}

// Expire drops the tracks stale at now (as the engine does) and forgets
// the disclosures whose time is over.
func (p *Picture) Expire(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tracks.Expire(now, func(id track.ID, _ *track.State) {
		p.index.Remove(id)
		if p.inVol[id] {
			p.volIndex.Remove(aircraftEntry(id))
			p.inVol[id] = false
		}
		pn := p.party[id]
		list := p.own[pn]
		i := p.ownAt[id] - 1
		last := list[len(list)-1]
		list[i] = last
		p.ownAt[last] = i + 1
		p.own[pn] = list[:len(list)-1]
		p.ownAt[id] = 0
		if len(p.own[pn]) == 0 {
			p.withTracks--
		}
		for q := range p.rows[id] {
			if p.rows[id][q].at != 0 {
				p.unlist(id, int32(q))
			}
		}
		p.rows[id] = p.rows[id][:0]
		if p.allAt[id] != 0 {
			p.unlistAll(id)
		}
		p.allUntil[id] = 0
	})
	nowNs := now.UnixNano()
	for i := 0; i < len(p.lingerAll); {
		if id := p.lingerAll[i]; p.allUntil[id] < nowNs {
			p.unlistAll(id) // the last one moved to i
			continue
		}
		i++
	}
	for q := range p.shown {
		for i := 0; i < len(p.shown[q]); {
			id := p.shown[q][i]
			if p.rows[id][q].untilNs < nowNs {
				p.unlist(id, int32(q)) // the last one moved to i
				continue
			}
			i++
		}
	}
}

// Alerts applies alert transitions at now: an alert discloses its
// aircraft to the parties it concerns while it is open, and for the
// linger after it clears.
func (p *Picture) Alerts(trs []alert.Transition, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	until := now.UnixNano() + int64(p.rule.Linger)
	for i := range trs {
		a := &trs[i]
		_, isOpen := p.open[a.ID]
		switch {
		case a.State == alert.StateCleared && isOpen:
			o := p.open[a.ID]
			delete(p.open, a.ID)
			p.count(o, -1)
			for _, k := range o.keys {
				id, live := p.tracks.Lookup(k)
				if !live {
					continue
				}
				if o.all {
					p.lingerAllUntil(id, until)
					continue
				}
				for _, q := range o.parties {
					if q != p.party[id] {
						p.refresh(id, q, until)
					}
				}
			}
		case a.State != alert.StateCleared && !isOpen:
			o := openAlert{all: a.ForEveryone()}
			for i := range a.Aircraft {
				o.keys = append(o.keys, a.Aircraft[i].Key())
			}
			if !o.all {
				for _, name := range a.Parties() {
					o.parties = append(o.parties, p.num(name))
				}
			}
			p.open[a.ID] = o
			p.count(o, 1)
		}
	}
}

// lingerAllUntil discloses track id to every party until untilNs at least.
func (p *Picture) lingerAllUntil(id track.ID, untilNs int64) {
	p.allUntil[id] = max(p.allUntil[id], untilNs)
	if p.allAt[id] == 0 {
		p.lingerAll = append(p.lingerAll, id)
		p.allAt[id] = int32(len(p.lingerAll))
	}
}

// count adds d to the open-alert counts of o's tracks.
func (p *Picture) count(o openAlert, d int32) {
	bump := func(m map[track.Key]int32, k track.Key) {
		if m[k] += d; m[k] <= 0 {
			delete(m, k)
		}
	}
	for _, k := range o.keys {
		if o.all {
			bump(p.alertedAll, k)
			continue
		}
		for _, q := range o.parties {
			if p.names[q] != k.Party {
				bump(p.alerted[q], k)
			}
		}
	}
}

// PutVolume takes in a committed state of a volume (volume.Registry.Observe).
func (p *Picture) PutVolume(v *volume.Volume) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.putVolume(v)
}

// putVolume is PutVolume with the write lock held.
func (p *Picture) putVolume(v *volume.Volume) {
	ve, ok := p.volumes[v.ID]
	if ok && ve.v.ChangeSeq > v.ChangeSeq {
		return
	}
	if v.State != volume.Accepted && v.State != volume.Activated {
		if ok {
			p.volIndex.Remove(volumeEntry(ve.slot))
			p.volSlots[ve.slot] = nil
			p.volFree = append(p.volFree, ve.slot)
			delete(p.volumes, v.ID)
		}
		return
	}
	if !ok {
		ve = &volEntry{party: p.num(v.Party)}
		if n := len(p.volFree); n > 0 {
			ve.slot = p.volFree[n-1]
			p.volFree = p.volFree[:n-1]
			p.volSlots[ve.slot] = ve
		} else {
			ve.slot = int32(len(p.volSlots))
			p.volSlots = append(p.volSlots, ve)
		}
		p.volumes[v.ID] = ve
		for name, u := range p.volSeen[v.ID] {
			ve.see(p.num(name), u)
		}
		delete(p.volSeen, v.ID)
	}
	ve.v = v
	c, r := v.BoundingBall()
	// An aircraft near the volume is within r plus the reach of its
	// centre, and its listed cube (half halfM + slackM) is centred within
	// slackM of it: the two cubes overlap when this one's half makes up
	// the rest.
	p.volIndex.Set(volumeEntry(ve.slot), volumeKind, c, max(r+p.rule.volReachM-p.rule.halfM, 0)+1)
}

// Tracks returns the live tracks inside the box that party may see: its
// own and those disclosed to it at now. The order is unspecified.
func (p *Picture) Tracks(party string, box detect.BBox, now time.Time) []track.State {
	p.mu.RLock()
	defer p.mu.RUnlock()
	nowNs := now.UnixNano()
	var out []track.State
	add := func(id track.ID) {
		if s, ok := p.tracks.Get(id); ok && box.Contains(s.Pos) {
			out = append(out, *s)
		}
	}
	pn, known := p.number[party]
	var seen map[track.ID]bool
	if known {
		out = make([]track.State, 0, len(p.own[pn])+len(p.shown[pn]))
		for _, id := range p.own[pn] {
			add(id)
		}
		for _, id := range p.shown[pn] {
			if p.rows[id][pn].untilNs >= nowNs {
				add(id)
			}
		}
	}
	byAlert := func(m map[track.Key]int32) {
		for k := range m {
			id, live := p.tracks.Lookup(k)
			if !live || k.Party == party || (known && p.shownAt(id, pn, nowNs)) || seen[id] {
				continue
			}
			if seen == nil {
				seen = map[track.ID]bool{}
			}
			seen[id] = true
			add(id)
		}
	}
	if known {
		byAlert(p.alerted[pn])
	}
	byAlert(p.alertedAll)
	for _, id := range p.lingerAll {
		if p.allUntil[id] < nowNs || p.names[p.party[id]] == party || (known && p.shownAt(id, pn, nowNs)) || seen[id] {
			continue
		}
		if seen == nil {
			seen = map[track.ID]bool{}
		}
		seen[id] = true
		add(id)
	}
	return out
}

// shownAt reports whether track id is disclosed to pn by proximity or
// linger at nowNs.
func (p *Picture) shownAt(id track.ID, pn int32, nowNs int64) bool {
	row := p.rows[id]
	return int(pn) < len(row) && row[pn].untilNs >= nowNs
}

// Visible reports whether party may see the aircraft at now.
func (p *Picture) Visible(party string, k track.Key, now time.Time) bool {
	if k.Party == party {
		return true
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.visibleLocked(party, k, now.UnixNano())
}

// VisibleEach reports, for each of keys, whether party may see it at now
// (Visible of each), appended to dst: one turn of the lock for many,
// so that a resolution that asks about every aircraft near an alert
// does not wait for the ingest at each of them.
//
// The party's number is looked up once for all the keys, and of each key
// the track's own disclosures (read by its id) before the open alerts'
// (a look-up by key): a resolution near a manned aircraft over a city
// asks about thousands of drones, and each look-up by key hashes two
// strings.
func (p *Picture) VisibleEach(dst []bool, party string, keys []track.Key, now time.Time) []bool {
	nowNs := now.UnixNano()
	p.mu.RLock()
	defer p.mu.RUnlock()
	pn, known := p.number[party]
	for _, k := range keys {
		dst = append(dst, k.Party == party || p.visibleOf(pn, known, k, nowNs))
	}
	return dst
}

// visibleLocked is Visible for another party's aircraft (lock held).
func (p *Picture) visibleLocked(party string, k track.Key, nowNs int64) bool {
	pn, known := p.number[party]
	return p.visibleOf(pn, known, k, nowNs)
}

// visibleOf is visibleLocked for the party of number pn (known false for
// a party the picture does not know).
func (p *Picture) visibleOf(pn int32, known bool, k track.Key, nowNs int64) bool {
	if len(p.alertedAll) > 0 && p.alertedAll[k] > 0 {
		return true
	}
	id, live := p.tracks.Lookup(k)
	if live && (p.allUntil[id] >= nowNs || known && p.shownAt(id, pn, nowNs)) {
		return true
	}
	return known && p.alerted[pn][k] > 0
}

// VolumeNear reports whether the volume (of another party) has been near
// one of party's aircraft within the linger at now.
func (p *Picture) VolumeNear(party, volumeID string, now time.Time) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	ve, ok := p.volumes[volumeID]
	pn, known := p.number[party]
	if !ok || !known || int(pn) >= len(ve.seen) {
		return false
	}
	return ve.seen[pn] >= now.UnixNano()
}

// Len is the number of live tracks.
func (p *Picture) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.tracks.Len()
}
