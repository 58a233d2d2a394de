package airspace

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"github.com/deconflict/deconflict/internal/geo"
)

// WriteOpenAir writes the airspaces in the extended OpenAir format, one
// block each, in a form ParseOpenAir reads back to the same airspaces:
// polygons as DP points (degrees, minutes and seconds to the hundredth of
// a second, about 0.3 m), circles as V X= and DC, corridors and orbits as
// V W= and DY points (radii and widths in nautical miles), limits as
// written (meters as "M"), activation times as AA.
func WriteOpenAir(w io.Writer, items []Airspace) error {
	bw := bufio.NewWriter(w)
	fmt.Fprint(bw, "*VERSION: 2.0\n*WRITTEN_BY: deconflict\n")
	for _, a := range items {
		fmt.Fprintln(bw)
		class := a.Class
		if class == "" {
			class = "UNC"
		}
		fmt.Fprintf(bw, "AC %s\n", oneLine(class))
		if a.Type != "" {
			fmt.Fprintf(bw, "AY %s\n", oneLine(a.Type))
		}
		name := a.Name
		if name == "" && a.Volume != nil {
			name = a.Volume.ID
		}
		fmt.Fprintf(bw, "AN %s\n", oneLine(name))
		if a.Frequency != "" {
			fmt.Fprintf(bw, "AF %s\n", a.Frequency)
		}
		if a.Station != "" {
			fmt.Fprintf(bw, "AG %s\n", oneLine(a.Station))
		}
		if a.Transponder != "" {
			fmt.Fprintf(bw, "AX %s\n", a.Transponder)
		}
		if a.ByNOTAM {
			fmt.Fprint(bw, "AA NONE\n")
		}
		for _, t := range a.Activations {
			fmt.Fprintf(bw, "AA %s/%s\n", activationTime(t.Start), activationTime(t.End))
		}
		fmt.Fprintf(bw, "AL %s\n", a.Lower)
		fmt.Fprintf(bw, "AH %s\n", a.Upper)
		switch s := a.Shape; s.Type {
		case CircleShape:
			fmt.Fprintf(bw, "V X=%s\nDC %s\n", formatPoint(s.Center), formatNM(s.RadiusM))
		case CorridorShape, OrbitShape:
			fmt.Fprintf(bw, "V W=%s\n", formatNM(s.WidthM))
			for _, p := range s.Line {
				fmt.Fprintf(bw, "DY %s\n", formatPoint(p))
			}
		default:
			for _, p := range s.Ring {
				fmt.Fprintf(bw, "DP %s\n", formatPoint(p))
			}
		}
	}
	return bw.Flush()
}

// oneLine keeps a free-text value on its line and out of comments.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '*' {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

func activationTime(t time.Time) string {
	if t.IsZero() {
		return "NONE"
	}
	if t.Second() == 0 && t.Nanosecond() == 0 {
		return t.UTC().Format("2006-01-02T15:04Z")
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func formatNM(m float64) string { return strconv.FormatFloat(geo.MToNM(m), 'f', -1, 64) }

// formatPoint writes "DD:MM:SS N DDD:MM:SS E", seconds to the hundredth.
func formatPoint(p orb.Point) string {
	return formatAngle(p[1], 2, "N", "S") + " " + formatAngle(p[0], 3, "E", "W")
}

func formatAngle(v float64, degDigits int, pos, neg string) string {
	hemi := pos
	if v < 0 {
		hemi, v = neg, -v
	}
	hundredths := int64(math.Round(v * 3600 * 100))
	deg := hundredths / (3600 * 100)
	min := hundredths / (60 * 100) % 60
	sec := hundredths % (60 * 100)
	s := fmt.Sprintf("%0*d:%02d:%02d", degDigits, deg, min, sec/100)
	if sec%100 != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%02d", sec%100), "0")
	}
	return s + " " + hemi
}
