package timeline

import (
	"math"
	"strconv"
	"testing"
)

// TestColoursReadOnWhite: every colour the page writes text in (the level
// badges, the parties) reaches WCAG AA's 4.5:1 against the page's white,
// which axe-core checks only for the levels a given timeline happens to
// show.
func TestColoursReadOnWhite(t *testing.T) {
	colours := map[string]string{}
	for level, c := range levelColours {
		colours["level "+level] = c
	}
	for i, c := range partyColours {
		colours["party colour "+strconv.Itoa(i)] = c
	}
	for name, c := range colours {
		if r := contrastOnWhite(t, c); r < 4.5 {
			t.Errorf("%s %s: contrast %.2f:1 on white, want at least 4.5:1", name, c, r)
		}
	}
}

// contrastOnWhite is WCAG 2's contrast ratio of #RRGGBB against white.
func contrastOnWhite(t *testing.T, hex string) float64 {
	t.Helper()
	v, err := strconv.ParseUint(hex[1:], 16, 32)
	if len(hex) != 7 || hex[0] != '#' || err != nil {
		t.Fatalf("colour %q is not #RRGGBB", hex)
	}
	var lum float64
	for i, weight := range []float64{0.2126, 0.7152, 0.0722} {
		c := float64(v>>(16-8*i)&0xff) / 255
		if c <= 0.04045 {
			c /= 12.92
		} else {
			c = math.Pow((c+0.055)/1.055, 2.4)
		}
		lum += weight * c
	}
	return 1.05 / (lum + 0.05)
}
