// Package volume owns strategic deconfliction: the 4D volumes that each
// party declares (footprint, altitude band, time window), their states and
// versions, the conflict test between volumes of different parties, the
// awareness key that a writer must present, and the space-time index that
// keeps the check fast. Volumes are persisted only through store.Volumes; the
// in-memory index is a cache rebuilt from the store.
//
// # Conflict
//
// Two live volumes (state not ended or cancelled) of different parties
// conflict when all three hold:
//
//   - horizontally, the minimum distance between their footprints is below
//     rules.HorizontalSepM (or one footprint overlaps or contains the other);
//   - vertically, the gap between their altitude bands is below
//     rules.VerticalSepM (bands exactly the separation apart are separated);
//   - in time, their windows, each grown by rules.TimeBufferS on both sides
//     (as package rules defines the buffer), overlap.
//
// Footprints are GeoJSON Polygons (one exterior ring whose edges are
// great-circle arcs, so a ring may cross the antimeridian or surround a
// pole), circles (center and radius in meters, a real circle, not a
// polygon), or the shapes of an airspace control order: orbits (a
// racetrack: two turn centres and the full width) and corridors (a line of
// great-circle legs and the full width). An orbit or a corridor is every
// point within half its width of its spine (the segment between the turn
// centres, or the line), ends rounded, so its distance to anything is the
// spine's distance less the half width: the test is exact on the sphere,
// with half widths treated as radii in the bound below. Geometry is done on the unit sphere with github.com/golang/geo/s2
// and made conservative with respect to the WGS84 ellipsoid: in geodetic
// coordinates the ellipsoid's line element lies between M_min and N_max times
// the sphere's (M_min = b²/a ≈ 6,335,439 m, the meridional radius of
// curvature at the equator; N_max = a²/b ≈ 6,399,594 m, the radius of
// curvature at the poles), so a geodesic distance d and the spherical angle
// θ between the same two points satisfy M_min·θ <= d <= N_max·θ. Every
// length (separation, circle radius) is turned into an angle by dividing by
// M_min: the check never misses a conflict that exists on the ellipsoid, and
// it reports as conflicting only pairs whose true distance is below
// (N_max/M_min)·(sep + radii) − radii, i.e. it over-reports by at most
// N_max/M_min − 1 ≈ 1.013% of the separation plus the radii (and half
// widths) involved (about 94 m at 5 NM between two polygons).
//
// A ring is read as the smaller of the two regions it bounds (footprints are
// at most rules.MaxFootprintM across), so both windings are accepted as RFC
// 7946 asks. Holes are refused: a declaration with a hole is a footprint the
// party does not intend to use inside, and after growing by the separation
// most holes close anyway; declare several volumes instead.
//
// # The awareness key and priority (modelled on ASTM F3548 operational intents)
//
// To create or change a volume V, its party sends the {id, version} of every
// other party's live volume it knows to conflict with V. The registry then
// applies, in this order:
//
//	condition                                           result
//	--------------------------------------------------  ------------------------------------------
//	bad input (*fielderr.Error), or a priority above    refused, nothing stored
//	  what the rules grant V's party (live states)
//	V belongs to another party                          refused (ErrForbidden)
//	named version is not the stored one                 refused (ErrStaleVersion), never merged
//	state change not in the transition table            refused (ErrIllegalTransition)
//	V live, and its party would hold more live volumes  refused (*PartyLimitError); a write that
//	  or footprint positions than SetPartyLimits allows   adds neither passes
//	new state ended or cancelled                        stored; no key needed, V stops counting
//	a conflicting volume missing from the key, or       refused (*MissingKeyError listing exactly
//	  present with another version                        the missing ones, reduced: no details)
//	key complete; a conflicting volume has higher       refused (*PriorityError)
//	  priority than V
//	key complete; conflicts only with equal or lower    stored only if V's state is proposed or
//	  priority                                            accepted; refused (ErrActivatedConflict) if
//	                                                      activated. Both parties get a
//	                                                      volume_conflict event per pair.
//	key complete; no conflict                           stored in any live state
//
// Priority is granted by the agreed rules (rules.PriorityMax per party, 0
// for a party not listed), never chosen by a party. When the rules withdraw
// a grant, the volumes written under it keep their stored priority but
// count, in the comparison above, with at most what their party is granted
// now: a rules change never ends or shrinks a volume, and new rules apply
// to new writes. Volumes that conflict only under new rules (a separation
// or time buffer raised) stay as they are; NewConflicts lists the pairs
// for their owners to hear of. Entries of the key that do not conflict are ignored. Conflicting volumes
// are listed in Volume.Conflicts so that the owner sees what it accepted.
//
// # States
//
//	from \ to   proposed  accepted  activated  ended  cancelled
//	(new)       yes       yes       yes        -      -
//	proposed    -         yes       yes        -      yes
//	accepted    -         -         yes        yes    yes
//	activated   -         -         -          yes    yes
//	ended       -         -         -          -      -
//	cancelled   -         -         -          -      -
//
// Keeping the same state in an update is allowed for live states. The table
// is what a party may ask for; the service itself ends every live volume,
// proposed ones included, whose window (end plus the time buffer) has
// passed, through Registry.EndExpired, which it calls periodically.
//
// # Concurrency and the index
//
// Every write runs inside the caller's store transaction: tx.LockVolumes
// (serialising writers across processes), then a catch-up from
// tx.VolumesChangedSince, then the check, then tx.PutVolume naming the
// version replaced (a stale one is refused, never merged). The caller adds
// its audit and events (Result.AppendEvents) in the same transaction and, after
// the commit, hands the Result to Registry.Apply.
//
// The in-memory index is a cache of the store and only ever holds what is
// known to be committed: what a read-only transaction reads (Load, Sync),
// what Apply is given, and changes at or below the highest sequence Apply
// has seen. A store may run several Updates in one transaction (group
// commit); a write then also sees the earlier writes of its batch, which
// it checks against as an overlay for that transaction only, so that a batch
// that rolls back leaves nothing behind. Several replicas sharing one
// database therefore stay correct: the database is the truth.
//
// The index covers each live volume's footprint, grown by the horizontal
// separation, with S2 cells of one level (about 20 km, chosen from the
// separation) and its window, grown by the time buffer, with hour buckets.
// A check looks up the cells covering the new footprint over the hours of
// its window, filters the listed volumes by party, altitude and time from
// data held inline, removes duplicates, and runs the exact test on what is
// left: it returns exactly what a scan of every volume returns (property
// tested against ScanConflicts). Circles are covered by a flood over
// neighbouring cells, cheaper than the RegionCoverer and listing every cell
// it lists (property tested); orbits and corridors by the cells of their
// spine grown by rings of neighbours that reach past the half width (and
// the separation). Load (the start of a service) decodes and
// covers the stored volumes on every CPU while the store is read, and
// inserts them into the index in store order as they are ready.
package volume
