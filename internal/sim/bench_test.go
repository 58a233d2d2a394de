package sim

import "testing"

// BenchmarkFlightAt is the cost of one aircraft state: the simulator
// computes one per airborne aircraft per tick.
func BenchmarkFlightAt(b *testing.B) {
	s, err := Builtin("syria-2015")
	if err != nil {
		b.Fatal(err)
	}
	p, err := s.Plan(1)
	if err != nil {
		b.Fatal(err)
	}
	f := p.Flight("CO-MQ9-IDLIB") // transit legs and a long orbit
	span := f.EndS - f.StartS
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok := f.At(f.StartS + float64(i%1000)/1000*span); !ok {
			b.Fatal("not airborne")
		}
	}
}

func BenchmarkPlanDay(b *testing.B) {
	s, err := Builtin("syria-2015")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := uint64(0); b.Loop(); i++ {
		if _, err := s.Plan(i); err != nil {
			b.Fatal(err)
		}
	}
}
