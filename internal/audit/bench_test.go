package audit

import (
	"bytes"
	"context"
	"testing"

	"github.com/deconflict/deconflict/internal/store"
)

func BenchmarkAppend(b *testing.B) {
	st := openStore(b)
	l := NewLog(testKey(b, 1), DefaultEvery)
	b.ResetTimer()
	i := 0
	for b.Loop() {
		err := st.Update(context.Background(), func(tx store.Tx) error {
			for range 100 {
				i++
				if _, err := l.Append(tx, "alpha", "volume_created", Everyone, volumeContent{ID: "v", Party: "alpha", AltM: float64(i), Details: Seal(map[string]int{"n": i}, "alpha")}, t0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkVerify(b *testing.B) {
	st := openStore(b)
	l := NewLog(testKey(b, 1), 100)
	fill(b, st, l, 300)
	out := export(b, st, l, "alpha", 1)
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		if _, err := Verify(bytes.NewReader(out), l.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
}
