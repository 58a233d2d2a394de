// Package airspace owns the airspace files that operations centres and the
// glider and drone world exchange: the OpenAir text format (read and
// write), GeoJSON (RFC 7946, read and write, with github.com/paulmach/orb)
// and KML 2.2 (write, with github.com/twpayne/go-kml). It turns each file into a list of Airspace values
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
// exact, and so declared (package volume makes them conservative against
// the WGS84 ellipsoid); Outline gives a polygon for maps.
//
// # OpenAir arcs: drawn as OpenAir software draws them
//
// The OpenAir format does not say on which earth model an arc (DA, DB) or
// circle (DC) is laid out, nor what a DB arc is when its two end points lie
// at different distances from its centre; Naviter's specification only
// warns that DB is overdefined and that client software may then draw it
// differently. What the software that reads OpenAir does (read in its
// source):
//
//   - openAIP's parser (openAIP publishes OpenAir files for most of the
//     world) lays arcs and circles out with turf on a sphere of the mean
//     radius, 6,371,008.8 m; GDAL's OpenAir driver and AirspaceConverter
//     on spheres too (great circles, a nautical mile taken as a minute of
//     arc); XCSoar on the WGS84 ellipsoid.
//   - A DB arc keeps the distance of its first point from the centre in
//     openAIP, XCSoar and AirspaceConverter, and ends exactly at its second
//     point: XCSoar joins the last arc vertex to it with a chord, openAIP
//     moves the radius to the second point's over the last quarter of the
//     sweep with a smooth step (3x²-2x³). GDAL alone changes the radius
//     evenly along the arc.
//
// A Polygon's Ring follows the majority, and openAIP's parser in
// particular, against whose output the package is tested (every outline
// within 50 m): arcs and circles on the sphere of the mean radius with
// great-circle bearings, a DB at its first point's distance moving to its
// second point's over the last quarter as openAIP does, vertices on the
// curve, their chords within ArcToleranceM of it. This is the shape the
// pilots and planners who use the same file see on their maps.
//
// # The footprint: conservative against WGS84
//
// An authority means an arc of radius r on WGS84: the points r meters of
// geodesic from the centre. That curve lies up to 0.6% of r from the
// sphere's (hundreds of meters for a 50 NM terminal area), on either side.
// So a Polygon with arcs also gets an Enclosure, the ring declared as the
// volume footprint, which holds the airspace read on WGS84 whatever the
// reading of its DB arcs: a DA's ends at their geodesic bearings, a DB's
// as written; an arc that bulges away from the airspace replaced by the
// tangent polygon (vertices grown by 1/cos(step/2)) of the circle of the
// farther end's distance taken on a sphere of WGS84's smallest radius of
// curvature (b²/a), which holds every point that near on the ellipsoid;
// an arc that bends into the airspace by the chords of the circle of the
// nearer end's distance taken on a sphere of the largest radius of
// curvature (a²/b), which excludes only points that near; the end whose
// distance is not the circle's joined to it along its radial. The
// footprint thus holds every point of an arc's sweep between its two ends'
// distances on WGS84 (every reading above) and reaches at most 1.013% of
// the radius plus ArcToleranceM beyond it: the margin package volume
// already allows for circles. Circles, corridors and orbits need no
// enclosure: they are declared exact.
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
