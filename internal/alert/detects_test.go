package alert

import (
	"reflect"
	"slices"
	"testing"

	"github.com/deconflict/deconflict/internal/rules"
)

// TestSameDetectionCoversEveryField: every field of the rules is judged,
// a change of it either an input of detection (the engine must be made
// again) or not (the engine and its open alerts go on). A field added to
// the rules fails here until it is placed: left out of SameDetection by
// oversight, a change of it would leave the engine judging by the old
// figure.
func TestSameDetectionCoversEveryField(t *testing.T) {
	wider := func(d rules.Detector) rules.Detector {
		return rules.Cylinder(1.1*rules.Param(d.HorizontalM), rules.Param(d.VerticalM))
	}
	cases := map[string]struct {
		detects bool
		change  func(r *rules.Rules)
	}{
		"Version":        {false, func(r *rules.Rules) { r.Version++ }},
		"HorizontalSepM": {false, func(r *rules.Rules) { r.HorizontalSepM++ }},
		"VerticalSepM":   {false, func(r *rules.Rules) { r.VerticalSepM++ }},
		"TimeBufferS":    {false, func(r *rules.Rules) { r.TimeBufferS++ }},
		// The table holds the lookahead of each entry: the top-level
		// one builds the manned entry of rules without a table only.
		"LookaheadS": {false, func(r *rules.Rules) { r.LookaheadS++ }},
		"Levels": {true, func(r *rules.Rules) {
			r.Levels = slices.Clone(r.Levels)
			r.Levels[0].Name += "-renamed"
		}},
		"StaleAfterS":         {true, func(r *rules.Rules) { r.StaleAfterS++ }},
		"SamePartyAlerts":     {true, func(r *rules.Rules) { r.SamePartyAlerts = !r.SamePartyAlerts }},
		"AckDeadlineS":        {false, func(r *rules.Rules) { r.AckDeadlineS++ }},
		"AckDeadlineHighestS": {false, func(r *rules.Rules) { r.AckDeadlineHighestS++ }},
		"EscalationDeadlineS": {false, func(r *rules.Rules) { r.EscalationDeadlineS++ }},
		"MaxWindowS":          {false, func(r *rules.Rules) { r.MaxWindowS++ }},
		"MaxFootprintM":       {false, func(r *rules.Rules) { r.MaxFootprintM++ }},
		"MaxVertices":         {false, func(r *rules.Rules) { r.MaxVertices++ }},
		"MaxFootprintAreaM2":  {false, func(r *rules.Rules) { r.MaxFootprintAreaM2++ }},
		"MaxAltRangeM":        {false, func(r *rules.Rules) { r.MaxAltRangeM++ }},
		"PriorityMax":         {false, func(r *rules.Rules) { r.PriorityMax = map[string]int{"blue": 5} }},
		"MaxAircraft":         {false, func(r *rules.Rules) { r.MaxAircraft-- }},
		"MaxAircraftByParty":  {false, func(r *rules.Rules) { r.MaxAircraftByParty = map[string]int{"red": 3} }},
		"DiscloseWithinM":     {false, func(r *rules.Rules) { r.DiscloseWithinM++ }},
		"DiscloseWithinAltM":  {false, func(r *rules.Rules) { r.DiscloseWithinAltM++ }},
		"DiscloseLingerS":     {false, func(r *rules.Rules) { r.DiscloseLingerS++ }},
		"VolumeVisibility":    {false, func(r *rules.Rules) { r.VolumeVisibility = rules.VolumesNeedToKnow }},
		"Witnesses": {false, func(r *rules.Rules) {
			r.Witnesses = []rules.Witness{{Party: "blue", URL: "https://witness.example", VKey: "w+00000000+AA"}}
		}},
		"WitnessMaxAgeS":     {false, func(r *rules.Rules) { r.WitnessMaxAgeS++ }},
		"SignaturesRequired": {false, func(r *rules.Rules) { r.SignaturesRequired = !r.SignaturesRequired }},
		"Classes": {true, func(r *rules.Rules) {
			r.Classes = append(slices.Clone(r.Classes), "glider")
		}},
		"Separation": {true, func(r *rules.Rules) {
			r.Separation = slices.Clone(r.Separation)
			r.Separation[0].Detector = wider(r.Separation[0].Detector)
		}},
		"Performance": {true, func(r *rules.Rules) {
			r.Performance = slices.Clone(r.Performance)
			r.Performance[0].MaxGroundSpeedMps++
		}},
	}
	typ := reflect.TypeFor[rules.Rules]()
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		c, ok := cases[name]
		if !ok {
			t.Errorf("rules.Rules.%s: not placed as an input of detection or not", name)
			continue
		}
		base := rules.Default()
		next := rules.Default()
		c.change(&next)
		if reflect.DeepEqual(base, next) {
			t.Errorf("%s: the change changes nothing", name)
		}
		if got := SameDetection(base, next); got == c.detects {
			t.Errorf("%s changed: SameDetection is %v, want %v", name, got, !c.detects)
		}
		if got := NewEngine(base, nil).DetectsAs(next); got == c.detects {
			t.Errorf("%s changed: DetectsAs is %v, want %v", name, got, !c.detects)
		}
	}
	if !SameDetection(rules.Default(), rules.Default()) {
		t.Error("the same rules detect differently")
	}
}

// TestSameDetectionFillsTheTable: rules stored before the separation
// table existed detect by the table FillTable builds from their
// top-level figures: the same as rules that hold that table, and not the
// same once one of those figures changes.
func TestSameDetectionFillsTheTable(t *testing.T) {
	filled := rules.Default()
	old := filled
	old.Classes, old.Separation, old.Performance = nil, nil, nil
	if !SameDetection(old, filled) {
		t.Fatal("rules without a table detect otherwise than with the table built from their figures")
	}
	wider := old
	wider.HorizontalSepM++
	if SameDetection(old, wider) {
		t.Fatal("rules without a table detect alike after a change of their horizontal separation")
	}
}
