package logcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/printable"
	"github.com/deconflict/deconflict/internal/translog"
	"golang.org/x/mod/sumdb/note"
)

// servedRules is what the check reads of the rules the server serves: the
// witnesses' age, and which parties' witnesses they name (their keys are
// only compared with the pinned ones, never used).
type servedRules struct {
	WitnessMaxAgeS float64 `json:"witness_max_age_s"`
	Witnesses      []struct {
		Party string `json:"party"`
		VKey  string `json:"vkey"`
	} `json:"witnesses"`
}

// requiredWitness is another party's witness whose cosignature the check
// requires, with the key the party pinned.
type requiredWitness struct {
	party string
	vkey  string
	v     note.Verifier
}

// requiredWitnesses are the other parties' witnesses the check requires:
// every one pinned (c.WitnessKeys), which the served rules cannot take
// away, and every one the served rules name, which must be pinned. The
// party's own witness (own, from its state directory) is checked apart.
// The notes say where the served rules name a key other than the pinned.
func (c *Checker) requiredWitnesses(own note.Verifier, served []struct {
	Party string `json:"party"`
	VKey  string `json:"vkey"`
}) ([]requiredWitness, []string, error) {
	var out []requiredWitness
	byParty := map[string]int{}
	parties := make([]string, 0, len(c.WitnessKeys))
	for p := range c.WitnessKeys {
		parties = append(parties, p)
	}
	slices.Sort(parties)
	for _, p := range parties {
		v, err := translog.WitnessVerifier(c.WitnessKeys[p])
		if err != nil {
			return nil, nil, fmt.Errorf("the witness key pinned for %s: %w", p, err)
		}
		if v.Name() == own.Name() {
			if v.KeyHash() != own.KeyHash() {
				return nil, nil, fmt.Errorf("the witness key pinned for %s is named %s, as this party's own witness, whose key (in its state directory) is another", p, v.Name())
			}
			continue // the party's own witness, pinned too
		}
		byParty[p] = len(out)
		out = append(out, requiredWitness{party: p, vkey: c.WitnessKeys[p], v: v})
	}
	var notes, unpinned []string
	for _, w := range served {
		sv, err := translog.WitnessVerifier(w.VKey)
		if err == nil && sv.Name() == own.Name() {
			if sv.KeyHash() != own.KeyHash() {
				notes = append(notes, fmt.Sprintf("the rules served name for %s the witness key %s, named as this party's witness but not its key", printable.Escape(w.Party), printable.Escape(w.VKey)))
			}
			continue
		}
		i, pinned := byParty[w.Party]
		switch {
		case !pinned:
			unpinned = append(unpinned, printable.Escape(w.Party))
		case w.VKey != out[i].vkey:
			notes = append(notes, fmt.Sprintf("the rules served name for %s the witness key %s, not the one pinned (%s): its cosignatures are checked with the pinned key", printable.Escape(w.Party), printable.Escape(w.VKey), out[i].vkey))
		}
	}
	if len(unpinned) > 0 {
		return nil, nil, fmt.Errorf("the rules name the witness of %s, whose key this party has not pinned: pin each (witness check --witness PARTY=VKEY or --witness-keys FILE) as learned from that party itself, not from the server, which could show each party its own fork cosigned by keys it holds", strings.Join(unpinned, ", "))
	}
	return out, notes, nil
}

// cosignedState is what the check keeps of each other witness's latest
// cosignature it verified, so that a witness that is slow to cosign the
// newest checkpoint is allowed the rules' age since then. It is kept only
// for checkpoints whose records the check verified (the accepted one, or
// the published one it was shown to extend), so every one is on a prefix
// of the tree the check holds, which every later accepted checkpoint
// extends.
type cosignedState struct {
	VKey string    `json:"vkey"`
	Size int64     `json:"size"`
	Time time.Time `json:"time"`
}

const cosignedFile = "cosigned.json"

func (c *Checker) readCosigned() (map[string]cosignedState, error) {
	b, err := os.ReadFile(c.path(cosignedFile))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]cosignedState{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]cosignedState{}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", c.path(cosignedFile), err)
	}
	return out, nil
}

func (c *Checker) writeCosigned(st map[string]cosignedState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := c.path(cosignedFile + ".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, c.path(cosignedFile))
}

// othersCosigned checks that every other party's witness in others
// cosigned the accepted checkpoint cp (signed as accepted), or, within
// maxAge, a checkpoint it extends: the published one (when the accepted
// one is the later one the party's own witness holds) or one an earlier
// check verified. A witness without either is an Uncosigned finding
// naming it: the log may be showing this party a view that witness has not
// seen.
func (c *Checker) othersCosigned(origin string, logV note.Verifier, others []requiredWitness, cp translog.Checkpoint, accepted, published []byte, maxAge time.Duration) ([]OtherWitness, error) {
	if len(others) == 0 {
		return nil, nil
	}
	vs := make([]note.Verifier, len(others))
	for i, w := range others {
		vs[i] = w.v
	}
	forged := func(which []byte, err error) error {
		what := "a cosignature on the checkpoint, under the key pinned for another party's witness, does not verify (forged): " + err.Error()
		return &Finding{Kind: Inconsistent, What: what, Evidence: c.evidence(Inconsistent, what, string(which))}
	}
	_, onAccepted, err := translog.Open(accepted, origin, logV, vs...)
	if err != nil {
		return nil, forged(accepted, err)
	}
	var onPublished map[string]translog.Cosignature
	var publishedSize int64
	if !bytes.Equal(published, accepted) {
		pcp, cosigs, err := translog.Open(published, origin, logV, vs...)
		if err != nil {
			return nil, forged(published, err)
		}
		onPublished, publishedSize = cosigs, pcp.Size
	}
	state, err := c.readCosigned()
	if err != nil {
		return nil, err
	}
	now := c.Now()
	var out []OtherWitness
	var missing []string
	for _, w := range others {
		got := OtherWitness{Party: w.party, Name: w.v.Name(), Graced: true}
		if st, ok := state[w.party]; ok && st.VKey == w.vkey && st.Size <= cp.Size {
			got.CosignedAt, got.Size = st.Time, st.Size
		}
		if co, ok := onPublished[w.v.Name()]; ok && !co.Time.Before(got.CosignedAt) {
			got.CosignedAt, got.Size = co.Time, publishedSize
		}
		if co, ok := onAccepted[w.v.Name()]; ok {
			got.CosignedAt, got.Size, got.Graced = co.Time, cp.Size, false
		}
		if !got.CosignedAt.IsZero() {
			state[w.party] = cosignedState{VKey: w.vkey, Size: got.Size, Time: got.CosignedAt}
		}
		switch {
		case !got.Graced:
		case got.CosignedAt.IsZero():
			missing = append(missing, fmt.Sprintf("the witness of %s (%s), of which this party has seen no cosignature", w.party, w.v.Name()))
			continue
		case now.Sub(got.CosignedAt) > maxAge:
			missing = append(missing, fmt.Sprintf("the witness of %s (%s), whose latest cosignature this party has seen is from %s (size %d), older than %s",
				w.party, w.v.Name(), got.CosignedAt.UTC().Format(time.RFC3339), got.Size, maxAge))
			continue
		}
		out = append(out, got)
	}
	if err := c.writeCosigned(state); err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		what := fmt.Sprintf("the checkpoint of size %d is not cosigned by %s: the log may be showing this party a view of the record those witnesses have not seen (a split view), or they are down",
			cp.Size, strings.Join(missing, "; nor by "))
		return nil, &Finding{Kind: Uncosigned, What: what, Evidence: c.evidence(Uncosigned, what, string(accepted))}
	}
	return out, nil
}
