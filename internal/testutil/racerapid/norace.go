//go:build !race

package racerapid

const raceEnabled = false
