// Package sim owns scenarios and the simulator: the scenario file format,
// the kinematics that turn a scenario into flights (take-off, climb, cruise
// along great circles, racetrack orbits, return and descent), the volumes
// each party declares for its flights, and the Runner that drives a server
// through its HTTP API as the parties' operations cells would.
//
// # Scenario files
//
// A scenario is one JSON document (docs/scenarios.md has a worked example):
//
//	name, description      text
//	epoch                  RFC 3339; the scenario's time zero (display only)
//	demo_start_s           where `deconflict demo` starts (seconds from epoch)
//	report_every_s         seconds between two reports of an aircraft (0.1 to 30)
//	parties[]              {name, no_ack: [sortie ids whose alerts it leaves unacknowledged]}
//	bases[]                {name, party, lat, lon, elev_m}
//	aircraft_types[]       {name, cruise_mps, climb_mps, ceiling_m, max_mps?}
//	sorties[]              {id, callsign, party, type, base, land_at?, start_s,
//	                        duration_s?, alt_m, waypoints?: [{lat, lon, alt_m?, at_s?}],
//	                        orbit?: {lat, lon, axis_deg, length_m, width_m},
//	                        repeat?: {count, every_s}, volume?: {...}, fixed?}
//	encounters[]           {a, b, at_s, note}: the designed losses of separation
//	rules                  optional rules fields over the defaults (PUT /v1/rules)
//
// All *_s fields are seconds from the epoch, lengths meters, speeds m/s,
// angles degrees. Every flight must have landed within a week of the
// epoch; a scenario flies at most 10,000 flights (with the repeats), for
// at most 64 parties, in a file of at most 4 MiB. Unknown fields are
// errors; every error names its field (e.g.
// "sorties[3].waypoints[1].at_s"), or, for a fault of the JSON, its line
// and column.
//
// # Kinematics
//
// A flight takes off from its base at start_s, flies at cruise speed to each
// waypoint along the geodesic (geo.Destination), then to the entry of its
// orbit if it has one, flies the racetrack until it must leave to be home
// by start_s+duration_s, and flies back to its base (or land_at). Altitude
// changes at the type's climb rate toward the leg's altitude (the
// waypoint's alt_m, else the sortie's) from the start of each leg; the
// descent starts so as to touch down on arrival. A waypoint with at_s fixes
// the time over it: the leg's speed is chosen to make it (refused if
// outside 0.55..1.6 times cruise, or max_mps), which is how encounters are
// designed. The aircraft is reported every report_every_s with its true
// velocity (east, north, up).
//
// Determinism: the same scenario and seed give the same flights. The seed
// jitters sorties that are not fixed: take-off up to 5 minutes late, cruise
// speed within 3%, the phase of their orbit. Fixed sorties, and sorties
// with a timed waypoint, fly as written.
//
// # Volumes
//
// Each flight declares circles covering its path (see Flight.Volumes): one
// around each racetrack for the time on station, and a chain along the
// transit legs, each with the altitude band and window of its own piece of
// the path plus margins (volume: radius_m 80 km, margin_m 12 km,
// alt_margin_m 300 m, lead_s and trail_s 600 s by default; none: true
// declares nothing).
//
// # Runs
//
// The Runner re-bases the scenario onto the wall clock: scenario time
// from_s is "now", and at speed N one wall second is N scenario seconds.
// Reports are stamped with the wall time of their scenario instant (the
// server needs no special clock) and carry the true velocities, so the
// server's predictions (time to loss of separation, alert levels) are in
// scenario seconds, while deadlines run on the wall clock. All the aircraft
// of a tick share one stamp. At speed 0 (as fast as possible) each tick is
// stamped with the wall clock when it is sent (strictly increasing), which
// keeps every report within the window a server accepts (not older than
// 60 s, not more than 10 s ahead), and volumes claim the next 23 hours.
// Quiet periods, when no aircraft is airborne, are skipped: the clock is
// re-based onto the next take-off.
//
// Volumes are declared 30 scenario minutes before they start (those of
// flights already airborne before the clock starts), in state accepted with
// an empty awareness key; a 409 naming missing volumes is answered by adding
// them to the key and sending again. Each is then activated; one that
// conflicts stays accepted. Each party follows its event stream and
// acknowledges every hotline item addressed to it after AckDelay, except
// alerts about its sorties listed in no_ack, which escalate.
package sim
