// Package feed owns the input formats of position reports and the plumbing
// that carries them to the server: the SBS-1 / BaseStation text that ADS-B
// decoders (dump1090, readsb) serve on TCP port 30003, EUROCONTROL ASTERIX
// (CAT062, CAT021 and CAT048 records decoded by internal/asterix, from UDP
// or a recording), JSON lines of position reports (the items of POST /v1/positions), batching and
// posting with retries, reconnecting to a live source, and pacing a
// recorded file onto the wall clock.
//
// Units are converted here, at the edge, and nowhere later: BaseStation
// and ASTERIX carry feet, flight levels, knots, nautical miles and feet per
// minute; reports leave this package in meters and m/s.
//
// A recorded BaseStation file is read in its own time (the "generated"
// timestamps), or, when its lines carry no time (some receivers and
// libraries leave those fields empty), in order at the time of reading.
// A replay follows a recording's time except where it jumps (Pacer.MaxGap):
// a gap is not waited for, and a step back is not stamped in the past;
// nor is a report of a replay that fell behind the recording's pace
// (Pacer.MaxLag): it is stamped now, and the replay goes on from there.
//
// Nothing in a feed is fatal: a malformed line is counted by reason
// (Stats.Skip; the feed ends with one line of the counts by reason) and
// skipped, a malformed ASTERIX block counted per reason
// (asterix.Stats) and skipped; a report the server would refuse is not
// sent: a JSON line's is skipped naming its field, an assembled one counted
// by its field (Assembler.BeyondLimitsStatus); a source that goes away,
// does not answer a connection attempt within its DialTimeout, or stays
// connected but sends nothing for its IdleTimeout, is reconnected with
// capped, jittered exponential backoff; a server that goes away (or refuses the party's
// reports for its budget, 429) is retried until the reports are too old for
// it to accept, while a live source is read on, each report stamped when it
// arrives, and what the queue to the server has no room for is dropped
// (Stats.Undeliverable).
package feed
