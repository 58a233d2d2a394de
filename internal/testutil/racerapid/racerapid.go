// Package racerapid lightens the property tests (pgregory.net/rapid) of a
// test binary built with -race: `make test` runs the packages with
// concurrency a second time under the race detector to find data races,
// which a property test's hundredth random case finds no better than its
// tenth, while the detector makes each case ten times slower. The full
// number of cases runs in the plain test run. Import it for its effect:
//
//	import _ "github.com/deconflict/deconflict/internal/testutil/racerapid"
//
// A -rapid.checks flag on the command line still wins.
package racerapid

import (
	"flag"

	_ "pgregory.net/rapid" // defines -rapid.checks before this package's init
)

// raceChecks is the number of cases per property test under -race.
const raceChecks = "10"

func init() {
	if !raceEnabled {
		return
	}
	if err := flag.Set("rapid.checks", raceChecks); err != nil {
		panic("racerapid: " + err.Error())
	}
}
