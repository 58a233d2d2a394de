package track

import (
	"time"
)

// Outcome says what Apply did with a report.
type Outcome uint8

const (
	// Created: the report started a new track.
	Created Outcome = iota
	// Updated: the report replaced the track's state.
	Updated
	// Duplicate: the track already holds a report of that time; ignored.
	Duplicate
	// OutOfOrder: the track holds a newer report; ignored.
	OutOfOrder
	// TooOld: the report is already stale at the current time; ignored.
	TooOld
)

func (o Outcome) String() string {
	switch o {
	case Created:
		return "created"
	case Updated:
		return "updated"
	case Duplicate:
		return "duplicate"
	case OutOfOrder:
		return "out_of_order"
	case TooOld:
		return "too_old"
	}
	return "unknown"
}

// Applied reports whether the report changed the track table.
func (o Outcome) Applied() bool { return o == Created || o == Updated }

// Counters count reports by outcome since the table was made.
type Counters struct {
	Created    uint64 `json:"created"`
	Updated    uint64 `json:"updated"`
	Duplicate  uint64 `json:"duplicate"`
	OutOfOrder uint64 `json:"out_of_order"`
	TooOld     uint64 `json:"too_old"`
	Expired    uint64 `json:"expired"`
}

// ID is a track's slot in its table. Slots of expired tracks are reused, so
// an ID is only meaningful while the track lives.
type ID = int32

// Table holds the live tracks. It is not safe for concurrent use; the
// detection engine that owns it serialises access.
type Table struct {
	staleAfter time.Duration
	ids        map[Key]ID
	states     []State
	live       []bool
	free       []ID
	counters   Counters
	// perParty counts the live tracks of each party.
	perParty map[string]int
}

// NewTable makes an empty table whose tracks go stale after staleAfter
// without a report (rules.Rules.StaleAfter()).
func NewTable(staleAfter time.Duration) *Table {
	return &Table{staleAfter: staleAfter, ids: make(map[Key]ID), perParty: make(map[string]int)}
}

// StaleAfter is the table's stale time.
func (t *Table) StaleAfter() time.Duration { return t.staleAfter }

// Apply applies a valid report (see Report.Validate) at time now and returns
// the track's id and what happened.
func (t *Table) Apply(r Report, now time.Time) (ID, Outcome) {
	if now.Sub(r.Time) > t.staleAfter {
		t.counters.TooOld++
		id, ok := t.ids[r.Key()]
		if !ok {
			id = -1
		}
		return id, TooOld
	}
	if id, ok := t.ids[r.Key()]; ok {
		s := &t.states[id]
		switch c := r.Time.Compare(s.Time); {
		case c == 0:
			t.counters.Duplicate++
			return id, Duplicate
		case c < 0:
			t.counters.OutOfOrder++
			return id, OutOfOrder
		}
		*s = NewState(r)
		t.counters.Updated++
		return id, Updated
	}
	var id ID
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
		t.states[id] = NewState(r)
		t.live[id] = true
	} else {
		id = ID(len(t.states))
		t.states = append(t.states, NewState(r))
		t.live = append(t.live, true)
	}
	t.ids[r.Key()] = id
	t.perParty[r.Party]++
	t.counters.Created++
	return id, Created
}

// Admit returns, in order, the indices of the reports that would start a
// track of a party that has maxPerParty live tracks already, counting the
// tracks that the reports before them start: a caller applies the others
// only, so that no party holds more than maxPerParty tracks. Reports of
// live tracks are always admitted.
func (t *Table) Admit(reports []Report, maxPerParty int) []int {
	var refused []int
	var started map[string]int // new tracks of the reports so far, by party
	var seen map[Key]bool      // their aircraft
	for i := range reports {
		r := &reports[i]
		// The common case costs no lookup of the aircraft: the party
		// stays within its limit whatever the batch holds.
		if t.perParty[r.Party]+len(reports) <= maxPerParty {
			continue
		}
		k := r.Key()
		if _, live := t.ids[k]; live || seen[k] {
			continue
		}
		if t.perParty[r.Party]+started[r.Party] >= maxPerParty {
			refused = append(refused, i)
			continue
		}
		if started == nil {
			started, seen = map[string]int{}, map[Key]bool{}
		}
		started[r.Party]++
		seen[k] = true
	}
	return refused
}

// Expire drops every track whose last report is more than the stale time
// before now, calling fn with each before its slot is freed.
func (t *Table) Expire(now time.Time, fn func(ID, *State)) {
	for i := range t.states {
		if !t.live[i] || now.Sub(t.states[i].Time) <= t.staleAfter {
			continue
		}
		id := ID(i)
		if fn != nil {
			fn(id, &t.states[i])
		}
		delete(t.ids, t.states[i].Key())
		if n := t.perParty[t.states[i].Party] - 1; n > 0 {
			t.perParty[t.states[i].Party] = n
		} else {
			delete(t.perParty, t.states[i].Party)
		}
		t.states[i] = State{}
		t.live[i] = false
		t.free = append(t.free, id)
		t.counters.Expired++
	}
}

// Get returns the live track id; the pointer is valid until the next call
// that changes the table.
func (t *Table) Get(id ID) (*State, bool) {
	if id < 0 || int(id) >= len(t.states) || !t.live[id] {
		return nil, false
	}
	return &t.states[id], true
}

// Lookup finds the track of an aircraft.
func (t *Table) Lookup(k Key) (ID, bool) {
	id, ok := t.ids[k]
	return id, ok
}

// Len is the number of live tracks.
func (t *Table) Len() int { return len(t.ids) }

// PartyLen is the number of live tracks of party.
func (t *Table) PartyLen(party string) int { return t.perParty[party] }

// Cap is one more than the highest id in use, for sizing per-id slices.
func (t *Table) Cap() int { return len(t.states) }

// Each calls fn for every live track in id order.
func (t *Table) Each(fn func(ID, *State)) {
	for i := range t.states {
		if t.live[i] {
			fn(ID(i), &t.states[i])
		}
	}
}

// Counters returns the report counters.
func (t *Table) Counters() Counters { return t.counters }
