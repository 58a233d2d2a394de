package resolve

import (
	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/rules"
)

// This file builds what bands are computed with from the rules: the
// separation of an entry of the separation table and the configuration
// of a class's performance limits, as the service resolves its alerts
// and the benchmarks measure them.

// SeparationOf is the resolution's separation of an entry of the table.
// An entry whose levels all watch one cylinder is as CylinderSeparation
// has it (the separation of the rules before the table). Otherwise the
// entry's own levels, as detection grades them: its most severe level
// paints NEAR and the one before MID; the others paint FAR in a cylinder
// entry and nothing in a DO-365 entry (DAIDALUS's preventive level paints
// no band, DO365). Recovery starts from the minima of the most severe
// level (the cylinder, or DTHR and ZTHR of the well clear) and shrinks
// down to DAIDALUS's NMAC cylinder, or those minima when smaller.
func SeparationOf(e *detect.Entry) Separation {
	last := e.Levels[len(e.Levels)-1].Detector
	oneCylinder := true
	for _, l := range e.Levels {
		oneCylinder = oneCylinder && l.Detector == last
	}
	if cyl, ok := last.(detect.Cylinder); ok && oneCylinder {
		times := make([]float64, len(e.Levels))
		for i, l := range e.Levels {
			times[i] = l.AlertingTimeS
		}
		return CylinderSeparation(cyl, e.LookaheadS, times...)
	}
	// Painted regions and recovery as a cylinder separation has them,
	// with the entry's own levels.
	var recovery detect.Cylinder
	switch d := last.(type) {
	case detect.Cylinder:
		recovery = d
	case detect.WCV:
		recovery = detect.Cylinder{HorizontalM: d.DTHRM, VerticalM: d.ZTHRM}
	}
	times := make([]float64, len(e.Levels))
	s := CylinderSeparation(recovery, e.LookaheadS, times...)
	s.Alerter = detect.Alerter{LookaheadS: e.LookaheadS, Levels: e.Levels}
	if e.Rule.Detector.Kind == rules.DetectorDO365WCV {
		for i := range s.Regions[:max(0, len(s.Regions)-2)] {
			s.Regions[i] = RegionNone
		}
	}
	return s
}

// ConfigOf is the bands' configuration of a class with these performance
// limits: DAIDALUS's (DefaultConfig) with the class's ranges and altitude
// step. The manned limits of the default rules are DAIDALUS's exactly.
// The minimum airspeed a track band is flown at is the class's minimum
// ground speed (DAIDALUS's 10 kt for manned).
func ConfigOf(p rules.Performance) Config {
	c := DefaultConfig()
	c.MinGsMps, c.MaxGsMps = p.MinGroundSpeedMps, p.MaxGroundSpeedMps
	c.MinVsMps, c.MaxVsMps = p.MinVerticalSpeedMps, p.MaxVerticalSpeedMps
	c.MinAltM, c.MaxAltM = p.MinAltM, p.MaxAltM
	c.MinAirspeedMps = p.MinGroundSpeedMps
	c.Steps[3] = p.AltStepM
	return c
}
