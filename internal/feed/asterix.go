package feed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/asterix"
	"github.com/deconflict/deconflict/internal/client"
	"github.com/deconflict/deconflict/internal/geo"
	"github.com/deconflict/deconflict/internal/track"
)

// Altitude sources of a report (client.Report.AltSource): the server's.
const (
	AltGeometric  = track.AltGeometric
	AltBarometric = track.AltBarometric
)

// ASTERIXStats counts what the ASTERIX feed did with the records it
// decoded, beyond the stream's own counters (blocks and records per
// category, malformed input per reason). Safe for concurrent use.
type ASTERIXStats struct {
	// Service counts CAT034 and CAT065 records: recognised and skipped.
	Service atomic.Int64
	// NoIdentity counts target records with neither an ICAO address nor a
	// track number: nothing to tie them to.
	NoIdentity atomic.Int64
	// NoRadar counts CAT048 positions dropped for want of --radar.
	NoRadar atomic.Int64
	// ClockOff counts live records whose time of day was more than
	// MaxClockOffset from the receiver's clock: stamped with the time of
	// receipt instead.
	ClockOff atomic.Int64
}

// MaxClockOffset is how far a live record's time of day may be from the
// receiver's clock and still be used as the report's time.
const MaxClockOffset = 30 * time.Second

// ASTERIXDecoder maps decoded ASTERIX records to position reports through
// an Assembler: each record contributes what it carries (position,
// altitude, velocity, callsign) to its aircraft's state, as a BaseStation
// message does.
//
// The mapping, per category:
//   - aircraft: the ICAO address (I062/380 ADR, I021/080, I048/220) as six
//     upper-case hex digits, as the SBS feed names aircraft; otherwise the
//     track number, as "TRK<cat>-<sac>-<sic>-<number>".
//   - callsign: the target identification (I062/245, I021/170, I048/240),
//     else I062/380 ID, else the flight plan callsign of I062/390.
//   - position: I062/105; I021/131, else I021/130; I048/040 (slant range and
//     azimuth) from the radar's position (Radar), the elevation following
//     from the record's Mode C flight level on a spherical earth of the
//     local radius (at the radar's height when the level is unknown).
//   - altitude: geometric when present (I062/130, I021/140, AltSource
//     "geometric"), otherwise the barometric level converted (I062/135,
//     else I062/136; I021/145; I048/090 when validated and not garbled:
//     "barometric").
//   - velocity: I062/185 east and north; I021/160 ground speed and track
//     angle; I048/200 ground speed and heading; vertical from I062/220,
//     I021/155 (else I021/157); none for CAT048.
//   - on the ground: I062/080 SFC, I021/040 GBS, I048/230 STAT.
type ASTERIXDecoder struct {
	Assembler *Assembler
	// Radar is the position of the radar of CAT048 records (nil: CAT048
	// positions are dropped, counted in Stats.NoRadar).
	Radar  *geo.LLA
	Stream asterix.Stream
	Stats  ASTERIXStats
}

// NewASTERIXDecoder returns a decoder with a fresh assembler.
func NewASTERIXDecoder(radar *geo.LLA) *ASTERIXDecoder {
	return &ASTERIXDecoder{Assembler: NewAssembler(), Radar: radar}
}

// String is the status line of the ASTERIX part of a feed.
func (d *ASTERIXDecoder) String() string {
	return fmt.Sprintf("%s service_skipped=%d no_identity=%d no_radar=%d clock_off=%d aircraft_full=%d%s",
		&d.Stream.Stats, d.Stats.Service.Load(), d.Stats.NoIdentity.Load(), d.Stats.NoRadar.Load(), d.Stats.ClockOff.Load(),
		d.Assembler.Full.Load(), d.Assembler.BeyondLimitsStatus())
}

// update maps one record to an Update (see the type's doc); ok is false
// for records that concern no aircraft.
func (d *ASTERIXDecoder) update(r *asterix.Record) (u Update, ok bool) {
	switch r.Cat {
	case asterix.Cat034, asterix.Cat065:
		d.Stats.Service.Add(1)
		return u, false
	}
	switch {
	case r.Has&asterix.HasAddress != 0:
		u.Aircraft = strings.ToUpper(r.AddressHex())
	case r.Has&asterix.HasTrackNumber != 0:
		u.Aircraft = fmt.Sprintf("TRK%03d-%d-%d-%d", r.Cat, r.SAC, r.SIC, r.TrackNumber)
	default:
		d.Stats.NoIdentity.Add(1)
		return u, false
	}
	for _, cs := range []string{r.CallsignText(), r.CallsignADDText(), r.CallsignFPLText()} {
		if cs != "" {
			u.Callsign = cs
			break
		}
	}
	// Altitude: geometric first. I021/140 of all ones means "greater than"
	// (edition 2.x note): no value.
	switch {
	case r.GeometricAltItem != 0 && !(r.Cat == asterix.Cat021 && r.GeometricAlt == math.MaxInt16):
		u.HasAlt, u.AltM, u.AltSource = true, geo.FeetToM(r.GeometricAltFt()), AltGeometric
	case r.Has&asterix.HasBaroAlt != 0:
		u.HasAlt, u.AltM, u.AltSource = true, geo.FlightLevelToM(r.BaroAltFL()), AltBarometric
	case r.FlightLevelItem != 0 && r.FlightLevelValid:
		u.HasAlt, u.AltM, u.AltSource = true, geo.FlightLevelToM(r.FlightLevelFL()), AltBarometric
	}
	switch {
	case r.Has&asterix.HasCartesianVelocity != 0:
		u.HasVelocity = true
		u.VelEastMps, u.VelNorthMps = r.VelocityMps()
	case r.Has&asterix.HasPolarVelocity != 0:
		gs := geo.KnotsToMps(r.GroundSpeedKt())
		rad := r.HeadingDeg() * math.Pi / 180
		u.HasVelocity, u.VelEastMps, u.VelNorthMps = true, gs*math.Sin(rad), gs*math.Cos(rad)
	}
	if u.HasVelocity && r.VerticalRateItem != 0 {
		u.HasVerticalRate, u.VelUpMps = true, geo.FeetPerMinToMps(r.VerticalRateFpm())
	}
	switch {
	case r.PositionItem != 0:
		u.HasPosition = true
		u.LatDeg, u.LonDeg = r.LatLonDeg()
	case r.Has&asterix.HasPolar != 0 && d.Radar == nil:
		d.Stats.NoRadar.Add(1)
	case r.Has&asterix.HasPolar != 0:
		var targetAltM *float64
		if r.FlightLevelItem != 0 && r.FlightLevelValid {
			a := geo.FlightLevelToM(r.FlightLevelFL())
			targetAltM = &a
		}
		p := PolarToWGS84(*d.Radar, geo.NMToM(r.RhoNM()), r.ThetaDeg(), targetAltM)
		u.HasPosition, u.LatDeg, u.LonDeg = true, p.LatDeg, p.LonDeg
	}
	u.OnGround = r.Has&asterix.HasOnGround != 0 && r.OnGround
	return u, true
}

// earthRadiusM is the radius of the sphere on which a radar's slant range
// is turned into a ground position: the WGS-84 mean radius. Over a radar's
// 250 NM the error of the sphere is far below the radar's own accuracy.
const earthRadiusM = 6_371_008.8

// PolarToWGS84 places a target seen by a radar at radar, at slant range
// rangeM and azimuth azimuthDeg (clockwise from true north), at height
// targetAltM above the sea (nil: at the radar's height). The elevation
// follows from the triangle of the earth's centre, radar and target on a
// sphere; the ground distance is then travelled along the azimuth on the
// ellipsoid.
func PolarToWGS84(radar geo.LLA, rangeM, azimuthDeg float64, targetAltM *float64) geo.LLA {
	alt := radar.AltM
	if targetAltM != nil {
		alt = *targetAltM
	}
	r1, r2 := earthRadiusM+radar.AltM, earthRadiusM+alt
	// Law of cosines: the angle at the earth's centre.
	cosC := (r1*r1 + r2*r2 - rangeM*rangeM) / (2 * r1 * r2)
	c := math.Acos(max(-1, min(1, cosC)))
	p := geo.Destination(radar, azimuthDeg, c*earthRadiusM)
	p.AltM = alt
	return p
}

// recordTimeOfDay is a record's time of day: of its position, else of the
// record; ok is false when it has none.
func recordTimeOfDay(r *asterix.Record) (tod time.Duration, ok bool) {
	switch {
	case r.PositionTimeItem != 0:
		tod = time.Duration(r.PositionTime) * time.Second / 128
	case r.TimeOfDayItem != 0:
		tod = time.Duration(r.TimeOfDay) * time.Second / 128
	default:
		return 0, false
	}
	return tod, isTimeOfDay(tod)
}

// isTimeOfDay reports whether tod is within a day. The items hold up to
// 36 h (24 bits of 1/128 s; a FINAL frame's 24 bits of 10 ms, 46 h): a
// value of a day or more is no time of day, and is taken as none. Read on
// the nearest day, it moved a replay's clock by up to 12 h.
func isTimeOfDay(tod time.Duration) bool { return tod >= 0 && tod < 24*time.Hour }

// onNearestDay places a UTC time of day on the day that puts it nearest to
// ref (a time of day just before midnight, received just after, belongs to
// the day before).
func onNearestDay(tod time.Duration, ref time.Time) time.Time {
	ref = ref.UTC()
	t := ref.Truncate(24 * time.Hour).Add(tod)
	switch {
	case t.Sub(ref) > 12*time.Hour:
		t = t.Add(-24 * time.Hour)
	case ref.Sub(t) > 12*time.Hour:
		t = t.Add(24 * time.Hour)
	}
	return t
}

// Live decodes one datagram received at now and calls emit with each report
// it completes. A record's time of day, placed on today's date, is the
// report's time when it is within MaxClockOffset of now; otherwise (or
// without one) the time of receipt is.
func (d *ASTERIXDecoder) Live(datagram []byte, now time.Time, emit func(client.Report) error) error {
	return d.Stream.Payload(&asterix.Frame{Payload: datagram, Time: now}, func(b *asterix.Block) error {
		return d.reports(b, func(r *asterix.Record) time.Time {
			if tod, ok := recordTimeOfDay(r); ok {
				if t := onNearestDay(tod, now); t.Sub(now).Abs() <= MaxClockOffset {
					return t
				}
				d.Stats.ClockOff.Add(1)
			}
			return now
		}, emit)
	})
}

// reports feeds the records of a block to the assembler, each at the time
// at gives it, and calls emit with each report completed.
func (d *ASTERIXDecoder) reports(b *asterix.Block, at func(*asterix.Record) time.Time, emit func(client.Report) error) error {
	for i := range b.Records {
		r := &b.Records[i]
		u, ok := d.update(r)
		if !ok {
			continue
		}
		if rep, ok := d.Assembler.Update(u, at(r)); ok {
			if err := emit(rep); err != nil {
				return err
			}
		}
	}
	return nil
}

// replayEpoch is the date recorded times of day are placed on before the
// pacer maps them onto the present; only differences matter.
var replayEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ReplayASTERIX reads a recording (framing f, FramingAuto to detect it) and
// sends its reports on out, each at the wall time pacer maps its source
// time to: the record's time of day (the recorder's frame time when the
// record has none), carried over midnight. Malformed input is counted in
// d.Stream.Stats and skipped. It returns at the end of the recording or
// when ctx is done.
func (d *ASTERIXDecoder) Replay(ctx context.Context, fr asterix.FrameReader, pacer *Pacer, out chan<- client.Report) error {
	last := replayEpoch
	started := false
	src := func(tod time.Duration) time.Time {
		if !started {
			started = true
			last = replayEpoch.Add(tod)
			return last
		}
		last = onNearestDay(tod, last)
		return last
	}
	return d.Stream.Recording(fr, func(b *asterix.Block) error {
		return d.reports(b, func(r *asterix.Record) time.Time {
			if tod, ok := recordTimeOfDay(r); ok {
				return src(tod)
			}
			switch {
			case b.Frame.HasTimeOfDay && isTimeOfDay(b.Frame.TimeOfDay):
				return src(b.Frame.TimeOfDay)
			case !b.Frame.Time.IsZero():
				return src(b.Frame.Time.Sub(b.Frame.Time.Truncate(24 * time.Hour)))
			}
			return last
		}, func(rep client.Report) error { return sendPaced(ctx, pacer, out, rep) })
	})
}

// ListenUDP opens the UDP source addr: a multicast group (joined on iface,
// or the system's choice when iface is nil) or a unicast address to listen
// on. The socket's receive buffer is enlarged so that bursts wait for the
// reader rather than being dropped.
func ListenUDP(addr string, iface *net.Interface) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	var conn *net.UDPConn
	if ua.IP != nil && ua.IP.IsMulticast() {
		conn, err = net.ListenMulticastUDP("udp", iface, ua)
	} else {
		conn, err = net.ListenUDP("udp", ua)
	}
	if err != nil {
		return nil, err
	}
	conn.SetReadBuffer(8 << 20)
	return conn, nil
}

// FollowUDP reads datagrams from conn until ctx is done, handing each, with
// its time of receipt, to fn. A read error other than the close at the end
// is returned.
func FollowUDP(ctx context.Context, conn *net.UDPConn, fn func(datagram []byte, at time.Time) error) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	buf := make([]byte, 64*1024)
	for {
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return ctx.Err()
			}
			return err
		}
		if err := fn(buf[:n], time.Now()); err != nil {
			return err
		}
	}
}
