package hotline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deconflict/deconflict/internal/store"
)

// conflictVolumes is n volumes of party, v<party>-0.. at version.
func conflictVolumes(party string, n int, version string) []SubjectVolume {
	out := make([]SubjectVolume, n)
	for i := range out {
		out[i] = SubjectVolume{ID: fmt.Sprintf("v%s-%d", party, i), Party: party, Version: version, AltLowerM: 1000, AltUpperM: 2000, Start: t0, End: t0.Add(time.Hour)}
	}
	return out
}

func (e *env) postConflicts(written SubjectVolume, conflicts []SubjectVolume) ([]Message, error) {
	e.t.Helper()
	var ms []Message
	err := e.st.Update(context.Background(), func(tx store.Tx) error {
		var err error
		ms, _, err = PostVolumeConflicts(tx, e.log, e.r, written, conflicts, t0)
		return err
	})
	return ms, err
}

// openFor lists the volume-conflict items party has not acknowledged.
func (e *env) openConflictsFor(party string) []Message {
	e.t.Helper()
	var out []Message
	e.view(func(tx store.Tx) error {
		ms, err := List(tx, party, "", time.Time{}, MaxListLimit, nil)
		for _, m := range ms {
			if m.Kind == KindVolumeConflict && !m.AckedBy(party) {
				out = append(out, m)
			}
		}
		return err
	})
	return out
}

// The conflicts of a write are told in one item per other party, naming
// the count and every volume; sent again with the same conflicts while
// that item is open, no new item; with other conflicts, or once the item
// is acknowledged, a new one; beyond the bound, refused with nothing
// posted.
func TestVolumeConflictsOneItemPerOtherParty(t *testing.T) {
	e := newEnv(t, "")
	written := SubjectVolume{ID: "va", Party: "alpha", Version: "1", AltLowerM: 1500, AltUpperM: 2500, Start: t0, End: t0.Add(time.Hour)}
	bravo, charlie := conflictVolumes("bravo", 300, "1"), conflictVolumes("charlie", 1, "1")
	ms, err := e.postConflicts(written, append(append([]SubjectVolume{}, bravo...), charlie...))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Fatalf("%d items for conflicts with 2 parties, want 2", len(ms))
	}
	toBravo := e.openConflictsFor("bravo")
	if len(toBravo) != 1 || len(toBravo[0].Subject.Volumes) != 301 || toBravo[0].Subject.Volumes[0] != written {
		t.Fatalf("bravo's items %+v, want one whose subject is alpha's volume and its 300", toBravo)
	}
	text := toBravo[0].Text
	if !strings.Contains(text, "conflicts with 300 volumes of bravo: vbravo-0 (version 1), vbravo-1 (version 1)") ||
		!strings.Contains(text, "more, every one named in the item's subject") || len(text) > MaxTextBytes {
		t.Errorf("the text (%d bytes) reads %q", len(text), text)
	}
	if c := e.openConflictsFor("charlie"); len(c) != 1 || c[0].Text != "volume va of alpha (version 1) conflicts with volume vcharlie-0 of charlie (version 1)" {
		t.Errorf("charlie's items %+v, want the one of a single conflict", c)
	}

	// The volume sent again unchanged (a new version, the same band,
	// window and conflicts): nothing new.
	written.Version = "2"
	if ms, err := e.postConflicts(written, append(append([]SubjectVolume{}, bravo...), charlie...)); err != nil || len(ms) != 0 {
		t.Errorf("sent again unchanged: %d items (%v), want none", len(ms), err)
	}
	// One of bravo's volumes at a new version: a new item to bravo only.
	bravo[7].Version = "2"
	if ms, err := e.postConflicts(written, append(append([]SubjectVolume{}, bravo...), charlie...)); err != nil || len(ms) != 1 || ms[0].Subject.Volumes[1].Party != "bravo" {
		t.Errorf("a conflict changed with bravo's: %+v (%v), want one item, to bravo", ms, err)
	}
	// Moved to another band: both are told again.
	written.AltLowerM = 1600
	if ms, err := e.postConflicts(written, append(append([]SubjectVolume{}, bravo...), charlie...)); err != nil || len(ms) != 2 {
		t.Errorf("moved: %d items (%v), want 2", len(ms), err)
	}
	// Once charlie's items are acknowledged by both, the same conflicts
	// are told again.
	for _, m := range e.openConflictsFor("charlie") {
		e.update(func(tx store.Tx) error {
			for _, p := range []string{"alpha", "charlie"} {
				if _, _, err := Ack(tx, e.log, m.ID, p, "", t0); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if ms, err := e.postConflicts(written, charlie); err != nil || len(ms) != 1 {
		t.Errorf("after charlie acknowledged: %d items (%v), want 1", len(ms), err)
	}

	before := len(e.openConflictsFor("bravo"))
	_, err = e.postConflicts(written, conflictVolumes("bravo", MaxVolumeConflictsPerWrite+1, "3"))
	var tc *TooManyConflictsError
	if !errors.As(err, &tc) || tc.Conflicts != MaxVolumeConflictsPerWrite+1 {
		t.Errorf("%d conflicts: %v, want a TooManyConflictsError", MaxVolumeConflictsPerWrite+1, err)
	}
	if after := len(e.openConflictsFor("bravo")); after != before {
		t.Errorf("a refused post left bravo %d items, had %d", after, before)
	}
	if ms, err := e.postConflicts(written, conflictVolumes("bravo", MaxVolumeConflictsPerWrite, "3")); err != nil || len(ms) != 1 || len(ms[0].Text) > MaxTextBytes {
		t.Errorf("%d conflicts: %d items (%v), want one with a text of at most %d bytes", MaxVolumeConflictsPerWrite, len(ms), err, MaxTextBytes)
	}
}

// The conflicts new rules make are told as a write's, one item per other
// party, saying under which rules, with no bound: beyond
// MaxVolumeConflictsPerItem of one party's, in items of at most that
// many, each text within MaxTextBytes; posted again unchanged while
// they are open, none.
func TestVolumeConflictsUnderRulesGroupedWithoutBound(t *testing.T) {
	e := newEnv(t, "")
	e.r.Version = 7
	first := SubjectVolume{ID: "va", Party: "alpha", Version: "1", AltLowerM: 1500, AltUpperM: 2500, Start: t0, End: t0.Add(time.Hour)}
	bravo, charlie := conflictVolumes("bravo", MaxVolumeConflictsPerItem+500, "1"), conflictVolumes("charlie", 1, "1")
	conflicts := append(append([]SubjectVolume{}, bravo...), charlie...)
	post := func() ([]Message, error) {
		var ms []Message
		err := e.st.Update(context.Background(), func(tx store.Tx) error {
			var err error
			ms, _, err = PostVolumeConflictsUnderRules(tx, e.log, e.r, first, conflicts, t0)
			return err
		})
		return ms, err
	}
	ms, err := post()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("%d items, want 3: bravo's %d conflicts in 2, charlie's in 1", len(ms), len(bravo))
	}
	named := 0
	for _, m := range ms[:2] {
		named += len(m.Subject.Volumes) - 1
		if m.Subject.Volumes[0] != first || m.To[1] != "bravo" || len(m.Text) > MaxTextBytes ||
			!strings.Contains(m.Text, fmt.Sprintf("conflicts with %d volumes of bravo under the rules of version 7: vbravo-", len(m.Subject.Volumes)-1)) {
			t.Errorf("item to %v (%d bytes) reads %q", m.To, len(m.Text), m.Text)
		}
	}
	if named != len(bravo) || len(ms[0].Subject.Volumes)-1 != MaxVolumeConflictsPerItem {
		t.Errorf("bravo's items name %d volumes (the first %d), want %d (the first %d)", named, len(ms[0].Subject.Volumes)-1, len(bravo), MaxVolumeConflictsPerItem)
	}
	if want := "volume va of alpha (version 1) conflicts with volume vcharlie-0 of charlie (version 1) under the rules of version 7"; ms[2].Text != want {
		t.Errorf("charlie's item reads %q, want %q", ms[2].Text, want)
	}
	if again, err := post(); err != nil || len(again) != 0 {
		t.Errorf("the same conflicts again while told: %d items (%v), want none", len(again), err)
	}
}
