package detect

import (
	"fmt"
	"math"

	"github.com/deconflict/deconflict/internal/rules"
)

// Table is the separation table of the rules compiled for detection: the
// aircraft classes and, for each pair of classes, its Entry.
type Table struct {
	classes []string
	entries []*Entry
	byPair  []*Entry // [a*len(classes)+b], both orders
}

// Entry is one entry of the separation table compiled: the detector of
// each of its alert levels, its lookahead, and how far a loss of
// separation can reach, which sizes the index.
type Entry struct {
	// Rule is the entry as the rules state it.
	Rule rules.Separation
	// A and B are the classes' indices in the table, A <= B.
	A, B       uint8
	LookaheadS float64
	// Levels from the least to the most severe, as the rules order them.
	Levels []AlertLevel
	// detectors are the distinct detectors of the levels, levelDet[i]
	// the one of level i.
	detectors []Detector
	levelDet  []uint8
	// reach bounds every detector of the entry; reachM and reachTimeS are
	// its isotropic form for the index: hypot of the distances, and the
	// larger time.
	reach              Reach
	reachM, reachTimeS float64
	// index is the entry's position in Table.entries.
	index int
}

// maxLevels bounds the levels of an entry (the rules allow 16).
const maxLevels = 16

// DetectorFrom compiles a detector of the rules.
func DetectorFrom(d rules.Detector) (Detector, error) {
	switch d.Kind {
	case rules.DetectorCylinder:
		return Cylinder{HorizontalM: rules.Param(d.HorizontalM), VerticalM: rules.Param(d.VerticalM)}, nil
	case rules.DetectorDO365WCV:
		return WCV{DTHRM: rules.Param(d.DTHRM), ZTHRM: rules.Param(d.ZTHRM), TTHRS: rules.Param(d.TTHRS), TCOAS: rules.Param(d.TCOAS)}, nil
	}
	return nil, fmt.Errorf("detect: unknown detector kind %q", d.Kind)
}

// NewTable compiles the classes and separation table of valid rules
// (rules.Rules.Validate); rules without a table get the default one built
// from their own figures (rules.Rules.FillTable).
func NewTable(r rules.Rules) (*Table, error) {
	r.FillTable()
	if len(r.Classes) > math.MaxUint8 {
		return nil, fmt.Errorf("detect: %d classes", len(r.Classes))
	}
	t := &Table{classes: r.Classes, byPair: make([]*Entry, len(r.Classes)*len(r.Classes))}
	for i := range r.Separation {
		s := r.Separation[i]
		if len(s.Classes) != 2 || len(s.Levels) == 0 || len(s.Levels) > maxLevels {
			return nil, fmt.Errorf("detect: separation[%d] is not valid", i)
		}
		a, okA := t.Class(s.Classes[0])
		b, okB := t.Class(s.Classes[1])
		if !okA || !okB {
			return nil, fmt.Errorf("detect: separation[%d] names an unknown class", i)
		}
		if a > b {
			a, b = b, a
		}
		e := &Entry{Rule: s, A: a, B: b, LookaheadS: s.LookaheadS, index: len(t.entries)}
		inclusive := s.Detector.Kind != rules.DetectorDO365WCV
		for li := range s.Levels {
			d, err := DetectorFrom(s.LevelDetector(li))
			if err != nil {
				return nil, err
			}
			k := -1
			for j, o := range e.detectors {
				if o == d {
					k = j
				}
			}
			if k < 0 {
				k = len(e.detectors)
				e.detectors = append(e.detectors, d)
				e.reach = e.reach.Union(d.Reach())
			}
			e.levelDet = append(e.levelDet, uint8(k))
			e.Levels = append(e.Levels, AlertLevel{Name: s.Levels[li].Name, Detector: d, AlertingTimeS: s.Levels[li].MaxTimeToLoSS, Inclusive: inclusive})
		}
		e.reachM = math.Hypot(e.reach.HorizontalM, e.reach.VerticalM)
		e.reachTimeS = max(e.reach.HorizontalS, e.reach.VerticalS)
		n := len(t.classes)
		if t.byPair[int(a)*n+int(b)] != nil {
			return nil, fmt.Errorf("detect: separation[%d] is a second entry for %s and %s", i, s.Classes[0], s.Classes[1])
		}
		t.byPair[int(a)*n+int(b)], t.byPair[int(b)*n+int(a)] = e, e
		t.entries = append(t.entries, e)
	}
	for i, e := range t.byPair {
		if e == nil {
			n := len(t.classes)
			return nil, fmt.Errorf("detect: no separation entry for %s and %s", t.classes[i/n], t.classes[i%n])
		}
	}
	return t, nil
}

// Class returns the index of a class; the empty class is rules.ClassManned.
func (t *Table) Class(name string) (uint8, bool) {
	if name == "" {
		name = rules.ClassManned
	}
	for i, c := range t.classes {
		if c == name {
			return uint8(i), true
		}
	}
	return 0, false
}

// Classes are the class names, by index.
func (t *Table) Classes() []string { return t.classes }

// Entries are the entries, in the order of the rules.
func (t *Table) Entries() []*Entry { return t.entries }

// For returns the entry of two classes by index.
func (t *Table) For(a, b uint8) *Entry { return t.byPair[int(a)*len(t.classes)+int(b)] }

// ForNames returns the entry of two classes by name, nil when either is
// unknown.
func (t *Table) ForNames(a, b string) *Entry {
	ca, okA := t.Class(a)
	cb, okB := t.Class(b)
	if !okA || !okB {
		return nil
	}
	return t.For(ca, cb)
}

// Index is the entry's position in Table.Entries, -1 for nil.
func (e *Entry) Index() int {
	if e == nil {
		return -1
	}
	return e.index
}

// Involves reports whether the entry is for pairs with class c.
func (e *Entry) Involves(c uint8) bool { return e.A == c || e.B == c }

// twoSided reports whether the entry pairs two different classes, so that
// its index lists only one of them.
func (e *Entry) twoSided() bool { return e.A != e.B }

// Grade evaluates the relative motion (intruder minus ownship) against every
// level: the loss of each distinct detector over [0, LookaheadS], the most
// severe level that holds (1 is Levels[0], 0 none), the same with every
// level's time grown by marginS (a level that would hold if the loss came
// marginS sooner), and the loss of the level's detector. The loss is that
// of the most severe level that holds, or of the first level when none
// does.
func (e *Entry) Grade(relPos, relVel Vec3, marginS float64) (level, levelWithMargin int, loss Loss) {
	var losses [maxLevels]Loss
	for i, d := range e.detectors {
		losses[i] = d.Loss(relPos, relVel, 0, e.LookaheadS)
	}
	return e.grade(&losses, marginS)
}

// GradeLoss is Grade for a loss found by every level's detector alike (an
// entry whose levels share one detector, as the cylinder entries do).
func (e *Entry) GradeLoss(loss Loss, marginS float64) (level, levelWithMargin int) {
	var losses [maxLevels]Loss
	for i := range e.detectors {
		losses[i] = loss
	}
	level, levelWithMargin, _ = e.grade(&losses, marginS)
	return level, levelWithMargin
}

func (e *Entry) grade(losses *[maxLevels]Loss, marginS float64) (level, levelWithMargin int, loss Loss) {
	for i := len(e.Levels) - 1; i >= 0; i-- {
		l := &e.Levels[i]
		lo := losses[e.levelDet[i]]
		if level == 0 && l.Holds(lo) {
			level = i + 1
		}
		if levelWithMargin == 0 && l.holdsWithin(lo, l.AlertingTimeS+marginS) {
			levelWithMargin = i + 1
		}
	}
	k := 0
	if level > 0 {
		k = level - 1
	}
	return level, levelWithMargin, losses[e.levelDet[k]]
}

// HorizontalM is the entry's horizontal threshold: the largest horizontal
// distance of its cylinders, or DTHR of its well clear.
func (e *Entry) HorizontalM() float64 {
	var h float64
	for _, d := range e.detectors {
		switch d := d.(type) {
		case Cylinder:
			h = max(h, d.HorizontalM)
		case WCV:
			h = max(h, d.DTHRM)
		}
	}
	return h
}

// pruneRadiusM is the distance within which a pair must come, at the
// instant of a loss of separation, for relative speed relSpeedMps: the
// reach made isotropic, plus a margin for rounding.
func (e *Entry) pruneRadiusM(relSpeedMps float64) float64 {
	return e.reachM + pruneMarginM + relSpeedMps*e.reachTimeS
}

// growVM is how much the entry's grid grows the radial band of an aircraft
// flying at speedMps (box32). At an instant of loss the pair is within
// V' = V + |w|·TV vertically and H' = H + |w|·TH horizontally in its
// frame (the reach), so along the geocentric radius through its midpoint
// at that instant, within a tilt of the frame's vertical, within
// V' + (H' + V')·tilt; and the difference of the two distances from the
// centre is at most that component (|c+x| − |c−x| = 2c·x/(|c+x| + |c−x|)
// for midpoint c and half-difference x).
//
// The frame is the one at the pair's midpoint when it is judged, and the
// loss up to the lookahead L later, where the midpoint has moved on by up
// to (sa+sb)/2·L: the tilt is maxVerticalTiltRad (the geodetic normal
// against the radius) plus the angle that distance spans at the centre,
// (sa+sb)·c with c = L/(2·minRadiusM). (Without it an airliner at 612 m/s
// losing separation at the end of a 330 s lookahead, its partner 53 km
// away, was judged in conflict by the pair math and never paired by the
// index.) With |w| at most sa+sb, (H' + V')·(sa+sb)·c is at most
// c·[(V+H)·(sa+sb) + 2·(TV+TH)·(sa²+sb²)], so that the bound is the sum
// of this share for each aircraft.
func (e *Entry) growVM(speedMps float64) float64 {
	c := e.LookaheadS / (2 * minRadiusM)
	return (e.reach.VerticalM/2+speedMps*e.reach.VerticalS)*(1+maxVerticalTiltRad) +
		(e.reach.HorizontalM/2+speedMps*e.reach.HorizontalS)*maxVerticalTiltRad +
		c*((e.reach.VerticalM+e.reach.HorizontalM)*speedMps+2*(e.reach.VerticalS+e.reach.HorizontalS)*speedMps*speedMps) +
		pruneMarginM
}

// minRadiusM bounds from below the distance from the Earth's centre of
// anything tracked: the polar radius (6,356.8 km) less the lowest
// altitude accepted, rounded down.
const minRadiusM = 6_300_000

// growM is how much the entry's grid grows the path boxes of an aircraft
// flying at speedMps: two boxes grown this way for two aircraft overlap
// whenever the aircraft come within the prune radius of their relative
// speed, which is at most the sum of their speeds.
func (e *Entry) growM(speedMps float64) float64 {
	return e.pruneRadiusM(0)/2 + pruneMarginM + speedMps*e.reachTimeS
}
