package timeline

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/deconflict/deconflict/internal/airspace"
	"github.com/deconflict/deconflict/internal/volume"
)

// Verification says what was checked of the export before the page was
// made, for the page to say so.
type Verification struct {
	// Checked is set when the export was verified (its hash chain and
	// signatures against the key), and Summary says what was found.
	Checked bool
	Summary string
}

// Source describes the export a page was made from.
type Source struct {
	File      string
	Generated time.Time
}

// The colours of the console (Okabe-Ito), darkened where text sits on
// white so that it reads (WCAG AA).
var (
	partyColours = []string{"#0072B2", "#CC3D8F", "#007A5A", "#6B4C9A", "#333333"}
	levelColours = map[string]string{"advisory": "#7A6C00", "caution": "#A35F00", "warning": "#C0392B"}
)

const (
	mapWidthPx  = 480
	mapHeightPx = 300
	mapMarginPx = 28
)

// WriteHTML writes the timeline as one self-contained page: inline style
// and SVG maps, no script, no outside resource (its security policy says
// so to the browser too).
func (tl *Timeline) WriteHTML(w io.Writer, v Verification, src Source) error {
	proj := newProjection(tl)
	colour := func(party string) string {
		for i, p := range tl.Parties {
			if p == party {
				return partyColours[i%len(partyColours)]
			}
		}
		return partyColours[len(partyColours)-1]
	}
	viewer := tl.Viewer
	if viewer == "" {
		viewer = "the operator (every record)"
	}
	var first time.Time
	if len(tl.Steps) > 0 {
		first = tl.Steps[0].Time
	}
	type stepView struct {
		Step
		ID, Clock, Since, ISO, LevelColour, Class string
		Map                                       template.HTML
	}
	var steps []stepView
	acks, late := 0, 0
	for i, st := range tl.Steps {
		if st.Kind == "ack" {
			acks++
			if st.Late {
				late++
			}
		}
		class := "step kind-" + st.Kind
		if st.Late {
			class += " late"
		}
		sv := stepView{Step: st, ID: fmt.Sprintf("seq-%d", st.Seq), Clock: clockOn(st.Time, first), ISO: st.Time.Format(time.RFC3339Nano),
			Since: "+" + sinceText(st.Time.Sub(first)), LevelColour: levelColours[st.Level], Class: class}
		if proj != nil {
			sv.Map = proj.svg(st, i, sv.Clock, colour)
		}
		steps = append(steps, sv)
	}
	var legend []struct{ Party, Colour string }
	for _, p := range tl.Parties {
		legend = append(legend, struct{ Party, Colour string }{p, colour(p)})
	}
	data := map[string]any{
		"T": tl, "Steps": steps, "Viewer": viewer, "V": v, "Src": src, "Acks": acks, "Late": late,
		"Generated": src.Generated.UTC().Format(time.RFC3339), "Legend": legend, "HasMap": proj != nil,
		"Date": datesText(first, tl.Subject.Last), "To": "",
	}
	if !tl.Subject.Last.IsZero() {
		data["To"] = clockOn(tl.Subject.Last, first)
	}
	return page.Execute(w, data)
}

// datesText is the UTC day of a timeline from first to last, or the
// first and the last day when it runs past midnight (its times on a later
// day then carry their date, clockOn).
func datesText(first, last time.Time) string {
	const layout = "Monday 2 January 2006"
	first = first.UTC()
	if y, m, d := first.Date(); last.IsZero() || sameDay(y, m, d, last.UTC()) {
		return first.Format(layout)
	}
	return first.Format(layout) + " to " + last.UTC().Format(layout)
}

func sinceText(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// projection places [lon, lat] on every map of a timeline alike: a plate
// carrée around the middle latitude, over everything any step shows.
type projection struct {
	lon0, lat0, kx, scale float64
	outlines              map[string][][2]float64 // volume id@version -> outline
}

func newProjection(tl *Timeline) *projection {
	p := &projection{outlines: map[string][][2]float64{}}
	var pts [][2]float64
	for _, st := range tl.Steps {
		for _, a := range st.Scene.Aircraft {
			pts = append(pts, a.At, a.Ahead)
			pts = append(pts, a.Trail...)
		}
		for _, v := range st.Scene.Volumes {
			pts = append(pts, p.outline(v)...)
		}
	}
	// The map spans the points that are places on the earth: an export
	// is a file anyone can hand over, and a position of 1e300 degrees
	// (or a closest approach projected that far) would leave nothing
	// else to see, and a graticule of countless lines.
	pts = slices.DeleteFunc(pts, func(q [2]float64) bool {
		return !(math.Abs(q[0]) <= 360 && math.Abs(q[1]) <= 90)
	})
	if len(pts) == 0 {
		return nil
	}
	minLon, maxLon, minLat, maxLat := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, q := range pts {
		minLon, maxLon = math.Min(minLon, q[0]), math.Max(maxLon, q[0])
		minLat, maxLat = math.Min(minLat, q[1]), math.Max(maxLat, q[1])
	}
	// At least about 20 km across, so that two close aircraft do not fill
	// the map.
	const minSpanDeg = 0.2
	if maxLon-minLon < minSpanDeg {
		c := (minLon + maxLon) / 2
		minLon, maxLon = c-minSpanDeg/2, c+minSpanDeg/2
	}
	if maxLat-minLat < minSpanDeg {
		c := (minLat + maxLat) / 2
		minLat, maxLat = c-minSpanDeg/2, c+minSpanDeg/2
	}
	p.lon0, p.lat0 = (minLon+maxLon)/2, (minLat+maxLat)/2
	// Not 0 at a pole, where a degree of longitude has no width: the
	// map would span every longitude countless times.
	p.kx = max(math.Cos(p.lat0*math.Pi/180), minKx)
	spanX, spanY := (maxLon-minLon)*p.kx, maxLat-minLat
	p.scale = math.Min(float64(mapWidthPx-2*mapMarginPx)/spanX, float64(mapHeightPx-2*mapMarginPx)/spanY)
	return p
}

// minKx bounds the width of a degree of longitude on the map, relative
// to a degree of latitude: that of 89.4°N or S.
const minKx = 0.01

// maxGraticuleLines bounds the meridians (and the parallels) drawn: more
// than that only near a pole, where the meridians crowd into one.
const maxGraticuleLines = 60

// xy is the SVG position of a [lon, lat].
func (p *projection) xy(q [2]float64) (float64, float64) {
	return float64(mapWidthPx)/2 + (q[0]-p.lon0)*p.kx*p.scale, float64(mapHeightPx)/2 - (q[1]-p.lat0)*p.scale
}

// lonLat is the [lon, lat] at an SVG position.
func (p *projection) lonLat(x, y float64) [2]float64 {
	return [2]float64{p.lon0 + (x-float64(mapWidthPx)/2)/(p.kx*p.scale), p.lat0 - (y-float64(mapHeightPx)/2)/p.scale}
}

// outline is the ring that draws a volume's footprint (containing its
// exact shape, as the GeoJSON export draws it).
func (p *projection) outline(v volume.Volume) [][2]float64 {
	key := v.ID + "@" + v.Version
	if o, ok := p.outlines[key]; ok {
		return o
	}
	var out [][2]float64
	if s, err := airspace.ShapeFromFootprint(v.Footprint); err == nil {
		for _, q := range s.Outline() {
			out = append(out, [2]float64{q[0], q[1]})
		}
	}
	p.outlines[key] = out
	return out
}

// svg draws the map of step i: a graticule, a scale, the volumes, each
// aircraft's trail, its position and its path to the closest approach.
func (p *projection) svg(st Step, i int, when string, colour func(string) string) template.HTML {
	var b strings.Builder
	esc := template.HTMLEscapeString
	title := fmt.Sprintf("map-%d-title", i)
	var desc []string
	for _, a := range st.Scene.Aircraft {
		desc = append(desc, fmt.Sprintf("%s at %.3f°N %.3f°E", a.Name, a.At[1], a.At[0]))
	}
	for _, v := range st.Scene.Volumes {
		desc = append(desc, "volume "+VolumeName(v))
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="%s">`,
		mapWidthPx, mapHeightPx, mapWidthPx, mapHeightPx, title)
	fmt.Fprintf(&b, `<title id="%s">Map at %s: %s</title>`, title, when, esc(strings.Join(desc, "; ")))
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#f4f7f9"/>`, mapWidthPx, mapHeightPx)
	p.graticule(&b)
	for _, v := range st.Scene.Volumes {
		ring := p.outline(v)
		if len(ring) == 0 {
			continue
		}
		var pts []string
		for _, q := range ring {
			x, y := p.xy(q)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		c := colour(v.Party)
		fmt.Fprintf(&b, `<polygon points="%s" fill="%s" fill-opacity="0.12" stroke="%s" stroke-width="1.5"/>`, strings.Join(pts, " "), c, c)
		x, y := p.xy(ring[0])
		for _, q := range ring {
			if qx, qy := p.xy(q); qy < y {
				x, y = qx, qy
			}
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s" font-size="11" text-anchor="middle">%s</text>`, x, math.Max(12, y-4), c, esc(v.Party+" "+bandText(v.AltLowerM, v.AltUpperM)))
	}
	lc := levelColours[st.Scene.Level]
	if lc == "" {
		lc = "#555555"
	}
	for _, a := range st.Scene.Aircraft {
		c := colour(a.Party)
		if len(a.Trail) > 0 {
			var pts []string
			for _, q := range append(append([][2]float64{}, a.Trail...), a.At) {
				x, y := p.xy(q)
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5" stroke-opacity="0.6"/>`, strings.Join(pts, " "), c)
		}
		x, y := p.xy(a.At)
		if a.Ahead != a.At {
			ex, ey := p.xy(a.Ahead)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2.5" stroke-dasharray="6 4"/>`, x, y, ex, ey, lc)
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`, ex, ey, lc)
		}
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s" stroke="#ffffff" stroke-width="1.5"/>`, x, y, c)
		// The name on the side with room for it.
		if x > mapWidthPx*0.6 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s" font-size="12" font-weight="600" text-anchor="end">%s</text>`, x-8, y-8, c, esc(a.Name))
		} else {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s" font-size="12" font-weight="600">%s</text>`, x+8, y-8, c, esc(a.Name))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// graticule draws meridians and parallels at a round step with their
// labels, and a scale bar in kilometres and nautical miles.
func (p *projection) graticule(b *strings.Builder) {
	sw := p.lonLat(0, mapHeightPx)
	ne := p.lonLat(mapWidthPx, 0)
	step := 0.05
	for _, s := range []float64{0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10} {
		step = s
		if (ne[1]-sw[1])/s <= 6 {
			break
		}
	}
	lines := func(lo, hi float64) bool { return (hi-lo)/step <= maxGraticuleLines }
	for lon := math.Ceil(sw[0]/step) * step; lines(sw[0], ne[0]) && lon <= ne[0]; lon += step {
		x, _ := p.xy([2]float64{lon, 0})
		fmt.Fprintf(b, `<line x1="%.1f" y1="0" x2="%.1f" y2="%d" stroke="#c5d0d8" stroke-width="1"/>`, x, x, mapHeightPx)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" fill="#4a5a66" font-size="10" text-anchor="middle">%s</text>`, x, mapHeightPx-4, degText(lon, "E", "W"))
	}
	for lat := math.Ceil(sw[1]/step) * step; lines(sw[1], ne[1]) && lat <= ne[1]; lat += step {
		_, y := p.xy([2]float64{0, lat})
		fmt.Fprintf(b, `<line x1="0" y1="%.1f" x2="%d" y2="%.1f" stroke="#c5d0d8" stroke-width="1"/>`, y, mapWidthPx, y)
		fmt.Fprintf(b, `<text x="4" y="%.1f" fill="#4a5a66" font-size="10">%s</text>`, y-3, degText(lat, "N", "S"))
	}
	// About a fifth of the width, rounded.
	kmPerPx := 111.32 / p.scale
	km := 1.0
	for _, k := range []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000} {
		if k/kmPerPx > mapWidthPx/5 {
			break
		}
		km = k
	}
	px := km / kmPerPx
	x0, y0 := float64(mapWidthPx)-px-12, 16.0
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#1d2a33" stroke-width="2"/>`, x0, y0, x0+px, y0)
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="#1d2a33" font-size="10" text-anchor="middle">%g km (%.1f NM)</text>`, x0+px/2, y0+12, km, km/1.852)
}

func degText(v float64, pos, neg string) string {
	h := pos
	if v < 0 {
		h, v = neg, -v
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".") + "°" + h
}

var page = template.Must(template.New("timeline").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Timeline: {{.T.Subject.Name}}</title>
<style>
  body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2a33; background: #fff; margin: 0; }
  header, main, footer { max-width: 1100px; margin: 0 auto; padding: 12px 20px; }
  h1 { font-size: 24px; margin: 8px 0 4px; }
  h2 { font-size: 18px; margin: 20px 0 8px; border-bottom: 2px solid #d4dde3; padding-bottom: 4px; }
  .meta { color: #46555f; margin: 2px 0; }
  .verified { padding: 8px 12px; border-radius: 4px; font-weight: 600; }
  .verified.ok { background: #e3f3ea; border: 1px solid #2e7d4f; }
  .verified.no { background: #fdecea; border: 2px solid #b3261e; }
  dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
  dl.summary dt { font-weight: 600; }
  dl.summary dd { margin: 0; }
  .legend { list-style: none; padding: 0; display: flex; gap: 16px; flex-wrap: wrap; }
  .legend span { display: inline-block; width: 12px; height: 12px; border-radius: 50%; margin-right: 6px; vertical-align: -1px; }
  ol.steps { list-style: none; padding: 0; margin: 0; }
  .step { display: grid; grid-template-columns: 110px minmax(0, 1fr) auto; gap: 8px 16px; padding: 12px 0; border-bottom: 1px solid #e1e7eb; align-items: start; }
  .when time { font-weight: 700; font-variant-numeric: tabular-nums; display: block; }
  .when .since { color: #46555f; font-size: 13px; font-variant-numeric: tabular-nums; }
  .who { margin: 0; font-weight: 700; }
  .what { margin: 2px 0; border-left: 5px solid #9aa8b2; padding-left: 8px; }
  .notes { margin: 4px 0 0; padding-left: 20px; color: #33424c; }
  .kind-escalation .what { border-left-color: #b3261e; font-weight: 700; }
  .kind-ack .what { border-left-color: #2e7d4f; }
  .late .what { border-left-color: #b3261e; }
  .level { display: inline-block; font-size: 12px; font-weight: 700; padding: 0 6px; border: 2px solid; border-radius: 3px; margin-right: 6px; text-transform: uppercase; }
  figure { margin: 0; }
  svg { border: 1px solid #c5d0d8; max-width: 100%; height: auto; }
  @media (max-width: 900px) { .step { grid-template-columns: 1fr; } }
  @media print { .step { break-inside: avoid; } }
</style>
</head>
<body>
<header>
  <h1>Timeline: {{.T.Subject.Name}}</h1>
  <p class="meta">{{if eq .T.Subject.Kind "alert"}}Alert {{.T.Subject.ID}} and its hotline thread{{else}}Hotline thread {{.T.Subject.ID}}{{end}} · {{.Date}} (times UTC)</p>
  <p class="meta">From the audit export {{.Src.File}}, as {{.Viewer}} may read it{{if .T.Hidden}}; {{.T.Hidden}} records of the export are hidden from this viewer and may belong here{{end}}.</p>
  {{if .V.Checked}}<p class="verified ok">Verified: {{.V.Summary}}</p>{{else}}<p class="verified no">Not verified: this page was made without checking the export's signatures (run deconflict audit timeline with --key).</p>{{end}}
</header>
<main>
  <section aria-labelledby="summary-title">
    <h2 id="summary-title">Summary</h2>
    <dl class="summary">
      <dt>From</dt><dd>{{if .Steps}}{{(index .Steps 0).Clock}}{{end}}</dd>
      <dt>To</dt><dd>{{.To}}</dd>
      <dt>Steps</dt><dd>{{len .Steps}}</dd>
      {{if .T.Subject.Level}}<dt>Highest level</dt><dd>{{.T.Subject.Level}}</dd>{{end}}
      <dt>Acknowledgments</dt><dd>{{.Acks}}{{if .Late}} ({{.Late}} late){{end}}</dd>
      <dt>Escalations</dt><dd>{{.T.Subject.Escalations}}</dd>
    </dl>
    {{if .HasMap}}<ul class="legend" aria-label="Colours of the parties on the maps">{{range .Legend}}<li><span style="background: {{.Colour}}"></span>{{.Party}}</li>{{end}}<li>dashed: the predicted path to the closest approach, in the colour of the alert level</li></ul>{{end}}
  </section>
  <section aria-labelledby="steps-title">
    <h2 id="steps-title">What happened, step by step</h2>
    <ol class="steps">
    {{range .Steps}}
      <li id="{{.ID}}" class="{{.Class}}">
        <div class="when"><time datetime="{{.ISO}}">{{.Clock}}</time><span class="since">{{.Since}} · record {{.Seq}}</span></div>
        <div>
          <p class="who">{{.Who}}</p>
          <p class="what">{{if .Level}}<span class="level" style="color: {{.LevelColour}}">{{.Level}}</span>{{end}}{{.What}}</p>
          {{if .Notes}}<ul class="notes">{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
        </div>
        {{if .Map}}<figure>{{.Map}}</figure>{{end}}
      </li>
    {{end}}
    </ol>
  </section>
</main>
<footer><p class="meta">Made by deconflict audit timeline on {{.Generated}}. Every step names the record it comes from; deconflict audit verify checks them.</p></footer>
</body>
</html>
`))
