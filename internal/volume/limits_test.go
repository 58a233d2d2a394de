package volume

import (
	"context"
	"errors"
	"testing"
)

// A party holds at most PartyLimits live volumes and footprint positions:
// a write beyond either is refused with a *PartyLimitError and stores
// nothing; a write that does not add (an update of the same size, a
// cancellation) passes even beyond a limit lowered since; another party's
// volumes do not count; what a transaction itself wrote before counts
// (group commit), and a registry loaded from the store counts the same.
func TestPartyLimits(t *testing.T) {
	st := newFakeStore()
	e := newEnv(t, st)
	e.reg.SetPartyLimits(PartyLimits{Volumes: 2, Positions: 12})
	beyond := func(err error, what string) {
		t.Helper()
		var le *PartyLimitError
		if !errors.As(err, &le) || le.Party != "a" || le.What != what {
			t.Fatalf("got %v, want a refusal for a's %s", err, what)
		}
	}
	first := e.mustCreate("a", area(0))
	e.mustCreate("a", area(1))
	_, err := e.create("a", area(2))
	beyond(err, "live volumes")
	e.mustCreate("b", area(2))

	// A polygon of 11 positions instead of a circle (1): 12 in all.
	hexagon := area(0)
	hexagon.Footprint = regular(30, 40, 2000, 10, 0)
	res, err := e.update("a", first, hexagon)
	if err != nil {
		t.Fatalf("an update within the positions: %v", err)
	}
	first = res.Volume
	bigger := area(0)
	bigger.Footprint = regular(30, 40, 2000, 11, 0)
	_, err = e.update("a", first, bigger)
	beyond(err, "positions in the footprints of its live volumes")

	// Lowered below what a holds: no write that adds passes, the others do.
	e.reg.SetPartyLimits(PartyLimits{Volumes: 1, Positions: 1})
	if res, err = e.update("a", first, hexagon); err != nil {
		t.Fatalf("an update of the same size beyond the limits: %v", err)
	}
	first = res.Volume
	if _, err := e.setState("a", first, Cancelled); err != nil {
		t.Fatalf("a cancellation beyond the limits: %v", err)
	}
	e.reg.SetPartyLimits(PartyLimits{Volumes: 2, Positions: 12})
	e.mustCreate("a", area(3))
	_, err = e.create("a", area(4))
	beyond(err, "live volumes")

	// A new registry on the store counts what is stored.
	again := newEnv(t, st)
	again.reg.SetPartyLimits(PartyLimits{Volumes: 2})
	_, err = again.create("a", area(4))
	beyond(err, "live volumes")
	again.reg.SetPartyLimits(PartyLimits{Volumes: 3})
	abort := errors.New("batch aborted")
	err = again.st.Update(context.Background(), func(tx volumeTx) error {
		if _, err := again.reg.Create(tx, "a", area(4), again.rl, now); err != nil {
			t.Fatalf("the third: %v", err)
		}
		_, err := again.reg.Create(tx, "a", area(5), again.rl, now)
		beyond(err, "live volumes")
		return abort
	})
	if !errors.Is(err, abort) {
		t.Fatal(err)
	}
	again.mustCreate("a", area(5))
}
