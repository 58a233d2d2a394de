package service

import (
	"math"
	"reflect"
	"testing"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/resolve"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
)

// TestResolverSeparations checks the separation each pair of classes is
// resolved with under the default rules: manned pairs exactly as before
// the table (the rules' cylinder, lookahead and levels), a manned–UAS pair
// as DAIDALUS's DO-365B configuration, UAS pairs their own cylinder, and a
// class the rules do not know none at all.
func TestResolverSeparations(t *testing.T) {
	r := rules.Default()
	rv := (&Service{}).resolverFor(r)
	manned := &track.State{Report: track.Report{Class: rules.ClassManned}}
	unclassed := &track.State{}
	uas := &track.State{Report: track.Report{Class: rules.ClassUAS}}
	unknown := &track.State{Report: track.Report{Class: "balloon"}}

	times := make([]float64, len(r.Levels))
	for i, l := range r.Levels {
		times[i] = l.MaxTimeToLoSS
	}
	before := resolve.CylinderSeparation(detect.Cylinder{HorizontalM: r.HorizontalSepM, VerticalM: r.VerticalSepM}, r.LookaheadS, times...)
	for _, pair := range [][2]*track.State{{manned, manned}, {unclassed, manned}, {unclassed, unclassed}} {
		if got := rv.separation(pair[0], pair[1]); got == nil || !reflect.DeepEqual(*got, before) {
			t.Fatalf("manned pair (%q, %q): %+v, want %+v", pair[0].Class, pair[1].Class, got, before)
		}
	}
	do365 := resolve.DO365()
	for _, pair := range [][2]*track.State{{manned, uas}, {uas, manned}, {uas, unclassed}} {
		if got := rv.separation(pair[0], pair[1]); got == nil || !reflect.DeepEqual(*got, do365) {
			t.Fatalf("manned-uas pair (%q, %q): %+v, want %+v", pair[0].Class, pair[1].Class, got, do365)
		}
	}
	drones := rv.separation(uas, uas)
	if want := (detect.Cylinder{HorizontalM: 50, VerticalM: 15}); drones == nil || drones.Alerter.Levels[0].Detector != want || drones.Alerter.LookaheadS != 60 {
		t.Fatalf("uas pair: %+v", drones)
	}
	if got := rv.separation(uas, unknown); got != nil {
		t.Fatalf("unknown class: %+v, want none", got)
	}
	// The reach covers the DO-365 entry: its well clear's distance and
	// the time its modified tau looks beyond its lookahead.
	if rv.lookaheadS < 180 || rv.reachM < math.Hypot(1222.32, 137.16) {
		t.Fatalf("reach %g m over %g s does not cover the manned-uas entry", rv.reachM, rv.lookaheadS)
	}
}

// TestSeparationOfLevelDetectors checks an entry whose levels watch
// cylinders of their own: each level keeps its detector and alerting
// time, the most severe paints NEAR, the one before it MID, the first
// FAR, and recovery starts from the most severe level's cylinder.
func TestSeparationOfLevelDetectors(t *testing.T) {
	r := rules.Default()
	r.FillTable()
	wide, mid := rules.Cylinder(3000, 300), rules.Cylinder(2000, 200)
	s := r.SeparationFor(rules.ClassUAS, rules.ClassUAS)
	s.Detector = rules.Cylinder(1000, 100)
	s.Levels[0].Detector = &wide
	s.Levels[1].Detector = &mid
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	table, err := detect.NewTable(r)
	if err != nil {
		t.Fatal(err)
	}
	got := separationOf(table.ForNames(rules.ClassUAS, rules.ClassUAS))
	wantDet := []detect.Detector{detect.Cylinder{HorizontalM: 3000, VerticalM: 300}, detect.Cylinder{HorizontalM: 2000, VerticalM: 200}, detect.Cylinder{HorizontalM: 1000, VerticalM: 100}}
	wantRegions := []resolve.Region{resolve.RegionFar, resolve.RegionMid, resolve.RegionNear}
	for i, l := range got.Alerter.Levels {
		if l.Detector != wantDet[i] || l.AlertingTimeS != s.Levels[i].MaxTimeToLoSS || got.Regions[i] != wantRegions[i] {
			t.Fatalf("level %d: %+v paints %v, want %v painting %v", i, l, got.Regions[i], wantDet[i], wantRegions[i])
		}
	}
	if got.Recovery != wantDet[2] || got.Alerter.LookaheadS != s.LookaheadS {
		t.Fatalf("recovery %+v over %g s", got.Recovery, got.Alerter.LookaheadS)
	}
}
