package resolve

// reachableOracle is the list of the intruders that matter to the bands of
// dimension d within [lo, hi] as it was found before reachMasks, level by
// level and dimension by dimension: the oracle reachMasks is compared with.
func (c *computation) reachableOracle(d dim, lo, hi float64) []int {
	var out []int
	for i := range c.traffic {
		in := &c.traffic[i]
		if in.Sep == nil {
			continue
		}
		keep := false
		// The longest alerting time of a painting level, within the
		// lookahead: no member's conflict, nor a conflict aircraft's
		// loss, starts later.
		horizon := 0.0
		for li, r := range in.Sep.Regions {
			if r != RegionNone && r < RegionRecovery && in.Sep.levelFor(r) == li {
				horizon = max(horizon, min(in.Sep.Alerter.Levels[li].AlertingTimeS, in.Sep.Alerter.LookaheadS))
			}
		}
		for li, r := range in.Sep.Regions {
			if r == RegionNone || r >= RegionRecovery || in.Sep.levelFor(r) != li {
				continue
			}
			if c.conflict[r][i] {
				keep = true
				break
			}
			t := test{det: in.Sep.Alerter.Levels[li].Detector, pos: in.Pos, vel: in.Vel, toS: horizon}
			if !c.own.beyondReach(d, lo, hi, &t) {
				keep = true
				break
			}
		}
		if keep {
			out = append(out, i)
		}
	}
	return out
}
