// Package clock is the service's wall clock, guarded against steps of the
// clock it follows.
//
// The service compares its wall clock with times that come from outside
// (a position report's time, stamped by a party's feed with true time) and
// with times it stored itself (a track's last report, the end of a volume's
// window, the deadline of a hotline item, the expiry of a nonce or of an
// idempotency key, the last audit checkpoint). When the host's clock is set
// an hour ahead and corrected later, a service that follows it sees every
// track an hour old and drops it with its alerts, refuses every new report
// as too old, ends volume windows early and forgets nonces early; set back,
// it stops checkpointing until the clock catches up. A safety system must
// not lose its alerts because someone set a clock.
//
// A Guard is a wall clock made of a reference wall clock (the host's
// time.Now, or a replica's estimate of the database server's clock) and a
// monotonic clock, which nobody sets. Its invariants:
//
//   - It starts at the reference's time, or off it by StartOffset (a
//     replica started while others run takes their time, which is not
//     the database's when they kept theirs across a step of it).
//   - It advances with the monotonic clock, and never goes backward: of two
//     readings, the one that began after the other returned is not earlier.
//   - It follows the reference's small differences (a drift, NTP's small
//     corrections, a replica's new measurement of the database's clock) by
//     slewing: over any stretch of monotonic time E it moves at most
//     E/SlewDivisor (1 %) away from where the monotonic clock alone would
//     take it, plus 1 ns of rounding. A difference within StepThreshold
//     that the reference keeps long enough (SlewDivisor times the
//     difference) is taken entirely: the guard then tells the reference's
//     time exactly.
//   - A difference beyond StepThreshold is a step, and is not followed: the
//     guard keeps its own time (the monotonic clock's) and raises an
//     operator alarm, an ERROR log naming the offset and what to do, once
//     when it starts, again when the offset moves by more than
//     StepThreshold or every AlarmRepeat while it lasts, never on every
//     reading. The alarm clears itself (logged) when the reference comes
//     back within StepThreshold: the operator either fixes the reference
//     clock, or restarts the service, which takes the reference's time.
//
// Units: times are time.Time (wall, no monotonic reading: the service
// compares them with times from outside and from its store), durations are
// time.Duration; the monotonic source is the time.Duration elapsed since an
// anchor of its own choosing.
//
// A ReportCheck (reports.go) tells the operator of a time wrong from the
// start, which a Guard cannot see: it compares the service's time with the
// parties' report times, and never corrects it.
//
// A Guard is safe for concurrent use; a reading costs one reading of each
// clock and an uncontended mutex (BenchmarkNow).
package clock

import (
	"log/slog"
	"sync"
	"time"
)

const (
	// StepThreshold is the difference from the reference beyond which the
	// guard takes it for a step and does not follow it. A synchronised
	// host never moves its clock this far while it runs: NTP slews at
	// most 500 ppm and steps only corrections beyond 128 ms (ntpd) or
	// beyond the makestep threshold (chrony, 1 s in the usual
	// configuration), and a replica's measurement of the database's clock
	// moves by tens of milliseconds. It is well below the tolerances the
	// service compares times at (a report up to 10 s in the future, 60 s
	// old, a track stale after 30 s by default): a difference the guard
	// slews rather than takes at once changes none of those judgments
	// materially.
	StepThreshold = 2 * time.Second

	// SlewDivisor bounds the slew: the guard moves at most 1/SlewDivisor
	// (1 %) of the elapsed monotonic time toward the reference. That is
	// 20 times NTP's largest slew (500 ppm), so a drifting host's clock is
	// followed closely; a difference at StepThreshold is taken within
	// 200 s; and a duration the service measures on its own clock (an
	// acknowledgment deadline of 60 s) is off by at most 0.6 s while it
	// slews.
	SlewDivisor = 100

	// AlarmRepeat is how often the alarm is logged again while the
	// reference stays stepped away by about the same offset: an operator
	// looking at the recent log sees it, and a long step is not a line per
	// reading.
	AlarmRepeat = 5 * time.Minute
)

// Config is one Guard.
type Config struct {
	// Reference is the wall clock the guard follows (time.Now when nil).
	Reference func() time.Time
	// ReferenceName names the reference in the alarm, as what the operator
	// fixes ("this host's clock" when empty).
	ReferenceName string
	// Monotonic is the time elapsed since an anchor of its own, on a clock
	// nobody sets; it must not go backward (a reading that does counts as
	// no time elapsed). Nil: the host's boot-time clock since New where
	// there is one (Linux CLOCK_BOOTTIME), which runs on while the host
	// is suspended, as the host's wall clock does; elsewhere Go's
	// monotonic clock (with a nil Reference, both from one time.Now).
	// Go's monotonic clock (Linux CLOCK_MONOTONIC) stops while the host
	// is suspended: after a suspend the host's clock, right, would look
	// stepped ahead by as long, and the guard would keep a time that
	// much behind until a restart.
	Monotonic func() time.Duration
	// Logger receives the alarm (discarded when nil).
	Logger *slog.Logger
	// StartOffset is the guard's time at its start minus the reference's:
	// zero starts it at the reference's time. A replica started while
	// other replicas run takes their time (package server): after a step
	// of the database's clock that they did not follow, it is that far off
	// the reference, and beyond StepThreshold the guard raises the alarm
	// at once, as theirs did.
	StartOffset time.Duration
	// Restart is the alarm's advice for when the reference is right and
	// the service's time wrong ("restart the service to take its time"
	// when empty): a replica restarted alone takes the others' time.
	Restart string
}

// Status is the guard's alarm as its last reading found it.
type Status struct {
	// Stepped is whether the reference is more than StepThreshold away
	// (the alarm is raised).
	Stepped bool
	// ReferenceOffset is the reference's time minus the guard's: positive
	// when the reference is ahead.
	ReferenceOffset time.Duration
}

// Guard is a wall clock guarded against steps of its reference (see the
// package doc).
type Guard struct {
	ref  func() time.Time
	mono func() time.Duration
	// hostNow: ref and mono are one time.Now (the reference and the
	// monotonic reading it carries, since anchor).
	hostNow bool
	anchor  time.Time
	name    string
	restart string
	log     *slog.Logger

	mu       sync.Mutex
	lastMono time.Duration // the monotonic reading the guard's time is at
	lastNs   int64         // the guard's time, Unix nanoseconds
	// carryNs is elapsed monotonic time, below SlewDivisor ns, not yet
	// turned into slew allowance, so that frequent readings slew as much
	// as rare ones.
	carryNs int64
	status  Status
	// alarmMono and alarmOffset are when (monotonic) the alarm was last
	// logged, and with which offset.
	alarmMono   time.Duration
	alarmOffset time.Duration
}

// bootClock reads the host's boot-time clock (readBootClock; a test's
// stand-in): the time since the host booted, its suspensions included;
// false where there is none.
var bootClock = readBootClock

// New starts a guard at the reference's time plus cfg.StartOffset; one
// started more than StepThreshold off it raises the alarm before it
// returns.
func New(cfg Config) *Guard {
	g := &Guard{ref: cfg.Reference, mono: cfg.Monotonic, name: cfg.ReferenceName, restart: cfg.Restart, log: cfg.Logger}
	if g.name == "" {
		g.name = "this host's clock"
	}
	if g.restart == "" {
		g.restart = "restart the service to take its time"
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.anchor = time.Now()
	if g.mono == nil {
		read := bootClock
		if boot0, ok := read(); ok {
			g.mono = func() time.Duration {
				boot, ok := read()
				if !ok {
					return 0 // taken for no time elapsed (advance)
				}
				return boot - boot0
			}
		}
	}
	if g.ref == nil && g.mono == nil {
		g.hostNow = true
	}
	if g.ref == nil {
		g.ref = time.Now
	}
	if g.mono == nil {
		anchor := g.anchor
		g.mono = func() time.Duration { return time.Since(anchor) }
	}
	ref, mono := g.read()
	g.lastMono, g.lastNs = mono, ref.UnixNano()+int64(cfg.StartOffset)
	if cfg.StartOffset != 0 {
		g.reading() // the alarm, at once
	}
	return g
}

// read takes one reading of the reference and of the monotonic clock.
func (g *Guard) read() (time.Time, time.Duration) {
	if g.hostNow {
		now := time.Now()
		return now, now.Sub(g.anchor) // the monotonic readings' difference
	}
	ref := g.ref()
	return ref, g.mono()
}

// Now is the guarded time: a wall time without a monotonic reading, in
// the local time zone as time.Now's.
func (g *Guard) Now() time.Time {
	ns, _ := g.reading()
	return time.Unix(0, ns)
}

// Status takes a reading and says whether the alarm is raised, and the
// reference's offset.
func (g *Guard) Status() Status {
	_, st := g.reading()
	return st
}

// reading advances the guard to a fresh reading of its clocks, logs what
// the alarm became, and returns the guard's time with its status.
func (g *Guard) reading() (int64, Status) {
	ref, mono := g.read()
	g.mu.Lock()
	ns, st, alarm := g.advance(ref.UnixNano(), mono)
	g.mu.Unlock()
	if alarm != alarmNone {
		g.report(alarm, st)
	}
	return ns, st
}

// alarm is what a reading makes of the alarm.
type alarm int

const (
	alarmNone     alarm = iota
	alarmRaised         // the reference stepped away
	alarmRepeated       // it is still away (periodically, or further)
	alarmCleared        // it came back within StepThreshold
)

// advance moves the guard to the monotonic reading mono, the reference
// reading refNs (Unix nanoseconds); it holds g.mu.
func (g *Guard) advance(refNs int64, mono time.Duration) (int64, Status, alarm) {
	elapsed := mono - g.lastMono
	if elapsed < 0 {
		// A reading taken before one that already advanced the guard
		// (readings are taken outside the lock): no time elapsed for it.
		elapsed = 0
	} else {
		g.lastMono = mono
	}
	ns := g.lastNs + int64(elapsed)
	offset := refNs - ns
	what := alarmNone
	if abs(offset) > int64(StepThreshold) {
		// A step: not followed. The carry of slew allowance is dropped:
		// the slew starts afresh when the reference comes back.
		g.carryNs = 0
		switch {
		case !g.status.Stepped:
			what = alarmRaised
		case mono-g.alarmMono >= AlarmRepeat || abs(offset-int64(g.alarmOffset)) > int64(StepThreshold):
			what = alarmRepeated
		}
		if what != alarmNone {
			g.alarmMono, g.alarmOffset = mono, time.Duration(offset)
		}
		g.status = Status{Stepped: true, ReferenceOffset: time.Duration(offset)}
	} else {
		allowance := g.carryNs + int64(elapsed)
		slew := allowance / SlewDivisor
		g.carryNs = allowance % SlewDivisor
		// slew <= elapsed/SlewDivisor: the guard's time does not go back.
		adjust := max(-slew, min(slew, offset))
		ns += adjust
		offset -= adjust
		if g.status.Stepped {
			what = alarmCleared
		}
		g.status = Status{ReferenceOffset: time.Duration(offset)}
	}
	g.lastNs = ns
	return ns, g.status, what
}

func abs(d int64) int64 {
	if d < 0 {
		return -d
	}
	return d
}

// report logs the alarm's change.
func (g *Guard) report(what alarm, st Status) {
	// Rounded for people; the attribute keeps the exact figure.
	off := st.ReferenceOffset.Round(time.Millisecond)
	dir := "ahead of"
	if off < 0 {
		dir, off = "behind", -off
	}
	switch what {
	case alarmRaised, alarmRepeated:
		msg := "CLOCK STEP: " + g.name + " is " + off.String() + " " + dir + " the service's time; the service keeps its own time and does not follow it. " +
			"Fix " + g.name + " (the alarm clears itself once it is back within " + StepThreshold.String() + "), " +
			"or, if " + g.name + " is right and the service's time wrong, " + g.restart
		if what == alarmRepeated {
			msg = "still: " + msg
		}
		g.log.Error(msg, "reference_offset", st.ReferenceOffset, "step_threshold", StepThreshold)
	case alarmCleared:
		g.log.Info("clock step alarm cleared: "+g.name+" is back within "+StepThreshold.String()+" of the service's time, which follows it again", "reference_offset", st.ReferenceOffset)
	}
}
