package volume

import (
	"time"

	"github.com/deconflict/deconflict/internal/fielderr"
	"github.com/deconflict/deconflict/internal/rules"
)

// Preview checks a would-be new volume of party without writing anything:
// the same validation as Create (nil error when it would be accepted as
// far as its content goes), and the other parties' live volumes it would
// conflict with, reduced, sorted by id. It reads the index as last synced,
// so a write committed elsewhere a moment ago may be missing: a preview is
// advice, the write itself decides.
func (r *Registry) Preview(party string, in Input, rl rules.Rules) ([]Volume, error) {
	if party == "" {
		return nil, fielderr.Errorf("party", "missing")
	}
	v, err := NewVolume("preview", party, in, rl)
	if err != nil {
		return nil, err
	}
	if err := checkPriority(in, party, rl); err != nil {
		return nil, err
	}
	found := r.conflicts(v, nil)
	out := make([]Volume, len(found))
	for i, c := range found {
		out[i] = c.Reduced()
	}
	return out, nil
}

// ClippedTo is v as the answer to a probe in (a would-be volume that is
// not written: a preview, a request for alternatives, a refused write)
// shows it to a party that may not see v otherwise (need to know): no
// more of v than where it meets the probe, which is all a probe that
// conflicts with it tells anyway. Reduced; its band cut to the probe's
// grown by rl.VerticalSepM on both sides, its window to the probe's
// grown by two time buffers (rl.TimeBufferS) on both sides, the reach of
// the conflict test; and in place of its footprint the probe's own: that
// v comes within the horizontal separation of it is all the answer says
// of v's shape. Clipped says so. v conflicts with the probe, so the cut
// band and window are not empty.
func (v Volume) ClippedTo(in Input, rl rules.Rules) Volume {
	c := v.Reduced()
	c.shape = nil
	c.Footprint = in.Footprint
	c.AltLowerM = max(v.AltLowerM, in.AltLowerM-rl.VerticalSepM)
	c.AltUpperM = min(v.AltUpperM, in.AltUpperM+rl.VerticalSepM)
	reach := 2 * time.Duration(rl.TimeBufferS*float64(time.Second))
	if from := in.Start.Add(-reach); c.Start.Before(from) {
		c.Start = from
	}
	if to := in.End.Add(reach); c.End.After(to) {
		c.End = to
	}
	c.Clipped = true
	return c
}
