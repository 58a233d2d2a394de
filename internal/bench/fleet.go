package bench

import (
	"math"
	"strconv"
	"time"

	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/traffic"
)

// aircraft is one simulated aircraft of the HTTP measurements.
type aircraft struct {
	party, id string
	// class is the aircraft's class in the rules; empty for manned, the
	// class the service takes for a report without one.
	class                   string
	latDeg, lonDeg, altM    float64
	velEastMps, velNorthMps float64
	// at is the time of the position (zero: the first report's, when it
	// is sent).
	at time.Time
}

// batchBody writes the body of POST /v1/positions reporting as at t into
// buf[:0]: the shape of docs/WIRE.md, written without reflection, because
// the load generator shares the machine with the server it measures and
// encoding/json would cost it about four times as much (a test checks the
// body against encoding/json's decoding).
func batchBody(buf []byte, as []aircraft, t time.Time) []byte {
	buf = append(buf[:0], `{"reports":[`...)
	for i := range as {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = as[i].appendReport(buf, t)
	}
	return append(buf, "]}"...)
}

// appendReport appends a's report at t as one JSON object.
func (a *aircraft) appendReport(b []byte, t time.Time) []byte {
	b = append(b, `{"aircraft":"`...)
	b = append(b, a.id...) // letters, digits and '-': nothing to escape
	if a.class != "" {
		b = append(b, `","class":"`...)
		b = append(b, a.class...) // a class name of the rules: nothing to escape
	}
	b = append(b, `","time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","lat":`...)
	b = strconv.AppendFloat(b, a.latDeg, 'f', 6, 64)
	b = append(b, `,"lon":`...)
	b = strconv.AppendFloat(b, a.lonDeg, 'f', 6, 64)
	b = append(b, `,"alt_m":`...)
	b = strconv.AppendFloat(b, a.altM, 'f', 1, 64)
	b = append(b, `,"vel_east_mps":`...)
	b = strconv.AppendFloat(b, a.velEastMps, 'f', 2, 64)
	b = append(b, `,"vel_north_mps":`...)
	b = strconv.AppendFloat(b, a.velNorthMps, 'f', 2, 64)
	return append(b, `,"vel_up_mps":0}`...)
}

// fleet generates n aircraft of two parties (coalition and russia) with
// the seeded generator of the airspace measurement, so that both fly the
// same kind of traffic, each of its class (the drones of metro are
// separated as drones, not as manned aircraft five miles apart).
func fleet(scenario string, n int, seed uint64) ([]aircraft, error) {
	at := time.Now()
	rs, err := traffic.Generate(scenario, traffic.Options{Aircraft: n, Parties: 2, Seed: seed, Time: at})
	if err != nil {
		return nil, err
	}
	out := make([]aircraft, len(rs))
	for i, r := range rs {
		party := "coalition"
		if i%2 == 1 {
			party = "russia"
		}
		class := r.Class
		if class == rules.ClassManned {
			class = ""
		}
		out[i] = aircraft{
			party: party, id: r.Party + "-" + r.Aircraft, class: class,
			latDeg: r.Pos.LatDeg, lonDeg: r.Pos.LonDeg, altM: r.Pos.AltM,
			velEastMps: r.VelEastMps, velNorthMps: r.VelNorthMps,
			at: at,
		}
	}
	return out, nil
}

func groupByParty(as []aircraft) map[string][]aircraft {
	byParty := map[string][]aircraft{}
	for _, a := range as {
		byParty[a.party] = append(byParty[a.party], a)
	}
	return byParty
}

// advanceTo dead-reckons each aircraft from the time of its position to
// now, so that a report stamped now says where the aircraft is then: a
// position seconds older than its time would move the aircraft back along
// its path at each report, as no aircraft flies, and every prediction of
// its conflicts with it. An aircraft without a time is taken as at now.
// The time between is the wall clock's, the one the reports are stamped
// with and the server reads, not the monotonic clock's Sub would use: a
// virtual machine's wall clock can move against its monotonic one (set,
// slewed, or caught up after the machine was paused), and each report
// would then be off by its aircraft's speed times the difference (a CI
// run saw 5 m).
func advanceTo(as []aircraft, now time.Time) {
	now = now.Round(0)
	for i := range as {
		a := &as[i]
		if !a.at.IsZero() {
			dtS := now.Sub(a.at.Round(0)).Seconds()
			a.latDeg += a.velNorthMps * dtS / 111_195
			if a.latDeg > 90 || a.latDeg < -90 {
				// Over a pole: on down the other side of it.
				a.latDeg = math.Copysign(180, a.latDeg) - a.latDeg
				a.lonDeg += 180
				a.velNorthMps, a.velEastMps = -a.velNorthMps, -a.velEastMps
			}
			a.lonDeg += a.velEastMps * dtS / (111_195 * math.Cos(a.latDeg*math.Pi/180))
			a.lonDeg = geo.NormalizeLonDeg(a.lonDeg)
		}
		a.at = now
	}
}
