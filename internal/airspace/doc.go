// Package airspace owns the airspace files that operations centres and the
// glider and drone world exchange: the OpenAir text format (read and
// write), GeoJSON (RFC 7946, read and write, with github.com/paulmach/orb)
// and KML 2.2 (write). It turns each file into a list of Airspace values
// (name, class, lower and upper limits as written, one horizontal shape,
// activation times) and back, naming the line (OpenAir) or the feature
// index (GeoJSON) of anything it refuses. It knows nothing of parties or
// conflicts: turning an Airspace into a volume declaration is the caller's
// business.
//
// # Shapes
//
// A shape is a Polygon (one closed ring of [lon, lat] positions), a Circle
// (centre and radius), a Corridor (a line and its full width: every point
// within half the width of the line, round ends included; OpenAir's DY
// airways) or an Orbit (a racetrack: two turn centres and the full width,
// i.e. a corridor of one segment). Circles, corridors and orbits are kept
// exact; Outline gives a polygon for maps.
//
// OpenAir arcs (DA, DB) are turned into polygon vertices on the WGS84
// ellipsoid (geodesic distance from the centre, Vincenty's direct formula).
// The vertices of an arc that bulges away from the airspace are put on a
// circle grown by 1/cos(step/2), so each chord touches the true arc from
// outside; the arc of an airspace that bends inwards is followed by chords
// inside the excluded disc. Either way the polygon contains the airspace and
// lies within ArcToleranceM of it: a conflict check on the polygon misses
// nothing. Outline does the same for circles, orbits and corridors.
//
// # Limits
//
// A Limit keeps what the file says: a value, a unit (ft, m, or flight level)
// and a reference (mean sea level, ground, or the standard atmosphere), or
// unlimited. Meters converts it to meters above mean sea level, the unit of
// a volume: flight levels at their nominal altitude on the standard
// atmosphere, heights above ground with the ground elevation the caller
// gives (the file does not say it).
package airspace
