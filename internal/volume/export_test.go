package volume

import "github.com/deconflict/deconflict/internal/store"

// RecordForTest is v's stored form, for the tests outside the package
// that fill a store without the registry (benchmarks of many volumes).
func (v *Volume) RecordForTest() (store.Volume, error) { return v.record() }
