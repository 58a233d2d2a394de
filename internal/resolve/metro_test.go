package resolve

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/track"
	"github.com/deconflict/deconflict/internal/traffic"
)

// metroScene is one Suggest of metro traffic as the service asks it for
// a conflict: the pair in the frame of its midpoint, each with the
// tracks around it as others, under the default rules' separations and
// each class's kinematics.
type metroScene struct {
	classes string // "manned/uas": the classes of a and b
	// near is how the others were chosen: "reach" or "matter"
	// (buildMetroScenes).
	near   string
	a, b   Party
	sep    *Separation
	ka, kb *Kinematics
}

var (
	metroOnce   sync.Once
	metroScenes []metroScene
)

// metro5000 are the Suggests of every conflict of metro traffic of 5,000
// aircraft in two parties (the size of the quick runs of issue 17), each
// with the others chosen both ways (buildMetroScenes), worked out once
// per test binary.
func metro5000(tb testing.TB) []metroScene {
	tb.Helper()
	metroOnce.Do(func() { metroScenes = buildMetroScenes(tb, 5000) })
	if len(metroScenes) == 0 {
		tb.Fatal("no conflict in metro traffic")
	}
	return metroScenes
}

// buildMetroScenes runs detection on the scenario's traffic and builds
// the Suggest of each conflict found as the service does (its
// resolveShared), twice. With near "reach", the others of each aircraft
// are the tracks within what either aircraft's candidates can reach
// under the separation of its pair with the track (its class's fastest
// ground and vertical speed over the separation's lookahead, anywhere
// between its lowest and highest altitude, plus the track's own speed
// over the lookahead and the separation's reach), as the service's
// nearCentres found them at first; with near "matter", those of them
// that resolve.Matter does not rule out for either aircraft, its bands
// (in its own frame) or the pair's suggestion (in the pair's frame), as
// the service hands them over since.
func buildMetroScenes(tb testing.TB, aircraft int) []metroScene {
	now := time.Now()
	reports, err := traffic.Generate("metro", traffic.Options{Aircraft: aircraft, Parties: 2, Seed: 1, Time: now})
	if err != nil {
		tb.Fatal(err)
	}
	r := rules.Default()
	eng := detect.NewEngine(r, detect.Grid{}, nil)
	if _, err := eng.Ingest(nil, reports, now); err != nil {
		tb.Fatal(err)
	}
	table := eng.Params().Table
	seps := make([]Separation, len(table.Entries()))
	reachM, lookS := make([]float64, len(seps)), make([]float64, len(seps))
	for i, e := range table.Entries() {
		seps[i] = SeparationOf(e)
		for _, l := range e.Levels {
			reach := l.Detector.Reach()
			reachM[i] = max(reachM[i], math.Hypot(reach.HorizontalM, reach.VerticalM))
			lookS[i] = max(lookS[i], e.LookaheadS+max(reach.HorizontalS, reach.VerticalS))
		}
	}
	kin := map[string]*Kinematics{}
	perf := map[string]rules.Performance{}
	for _, c := range table.Classes() {
		p := r.PerformanceFor(c)
		k := DefaultKinematics()
		k.TurnRateDegPerS, k.VerticalRateMps = p.TurnRateDegPerS, p.VerticalRateMps
		k.AltStepM, k.MaxClimbM = p.AltStepM, p.MaxClimbM
		k.MinAltM, k.MaxAltM = p.MinAltM, p.MaxAltM
		kin[c], perf[c] = &k, p
	}
	states := eng.States()
	// near reports whether st can matter to a candidate of own.
	near := func(own, st *track.State) bool {
		e := table.ForNames(own.Class, st.Class).Index()
		p := perf[own.Class]
		ownMaxMps := max(p.MaxGroundSpeedMps, math.Hypot(own.VelEastMps, own.VelNorthMps)) +
			max(-p.MinVerticalSpeedMps, p.MaxVerticalSpeedMps, math.Abs(own.VelUpMps))
		jumpM := max(0, own.Pos.AltM-p.MinAltM, p.MaxAltM-own.Pos.AltM)
		otherMps := math.Sqrt(st.VelECEF[0]*st.VelECEF[0] + st.VelECEF[1]*st.VelECEF[1] + st.VelECEF[2]*st.VelECEF[2])
		d := math.Sqrt((st.ECEF[0]-own.ECEF[0])*(st.ECEF[0]-own.ECEF[0]) + (st.ECEF[1]-own.ECEF[1])*(st.ECEF[1]-own.ECEF[1]) + (st.ECEF[2]-own.ECEF[2])*(st.ECEF[2]-own.ECEF[2]))
		return d <= reachM[e]+jumpM+(ownMaxMps+otherMps)*lookS[e]
	}
	inFrame := func(f geo.Frame, st *track.State) Aircraft {
		p := f.FromECEF(geo.ECEF{XM: st.ECEF[0], YM: st.ECEF[1], ZM: st.ECEF[2]})
		v := f.VelocityFromECEF(geo.ECEF{XM: st.VelECEF[0], YM: st.VelECEF[1], ZM: st.VelECEF[2]})
		return Aircraft{Pos: detect.Vec3{X: p.EastM, Y: p.NorthM, Z: p.UpM}, Vel: detect.Vec3{X: v.EastM, Y: v.NorthM, Z: v.UpM}}
	}
	// relative is st relative to own, rotated into f.
	relative := func(f geo.Frame, own, st *track.State) Aircraft {
		p := f.VelocityFromECEF(geo.ECEF{XM: st.ECEF[0] - own.ECEF[0], YM: st.ECEF[1] - own.ECEF[1], ZM: st.ECEF[2] - own.ECEF[2]})
		v := f.VelocityFromECEF(geo.ECEF{XM: st.VelECEF[0], YM: st.VelECEF[1], ZM: st.VelECEF[2]})
		return Aircraft{Pos: detect.Vec3{X: p.EastM, Y: p.NorthM, Z: p.UpM}, Vel: detect.Vec3{X: v.EastM, Y: v.NorthM, Z: v.UpM}}
	}
	var scenes []metroScene
	for _, c := range eng.Conflicts() {
		own := [2]*track.State{&c.A, &c.B}
		f := geo.NewFrame(geo.FromECEF(geo.ECEF{XM: (c.A.ECEF[0] + c.B.ECEF[0]) / 2, YM: (c.A.ECEF[1] + c.B.ECEF[1]) / 2, ZM: (c.A.ECEF[2] + c.B.ECEF[2]) / 2}))
		sc := metroScene{
			classes: c.A.Class + "/" + c.B.Class,
			near:    "reach",
			sep:     &seps[table.ForNames(c.A.Class, c.B.Class).Index()],
			ka:      kin[c.A.Class], kb: kin[c.B.Class],
		}
		// matters reports whether st can matter to the resolution of
		// either aircraft (resolve.Matter, as the service asks it): to
		// its bands, in its own frame, or to the pair's suggestion, in
		// the pair's frame, by the class of st.
		type matter struct {
			frame       geo.Frame
			bands, sugg map[string]Matter
		}
		var ms [2]matter
		for n, me := range own {
			cfg := ConfigOf(perf[me.Class])
			m := matter{frame: geo.NewFrame(geo.LLA{LatDeg: me.Pos.LatDeg, LonDeg: me.Pos.LonDeg}), bands: map[string]Matter{}, sugg: map[string]Matter{}}
			for _, class := range table.Classes() {
				sep := &seps[table.ForNames(me.Class, class).Index()]
				m.bands[class] = NewMatter(Aircraft{Vel: inFrame(m.frame, me).Vel}, sep, &cfg, kin[me.Class])
				m.sugg[class] = NewMatter(Aircraft{Vel: inFrame(f, me).Vel}, sep, &cfg, kin[me.Class])
			}
			ms[n] = m
		}
		matters := func(st *track.State) bool {
			for n, me := range own {
				bands, sugg := ms[n].bands[st.Class], ms[n].sugg[st.Class]
				if bands.Bands(relative(ms[n].frame, me, st)) || sugg.Suggestion(relative(f, me, st)) {
					return true
				}
			}
			return false
		}
		var nearBy, matterBy []int // by index in states
		for i := range states {
			st := &states[i]
			if st.Key() == c.A.Key() || st.Key() == c.B.Key() || !near(own[0], st) && !near(own[1], st) {
				continue
			}
			nearBy = append(nearBy, i)
			if matters(st) {
				matterBy = append(matterBy, i)
			}
		}
		mattering := sc
		mattering.near = "matter"
		for n := range own {
			me := own[n]
			parties := [2]*Party{&sc.a, &mattering.a}
			if n == 1 {
				parties = [2]*Party{&sc.b, &mattering.b}
			}
			for k, by := range [2][]int{nearBy, matterBy} {
				p := parties[k]
				p.Aircraft = inFrame(f, me)
				p.Others = make([]Intruder, 0, len(by))
				for _, i := range by {
					st := &states[i]
					p.Others = append(p.Others, Intruder{Aircraft: inFrame(f, st), Sep: &seps[table.ForNames(me.Class, st.Class).Index()]})
				}
			}
		}
		scenes = append(scenes, sc, mattering)
	}
	return scenes
}
