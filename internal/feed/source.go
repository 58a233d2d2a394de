package feed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/deconflict/deconflict/internal/client"
)

// maxLine bounds one input line; longer lines are malformed.
const maxLine = 64 * 1024

// SkipOverlong is the reason (Stats.Skip) of the lines longer than
// maxLine.
const SkipOverlong = "longer than 64 KiB"

// SkipCutOff is the reason (Stats.Skip) of the lines a live source had not
// ended when its connection ended.
const SkipCutOff = "cut off by the end of the connection"

// ReadLines calls fn with each line of r (without its line ending) until r
// ends, fn returns an error, or ctx is done. Over-long lines are not
// passed on but counted in stats as skipped (SkipOverlong): their head
// may well parse (22 BaseStation fields, the last cut short), as
// something the line does not say.
func ReadLines(ctx context.Context, r io.Reader, stats *Stats, fn func(line string) error) error {
	return readLines(ctx, r, stats, false, fn)
}

// readLines is ReadLines; with unendedCutOff, a last line without its line
// feed is cut off, skipped as SkipCutOff: a live source ends every line it
// sends, and one it had not ended when the connection ended is a head
// (which may parse, as something the line does not say), whereas a file's
// last line may well have no line feed.
func readLines(ctx context.Context, r io.Reader, stats *Stats, unendedCutOff bool, fn func(line string) error) error {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Swallow the rest of the line.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			stats.Skip(SkipOverlong)
			line = nil
		}
		if unendedCutOff && len(line) > 0 && line[len(line)-1] != '\n' {
			stats.Skip(SkipCutOff)
			line = nil
		}
		if len(line) > 0 {
			if ferr := fn(string(bytes.TrimRight(line, "\r\n"))); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// DefaultIdleTimeout is how long a live TCP source may send nothing
// before its connection is taken for dead: dump1090 and readsb send
// several lines a second while any aircraft is in range.
const DefaultIdleTimeout = 30 * time.Second

// DefaultDialTimeout is how long a connection attempt to a live TCP
// source may go unanswered: a receiver on the local network answers in
// milliseconds, and without a bound of its own an attempt on a blackholed
// address lasts the system's connect timeout, some two minutes.
const DefaultDialTimeout = 10 * time.Second

// MinDialTimeout and MaxDialTimeout bound the dial timeout an operator
// may give (deconflict feed sbs --dial-timeout): below 10 ms not even a
// receiver on the local network answers every attempt in time (a
// handshake is a round trip, milliseconds over Wi-Fi), and every attempt
// would fail; beyond two minutes the system's own connect timeout (some
// 130 s on Linux) ends the attempt first, so that the figure would say
// what never happens.
const (
	MinDialTimeout = 10 * time.Millisecond
	MaxDialTimeout = 2 * time.Minute
)

// CheckDialTimeout refuses a dial timeout outside MinDialTimeout to
// MaxDialTimeout.
func CheckDialTimeout(d time.Duration) error {
	if d < MinDialTimeout || d > MaxDialTimeout {
		return fmt.Errorf("must be from %v to %v (a connection attempt is given up after it), not %v", MinDialTimeout, MaxDialTimeout, d)
	}
	return nil
}

// TCPSource is a live line source over TCP (a BaseStation port such as
// dump1090's 30003).
type TCPSource struct {
	Addr    string
	Backoff client.Backoff
	// IdleTimeout bounds how long a connection may deliver nothing
	// (DefaultIdleTimeout when 0): a source that stays connected but
	// stops sending is dropped and connected again, said in Logf.
	IdleTimeout time.Duration
	// Logf says what happened to the connection (nil: nothing is said).
	Logf  func(format string, args ...any)
	Stats *Stats
	// DialTimeout bounds each connection attempt (DefaultDialTimeout
	// when 0): an address that swallows the attempt is given up, said in
	// Logf, and tried again with backoff.
	DialTimeout time.Duration
	// Dial makes the connection (a net.Dialer's DialContext when nil);
	// tests put a source that never answers in its place.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// FollowTCP follows addr as a TCPSource with the default idle timeout,
// saying nothing.
func FollowTCP(ctx context.Context, addr string, b client.Backoff, stats *Stats, fn func(line string) error) error {
	return (&TCPSource{Addr: addr, Backoff: b, Stats: stats}).Follow(ctx, fn)
}

// Follow connects to the source and calls fn for each line received.
// Whenever the connection cannot be made, breaks or ends, it reconnects
// with backoff (reset once a connection delivered data), counting
// reconnects in Stats. It returns only when ctx is done, or with fn's
// error.
func (s *TCPSource) Follow(ctx context.Context, fn func(line string) error) error {
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	logf := s.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dialTimeout := s.DialTimeout
	if dialTimeout <= 0 {
		dialTimeout = DefaultDialTimeout
	}
	dial := s.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	failures := 0
	unreachableSaid := false
	for first := true; ; first = false {
		if !first {
			s.Stats.Reconnects.Add(1)
		}
		dialCtx, cancelDial := context.WithTimeout(ctx, dialTimeout)
		conn, err := dial(dialCtx, "tcp", s.Addr)
		cancelDial() // bounds only the attempt, not the connection made
		switch {
		case err != nil && ctx.Err() == nil && !unreachableSaid:
			// Said once while it stays so: the attempts are counted.
			logf("cannot connect to %s (%v): trying again, with backoff, until it answers", s.Addr, err)
			unreachableSaid = true
		case err == nil:
			logf("connected to %s", s.Addr)
			unreachableSaid = false
		}
		if err == nil {
			got := false
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			err = readLines(ctx, idleReader{conn, idle}, s.Stats, true, func(line string) error {
				got = true
				return fn(line)
			})
			stop()
			conn.Close()
			switch {
			case ctx.Err() != nil:
			case errors.Is(err, os.ErrDeadlineExceeded):
				logf("source %s sent nothing for %g s: dropping the connection and connecting again", s.Addr, idle.Seconds())
			case err == nil:
				logf("source %s closed the connection: connecting again", s.Addr)
			case isNetErr(err):
				logf("connection to %s broken (%v): connecting again", s.Addr, err)
			}
			if err != nil && ctx.Err() == nil && !isNetErr(err) {
				return err // the handler's own error
			}
			if got {
				failures = 0
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if err := s.Backoff.Sleep(ctx, failures); err != nil {
			return nil
		}
		failures++
	}
}

// idleReader reads a connection, each read bounded by idle: a source that
// sends nothing for that long fails the read with os.ErrDeadlineExceeded.
type idleReader struct {
	conn net.Conn
	idle time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	if err := r.conn.SetReadDeadline(time.Now().Add(r.idle)); err != nil {
		return 0, err
	}
	return r.conn.Read(p)
}

func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// Format is the format of a feed file.
type Format int

const (
	FormatSBS Format = iota
	FormatJSONL
)

// DetectFormat guesses the format from the first non-blank line: JSON lines
// start with '{'.
func DetectFormat(firstLine string) Format {
	if strings.HasPrefix(strings.TrimSpace(firstLine), "{") {
		return FormatJSONL
	}
	return FormatSBS
}

// SBSDecoder turns BaseStation lines into reports: parse, count what is
// skipped, assemble.
type SBSDecoder struct {
	Assembler *Assembler
	Stats     *Stats
	// Now is the wall clock (time.Now when nil), the time of a recorded
	// file whose lines carry none.
	Now func() time.Time
	// last is the time of the last message that carried one, used for
	// messages without a time when replaying.
	last time.Time
	// clock is how a recorded file is timed, set by its first message.
	clock recordClock
}

// recordClock is how a recorded file is timed.
type recordClock int

const (
	clockUnknown recordClock = iota
	// clockFile: the file's own "generated" times (the previous one for
	// a line without).
	clockFile
	// clockReading: the file's lines carry no time (some receivers and
	// libraries leave the date and time fields empty): it is read in
	// order, each line at the time it is read.
	clockReading
)

// NewSBSDecoder returns a decoder counting into stats.
func NewSBSDecoder(stats *Stats) *SBSDecoder {
	return &SBSDecoder{Assembler: NewAssembler(), Stats: stats}
}

// Live decodes a line received now: the report is stamped with the time of
// receipt, because a receiver's own timestamps are local time of unknown
// zone.
func (d *SBSDecoder) Live(line string, now time.Time) (client.Report, bool) {
	m, ok := d.parse(line)
	if !ok {
		return client.Report{}, false
	}
	return d.Assembler.Add(m, now)
}

// Recorded decodes a line of a recorded file. A file whose first message
// carries a time is read in its own time (the "generated" timestamp; the
// previous one when absent); a file whose first message carries none is
// read in order at the time of reading (Now). The caller re-stamps the
// report onto the wall clock.
func (d *SBSDecoder) Recorded(line string) (client.Report, bool) {
	m, ok := d.parse(line)
	if !ok {
		return client.Report{}, false
	}
	if d.clock == clockUnknown {
		d.clock = clockFile
		if m.Generated.IsZero() {
			d.clock = clockReading
		}
	}
	if d.clock == clockReading {
		now := time.Now
		if d.Now != nil {
			now = d.Now
		}
		return d.Assembler.Add(m, now())
	}
	if !m.Generated.IsZero() {
		d.last = m.Generated
	}
	return d.Assembler.Add(m, d.last)
}

// String is the status line of the BaseStation part of a feed, as the
// ASTERIX decoder's says it: the messages of new aircraft the assembler
// refused, holding MaxAircraft already, and the reports not made because
// the server refuses them, by field.
func (d *SBSDecoder) String() string {
	return fmt.Sprintf("aircraft_full=%d%s", d.Assembler.Full.Load(), d.Assembler.BeyondLimitsStatus())
}

func (d *SBSDecoder) parse(line string) (SBSMessage, bool) {
	if strings.TrimSpace(line) == "" {
		return SBSMessage{}, false
	}
	m, err := ParseSBS(line)
	if err != nil {
		d.Stats.Skip(sbsSkipReason(err))
		return SBSMessage{}, false
	}
	return m, true
}

// sbsSkipReason names why a BaseStation line was skipped, the same for
// every line skipped for the same cause.
func sbsSkipReason(err error) string {
	var se *SBSError
	switch {
	case errors.Is(err, ErrNotMSG):
		return "not MSG lines (no aircraft data)"
	case errors.As(err, &se) && se.Name == "field count":
		return "with the wrong number of fields"
	case errors.As(err, &se):
		return fmt.Sprintf("bad field %d (%s)", se.Field, se.Name)
	}
	return "malformed"
}

// Pacer maps the times of a recorded source onto the wall clock: the first
// source time is now, and later ones follow at Speed times real time. Speed
// 0 means as fast as possible.
type Pacer struct {
	Speed float64
	// MaxGap bounds the step of source time the pacer waits out
	// (DefaultMaxGap when 0): a time more than MaxGap after the one before
	// it (a gap in the recording, a line dated a year on) is stamped now,
	// without waiting, and so is a time that would be stamped more than
	// MaxStampBack before the one before it (recordings joined out of
	// order, a receiver's clock set back): the source's clock is
	// re-anchored on the wall clock from there, and the jump said in Logf.
	MaxGap time.Duration
	// MaxLag bounds how far behind the recording's pace a replay may
	// stamp (DefaultMaxLag when 0). A replay falls behind when the
	// machine does not keep up or the sender waits on a slow server:
	// beyond MaxLag, the report is stamped now rather than in the past,
	// the replay goes on at its pace from there, and Logf says so (at
	// most every slipSayEvery, each line with the totals, which String
	// gives too).
	MaxLag time.Duration
	// Logf says when the source's time jumps or the replay falls behind
	// (nil: nothing is said).
	Logf func(format string, args ...any)
	// Now and Sleep are the wall clock (time.Now and a timer when nil).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error

	started     bool
	src0, wall0 time.Time
	lastSrc     time.Time
	// maxSrc is the furthest source time since the last anchor: a
	// replay is behind by how far the wall clock is past its stamp, not
	// that of a report a little out of order.
	maxSrc    time.Time
	lastStamp time.Time
	// slips counts the times the replay fell behind, slippedNs how far in
	// all (read by String from another goroutine); slipSaid is when Logf
	// last said it.
	slips, slippedNs atomic.Int64
	slipSaid         time.Time
}

// DefaultMaxLag is how far behind the recording's pace a replay stamps
// before it is taken to have fallen behind: about the latency of a live
// feed, ADS-B's report interval, and far inside the stale time past which
// the server ignores a report (30 s by default), which it still answers
// accepted.
const DefaultMaxLag = time.Second

// slipSayEvery is how often at most a replay that keeps falling behind
// says so: each line has the totals.
const slipSayEvery = 10 * time.Second

// String is the status of the pacing: how many times the replay fell
// behind the recording's pace, and by how much in all.
func (p *Pacer) String() string {
	return fmt.Sprintf("fell_behind=%d fell_behind_s=%.1f", p.slips.Load(), time.Duration(p.slippedNs.Load()).Seconds())
}

// DefaultMaxGap is the longest step of a recording's time that a replay
// waits out: a longer one is a gap in the recording, not traffic.
const DefaultMaxGap = 10 * time.Minute

// MaxStampBack is how far before the report before it a step back of the
// source's time may stamp a report (further, the Pacer re-anchors) (records of several sensors come a
// little out of order), well inside the minute a server accepts.
const MaxStampBack = 10 * time.Second

// maxLead is how far ahead of the wall clock an as-fast-as-possible replay
// may stamp (the server accepts reports up to 10 s in the future).
const maxLead = 5 * time.Second

// Stamp waits until the wall time that corresponds to source time src and
// returns it; where the source's time jumps (see MaxGap), it re-anchors
// the source's clock on now and returns now. At Speed 0 it does not wait
// but returns strictly increasing wall times (a microsecond apart when the
// clock has not moved), pausing only if that would run more than a few
// seconds ahead of the wall clock, so every stamp stays within the window
// a server accepts.
func (p *Pacer) Stamp(ctx context.Context, src time.Time) (time.Time, error) {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Sleep == nil {
		p.Sleep = client.Sleep
	}
	now := p.Now()
	if !p.started {
		p.started, p.src0, p.wall0, p.lastSrc, p.maxSrc = true, src, now, src, src
	}
	if p.Speed <= 0 {
		stamp := now
		if !stamp.After(p.lastStamp) {
			stamp = p.lastStamp.Add(time.Microsecond)
		}
		if ahead := stamp.Sub(now); ahead > maxLead {
			if err := p.Sleep(ctx, ahead-maxLead); err != nil {
				return time.Time{}, err
			}
		}
		p.lastStamp = stamp
		return stamp, nil
	}
	p.followJump(src, now)
	if src.After(p.maxSrc) {
		p.maxSrc = src
	}
	p.keepUp(now)
	target := p.wall0.Add(time.Duration(float64(src.Sub(p.src0)) / p.Speed))
	if d := target.Sub(now); d > 0 {
		if err := p.Sleep(ctx, d); err != nil {
			return time.Time{}, err
		}
	}
	p.lastStamp = target
	return target, nil
}

// keepUp re-anchors the source's clock so that the furthest source time
// is stamped now when the wall clock is more than MaxLag past its stamp:
// the replay fell behind, and the report is stamped now, not in the past.
func (p *Pacer) keepUp(now time.Time) {
	maxLag := p.MaxLag
	if maxLag <= 0 {
		maxLag = DefaultMaxLag
	}
	paced := p.wall0.Add(time.Duration(float64(p.maxSrc.Sub(p.src0)) / p.Speed))
	lag := now.Sub(paced)
	if lag <= maxLag {
		return
	}
	p.src0, p.wall0 = p.maxSrc, now
	n, all := p.slips.Add(1), time.Duration(p.slippedNs.Add(int64(lag)))
	if p.Logf != nil && (n == 1 || now.Sub(p.slipSaid) >= slipSayEvery) {
		p.slipSaid = now
		times := "times"
		if n == 1 {
			times = "time"
		}
		p.Logf("the replay fell %v behind the recording's pace (this machine or the server does not keep up): its reports are stamped now, not in the past, and it goes on at its pace from there; %d %s, %v in all", lag.Round(time.Millisecond), n, times, all.Round(time.Millisecond))
	}
}

// followJump re-anchors the source's clock at src on now when src jumps
// from the source time before it: ahead by more than MaxGap, or back by
// more than would stamp it MaxStampBack before the report before it.
func (p *Pacer) followJump(src, now time.Time) {
	prev := p.lastSrc
	p.lastSrc = src
	maxGap := p.MaxGap
	if maxGap <= 0 {
		maxGap = DefaultMaxGap
	}
	ahead, back := src.Sub(prev), prev.Sub(src) // each saturates rather than overflows
	var jump string
	switch {
	case ahead > maxGap:
		jump = fmt.Sprintf("%v ahead, from %s to %s: not waited for, the replay goes on at once", ahead, prev.Format(time.RFC3339Nano), src.Format(time.RFC3339Nano))
	case back > 0 && float64(back)/p.Speed > float64(MaxStampBack):
		jump = fmt.Sprintf("%v back, from %s to %s: the replay goes on from now", back, prev.Format(time.RFC3339Nano), src.Format(time.RFC3339Nano))
	default:
		return
	}
	p.src0, p.wall0, p.maxSrc = src, now, src
	if p.Logf != nil {
		p.Logf("the source's time jumps %s", jump)
	}
}

// Replay reads a recorded feed (SBS or JSON lines, detected from the first
// line) from r, re-stamps each report onto the wall clock through pacer and
// sends it on out. Malformed lines are counted in stats and skipped. It
// returns at the end of r or when ctx is done.
func Replay(ctx context.Context, r io.Reader, pacer *Pacer, stats *Stats, out chan<- client.Report) error {
	return NewSBSDecoder(stats).Replay(ctx, r, pacer, out)
}

// Replay is the package's Replay with d decoding the BaseStation lines
// (counting into d.Stats).
func (d *SBSDecoder) Replay(ctx context.Context, r io.Reader, pacer *Pacer, out chan<- client.Report) error {
	format, detected := FormatSBS, false
	d.Now = pacer.Now // a file without times is read on the pacer's clock
	stats := d.Stats
	return ReadLines(ctx, r, stats, func(line string) error {
		if strings.TrimSpace(line) == "" {
			return nil
		}
		if !detected {
			format, detected = DetectFormat(line), true
		}
		var rep client.Report
		switch format {
		case FormatJSONL:
			var err error
			if rep, err = ParseJSONLine([]byte(line)); err != nil {
				stats.Skip(JSONSkipReason(err))
				return nil
			}
		default:
			var ok bool
			if rep, ok = d.Recorded(line); !ok {
				return nil
			}
		}
		return sendPaced(ctx, pacer, out, rep)
	})
}

// sendPaced waits for the wall time pacer maps the report's time to, and
// sends the report on out stamped with it.
func sendPaced(ctx context.Context, pacer *Pacer, out chan<- client.Report, rep client.Report) error {
	stamp, err := pacer.Stamp(ctx, rep.Time)
	if err != nil {
		return err
	}
	rep.Time = stamp
	select {
	case out <- rep:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
