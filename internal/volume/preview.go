package volume

import (
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
