package timeline

import (
	"math"
	"slices"

	"github.com/deconflict/deconflict/internal/alert"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/volume"
)

// Scene is the map at one step: the alert's aircraft where its latest
// transition put them, where they had been at its earlier transitions,
// and where each would be at the predicted closest approach; and the
// thread's volumes as last written.
type Scene struct {
	Aircraft []SceneAircraft
	Volumes  []volume.Volume
	// Level is the alert's level at this step; Cleared once it cleared.
	Level   string
	Cleared bool
}

// SceneAircraft is one aircraft of a scene. Positions are [lon, lat] in
// degrees.
type SceneAircraft struct {
	Party, Name string
	At          [2]float64
	Trail       [][2]float64
	// Ahead is where it would be at the closest approach (At when the
	// alert predicts none).
	Ahead [2]float64
}

func hypot(x, y float64) float64 { return math.Hypot(x, y) }

// scene accumulates the picture along the record.
type scene struct {
	aircraft []SceneAircraft
	volumes  []volume.Volume
	level    string
	cleared  bool
}

func (s *scene) alert(a alert.Alert) {
	s.level, s.cleared = a.Level, a.State == alert.StateCleared
	for _, ac := range a.Aircraft {
		at := [2]float64{ac.LonDeg, ac.LatDeg}
		ahead := at
		if a.Kind == alert.KindConflict && a.TCPAS > 0 && !s.cleared {
			speed := hypot(ac.VelEastMps, ac.VelNorthMps)
			bearing := math.Atan2(ac.VelEastMps, ac.VelNorthMps) * 180 / math.Pi
			p := geo.Destination(geo.LLA{LatDeg: ac.LatDeg, LonDeg: ac.LonDeg}, bearing, speed*a.TCPAS)
			ahead = [2]float64{p.LonDeg, p.LatDeg}
		}
		name := aircraftName(ac)
		i := slices.IndexFunc(s.aircraft, func(x SceneAircraft) bool { return x.Name == name })
		if i < 0 {
			s.aircraft = append(s.aircraft, SceneAircraft{Party: ac.Party, Name: name, At: at, Ahead: ahead})
			continue
		}
		x := &s.aircraft[i]
		if x.At != at {
			x.Trail = append(x.Trail, x.At)
		}
		x.At, x.Ahead = at, ahead
	}
}

func (s *scene) volume(v volume.Volume) {
	if i := slices.IndexFunc(s.volumes, func(x volume.Volume) bool { return x.ID == v.ID }); i >= 0 {
		s.volumes[i] = v
		return
	}
	s.volumes = append(s.volumes, v)
}

// snapshot copies the picture as it is now.
func (s *scene) snapshot() Scene {
	out := Scene{Level: s.level, Cleared: s.cleared, Volumes: slices.Clone(s.volumes)}
	for _, a := range s.aircraft {
		a.Trail = slices.Clone(a.Trail)
		out.Aircraft = append(out.Aircraft, a)
	}
	return out
}
