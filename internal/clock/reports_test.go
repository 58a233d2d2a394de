package clock

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// reportFeeds drives a ReportCheck: every second of the service's time,
// each party sends a batch whose newest report is age old.
type reportFeeds struct {
	c   *ReportCheck
	now time.Time
}

// run sends a batch of each party every 100 ms (sampled once a second)
// for d, and checks at each second; it returns the statuses checked.
func (r *reportFeeds) run(d time.Duration, ages map[string]time.Duration) []ReportStatus {
	var out []ReportStatus
	for step := time.Duration(0); step < d; step += 100 * time.Millisecond {
		r.now = r.now.Add(100 * time.Millisecond)
		for _, party := range slices.Sorted(func(yield func(string) bool) {
			for p := range ages {
				if !yield(p) {
					return
				}
			}
		}) {
			if r.c.Due(party, r.now) {
				r.c.Sample(party, r.now.Add(-ages[party]), r.now)
			}
		}
		if r.now.UnixMilli()%1000 == 0 {
			out = append(out, r.c.Check(r.now))
		}
	}
	return out
}

// TestReportCheckRaisesTheAlarmOnTwoPartiesSustained: the service's time
// an hour ahead of the reports of two parties raises the alarm once they
// have said so for ReportSustain (not before), naming both parties and
// the offset the nearer one gives; it clears once they agree with the
// service again.
func TestReportCheckRaisesTheAlarmOnTwoPartiesSustained(t *testing.T) {
	logs := &logLines{}
	r := &reportFeeds{c: NewReportCheck(slog.New(slog.NewTextHandler(logs, nil))), now: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	off := map[string]time.Duration{"coalition": time.Hour + 500*time.Millisecond, "russia": time.Hour}
	statuses := r.run(ReportSustain, off)
	for i, st := range statuses {
		if st.Alarm {
			t.Fatalf("the alarm raised %d s after the reports began to disagree, before %v", i+1, ReportSustain)
		}
	}
	if n := len(logs.lines("ERROR")); n != 0 {
		t.Fatalf("%d alarms logged before %v", n, ReportSustain)
	}
	statuses = r.run(ReportMinSamples*time.Second, off)
	st := statuses[len(statuses)-1]
	if !st.Alarm || st.Offset != -time.Hour || !slices.Equal(st.Parties, []string{"coalition", "russia"}) {
		t.Fatalf("status after the reports of two parties said for %v that the service is an hour ahead: %+v", ReportSustain+ReportMinSamples*time.Second, st)
	}
	errs := logs.lines("ERROR")
	if len(errs) != 1 {
		t.Fatalf("%d alarms logged, want 1: %q", len(errs), errs)
	}
	for _, want := range []string{"CLOCK WRONG", "at least 1h0m0s ahead of", "coalition, russia", "does not take its time from the parties"} {
		if !strings.Contains(errs[0], want) {
			t.Errorf("the alarm %q does not say %q", errs[0], want)
		}
	}

	// The parties' reports agree with the service again (its clock was
	// set right and the service restarted, or their feeds were): cleared
	// once their medians come back.
	statuses = r.run(ReportWindow, map[string]time.Duration{"coalition": 300 * time.Millisecond, "russia": 200 * time.Millisecond})
	if st := statuses[len(statuses)-1]; st.Alarm || st.Offset != 0 {
		t.Fatalf("status once the reports agree again: %+v", st)
	}
	if infos := logs.lines("INFO"); len(infos) != 1 || !strings.Contains(infos[0], "cleared") {
		t.Fatalf("the clearing: %q", infos)
	}
}

// TestReportCheckNeedsTwoPartiesThatAgree: one party whose feed is an
// hour off, two that disagree on the direction, and two whose feeds'
// latency is within StepThreshold, sustained for twice ReportSustain,
// raise no alarm; the service's time behind two parties' does.
func TestReportCheckNeedsTwoPartiesThatAgree(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ages  map[string]time.Duration
		alarm bool
	}{
		{"one party off", map[string]time.Duration{"coalition": time.Hour, "russia": 0, "ukraine": time.Second}, false},
		{"two disagree", map[string]time.Duration{"coalition": time.Hour, "russia": -time.Hour}, false},
		{"latency within the threshold", map[string]time.Duration{"coalition": 1900 * time.Millisecond, "russia": StepThreshold}, false},
		{"service behind", map[string]time.Duration{"coalition": -10 * time.Minute, "russia": -5 * time.Minute, "ukraine": 0}, true},
	} {
		logs := &logLines{}
		r := &reportFeeds{c: NewReportCheck(slog.New(slog.NewTextHandler(logs, nil))), now: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
		statuses := r.run(2*ReportSustain, tc.ages)
		st := statuses[len(statuses)-1]
		if st.Alarm != tc.alarm || (len(logs.lines("ERROR")) == 1) != tc.alarm {
			t.Errorf("%s: status %+v, alarms logged %q", tc.name, st, logs.lines("ERROR"))
		}
		if tc.alarm && (st.Offset != 5*time.Minute || !strings.Contains(logs.lines("ERROR")[0], "at least 5m0s behind")) {
			t.Errorf("%s: offset %v, alarm %q; want the nearer party's 5m0s", tc.name, st.Offset, logs.lines("ERROR"))
		}
	}
}

// TestReportCheckSamplesOnceASecondAParty: batches far more frequent than
// ReportSampleEvery are sampled once each ReportSampleEvery, and a few
// reports far off among a party's samples move no median.
func TestReportCheckSamplesOnceASecondAParty(t *testing.T) {
	c := NewReportCheck(nil)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	due := 0
	for i := range 10000 {
		now = now.Add(time.Millisecond)
		if c.Due("coalition", now) {
			due++
			age := time.Hour
			if i%3000 == 0 {
				age = 0 // a few reports agree with the service
			}
			c.Sample("coalition", now.Add(-age), now)
			c.Sample("russia", now.Add(-age), now)
		}
	}
	if due != 10 {
		t.Fatalf("10 s of batches every millisecond: %d sampled, want 10", due)
	}
	if n := c.parties["coalition"].n; n != 10 {
		t.Fatalf("%d samples kept, want 10", n)
	}
	if st := c.Check(now); st.Offset != -time.Hour {
		t.Fatalf("status: %+v, want the parties' medians an hour behind", st)
	}
}

// TestReportCheckOffsetIsNotOneParty's: the service's time an hour ahead
// of the reports of two parties, and a third party whose reports say it is
// just past StepThreshold off (its feed stamped so on purpose): the
// offset the operator reads stays the honest parties' hour, not the one
// party's 2.5 s, which would have it taken for a feed's latency. With
// three or more agreeing, one party alone moves the offset neither below
// nor above what the others say.
func TestReportCheckOffsetIsNotOneParty(t *testing.T) {
	for _, tc := range []struct {
		name string
		ages map[string]time.Duration
		want time.Duration
	}{
		{"one says less", map[string]time.Duration{"coalition": time.Hour, "russia": time.Hour, "ukraine": 2500 * time.Millisecond}, -time.Hour},
		{"one says more", map[string]time.Duration{"coalition": time.Hour, "russia": time.Hour, "ukraine": 100 * time.Hour}, -time.Hour},
	} {
		logs := &logLines{}
		r := &reportFeeds{c: NewReportCheck(slog.New(slog.NewTextHandler(logs, nil))), now: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
		statuses := r.run(2*ReportSustain, tc.ages)
		st := statuses[len(statuses)-1]
		if !st.Alarm || st.Offset != tc.want || len(st.Parties) != 3 {
			t.Errorf("%s: status %+v, want the alarm with offset %v", tc.name, st, tc.want)
		}
	}
}

// TestReportCheckReportTimesBeyondADuration: report times thousands of
// years off (year 9999, year 1; the API refuses them before it samples,
// the check does not rely on it) make ages beyond a Duration, which
// saturate. Negated, the
// saturated age of reports in the far future (math.MinInt64) stayed
// negative: the alarm said the service was ahead of parties whose reports
// say it is behind, by a negative time. The direction must be theirs.
func TestReportCheckReportTimesBeyondADuration(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		reportTime time.Time
		behind     bool // the service's time behind the parties'
	}{
		{"year 9999", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{"year 1", time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), false},
	} {
		logs := &logLines{}
		c := NewReportCheck(slog.New(slog.NewTextHandler(logs, nil)))
		now := start
		var st ReportStatus
		for range 2 * ReportSustain / time.Second {
			now = now.Add(time.Second)
			for _, party := range []string{"coalition", "russia"} {
				c.Sample(party, tc.reportTime, now)
			}
			st = c.Check(now)
		}
		if !st.Alarm || (st.Offset > 0) != tc.behind || st.Offset == 0 {
			t.Errorf("%s: status %+v, want the alarm with the service %s the parties", tc.name, st, map[bool]string{true: "behind", false: "ahead of"}[tc.behind])
		}
		errs := logs.lines("ERROR")
		if len(errs) == 0 {
			t.Errorf("%s: no alarm logged", tc.name)
			continue
		}
		want := map[bool]string{true: " behind the times", false: " ahead of the times"}[tc.behind]
		if !strings.Contains(errs[0], want) || strings.Contains(errs[0], "least -") {
			t.Errorf("%s: the alarm %q does not say %q with a positive time", tc.name, errs[0], want)
		}
	}
}

// TestReportCheckTwoPartiesCannotHideTheAlarm: the service's time an hour
// ahead of the reports of two parties, and two others colluding, their
// feeds stamped an hour ahead of the service's. Two parties agree that
// the service's time is off, which raises the alarm: the two others
// saying it is off the other way hid it (neither side was taken when both
// had two), and two colluding parties could silence the alarm of every
// other. It is raised, and says who disagrees.
func TestReportCheckTwoPartiesCannotHideTheAlarm(t *testing.T) {
	logs := &logLines{}
	r := &reportFeeds{c: NewReportCheck(slog.New(slog.NewTextHandler(logs, nil))), now: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	statuses := r.run(2*ReportSustain, map[string]time.Duration{
		"coalition": time.Hour, "russia": time.Hour, "ukraine": time.Hour, // honest: the service an hour ahead
		"mallory": -time.Hour, "trudy": -time.Hour, // colluding
	})
	st := statuses[len(statuses)-1]
	if !st.Alarm || st.Offset != -time.Hour || !slices.Equal(st.Parties, []string{"coalition", "russia", "ukraine"}) ||
		!slices.Equal(st.Disagreeing, []string{"mallory", "trudy"}) {
		t.Fatalf("status %+v, want the alarm of the three parties, an hour, the two others disagreeing", st)
	}
	errs := logs.lines("ERROR")
	if len(errs) != 1 || !strings.Contains(errs[0], "mallory, trudy") {
		t.Fatalf("alarms logged %q, want one naming the parties that disagree", errs)
	}

	// Two against two: the alarm is raised all the same (some clock is
	// wrong, the service's or two feeds'), with the side nearer the
	// service's time, the least either side says.
	logs = &logLines{}
	r = &reportFeeds{c: NewReportCheck(slog.New(slog.NewTextHandler(logs, nil))), now: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	statuses = r.run(2*ReportSustain, map[string]time.Duration{
		"coalition": time.Hour, "russia": time.Hour, "mallory": -time.Minute, "trudy": -time.Minute,
	})
	st = statuses[len(statuses)-1]
	if !st.Alarm || st.Offset != time.Minute || !slices.Equal(st.Parties, []string{"mallory", "trudy"}) ||
		!slices.Equal(st.Disagreeing, []string{"coalition", "russia"}) {
		t.Fatalf("two against two: status %+v, want the alarm of the side nearer, a minute, the others disagreeing", st)
	}
}

// TestReportCheckAlarmIsNotLoggedEverySecond: two colluding parties whose
// feeds stamp times drifting 10 s further off each second move their
// medians by more than StepThreshold between two checks: the alarm was
// logged again at every check, an ERROR a second for as long as they
// liked. A change of the offset repeats it at most once a
// ReportSustain; the status follows every check.
func TestReportCheckAlarmIsNotLoggedEverySecond(t *testing.T) {
	logs := &logLines{}
	r := &reportFeeds{c: NewReportCheck(slog.New(slog.NewTextHandler(logs, nil))), now: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	age := time.Hour
	var st ReportStatus
	const seconds = 5 * 60
	for range seconds {
		age += 10 * time.Second
		statuses := r.run(time.Second, map[string]time.Duration{"mallory": age, "trudy": age})
		st = statuses[len(statuses)-1]
	}
	if !st.Alarm || st.Offset > -time.Hour-10*time.Minute {
		t.Fatalf("status after %d s of drifting reports: %+v, want the alarm following their medians", seconds, st)
	}
	// Raised after ReportSustain, then at most once a ReportSustain.
	if n, most := len(logs.lines("ERROR")), int(seconds*time.Second/ReportSustain); n > most {
		t.Fatalf("%d alarms logged in %d s, want at most %d", n, seconds, most)
	}
}
