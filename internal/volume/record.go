package volume

// This file encodes a volume for the store and its events, and decodes it
// back.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/golang/geo/s2"

	"github.com/deconflict/deconflict/internal/rules"
	"github.com/deconflict/deconflict/internal/store"
)

// AppendEvents appends the events of the write to the store's event stream
// in the write's own transaction: volume_changed to the owner (data: the
// full volume) and one volume_conflict per conflicting volume to both
// parties (data: {"volumes":[this, other]}, both reduced).
func (res Result) AppendEvents(tx store.Events, now time.Time) error {
	evs, err := res.events(now)
	if err != nil {
		return err
	}
	for _, e := range evs {
		if _, err := tx.AppendEvent(e); err != nil {
			return err
		}
	}
	return nil
}

func (res Result) events(now time.Time) ([]store.Event, error) {
	body, err := json.Marshal(res.Volume)
	if err != nil {
		return nil, err
	}
	out := []store.Event{{Time: now, Kind: "volume_changed", Audience: []string{res.Volume.Party}, Body: body}}
	if len(res.Conflicts) == 0 {
		return out, nil
	}
	// The same reduced volume opens every volume_conflict body: encode it
	// once (a write in a busy area may conflict with hundreds).
	self, err := json.Marshal(res.Volume.Reduced())
	if err != nil {
		return nil, err
	}
	for _, c := range res.Conflicts {
		other, err := json.Marshal(c.Reduced())
		if err != nil {
			return nil, err
		}
		body := make([]byte, 0, len(self)+len(other)+16)
		body = append(body, `{"volumes":[`...)
		body = append(body, self...)
		body = append(body, ',')
		body = append(body, other...)
		body = append(body, "]}"...)
		out = append(out, store.Event{Time: now, Kind: "volume_conflict", Audience: []string{res.Volume.Party, c.Party}, Body: body})
	}
	return out, nil
}

// ConflictData is the data of a volume_conflict event.
type ConflictData struct {
	Volumes []Volume `json:"volumes"`
}

// record is the stored form of v. The bounding box is that of the
// footprint; it crosses the antimeridian when MinLonDeg > MaxLonDeg.
func (v *Volume) record() (store.Volume, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return store.Volume{}, fmt.Errorf("volume: encoding %s: %w", v.ID, err)
	}
	var rect s2.Rect
	if v.shape.loop == nil {
		rect = v.shape.bound.RectBound()
	} else {
		rect = v.shape.loop.RectBound()
	}
	return store.Volume{
		ID: v.ID, Party: v.Party, Version: v.Version, State: string(v.State), Priority: v.Priority,
		MinLatDeg: rect.Lo().Lat.Degrees(), MinLonDeg: rect.Lo().Lng.Degrees(),
		MaxLatDeg: rect.Hi().Lat.Degrees(), MaxLonDeg: rect.Hi().Lng.Degrees(),
		AltLowerM: v.AltLowerM, AltUpperM: v.AltUpperM, Start: v.Start, End: v.End,
		Body: body,
	}, nil
}

// Decode reads a stored volume back. The declaration limits are not
// checked again: the volume was valid under the rules of its time.
func Decode(rec store.Volume) (*Volume, error) {
	var v Volume
	if err := json.Unmarshal(rec.Body, &v); err != nil {
		return nil, fmt.Errorf("volume: decoding %s: %w", rec.ID, err)
	}
	s, err := compile(v.Footprint, math.MaxInt, math.Inf(1))
	if err != nil {
		return nil, fmt.Errorf("volume: decoding %s: %w", rec.ID, err)
	}
	v.shape = s
	v.ChangeSeq = rec.ChangeSeq
	if v.Conflicts == nil {
		v.Conflicts = []Ref{}
	}
	return &v, nil
}

// newToken returns a random identifier, used for ids and versions: random
// rather than a counter so that replicas never hand out the same one.
func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewVolume compiles an input into a volume outside any store, for
// benchmarks, generators and the tests of other packages. in.State ""
// means accepted.
func NewVolume(id, party string, in Input, rl rules.Rules) (*Volume, error) {
	s, err := in.compile(rl)
	if err != nil {
		return nil, err
	}
	if in.State == "" {
		in.State = Accepted
	}
	return &Volume{
		ID: id, Party: party, Version: newToken(), State: in.State, Priority: in.Priority,
		Footprint: in.Footprint, AltLowerM: in.AltLowerM, AltUpperM: in.AltUpperM,
		Start: in.Start.UTC(), End: in.End.UTC(), Details: in.Details, Conflicts: []Ref{}, shape: s,
	}, nil
}
