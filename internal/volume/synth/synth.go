// Package synth generates synthetic strategic traffic for benchmarks and
// load tests of package volume: volumes of several parties spread like real
// operations (clusters of small volumes around bases and work areas, plus
// long transit corridors), and bursts of volumes over one small busy area.
package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/deconflict/deconflict/internal/volume"
)

// earthRadiusM is the sphere used to lay out synthetic shapes; their exact
// size does not matter.
const earthRadiusM = 6371008.8

// Op is one declaration of one party.
type Op struct {
	Party string
	Input volume.Input
}

// Config shapes a synthetic day of operations.
type Config struct {
	N       int
	Parties []string
	Seed    uint64
	// Start and Span bound the time windows.
	Start time.Time
	Span  time.Duration
	// Clusters is the number of busy places; CorridorShare the fraction
	// of volumes that are long corridors.
	Clusters      int
	CorridorShare float64
	// Region is the box the operations occur in: lat/lon degrees.
	MinLatDeg, MaxLatDeg, MinLonDeg, MaxLonDeg float64
}

// DefaultConfig is n volumes of four parties over a week, in a region the
// size of Syria and its neighbours.
func DefaultConfig(n int) Config {
	return Config{
		N: n, Parties: []string{"coalition", "stateb", "relief", "civil"}, Seed: 1,
		Start: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), Span: 7 * 24 * time.Hour,
		Clusters: 60, CorridorShare: 0.08,
		MinLatDeg: 30, MaxLatDeg: 38, MinLonDeg: 34, MaxLonDeg: 44,
	}
}

// Generator draws operations; it is deterministic for a seed.
type Generator struct {
	cfg      Config
	rng      *rand.Rand
	clusters [][2]float64
}

// New returns a generator for cfg.
func New(cfg Config) *Generator {
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed))}
	for i := 0; i < cfg.Clusters; i++ {
		g.clusters = append(g.clusters, g.point())
	}
	return g
}

// Operations draws cfg.N operations.
func Operations(cfg Config) []Op {
	g := New(cfg)
	out := make([]Op, cfg.N)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

func (g *Generator) point() [2]float64 {
	c := g.cfg
	return [2]float64{c.MinLatDeg + g.rng.Float64()*(c.MaxLatDeg-c.MinLatDeg), c.MinLonDeg + g.rng.Float64()*(c.MaxLonDeg-c.MinLonDeg)}
}

// Next draws one operation: a corridor or a small volume near a cluster.
func (g *Generator) Next() Op {
	party := g.cfg.Parties[g.rng.IntN(len(g.cfg.Parties))]
	if g.rng.Float64() < g.cfg.CorridorShare {
		return Op{Party: party, Input: g.corridor()}
	}
	return Op{Party: party, Input: g.small()}
}

func (g *Generator) window(minDur, maxDur time.Duration) (time.Time, time.Time) {
	start := g.cfg.Start.Add(time.Duration(g.rng.Int64N(int64(g.cfg.Span))))
	return start, start.Add(minDur + time.Duration(g.rng.Int64N(int64(maxDur-minDur))))
}

func (g *Generator) small() volume.Input {
	c := g.clusters[g.rng.IntN(len(g.clusters))]
	lat, lon := Destination(c[0], c[1], g.rng.Float64()*360, math.Abs(g.rng.NormFloat64())*15_000)
	r := 500 + g.rng.Float64()*4500
	var fp volume.Footprint
	if g.rng.IntN(2) == 0 {
		fp = Circle(lat, lon, r)
	} else {
		fp = Regular(lat, lon, r, 4+g.rng.IntN(5), g.rng.Float64()*360)
	}
	lo := float64(g.rng.IntN(8)) * 150
	start, end := g.window(30*time.Minute, 4*time.Hour)
	return volume.Input{Footprint: fp, AltLowerM: lo, AltUpperM: lo + 300 + g.rng.Float64()*900,
		Start: start, End: end, Priority: g.rng.IntN(3), State: volume.Accepted}
}

// corridor is a long thin rectangle between two points of the region.
func (g *Generator) corridor() volume.Input {
	lat, lon := g.point()[0], g.point()[1]
	heading := g.rng.Float64() * 360
	length := 100_000 + g.rng.Float64()*300_000
	half := 2_000 + g.rng.Float64()*3_000
	lat2, lon2 := Destination(lat, lon, heading, length)
	var pts [][2]float64
	for _, p := range [][3]float64{{lat, lon, heading + 90}, {lat2, lon2, heading + 90}, {lat2, lon2, heading - 90}, {lat, lon, heading - 90}} {
		la, lo := Destination(p[0], p[1], p[2], half)
		pts = append(pts, [2]float64{lo, la})
	}
	lo := 3000 + float64(g.rng.IntN(15))*600
	start, end := g.window(time.Hour, 8*time.Hour)
	return volume.Input{Footprint: Polygon(pts...), AltLowerM: lo, AltUpperM: lo + 600,
		Start: start, End: end, Priority: g.rng.IntN(3), State: volume.Accepted}
}

// Dense draws a small volume that overlaps the square of sideM meters
// centred on (lat, lon): the busy-cell load of the write benchmark.
func (g *Generator) Dense(lat, lon, sideM float64) volume.Input {
	clat, clon := Destination(lat, lon, g.rng.Float64()*360, g.rng.Float64()*sideM/2)
	lo := float64(g.rng.IntN(4)) * 300
	start, end := g.window(15*time.Minute, 2*time.Hour)
	return volume.Input{Footprint: Circle(clat, clon, 100+g.rng.Float64()*sideM/2), AltLowerM: lo, AltUpperM: lo + 300,
		Start: start, End: end, Priority: g.rng.IntN(2), State: volume.Accepted}
}

// Destination moves from (lat, lon) along bearing (degrees) by distM on a
// sphere; longitude normalised to [-180, 180].
func Destination(lat, lon, bearingDeg, distM float64) (float64, float64) {
	ang := distM / earthRadiusM
	p1, l1, b := lat*math.Pi/180, lon*math.Pi/180, bearingDeg*math.Pi/180
	p2 := math.Asin(math.Sin(p1)*math.Cos(ang) + math.Cos(p1)*math.Sin(ang)*math.Cos(b))
	l2 := l1 + math.Atan2(math.Sin(b)*math.Sin(ang)*math.Cos(p1), math.Cos(ang)-math.Sin(p1)*math.Sin(p2))
	return p2 * 180 / math.Pi, math.Mod(l2*180/math.Pi+540, 360) - 180
}

// Circle is a circular footprint.
func Circle(lat, lon, radiusM float64) volume.Footprint {
	return volume.Footprint{Type: "Circle", Center: []float64{lon, lat}, RadiusM: radiusM}
}

// Polygon closes a ring of [lon, lat] pairs into a GeoJSON Polygon.
func Polygon(pts ...[2]float64) volume.Footprint {
	ring := make([][]float64, 0, len(pts)+1)
	for _, p := range append(pts, pts[0]) {
		ring = append(ring, []float64{p[0], p[1]})
	}
	return volume.Footprint{Type: "Polygon", Coordinates: [][][]float64{ring}}
}

// Regular is an n-gon with its vertices radiusM from (lat, lon).
func Regular(lat, lon, radiusM float64, n int, rotDeg float64) volume.Footprint {
	pts := make([][2]float64, n)
	for i := range pts {
		la, lo := Destination(lat, lon, rotDeg-360*float64(i)/float64(n), radiusM)
		pts[i] = [2]float64{lo, la}
	}
	return Polygon(pts...)
}

// ID is the id of the i-th synthetic volume.
func ID(i int) string { return fmt.Sprintf("syn-%07d", i) }
