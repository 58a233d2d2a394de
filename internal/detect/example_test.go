package detect_test

import (
	"fmt"

	"github.com/deconflict/deconflict/internal/detect"
	"github.com/deconflict/deconflict/internal/geo"
)

// A head-on pair: 20 km apart at the same level, each at 200 m/s towards
// the other. They close at 400 m/s, so they come within 5 NM (9,260 m)
// after (20,000 - 9,260) / 400 = 26.85 s, meet at 50 s, and are 5 NM apart
// again at (20,000 + 9,260) / 400 = 73.15 s.
func ExamplePair() {
	sep := detect.Cylinder{HorizontalM: geo.NMToM(5), VerticalM: geo.FeetToM(1000)}
	own, ownVel := detect.Vec3{X: 0, Y: 0, Z: 6000}, detect.Vec3{X: 200}
	intruder, intVel := detect.Vec3{X: 20_000, Y: 0, Z: 6000}, detect.Vec3{X: -200}
	r := detect.Pair(own, ownVel, intruder, intVel, sep, 120)
	fmt.Printf("conflict %v from %.2f s to %.2f s\n", r.Conflict, r.TInS, r.TOutS)
	fmt.Printf("closest approach at %.0f s: %.0f m apart, %.0f m above each other\n", r.TCPAS, r.DHCPAM, r.DVCPAM)

	// The same pair 2,000 ft apart vertically never loses separation.
	intruder.Z += geo.FeetToM(2000)
	fmt.Println("2,000 ft apart:", detect.Pair(own, ownVel, intruder, intVel, sep, 120).Conflict)
	// Output:
	// conflict true from 26.85 s to 73.15 s
	// closest approach at 50 s: 0 m apart, 0 m above each other
	// 2,000 ft apart: false
}
