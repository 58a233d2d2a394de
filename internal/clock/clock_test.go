package clock

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/deconflict/deconflict/internal/testutil/racerapid"
	"pgregory.net/rapid"
)

// fakeClocks is a monotonic clock the test advances and a reference that
// runs with it, off by an offset the test sets (a step, a drift).
type fakeClocks struct {
	mu     sync.Mutex
	base   time.Time
	mono   time.Duration
	offset time.Duration // reference minus (base + mono)
}

func newFakeClocks() *fakeClocks {
	return &fakeClocks{base: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
}

func (f *fakeClocks) reference() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.base.Add(f.mono + f.offset)
}

func (f *fakeClocks) monotonic() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mono
}

func (f *fakeClocks) advance(d time.Duration) {
	f.mu.Lock()
	f.mono += d
	f.mu.Unlock()
}

func (f *fakeClocks) setOffset(d time.Duration) {
	f.mu.Lock()
	f.offset = d
	f.mu.Unlock()
}

// monotonicTime is where the monotonic clock alone takes a guard started
// at base.
func (f *fakeClocks) monotonicTime() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.base.Add(f.mono)
}

// logLines is a logger whose lines the test reads.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) lines(level string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for line := range strings.SplitSeq(l.buf.String(), "\n") {
		if strings.Contains(line, "level="+level) {
			out = append(out, line)
		}
	}
	return out
}

func guarded(f *fakeClocks, logs *logLines) *Guard {
	var lg *slog.Logger
	if logs != nil {
		lg = slog.New(slog.NewTextHandler(logs, nil))
	}
	return New(Config{Reference: f.reference, Monotonic: f.monotonic, Logger: lg})
}

// TestStepForwardAndBackIsNotFollowed: the host's clock set an hour ahead
// and then corrected: the guard keeps its time throughout, raises the
// alarm once (saying what to do), repeats it only after AlarmRepeat or a
// new step, and clears it when the clock is back.
func TestStepForwardAndBackIsNotFollowed(t *testing.T) {
	f := newFakeClocks()
	logs := &logLines{}
	g := guarded(f, logs)
	f.advance(10 * time.Second)
	if got, want := g.Now(), f.reference(); !got.Equal(want) {
		t.Fatalf("before any step: %v, want the reference's %v", got, want)
	}

	f.setOffset(time.Hour)
	for range 100 {
		f.advance(time.Second)
		if got, want := g.Now(), f.monotonicTime(); !got.Equal(want) {
			t.Fatalf("after a step of an hour: %v, want %v (the monotonic clock's)", got, want)
		}
	}
	st := g.Status()
	if !st.Stepped || st.ReferenceOffset != time.Hour {
		t.Fatalf("status after the step: %+v", st)
	}
	errs := logs.lines("ERROR")
	if len(errs) != 1 {
		t.Fatalf("%d ERROR lines over 100 readings of one step, want 1: %q", len(errs), errs)
	}
	for _, want := range []string{"1h0m0s ahead", "Fix this host's clock", "restart the service", "reference_offset=1h0m0s"} {
		if !strings.Contains(errs[0], want) {
			t.Errorf("the alarm %q does not say %q", errs[0], want)
		}
	}

	// Still stepped after AlarmRepeat: said again, once.
	f.advance(AlarmRepeat)
	g.Now()
	g.Now()
	if errs := logs.lines("ERROR"); len(errs) != 2 || !strings.Contains(errs[1], "still") {
		t.Fatalf("after AlarmRepeat: %q", errs)
	}
	// Stepped further: said at once.
	f.setOffset(2 * time.Hour)
	g.Now()
	if errs := logs.lines("ERROR"); len(errs) != 3 || !strings.Contains(errs[2], "2h0m0s ahead") {
		t.Fatalf("after a second step: %q", errs)
	}

	// Corrected: the alarm clears and the guard tells the reference's time.
	f.setOffset(0)
	f.advance(time.Second)
	if got, want := g.Now(), f.reference(); !got.Equal(want) {
		t.Fatalf("after the correction: %v, want %v", got, want)
	}
	if st := g.Status(); st.Stepped || st.ReferenceOffset != 0 {
		t.Fatalf("status after the correction: %+v", st)
	}
	if infos := logs.lines("INFO"); len(infos) != 1 || !strings.Contains(infos[0], "cleared") {
		t.Fatalf("the clearing: %q", infos)
	}

	// A step back: not followed either, and the time goes on forward.
	f.setOffset(-time.Hour)
	before := g.Now()
	f.advance(time.Second)
	if got := g.Now(); got.Sub(before) != time.Second {
		t.Fatalf("after a step back of an hour, a second later: %v, want %v", got, before.Add(time.Second))
	}
	if errs := logs.lines("ERROR"); len(errs) != 4 || !strings.Contains(errs[3], "1h0m0s behind") {
		t.Fatalf("the step back: %q", errs)
	}
}

// TestSmallDifferenceIsSlewedAtTheBound: a correction of 1.5 s (within
// StepThreshold) is taken at 1 % of the elapsed time, no faster, and is
// taken entirely after 150 s; no alarm.
func TestSmallDifferenceIsSlewedAtTheBound(t *testing.T) {
	for _, correction := range []time.Duration{1500 * time.Millisecond, -1500 * time.Millisecond} {
		f := newFakeClocks()
		logs := &logLines{}
		g := guarded(f, logs)
		f.setOffset(correction)
		for i := 1; i <= 200; i++ {
			f.advance(time.Second)
			slewed := g.Now().Sub(f.monotonicTime())
			want := min(time.Duration(i)*time.Second/SlewDivisor, correction.Abs())
			if correction < 0 {
				want = -want
			}
			if slewed != want {
				t.Fatalf("correction %v, after %d s: slewed %v, want %v", correction, i, slewed, want)
			}
		}
		if got, want := g.Now(), f.reference(); !got.Equal(want) {
			t.Fatalf("correction %v, after 200 s: %v, want the reference's %v", correction, got, want)
		}
		if len(logs.lines("ERROR")) != 0 {
			t.Fatalf("correction %v raised the alarm: %q", correction, logs.lines("ERROR"))
		}
	}
}

// TestFrequentReadingsSlewAsRareOnes: readings 30 ns apart (each allowing
// less than a nanosecond of slew) slew as much in all as one reading.
func TestFrequentReadingsSlewAsRareOnes(t *testing.T) {
	f := newFakeClocks()
	g := guarded(f, nil)
	f.setOffset(time.Second)
	for range 100000 {
		f.advance(30 * time.Nanosecond)
		g.Now()
	}
	if got, want := g.Now().Sub(f.monotonicTime()), 100000*30*time.Nanosecond/SlewDivisor; got != want {
		t.Fatalf("slewed %v over 3 ms of readings 30 ns apart, want %v", got, want)
	}
}

// TestDriftIsFollowed: a host's clock 500 ppm fast (NTP's largest slew)
// over a day: the guard stays within a few milliseconds of it, never
// raises the alarm.
func TestDriftIsFollowed(t *testing.T) {
	f := newFakeClocks()
	logs := &logLines{}
	g := guarded(f, logs)
	for i := 1; i <= 24*60; i++ {
		f.advance(time.Minute)
		f.setOffset(time.Duration(i) * time.Minute / 2000)
		if off := f.reference().Sub(g.Now()); off.Abs() > time.Millisecond {
			t.Fatalf("after %d min of a 500 ppm drift: %v off the reference", i, off)
		}
	}
	if len(logs.lines("ERROR")) != 0 {
		t.Fatalf("a drift raised the alarm: %q", logs.lines("ERROR"))
	}
}

// TestNeverBackward: the reference set back by less than the threshold
// (followed, by slewing) or more (not followed): readings never go back.
func TestNeverBackward(t *testing.T) {
	f := newFakeClocks()
	g := guarded(f, nil)
	last := g.Now()
	for i, off := range []time.Duration{-time.Second, -1999 * time.Millisecond, -time.Hour, 0, -StepThreshold} {
		f.setOffset(off)
		for range 50 {
			f.advance(10 * time.Millisecond)
			now := g.Now()
			if now.Before(last) {
				t.Fatalf("move %d (%v): %v before %v", i, off, now, last)
			}
			last = now
		}
	}
}

// TestConcurrentReadings: readings from many goroutines, while the
// reference steps and slews, never go back within a goroutine, nor below
// a reading that returned before they began (run with -race).
func TestConcurrentReadings(t *testing.T) {
	for _, name := range []string{"fake", "host"} {
		t.Run(name, func(t *testing.T) {
			f := newFakeClocks()
			g := New(Config{})
			if name == "fake" {
				g = guarded(f, nil)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var latest time.Time // the latest reading returned
			for w := range 8 {
				wg.Go(func() {
					var last time.Time
					for i := range 2000 {
						if w == 0 {
							f.advance(time.Millisecond)
							f.setOffset(time.Duration(i%7-3) * time.Second)
						}
						mu.Lock()
						floor := latest
						mu.Unlock()
						now := g.Now()
						if now.Before(last) || now.Before(floor) {
							t.Errorf("went back: %v after %v (latest returned %v)", now, last, floor)
							return
						}
						last = now
						mu.Lock()
						if now.After(latest) {
							latest = now
						}
						mu.Unlock()
						if i%100 == 0 {
							g.Status()
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestHostClockStartsAtItsTime: the default guard (the host's clock, Go's
// monotonic clock) tells the host's time when it is not stepped.
func TestHostClockStartsAtItsTime(t *testing.T) {
	g := New(Config{})
	before := time.Now()
	now := g.Now()
	after := time.Now()
	// The host's clock is not stepped during the test: the guard is
	// between the two readings, to within what a slew could have moved
	// it since New (nothing, unless the host's clock was being slewed).
	if now.Before(before.Add(-time.Millisecond)) || now.After(after.Add(time.Millisecond)) {
		t.Fatalf("guard %v, host %v..%v", now, before, after)
	}
	if now.Round(0) != now {
		t.Fatal("the guard's time carries a monotonic reading")
	}
}

// TestGuardProperties: over random sequences of moves of the reference
// (drifts, small corrections, steps forward and back) and of readings at
// random intervals, the guard's time is monotone; between two readings it
// moves with the monotonic clock give or take 1/SlewDivisor of the
// elapsed time (plus 1 ns of rounding); when the reference is stepped away
// it moves exactly with the monotonic clock; and a reference that comes
// within StepThreshold and stays there long enough is told exactly.
func TestGuardProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := newFakeClocks()
		g := guarded(f, nil)
		last := g.Now()
		lastMono := f.monotonic()
		check := func() {
			now := g.Now()
			mono := f.monotonic()
			elapsed := mono - lastMono
			moved := now.Sub(last)
			if moved < 0 {
				t.Fatalf("went back by %v", -moved)
			}
			if dev := (moved - elapsed).Abs(); dev > elapsed/SlewDivisor+time.Nanosecond {
				t.Fatalf("moved %v over %v of monotonic time: %v off it, beyond the slew bound", moved, elapsed, dev)
			}
			if st := g.Status(); st.Stepped && moved != elapsed {
				t.Fatalf("stepped reference (%v away), yet moved %v over %v", st.ReferenceOffset, moved, elapsed)
			}
			last, lastMono = now, mono
		}
		steps := rapid.IntRange(1, 60).Draw(t, "moves")
		for range steps {
			switch rapid.IntRange(0, 3).Draw(t, "kind") {
			case 0: // a small correction or a drift
				f.setOffset(time.Duration(rapid.Int64Range(-int64(StepThreshold), int64(StepThreshold)).Draw(t, "small")))
			case 1: // a step
				f.setOffset(time.Duration(rapid.Int64Range(-int64(48*time.Hour), int64(48*time.Hour)).Draw(t, "step")))
			case 2: // time passes
				f.advance(time.Duration(rapid.Int64Range(0, int64(10*time.Minute)).Draw(t, "elapse")))
			case 3: // a burst of frequent readings
				for range rapid.IntRange(1, 50).Draw(t, "readings") {
					f.advance(time.Duration(rapid.Int64Range(0, 1000).Draw(t, "ns")))
					check()
				}
			}
			check()
		}
		// The reference comes within StepThreshold of the guard and stays:
		// once SlewDivisor times the difference has elapsed, in readings
		// at random intervals, the guard tells its time exactly.
		diff := time.Duration(rapid.Int64Range(-int64(StepThreshold), int64(StepThreshold)).Draw(t, "final"))
		f.setOffset(g.Now().Add(diff).Sub(f.monotonicTime()))
		need := diff.Abs()*SlewDivisor + SlewDivisor
		for waited := time.Duration(0); waited <= need; {
			d := time.Duration(rapid.Int64Range(1, int64(need)/3+1).Draw(t, "wait"))
			f.advance(d)
			waited += d
			check()
		}
		if got, want := g.Now(), f.reference(); !got.Equal(want) {
			t.Fatalf("reference %v within the threshold for %v: guard %v (%v off)", diff, need, got, want.Sub(got))
		}
		if g.Status().Stepped {
			t.Fatal("the alarm is still raised")
		}
	})
}

// BenchmarkNow is the cost of a reading on the host's clock, beside
// time.Now's, alone and from every core at once.
func BenchmarkNow(b *testing.B) {
	b.Run("time.Now", func(b *testing.B) {
		for b.Loop() {
			_ = time.Now()
		}
	})
	b.Run("guard", func(b *testing.B) {
		g := New(Config{})
		for b.Loop() {
			_ = g.Now()
		}
	})
	b.Run("guard-reference", func(b *testing.B) {
		g := New(Config{Reference: time.Now})
		for b.Loop() {
			_ = g.Now()
		}
	})
	b.Run("guard-parallel", func(b *testing.B) {
		g := New(Config{})
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = g.Now()
			}
		})
	})
}

// TestStartOffset: a guard started off its reference (a replica taking
// the time of the replicas that kept theirs across a step of the
// database's clock) tells that time, advancing with the monotonic clock;
// more than StepThreshold off, it raises the alarm as it starts, with the
// advice it was given; within it, it slews toward the reference without
// an alarm.
func TestStartOffset(t *testing.T) {
	f := newFakeClocks()
	logs := &logLines{}
	g := New(Config{Reference: f.reference, Monotonic: f.monotonic, StartOffset: -time.Hour,
		Restart: "stop every replica, then start them", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	errs := logs.lines("ERROR")
	if len(errs) != 1 || !strings.Contains(errs[0], "1h0m0s ahead") || !strings.Contains(errs[0], "stop every replica, then start them") {
		t.Fatalf("the alarm as the guard starts an hour behind its reference: %q", errs)
	}
	for range 10 {
		f.advance(time.Second)
		if got, want := g.Now(), f.reference().Add(-time.Hour); !got.Equal(want) {
			t.Fatalf("started an hour behind the reference: %v, want %v", got, want)
		}
	}
	if st := g.Status(); !st.Stepped || st.ReferenceOffset != time.Hour {
		t.Fatalf("status: %+v", st)
	}
	if n := len(logs.lines("ERROR")); n != 1 {
		t.Fatalf("%d alarms, want 1", n)
	}

	f = newFakeClocks()
	logs = &logLines{}
	g = New(Config{Reference: f.reference, Monotonic: f.monotonic, StartOffset: time.Second, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if got, want := g.Now(), f.reference().Add(time.Second); !got.Equal(want) {
		t.Fatalf("started a second ahead: %v, want %v", got, want)
	}
	f.advance(10 * time.Second)
	if got, want := g.Now().Sub(f.reference()), time.Second-10*time.Second/SlewDivisor; got != want {
		t.Fatalf("10 s after starting a second ahead: %v ahead of the reference, want %v (slewed)", got, want)
	}
	if errs := logs.lines("ERROR"); len(errs) != 0 {
		t.Fatalf("a start within the threshold raised the alarm: %q", errs)
	}
}
