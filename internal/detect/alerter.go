package detect

// AlertLevel is one level of an Alerter (DAIDALUS's AlertThresholds): a
// pair is at this level when Detector predicts, over the alerter's
// lookahead, a loss of separation that starts within AlertingTimeS.
type AlertLevel struct {
	Name          string
	Detector      Detector
	AlertingTimeS float64
	// Inclusive: the level holds when the loss starts at AlertingTimeS or
	// before, compared exactly (the rules' max_time_to_los_s of cylinder
	// entries). Otherwise it holds as DAIDALUS's LossData::conflictBefore
	// says: the loss starts now, or almost strictly before AlertingTimeS.
	Inclusive bool
}

// Alerter grades a pair by levels, each with its own detector and alerting
// time, as DAIDALUS's Alerter. Levels are ordered from the least to the
// most severe.
type Alerter struct {
	LookaheadS float64
	Levels     []AlertLevel
}

// Level returns the most severe level whose condition holds, numbered from
// 1 (Levels[0]), or 0 when none does: DAIDALUS's alert level on a first
// call (DaidalusCore::raw_alert_level), a single step with no hysteresis,
// persistence or M-of-N, which need a history. A level holds when its
// detector's loss over [0, LookaheadS] starts now or before the alerting
// time (LossData::conflictBefore: t_in = 0, or t_in almost less than the
// alerting time).
func (a *Alerter) Level(relPos, relVel Vec3) int {
	for i := len(a.Levels) - 1; i >= 0; i-- {
		l := &a.Levels[i]
		if l.Holds(l.Detector.Loss(relPos, relVel, 0, a.LookaheadS)) {
			return i + 1
		}
	}
	return 0
}

// Holds reports whether a loss found by the level's detector puts the pair
// at this level (LossData::conflictBefore(AlertingTimeS), or t_in at most
// AlertingTimeS when Inclusive).
func (l *AlertLevel) Holds(loss Loss) bool { return l.holdsWithin(loss, l.AlertingTimeS) }

func (l *AlertLevel) holdsWithin(loss Loss, alertingTimeS float64) bool {
	if l.Inclusive {
		return loss.Conflict && loss.TInS <= alertingTimeS
	}
	return loss.Conflict && (loss.TInS == 0 || almostLess(loss.TInS, alertingTimeS))
}

// DO-365B alert levels without SUM, as DAIDALUS numbers them.
const (
	DO365None       = 0
	DO365Preventive = 1
	DO365Corrective = 2
	DO365Warning    = 3
)

// DO365BPhaseI is the DO-365B Phase I alerter without SUM (DAIDALUS's
// DWC_Phase_I, selected by set_DO_365B(true, false)): lookahead 180 s;
// preventive with the preventive well clear and 55 s; corrective with the
// corrective well clear and 55 s; warning with the corrective well clear
// and 25 s. So, from the corrective t_in: warning below 25 s, corrective
// below 55 s, else preventive when the preventive t_in is below 55 s.
func DO365BPhaseI() Alerter {
	corrective := DO365PhaseICorrective()
	return Alerter{
		LookaheadS: 180,
		Levels: []AlertLevel{
			{Name: "preventive", Detector: DO365PhaseIPreventive(), AlertingTimeS: 55},
			{Name: "corrective", Detector: corrective, AlertingTimeS: 55},
			{Name: "warning", Detector: corrective, AlertingTimeS: 25},
		},
	}
}
