package feed

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/client"
)

// fakeClock is a wall clock that only moves when the pacer sleeps.
type fakeClock struct {
	now    time.Time
	slept  []time.Duration
	frozen bool
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.slept = append(c.slept, d)
	if !c.frozen {
		c.now = c.now.Add(d)
	}
	return nil
}

func TestPacerMapsSourceTimeAtSpeed(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)}
	p := &Pacer{Speed: 10, Now: clk.Now, Sleep: clk.Sleep}
	src := time.Date(2015, 10, 7, 6, 0, 0, 0, time.UTC)
	wall0 := clk.now
	for _, offset := range []time.Duration{0, 10 * time.Second, 10 * time.Second, 25 * time.Second, 100 * time.Second} {
		stamp, err := p.Stamp(context.Background(), src.Add(offset))
		if err != nil {
			t.Fatal(err)
		}
		if want := wall0.Add(offset / 10); !stamp.Equal(want) || clk.now.Before(want) {
			t.Errorf("source +%v: stamp %v (clock %v), want %v", offset, stamp, clk.now, want)
		}
	}
}

func TestPacerAsFastAsPossibleStaysInTheServerWindow(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC), frozen: true}
	p := &Pacer{Now: clk.Now, Sleep: clk.Sleep}
	var last time.Time
	src := time.Date(2015, 10, 7, 6, 0, 0, 0, time.UTC)
	for i := 0; i < 10; i++ {
		stamp, err := p.Stamp(context.Background(), src.Add(time.Duration(i)*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if !stamp.After(last) {
			t.Fatalf("stamp %d %v not after %v", i, stamp, last)
		}
		if stamp.Sub(clk.now) > maxLead {
			t.Fatalf("stamp %v runs %v ahead of the clock", stamp, stamp.Sub(clk.now))
		}
		last = stamp
	}
	if len(clk.slept) != 0 {
		t.Errorf("slept %v with a frozen clock and a few stamps", clk.slept)
	}
	// Far more stamps than microseconds in the lead: the pacer must wait.
	p.lastStamp = clk.now.Add(maxLead)
	if _, err := p.Stamp(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	if len(clk.slept) != 1 {
		t.Errorf("no wait when running %v ahead", maxLead)
	}
}

// replayFile replays file at speed on a fake clock starting at
// replayWall0, returning the reports it sent in order and its stats.
func replayFile(t *testing.T, file string, speed float64) ([]client.Report, *Stats) {
	t.Helper()
	clk := &fakeClock{now: replayWall0}
	stats := &Stats{}
	out := make(chan client.Report, 10)
	err := Replay(context.Background(), strings.NewReader(file), &Pacer{Speed: speed, Now: clk.Now, Sleep: clk.Sleep}, stats, out)
	close(out)
	if err != nil {
		t.Fatal(err)
	}
	var got []client.Report
	for r := range out {
		got = append(got, r)
	}
	return got, stats
}

// replayWall0 is the fake wall clock's time as replayFile starts.
var replayWall0 = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)

func TestReplaySBSFileRestampsOntoTheWallClock(t *testing.T) {
	// Two aircraft; the file's clock starts at 06:00:00.
	file := strings.Join([]string{
		"MSG,1,1,1,4CA2D6,1,2015/10/07,06:00:00.000,2015/10/07,06:00:00.000,RYR5KH,,,,,,,,0,0,0,0",
		"MSG,4,1,1,4CA2D6,1,2015/10/07,06:00:00.200,2015/10/07,06:00:00.200,,,450,90,,,0,,0,0,0,0",
		"MSG,3,1,1,4CA2D6,1,2015/10/07,06:00:00.500,2015/10/07,06:00:00.500,,30000,,,36.0,37.0,,,0,0,0,0",
		"this line is broken",
		"MSG,4,1,1,71BE01,1,2015/10/07,06:00:01.000,2015/10/07,06:00:01.000,,,300,270,,,0,,0,0,0,0",
		"MSG,3,1,1,71BE01,1,2015/10/07,06:00:02.500,2015/10/07,06:00:02.500,,20000,,,35.0,36.0,,,0,0,0,0",
		"MSG,3,1,1,4CA2D6,1,2015/10/07,06:00:10.500,2015/10/07,06:00:10.500,,30000,,,36.0,37.03,,,0,0,0,0",
	}, "\n")
	got, stats := replayFile(t, file, 2)
	wall0 := replayWall0
	if len(got) != 3 || stats.Skipped.Load() != 1 {
		t.Fatalf("%d reports, %d skipped; want 3 and 1", len(got), stats.Skipped.Load())
	}
	// First report is "now"; later ones follow at twice the file's pace.
	want := []time.Duration{0, time.Second, 5 * time.Second}
	for i, r := range got {
		if !r.Time.Equal(wall0.Add(want[i])) {
			t.Errorf("report %d (%s) stamped %v, want +%v", i, r.Aircraft, r.Time.Sub(wall0), want[i])
		}
	}
	if got[0].Callsign != "RYR5KH" || got[1].Aircraft != "71BE01" {
		t.Errorf("reports %+v", got)
	}
}

func TestReplayJSONLines(t *testing.T) {
	file := `{"aircraft":"A","time":"2015-10-07T06:00:00Z","lat":35,"lon":36,"alt_m":5000}
{"aircraft":"A","time":"2015-10-07T06:00:30Z","lat":35.1,"lon":36,"alt_m":5000}

{"aircraft":"A","time":"bad","lat":35.1,"lon":36,"alt_m":5000}
`
	got, stats := replayFile(t, file, 10)
	var stamps []time.Duration
	for _, r := range got {
		stamps = append(stamps, r.Time.Sub(replayWall0))
	}
	if len(stamps) != 2 || stamps[0] != 0 || stamps[1] != 3*time.Second || stats.Skipped.Load() != 1 {
		t.Errorf("stamps %v skipped %d", stamps, stats.Skipped.Load())
	}
}

// A recorded BaseStation file whose lines have empty date and time fields
// (some receivers and libraries write them so) is read in order at the
// time of reading: every line was skipped ("sent=0 skipped=4184").
func TestReplaySBSWithoutTimes(t *testing.T) {
	file := strings.Join([]string{
		"MSG,1,1,1,4CA2D6,1,,,,,RYR5KH,,,,,,,,0,0,0,0",
		"MSG,4,1,1,4CA2D6,1,,,,,,,450,90,,,0,,0,0,0,0",
		"MSG,3,1,1,4CA2D6,1,,,,,,30000,,,36.0,37.0,,,0,0,0,0",
		"MSG,4,1,1,71BE01,1,,,,,,,300,270,,,0,,0,0,0,0",
		"MSG,3,1,1,71BE01,1,,,,,,20000,,,35.0,36.0,,,0,0,0,0",
		"STA,,1,1,71BE01,1,,,,,",
		"MSG,3,1,1,4CA2D6,1,,,,,,30000,,,36.0,37.03,,,0,0,0,0",
		"MSG,3,1,1,ZZZZZZ,1,,,,,,30000,,,36.0,37.03,,,0,0,0,0",
	}, "\n")
	reports, stats := replayFile(t, file, 1)
	var got []string
	for _, r := range reports {
		got = append(got, r.Aircraft)
		if !r.Time.Equal(replayWall0) {
			t.Errorf("%s stamped %v, want the time of reading %v", r.Aircraft, r.Time, replayWall0)
		}
	}
	if strings.Join(got, ",") != "4CA2D6,71BE01,4CA2D6" {
		t.Errorf("reports %v, want the three positions in order", got)
	}
	if stats.Skipped.Load() != 2 {
		t.Errorf("%d skipped, want 2 (the STA line and the bad address)", stats.Skipped.Load())
	}
	if want := "skipped 2 lines: 1 bad field 5 (hex ident), 1 not MSG lines (no aircraft data)"; stats.SkippedSummary() != want {
		t.Errorf("summary %q, want %q", stats.SkippedSummary(), want)
	}
}

// The summary of skipped lines counts them by reason, most frequent first.
func TestSkippedSummary(t *testing.T) {
	s := &Stats{}
	if s.SkippedSummary() != "" {
		t.Fatal("a summary with nothing skipped")
	}
	for _, r := range []string{"b", "a", "b", "c", "a", "b"} {
		s.Skip(r)
	}
	if got, want := s.SkippedSummary(), "skipped 6 lines: 3 b, 2 a, 1 c"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

// TestReplaySkipsAnOverlongLineWhateverItsHead: a line longer than maxLine
// is malformed, whatever its head holds. Its head was passed on as the
// line, and the head of a line of 22 BaseStation fields whose last one
// (on the ground: -1) is padded past maxLine parsed, without that flag:
// an aircraft on the ground was reported airborne.
func TestReplaySkipsAnOverlongLineWhateverItsHead(t *testing.T) {
	file := strings.Join([]string{
		"MSG,4,1,1,4CA2D6,1,2015/10/07,06:00:00.200,2015/10/07,06:00:00.200,,,450,90,,,0,,0,0,0,0",
		"MSG,3,1,1,4CA2D6,1,2015/10/07,06:00:00.500,2015/10/07,06:00:00.500,,30000,,,36.0,37.0,,,0,0,0," + strings.Repeat(" ", maxLine) + "-1",
	}, "\n")
	reports, stats := replayFile(t, file, 1)
	for _, r := range reports {
		t.Errorf("report %+v of an over-long line", r)
	}
	if stats.Skipped.Load() != 1 {
		t.Errorf("%d lines skipped, want 1: %s", stats.Skipped.Load(), stats.SkippedSummary())
	}
}

// TestReplayDoesNotFollowAJumpOfTheFilesTime: a recorded BaseStation file
// is replayed at its own pace, except where its time jumps: a line dated a
// year on is not waited for (the replay slept a year), and a line dated
// back is stamped now, not in the past (every later report was refused
// by the server as too old); each jump is said. A small step back (records
// a little out of order) is followed.
func TestReplayDoesNotFollowAJumpOfTheFilesTime(t *testing.T) {
	at := func(date, clock string) []string {
		return []string{
			"MSG,4,1,1,4CA2D6,1," + date + "," + clock + "," + date + "," + clock + ",,,450,90,,,0,,0,0,0,0",
			"MSG,3,1,1,4CA2D6,1," + date + "," + clock + "," + date + "," + clock + ",,30000,,,36.0,37.0,,,0,0,0,0",
		}
	}
	var lines []string
	for _, l := range [][]string{
		at("2015/10/07", "06:00:00.000"),
		at("2015/10/07", "06:00:01.000"),
		at("2016/10/07", "06:00:01.000"), // a year on
		at("2016/10/07", "06:00:02.000"),
		at("2015/10/07", "05:00:00.000"), // a year and an hour back
		at("2015/10/07", "05:00:01.000"),
		at("2015/10/07", "05:00:00.500"), // half a second back
		at("2015/10/07", "05:00:02.000"),
	} {
		lines = append(lines, l...)
	}
	clk := &fakeClock{now: replayWall0}
	var logged []string
	pacer := &Pacer{Speed: 1, Now: clk.Now, Sleep: clk.Sleep,
		Logf: func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }}
	out := make(chan client.Report, 10)
	if err := Replay(context.Background(), strings.NewReader(strings.Join(lines, "\n")), pacer, &Stats{}, out); err != nil {
		t.Fatal(err)
	}
	close(out)
	var stamps []time.Duration
	for r := range out {
		stamps = append(stamps, r.Time.Sub(replayWall0))
	}
	want := []time.Duration{0, time.Second, time.Second, 2 * time.Second, 2 * time.Second, 3 * time.Second, 2500 * time.Millisecond, 4 * time.Second}
	if !slices.Equal(stamps, want) {
		t.Errorf("stamps %v, want %v", stamps, want)
	}
	var slept time.Duration
	for _, d := range clk.slept {
		slept += d
	}
	if slept != 4*time.Second {
		t.Errorf("slept %v in all (%v), want the 4 s of the file's time between its jumps", slept, clk.slept)
	}
	if len(logged) != 2 || !strings.Contains(logged[0], "ahead") || !strings.Contains(logged[1], "back") {
		t.Errorf("logged %q, want the jump ahead and the jump back said", logged)
	}
}

// TestPacerFallingBehindStampsNow: a paced replay that falls behind the
// recording's pace (the machine does not keep up, or the sender waits on
// a slow server) stamped its reports in the past, as far behind as it
// fell: the server takes a report up to a minute old but ignores one
// older than the rules' stale time (30 s by default) although it
// answers it accepted, so that the replay went on sending positions
// nobody tracked, and said nothing. Beyond MaxLag it now stamps the
// report now, goes on at the recording's pace from there, says so on
// Logf (at most once per slipSayEvery, each line with the totals) and
// counts it in String.
func TestPacerFallingBehindStampsNow(t *testing.T) {
	ctx := context.Background()
	wall0 := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	src0 := time.Date(2015, 10, 7, 6, 0, 0, 0, time.UTC)
	clk := &fakeClock{now: wall0}
	var logged []string
	p := &Pacer{Speed: 1, Now: clk.Now, Sleep: clk.Sleep,
		Logf: func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }}
	stamp := func(srcS float64) time.Duration {
		t.Helper()
		s, err := p.Stamp(ctx, src0.Add(time.Duration(srcS*float64(time.Second))))
		if err != nil {
			t.Fatal(err)
		}
		return s.Sub(wall0)
	}
	stall := func(d time.Duration) { clk.now = clk.now.Add(d) }

	steps := []struct {
		stall time.Duration // the wall clock runs on before the report
		srcS  float64
		want  time.Duration // the stamp, after wall0
		says  int           // lines said so far
	}{
		{0, 0, 0, 0},
		{0, 1, time.Second, 0},
		// Half a second behind: within MaxLag, stamped at the
		// recording's pace.
		{1500 * time.Millisecond, 2, 2 * time.Second, 0},
		// 40 s behind (the clock at 42.5 s for the recording's 3 s):
		// stamped now, said.
		{40 * time.Second, 3, 42500 * time.Millisecond, 1},
		// The recording's pace from there.
		{0, 4, 43500 * time.Millisecond, 1},
		// A step back of half a second (sensors a little out of order) is no
		// falling behind: stamped before the last, as before.
		{0, 3.5, 43 * time.Second, 1},
		// Behind again 5 s later: stamped now, counted, not said again
		// within slipSayEvery.
		{5 * time.Second, 5, 48500 * time.Millisecond, 1},
		// Behind again after slipSayEvery: said, with the totals.
		{slipSayEvery, 6, 48500*time.Millisecond + slipSayEvery, 2},
	}
	for i, s := range steps {
		stall(s.stall)
		if got := stamp(s.srcS); got != s.want || len(logged) != s.says {
			t.Fatalf("step %d (source +%gs, clock +%v): stamp +%v with %d lines said %q, want +%v and %d", i, s.srcS, clk.now.Sub(wall0), got, len(logged), logged, s.want, s.says)
		}
		if lag := clk.now.Sub(wall0.Add(s.want)); lag > DefaultMaxLag+MaxStampBack {
			t.Fatalf("step %d: stamped %v in the past", i, lag)
		}
	}
	if !strings.Contains(logged[0], "39.5s behind") || !strings.Contains(logged[0], "stamped now") {
		t.Errorf("the first line %q does not say how far behind the replay fell and what it does", logged[0])
	}
	if want := "3 times, 52.5s in all"; !strings.Contains(logged[1], want) {
		t.Errorf("the second line %q does not say %q", logged[1], want)
	}
	if got, want := p.String(), "fell_behind=3 fell_behind_s=52.5"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
