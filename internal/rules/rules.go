// Package rules owns the agreed rules between the parties: separation
// minima, time buffer and lookahead, alert levels, the aircraft classes and
// the separation table by class pair (a detector, its parameters, a
// lookahead and alert levels for each pair of classes), acknowledgment
// deadlines and the limits on declarations, the priorities each party may
// use, the fleet each party may fly, and what the aircraft of each class can fly (the limits of their
// resolutions).
// The rules are data: versioned, visible to every party, and changed only
// as a whole new version. Every figure has an upper bound (Validate), and
// the durations derived from them saturate rather than overflow.
package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/party"
	"github.com/deconflict/deconflict/internal/printable"
	fnote "github.com/transparency-dev/formats/note"
)

// Level is one alert level: a conflict whose loss of separation starts within
// MaxTimeToLoSS seconds is at least at this level.
type Level struct {
	Name          string  `json:"name"`
	MaxTimeToLoSS float64 `json:"max_time_to_los_s"`
}

// Rules is one version of the agreed rules. Lengths are meters, times
// seconds; the defaults are the aviation figures (5 NM, 1000 ft) converted.
//
// Tactical detection separates each pair of aircraft by the entry of
// Separation for their two classes. HorizontalSepM and VerticalSepM are
// the strategic separation of volumes; together with LookaheadS and
// Levels they are also the manned-manned entry of the default table (and
// of rules written before the table existed, see FillTable). Levels name
// the level of nonconforming alerts (the first).
type Rules struct {
	Version int64 `json:"version"`

	HorizontalSepM float64 `json:"horizontal_sep_m"`
	VerticalSepM   float64 `json:"vertical_sep_m"`
	// TimeBufferS grows every volume's time window on both sides before
	// the strategic check.
	TimeBufferS float64 `json:"time_buffer_s"`

	LookaheadS float64 `json:"lookahead_s"`
	// Levels, ordered from the least to the most severe (decreasing
	// MaxTimeToLoSS). The last one is the highest level.
	Levels          []Level `json:"levels"`
	StaleAfterS     float64 `json:"stale_after_s"`
	SamePartyAlerts bool    `json:"same_party_alerts"`

	AckDeadlineS        float64 `json:"ack_deadline_s"`
	AckDeadlineHighestS float64 `json:"ack_deadline_highest_s"`
	EscalationDeadlineS float64 `json:"escalation_deadline_s"`

	MaxWindowS    float64 `json:"max_window_s"`
	MaxFootprintM float64 `json:"max_footprint_m"`
	MaxVertices   int     `json:"max_vertices"`
	// MaxFootprintAreaM2 bounds a footprint's area and MaxAltRangeM the
	// height of its altitude band: a volume declares an intended use, it
	// does not claim a region.
	MaxFootprintAreaM2 float64 `json:"max_footprint_area_m2"`
	MaxAltRangeM       float64 `json:"max_alt_range_m"`
	// PriorityMax is the highest priority each party may give its
	// volumes; a party not listed may use priority 0 only. Priority is
	// granted by the agreed rules, never chosen by a party.
	PriorityMax map[string]int `json:"priority_max,omitempty"`
	// MaxAircraft is the fleet every party agreed each party may fly: the
	// live aircraft (tracks) it may have at once, unless
	// MaxAircraftByParty names it. Each aircraft of a party can raise an
	// alert against every aircraft of another near it, each a hotline item
	// the other must acknowledge: without an agreed bound a party could
	// surround another's aircraft with its own and fill its hotline with
	// real alerts. A report that would start one more is rejected; the
	// party's live aircraft report on, and nothing they raise is held
	// back. The server's own bound (serve --max-aircraft-per-party)
	// holds too: the lower of the two applies.
	MaxAircraft        int            `json:"max_aircraft"`
	MaxAircraftByParty map[string]int `json:"max_aircraft_by_party,omitempty"`

	// Need to know (package disclose): another party's aircraft is
	// disclosed to a party while it is within DiscloseWithinM horizontally
	// and DiscloseWithinAltM vertically of one of the party's aircraft or
	// active volumes, while it is in an open alert that concerns the
	// party, and DiscloseLingerS seconds after either stopped.
	DiscloseWithinM    float64 `json:"disclose_within_m"`
	DiscloseWithinAltM float64 `json:"disclose_within_alt_m"`
	DiscloseLingerS    float64 `json:"disclose_linger_s"`
	// VolumeVisibility is VolumesAll (every party sees every volume,
	// reduced) or VolumesNeedToKnow (another party's volume only where
	// safety needs it).
	VolumeVisibility string `json:"volume_visibility"`
	// Witnesses are the parties' C2SP tlog-witnesses, to which the record
	// pushes every checkpoint; WitnessMaxAgeS is how old a party's latest
	// cosignature may be before its check reports the record STALE.
	Witnesses      []Witness `json:"witnesses,omitempty"`
	WitnessMaxAgeS float64   `json:"witness_max_age_s"`
	// SignaturesRequired refuses every write of a party that has no key:
	// when false, only parties with a key must sign.
	SignaturesRequired bool `json:"signatures_required"`
	// Classes are the aircraft classes a position report may name; they
	// include ClassManned and ClassUAS.
	Classes []string `json:"classes"`
	// Separation has exactly one entry for each pair of classes.
	Separation []Separation `json:"separation"`
	// Performance has exactly one entry for each class: what its
	// aircraft can fly, which bounds their resolutions.
	Performance []Performance `json:"performance"`
}

// Witness is one party's witness: where the log pushes its checkpoints and
// the cosignature verifier key its cosignatures verify with.
type Witness struct {
	Party string `json:"party"`
	URL   string `json:"url"`
	VKey  string `json:"vkey"`
}

// Values of Rules.VolumeVisibility.
const (
	VolumesAll        = "all"
	VolumesNeedToKnow = "need_to_know"
)

// MaxPriority is the highest priority the rules can grant.
const MaxPriority = 1000

// MaxPriorityFor is the highest priority party may give its volumes.
func (r Rules) MaxPriorityFor(party string) int { return r.PriorityMax[party] }

// DefaultMaxAircraft is the default of MaxAircraft: the server's default
// bound on a party's live aircraft (service.DefaultMaxAircraftPerParty), so
// that rules that agree no fleet change nothing; parties agree smaller
// fleets, party by party, in MaxAircraftByParty.
const DefaultMaxAircraft = 50_000

// MaxVerticesBound is the most MaxVertices can be: a footprint holds at
// most this many positions and one more (a polygon's ring closed).
const MaxVerticesBound = maxVertices

// MaxAircraftBound is the largest fleet the rules can agree: at about 3 KB
// a track, 3 GB of the server's memory for one party.
const MaxAircraftBound = 1_000_000

// MaxAircraftFor is the number of live aircraft party may have at once.
func (r Rules) MaxAircraftFor(party string) int {
	if n, ok := r.MaxAircraftByParty[party]; ok {
		return n
	}
	return r.MaxAircraft
}

// Default returns version 1 of the rules with the conventional figures and
// the default separation table (DefaultSeparation).
func Default() Rules {
	r := Rules{
		Version:        1,
		HorizontalSepM: geo.NMToM(5),
		VerticalSepM:   geo.FeetToM(1000),
		TimeBufferS:    60,
		LookaheadS:     300,
		Levels: []Level{
			{Name: "advisory", MaxTimeToLoSS: 300},
			{Name: "caution", MaxTimeToLoSS: 120},
			{Name: "warning", MaxTimeToLoSS: 60},
		},
		StaleAfterS:         30,
		AckDeadlineS:        120,
		AckDeadlineHighestS: 30,
		EscalationDeadlineS: 120,
		MaxWindowS:          24 * 3600,
		MaxFootprintM:       500_000,
		MaxVertices:         1000,
		MaxFootprintAreaM2:  100_000e6, // 100,000 km²
		MaxAltRangeM:        15_000,
		DiscloseWithinM:     geo.NMToM(50),
		DiscloseWithinAltM:  geo.FeetToM(10_000),
		DiscloseLingerS:     60,
		VolumeVisibility:    VolumesAll,
		WitnessMaxAgeS:      600,
		MaxAircraft:         DefaultMaxAircraft,
	}
	r.FillTable()
	return r
}

// Decode reads a stored or sent version of the rules. Fields that an older
// version did not have take their default, so that the rules stored
// before a field existed still load; the classes and the separation table
// are filled from the version's own figures (FillTable).
func Decode(body []byte) (Rules, error) {
	r := Default()
	r.Levels, r.Classes, r.Separation, r.Performance = nil, nil, nil, nil
	if err := json.Unmarshal(body, &r); err != nil {
		return Rules{}, err
	}
	r.FillTable()
	return r, nil
}

// The upper bounds of the rules: beyond them a figure is a mistake (or an
// attack: a time buffer of 1e15 s overflowed the time arithmetic and ended
// every volume), and every figure within them keeps the time arithmetic of
// the service far from overflow (time.Duration holds 292 years).
//
// The lookahead is at most ten minutes, twice the default: tactical
// detection predicts straight flight, which tells little beyond a few
// minutes (the default table looks 60 to 300 s ahead), and detection
// indexes every aircraft's path over its staleness and the lookahead, so
// that its cost grows with both: at an hour each (the former bound) a
// drone cost 75 times what it costs under the defaults. The staleness is
// at most five minutes, ten times the default: a track unreported for
// longer is not where dead reckoning puts it (75 km away for an
// airliner). A footprint has at most 2,000 vertices, twice the default:
// the conflict test of two polygons (or two corridors) tries every edge
// of one against every edge of the other, under the lock every writer of
// volumes waits for, and two of 10,000 vertices (the former bound) took
// 0.7 s where two of 2,000 take 30 ms.
// MaxWitnessMaxAgeS is the most witness_max_age_s can be (a day): the
// rules refuse more, and the service clamps rules agreed under wider
// bounds to it. A party's check of the record, which reads the rules from
// the server it checks, takes no more than this whatever the server says.
const MaxWitnessMaxAgeS = maxTimeS

const (
	maxSepM       = 200_000 // 108 NM
	maxVSepM      = 5_000
	maxTimeS      = 86_400 // buffers, deadlines: a day
	maxLookaheadS = 600    // ten minutes, see above
	maxStaleS     = 300    // five minutes
	maxWindowS    = 31 * 86_400
	maxWidthM     = 2_000_000
	maxAreaM2     = 1e12 // 1,000,000 km²
	maxAltRangeM  = 30_500
	maxVertices   = 2_000 // see above
	maxLevels     = 16
	maxNameLen    = 64
	maxPriorities = 1_000
	// Beyond 1,000 km every aircraft of a theatre sees every other one
	// anyway (and the index that keeps disclosure current holds everything
	// in one cell); 50 km of altitude covers everything that flies.
	maxDiscloseWithinM    = 1_000_000
	maxDiscloseWithinAltM = 50_000
	maxWitnesses          = 64
	maxURLBytes           = 2048
)

// The lower bounds of the rules: a figure above zero but below them is as
// good as zero where it is used, and reads as a figure where it is shown.
// A separation of 1e-300 m passed "above zero": every pair of aircraft
// was separated by nothing, and every party reviewing the proposal read a
// separation.
//
// minSepM is the smallest length of the rules (a separation minimum, a
// detector's threshold, a limit on the size of declarations, a reach of
// need to know): no aircraft is smaller than a metre, and no
// surveillance source places one closer than that (GNSS to a few metres,
// ADS-B's best accuracy category 3 m), so that a separation below it
// decides on the noise of the reports. Durations are at least
// minDurationS (separation.go), and a figure that may be zero (a time
// buffer, a linger, a tau threshold, a reach of need to know) is zero or
// at least its minimum: a buffer of 1e-300 s is no buffer, and must read
// as none.
const minSepM = 1

// MaxTimeBuffer is the largest time buffer Validate accepts.
const MaxTimeBuffer = maxTimeS * time.Second

// Validate reports the first field that makes the rules unusable, naming it
// by its JSON name.
func (r Rules) Validate() error {
	bounded := []struct {
		name               string
		v                  float64
		zeroOK             bool
		minValue, maxValue float64
	}{
		{"horizontal_sep_m", r.HorizontalSepM, false, minSepM, maxSepM},
		{"vertical_sep_m", r.VerticalSepM, false, minSepM, maxVSepM},
		{"time_buffer_s", r.TimeBufferS, true, minDurationS, maxTimeS},
		{"max_footprint_m", r.MaxFootprintM, false, minSepM, maxWidthM},
		{"max_footprint_area_m2", r.MaxFootprintAreaM2, false, minSepM * minSepM, maxAreaM2},
		{"max_alt_range_m", r.MaxAltRangeM, false, minSepM, maxAltRangeM},
		{"disclose_within_m", r.DiscloseWithinM, true, minSepM, maxDiscloseWithinM},
		{"disclose_within_alt_m", r.DiscloseWithinAltM, true, minSepM, maxDiscloseWithinAltM},
		{"disclose_linger_s", r.DiscloseLingerS, true, minDurationS, maxTimeS},
	}
	for _, b := range bounded {
		if err := checkBounded(b.name, b.v, b.zeroOK, b.minValue, b.maxValue); err != nil {
			return err
		}
	}
	durations := []struct {
		name     string
		v        float64
		maxValue float64
	}{
		{"lookahead_s", r.LookaheadS, maxLookaheadS},
		{"stale_after_s", r.StaleAfterS, maxStaleS},
		{"ack_deadline_s", r.AckDeadlineS, maxTimeS},
		{"ack_deadline_highest_s", r.AckDeadlineHighestS, maxTimeS},
		{"escalation_deadline_s", r.EscalationDeadlineS, maxTimeS},
		{"max_window_s", r.MaxWindowS, maxWindowS},
		{"witness_max_age_s", r.WitnessMaxAgeS, maxTimeS},
	}
	for _, d := range durations {
		if err := checkDuration(d.name, d.v, d.maxValue); err != nil {
			return err
		}
	}
	if r.MaxVertices < 4 || r.MaxVertices > maxVertices {
		return fielderr.Errorf("max_vertices", "must be from 4 to %d", maxVertices)
	}
	if r.VolumeVisibility != VolumesAll && r.VolumeVisibility != VolumesNeedToKnow {
		return fielderr.Errorf("volume_visibility", "must be %q or %q", VolumesAll, VolumesNeedToKnow)
	}
	if len(r.Levels) == 0 || len(r.Levels) > maxLevels {
		return fielderr.Errorf("levels", "from 1 to %d alert levels are needed", maxLevels)
	}
	seen := map[string]bool{}
	for i, l := range r.Levels {
		f := fmt.Sprintf("levels[%d]", i)
		if err := checkLevelName(f+".name", l.Name); err != nil {
			return err
		}
		if seen[l.Name] {
			return fielderr.New(f+".name", "duplicate level name "+l.Name)
		}
		seen[l.Name] = true
		if err := checkAlertingTime(f+".max_time_to_los_s", l.MaxTimeToLoSS, r.LookaheadS, "lookahead_s"); err != nil {
			return err
		}
		if i > 0 && l.MaxTimeToLoSS >= r.Levels[i-1].MaxTimeToLoSS {
			return fielderr.New(f+".max_time_to_los_s", "levels must be ordered from least to most severe (decreasing time)")
		}
	}
	if err := r.validateTable(); err != nil {
		return err
	}
	if err := r.validatePerformance(); err != nil {
		return err
	}
	if len(r.PriorityMax) > maxPriorities {
		return fielderr.Errorf("priority_max", "at most %d parties", maxPriorities)
	}
	for _, name := range slices.Sorted(maps.Keys(r.PriorityMax)) {
		p, f := r.PriorityMax[name], "priority_max."+printable.Escape(name)
		if err := checkPartyName(f, name); err != nil {
			return err
		}
		if p < 0 || p > MaxPriority {
			return fielderr.Errorf(f, "must be from 0 to %d", MaxPriority)
		}
	}
	if r.MaxAircraft < 1 || r.MaxAircraft > MaxAircraftBound {
		return fielderr.Errorf("max_aircraft", "must be from 1 to %d", MaxAircraftBound)
	}
	if len(r.MaxAircraftByParty) > maxPriorities {
		return fielderr.Errorf("max_aircraft_by_party", "at most %d parties", maxPriorities)
	}
	for _, name := range slices.Sorted(maps.Keys(r.MaxAircraftByParty)) {
		n, f := r.MaxAircraftByParty[name], "max_aircraft_by_party."+printable.Escape(name)
		if err := checkPartyName(f, name); err != nil {
			return err
		}
		if n < 0 || n > MaxAircraftBound {
			return fielderr.Errorf(f, "must be from 0 to %d", MaxAircraftBound)
		}
	}
	return r.ValidateWitnesses()
}

// ValidateWitnesses checks the witnesses alone (Validate checks them
// too): how a change of a party's witness is checked against rules in
// force that were agreed under an older version and may fail this
// version's bounds elsewhere (rules.InUse), which the change leaves as
// they are.
func (r Rules) ValidateWitnesses() error {
	if len(r.Witnesses) > maxWitnesses {
		return fielderr.Errorf("witnesses", "at most %d witnesses", maxWitnesses)
	}
	names := map[string]bool{}
	for i, w := range r.Witnesses {
		f := fmt.Sprintf("witnesses[%d]", i)
		if err := checkPartyName(f+".party", w.Party); err != nil {
			return err
		}
		if len(w.URL) > maxURLBytes {
			return fielderr.Errorf(f+".url", "%d bytes, at most %d", len(w.URL), maxURLBytes)
		}
		// Every party reads the URL to check that the witness is the
		// one it runs: one that shows another (an override reversing
		// part of the host, an invisible character) sends its
		// checkpoints elsewhere unseen.
		if err := printable.Check(w.URL); err != nil {
			return fielderr.New(f+".url", err.Error())
		}
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fielderr.New(f+".url", "must be an http or https URL without query (the witness's submission prefix)")
		}
		// Every party reads the rules: a password or token in the URL
		// is published to them all, and a bare "name@" before the host
		// reads as a host it is not.
		if u.User != nil {
			return fielderr.New(f+".url", "must not carry user information (user:password@ before the host): every party reads the rules; authenticate the witness otherwise")
		}
		v, err := fnote.NewVerifierForCosignatureV1(w.VKey)
		if err != nil {
			return fielderr.Errorf(f+".vkey", "not a cosignature verifier key (<name>+<hash>+<base64>): %v", err)
		}
		if err := printable.Check(v.Name()); err != nil {
			return fielderr.Errorf(f+".vkey", "the witness's name %v", err)
		}
		if names[v.Name()] {
			return fielderr.New(f+".vkey", "two witnesses with one name "+v.Name())
		}
		names[v.Name()] = true
	}
	return nil
}

// checkLevelName refuses a level name that is empty, too long, or holds a
// control or invisible character: level names reach every party in its
// alerts, hotline items and terminal, and a party reviewing a proposal
// must see the name it accepts ("warning" and "warning" with a zero-width
// space are two levels that look alike, and a line feed or an escape
// sequence would forge what the console or a terminal shows).
func checkLevelName(field, name string) error {
	if name == "" || len(name) > maxNameLen {
		return fielderr.Errorf(field, "must be 1 to %d bytes", maxNameLen)
	}
	if err := printable.Check(name); err != nil {
		return fielderr.New(field, err.Error())
	}
	return nil
}

// checkPartyName refuses what cannot be the name of a party
// (party.ValidateName): a grant or a witness for a name no party can
// have names nobody, and the name reaches the parties as it is.
func checkPartyName(field, name string) error {
	if err := party.ValidateName(name); err != nil {
		var fe *fielderr.Error
		if errors.As(err, &fe) {
			return fielderr.New(field, "not a party name: "+fe.Msg)
		}
		return fielderr.New(field, err.Error())
	}
	return nil
}

// ErrNoLevel is returned by LevelFor when the time to loss of separation is
// beyond every level.
var ErrNoLevel = errors.New("rules: no alert level for this time to loss of separation")

// LevelFor returns the most severe level whose threshold the time to loss
// of separation is within, or ErrNoLevel.
func (r Rules) LevelFor(timeToLoSS float64) (Level, error) {
	idx := sort.Search(len(r.Levels), func(i int) bool { return timeToLoSS > r.Levels[i].MaxTimeToLoSS })
	// Levels are decreasing; every level before idx has a threshold >= t.
	if idx == 0 {
		return Level{}, ErrNoLevel
	}
	return r.Levels[idx-1], nil
}

// Highest returns the most severe level.
func (r Rules) Highest() Level { return r.Levels[len(r.Levels)-1] }

// IsHighest reports whether the level is the most severe of Levels or of
// some entry of the separation table.
func (r Rules) IsHighest(level string) bool {
	if level == "" {
		return false
	}
	if len(r.Levels) > 0 && level == r.Highest().Name {
		return true
	}
	for _, s := range r.Separation {
		if len(s.Levels) > 0 && level == s.Levels[len(s.Levels)-1].Name {
			return true
		}
	}
	return false
}

// LevelRank is the position of a level name from the least severe (0):
// its index in Levels, else in the first separation entry that has it;
// -1 when no level has the name. The default rules rank advisory and
// preventive 0, caution and corrective 1, warning 2.
func (r Rules) LevelRank(level string) int {
	for i, l := range r.Levels {
		if l.Name == level {
			return i
		}
	}
	for _, s := range r.Separation {
		for i, l := range s.Levels {
			if l.Name == level {
				return i
			}
		}
	}
	return -1
}

// AckDeadline is how long a recipient has to acknowledge a hotline item at
// the given alert level ("" for plain messages): the shorter deadline for
// a most severe level (IsHighest).
func (r Rules) AckDeadline(level string) time.Duration {
	if r.IsHighest(level) {
		return seconds(r.AckDeadlineHighestS)
	}
	return seconds(r.AckDeadlineS)
}

// EscalationDeadline is the second deadline that runs after an item escalated.
func (r Rules) EscalationDeadline() time.Duration { return seconds(r.EscalationDeadlineS) }

// LongestDeadline is the longest a hotline item's running deadline lies
// ahead of the moment it is set: the longer acknowledgment deadline, or
// the escalation deadline.
func (r Rules) LongestDeadline() time.Duration {
	return max(seconds(r.AckDeadlineS), seconds(r.AckDeadlineHighestS), seconds(r.EscalationDeadlineS))
}

// StaleAfter is how long a track lives without a report.
func (r Rules) StaleAfter() time.Duration { return seconds(r.StaleAfterS) }

// Lookahead is the tactical prediction horizon.
func (r Rules) Lookahead() time.Duration { return seconds(r.LookaheadS) }

// TimeBuffer is how far every volume's window is grown on both sides.
func (r Rules) TimeBuffer() time.Duration { return seconds(r.TimeBufferS) }

// MaxWindow is the longest window a volume may declare.
func (r Rules) MaxWindow() time.Duration { return seconds(r.MaxWindowS) }

// seconds converts seconds to a Duration, saturating at the largest one
// (292 years): a figure too large for a Duration must never wrap around to
// a negative one (Validate keeps the rules far below, but rules of the
// past and of callers that do not validate pass here too). NaN and
// negative figures are zero.
func seconds(s float64) time.Duration {
	switch {
	case !(s > 0):
		return 0
	case s >= float64(math.MaxInt64)/float64(time.Second):
		return math.MaxInt64
	}
	return time.Duration(s * float64(time.Second))
}
