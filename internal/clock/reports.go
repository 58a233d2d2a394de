package clock

import (
	"cmp"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// A Guard starts at its reference's time: a host whose clock is wrong when
// the service starts (a single process on the embedded store, whose only
// reference is that clock) gives the service a wrong time that no step
// ever shows. The parties' position reports carry the time of their feeds,
// which stamp true time. A ReportCheck compares the service's time with
// them and raises an operator alarm when at least two parties agree that
// it is off by more than StepThreshold for ReportSustain. It does not
// correct the time: no party is trusted to set it, and two parties whose
// feeds are off the same way raise a false alarm that an operator checks,
// never a wrong time.
//
// It samples, not every report: at most one report per party each
// ReportSampleEvery (the newest of a batch, whose age is the feed's
// latency alone), a lock and a map lookup per batch otherwise. A party's
// view is the median age of its samples of the last ReportWindow, taken
// once it has ReportMinSamples of them: a report replayed late, or a few
// from a stalled feed, move no median. Of the parties that agree, the one
// nearest the service's time gives the offset (every one of them says the
// service is at least that far off, their feeds' latency included), or,
// when three or more agree, the second nearest: one party alone sets it
// neither below nor above what the others say. Two or more parties saying
// it is off the other way do not hide the alarm (two colluding parties
// would silence every other's): it is raised for the side of more
// parties (of a tie, the side nearer the service's time) and names the
// others (ReportStatus.Disagreeing). The alarm is logged again every
// AlarmRepeat, and when its offset moved more than StepThreshold at most
// once a ReportSustain: parties decide how their medians move.
type ReportCheck struct {
	log *slog.Logger

	mu      sync.Mutex
	parties map[string]*reportSamples
	// since is the service's time at which the parties began to agree
	// that it is off (zero while they do not).
	since  time.Time
	status ReportStatus
	// alarmAt and alarmOffset are when the alarm was last logged, and
	// with which offset.
	alarmAt     time.Time
	alarmOffset time.Duration
}

const (
	// ReportSampleEvery is the least time between two samples of one
	// party's reports.
	ReportSampleEvery = time.Second
	// ReportWindow is how far back a sample counts.
	ReportWindow = time.Minute
	// ReportMinSamples is how many samples of the window a party needs
	// before its median counts.
	ReportMinSamples = 10
	// ReportSustain is how long the parties must agree that the service's
	// time is off before the alarm is raised.
	ReportSustain = time.Minute

	// reportSamplesKept bounds the samples of a party: more than
	// ReportWindow holds at one each ReportSampleEvery.
	reportSamplesKept = 64

	// reportAgeBound bounds the age of a sample either way: a report
	// time more than 292 years off (year 9999, year 1) is older or
	// younger than a Duration holds, and its age saturated to
	// math.MinInt64, whose negation (the offset) is itself: the alarm
	// said the service was ahead of parties that said it was behind.
	// The API refuses report times outside 1970 to 2199 before it
	// samples them (wiretime), so that only a caller that does not, or
	// a service's time off by more than a century, reached it; the check
	// does not rely on its caller. A century is far beyond any clock
	// error that matters, and twice it (a median's midpoint, an offset
	// negated) still fits.
	reportAgeBound = 100 * 365 * 24 * time.Hour
)

// ReportStatus is what the last Check found.
type ReportStatus struct {
	// Alarm is whether at least two parties' reports have said for
	// ReportSustain that the service's time is more than StepThreshold off.
	Alarm bool
	// Offset is the parties' time minus the service's, as the party of
	// those agreeing nearest the service's time tells it (the second
	// nearest when three or more agree: Check; negative: the
	// service is ahead, their reports look old); zero when fewer than two
	// parties agree that it is off.
	Offset time.Duration
	// Parties are the parties that agree, sorted.
	Parties []string
	// Disagreeing are the parties whose reports say, two or more of
	// them, that the service's time is off the other way, sorted (none
	// when fewer than two do).
	Disagreeing []string
}

// reportSample is the age of a report (the service's time at receipt
// minus the report's), and when it was received.
type reportSample struct {
	at  time.Time
	age time.Duration
}

type reportSamples struct {
	ring [reportSamplesKept]reportSample
	n    int // samples in ring, at most reportSamplesKept
	next int // where the next sample goes
	last time.Time
}

// NewReportCheck returns a check that logs its alarm to log (discarded
// when nil).
func NewReportCheck(log *slog.Logger) *ReportCheck {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ReportCheck{log: log, parties: map[string]*reportSamples{}}
}

// Due reports whether a batch of party's reports received at now (the
// service's time) is sampled: the caller then finds its newest report and
// calls Sample.
func (c *ReportCheck) Due(party string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.parties[party]
	return ps == nil || now.Sub(ps.last) >= ReportSampleEvery
}

// Sample records the time of party's newest report of a batch received at
// now, unless the party was sampled less than ReportSampleEvery before.
func (c *ReportCheck) Sample(party string, reportTime, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.parties[party]
	if ps == nil {
		ps = &reportSamples{}
		c.parties[party] = ps
	} else if now.Sub(ps.last) < ReportSampleEvery {
		return
	}
	ps.last = now
	ps.ring[ps.next] = reportSample{at: now, age: min(max(now.Sub(reportTime), -reportAgeBound), reportAgeBound)}
	ps.next = (ps.next + 1) % reportSamplesKept
	ps.n = min(ps.n+1, reportSamplesKept)
}

// Status is what the last Check found.
func (c *ReportCheck) Status() ReportStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// partyView is a party's median report age.
type partyView struct {
	party string
	age   time.Duration
}

// Check judges the samples at now (the service's time; the periodic job
// calls it), raises, repeats or clears the alarm, and returns the status.
func (c *ReportCheck) Check(now time.Time) ReportStatus {
	c.mu.Lock()
	var old, young []partyView // medians beyond StepThreshold, either way
	ages := make([]time.Duration, 0, reportSamplesKept)
	for party, ps := range c.parties {
		ages = ages[:0]
		for _, s := range ps.ring[:ps.n] {
			if age := now.Sub(s.at); age >= 0 && age <= ReportWindow {
				ages = append(ages, s.age)
			}
		}
		if len(ages) == 0 && now.Sub(ps.last) > ReportWindow {
			delete(c.parties, party) // a party that stopped reporting
			continue
		}
		if len(ages) < ReportMinSamples {
			continue
		}
		slices.Sort(ages)
		median := ages[len(ages)/2]
		if len(ages)%2 == 0 {
			median = ages[len(ages)/2-1] + (ages[len(ages)/2]-ages[len(ages)/2-1])/2
		}
		switch {
		case median > StepThreshold:
			old = append(old, partyView{party, median})
		case median < -StepThreshold:
			young = append(young, partyView{party, median})
		}
	}
	// Two parties that agree raise the alarm, whatever others say: two
	// colluding parties saying the service is off the other way hid it
	// (neither side was taken when both had two), the alarm of every
	// other party silenced. With two sides, the alarm is of the side of
	// more parties, and of a tie the side nearer the service's time (the
	// least either says), and names the other.
	agree, other := old, young
	switch {
	case len(agree) < 2 && len(other) < 2:
		agree, other = nil, nil
	case len(agree) < 2:
		agree, other = other, nil
	case len(other) < 2:
		other = nil
	case len(other) > len(agree) ||
		len(other) == len(agree) && reportOffset(other).Abs() < reportOffset(agree).Abs():
		agree, other = other, agree
	}
	offset := -reportOffset(agree) // the parties' time minus the service's
	parties := partiesOf(agree)
	disagreeing := partiesOf(other)

	what := alarmNone
	if agree == nil {
		c.since = time.Time{}
		if c.status.Alarm {
			what = alarmCleared
		}
		c.status = ReportStatus{}
	} else {
		if c.since.IsZero() {
			c.since = now
		}
		alarm := now.Sub(c.since) >= ReportSustain
		switch {
		case !alarm:
		case !c.status.Alarm:
			what = alarmRaised
		case now.Sub(c.alarmAt) >= AlarmRepeat:
			what = alarmRepeated
		case (offset-c.alarmOffset).Abs() > StepThreshold && now.Sub(c.alarmAt) >= ReportSustain:
			// Moved: said again, but not at every check: two parties
			// whose feeds drift their medians further at each one had
			// it logged as an ERROR a second for as long as they liked.
			what = alarmRepeated
		}
		if what != alarmNone {
			c.alarmAt, c.alarmOffset = now, offset
		}
		c.status = ReportStatus{Alarm: alarm, Offset: offset, Parties: parties, Disagreeing: disagreeing}
	}
	st := c.status
	c.mu.Unlock()
	c.report(what, st)
	return st
}

// reportOffset is the age the views of parties that agree give, sorting
// them nearest the service's time first: the nearest's when two agree;
// from three, the second nearest's: one party alone, whose reports say
// the service is just past StepThreshold off, would otherwise set the
// offset the operator reads (2.5 s for a service an hour off, taken for a
// feed's latency). The second nearest lies between what two others say.
// Zero without views.
func reportOffset(views []partyView) time.Duration {
	slices.SortFunc(views, func(a, b partyView) int { return cmp.Compare(a.age.Abs(), b.age.Abs()) })
	switch {
	case len(views) >= 3:
		return views[1].age
	case len(views) > 0:
		return views[0].age
	}
	return 0
}

// partiesOf are the parties of views, sorted (nil without views).
func partiesOf(views []partyView) []string {
	var parties []string
	for _, v := range views {
		parties = append(parties, v.party)
	}
	slices.Sort(parties)
	return parties
}

// report logs the alarm's change.
func (c *ReportCheck) report(what alarm, st ReportStatus) {
	off := st.Offset.Round(time.Millisecond)
	dir := "ahead of"
	if off > 0 {
		dir = "behind"
	} else {
		off = -off
	}
	switch what {
	case alarmRaised, alarmRepeated:
		msg := "CLOCK WRONG: the service's time is at least " + off.String() + " " + dir + " the times of the position reports of " +
			strings.Join(st.Parties, ", ") + " (the median of each one's reports over the last " + ReportWindow.String() + ", for " + ReportSustain.String() + " now); " +
			"the service does not take its time from the parties. Check the service's time against a trusted clock: if it is wrong, " +
			"set the clock it follows right and restart the service to take its time; if it is right, those parties' feeds stamp wrong times"
		if len(st.Disagreeing) > 0 {
			msg += "; the reports of " + strings.Join(st.Disagreeing, ", ") + " say it is off the other way: some of these parties' feeds stamp wrong times, whichever is right"
		}
		if what == alarmRepeated {
			msg = "still: " + msg
		}
		c.log.Error(msg, "reports_offset", st.Offset, "parties", st.Parties, "disagreeing", st.Disagreeing, "step_threshold", StepThreshold)
	case alarmCleared:
		c.log.Info("clock alarm of the position reports cleared: fewer than two parties' reports say the service's time is more than " + StepThreshold.String() + " off")
	}
}
