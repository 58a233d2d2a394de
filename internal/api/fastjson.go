package api

import (
	"strconv"
)

// decodeBatchFast decodes a position batch written in the plain form every
// client produces: known keys in their exact case, ASCII strings without
// escapes, numbers, no nulls. It is several times faster than
// encoding/json's reflection, which is a third of the cost of an ingest
// request. On anything else it reports ok=false and the caller decodes
// with encoding/json, so that both give the same result or the same error
// (FuzzFastBatchDecoder checks that they agree).
func decodeBatchFast(b []byte) (reports []positionReport, ok bool) {
	p := fastParser{b: b}
	if !p.lit('{') || !p.key("reports") || !p.lit('[') {
		return nil, false
	}
	reports = make([]positionReport, 0, len(b)/180)
	if !p.lit(']') {
		for {
			var r positionReport
			if !p.report(&r) {
				return nil, false
			}
			reports = append(reports, r)
			if p.lit(',') {
				continue
			}
			if p.lit(']') {
				break
			}
			return nil, false
		}
	}
	if !p.lit('}') {
		return nil, false
	}
	p.space()
	return reports, p.i == len(p.b)
}

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// lit consumes the byte c after optional space.
func (p *fastParser) lit(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str returns the contents of a plain string: printable ASCII, no escapes.
func (p *fastParser) str() ([]byte, bool) {
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		c := p.b[j]
		switch {
		case c == '"':
			p.i = j + 1
			return p.b[start:j], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

func (p *fastParser) key(want string) bool {
	k, ok := p.str()
	return ok && string(k) == want && p.lit(':')
}

// num parses a JSON number (exact grammar) as a float64.
func (p *fastParser) num() (float64, bool) {
	p.space()
	s := p.i
	j := s
	if j < len(p.b) && p.b[j] == '-' {
		j++
	}
	switch {
	case j < len(p.b) && p.b[j] == '0':
		j++
	case j < len(p.b) && p.b[j] >= '1' && p.b[j] <= '9':
		for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
			j++
		}
	default:
		return 0, false
	}
	if j < len(p.b) && p.b[j] == '.' {
		j++
		d := j
		for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
			j++
		}
		if j == d {
			return 0, false
		}
	}
	if j < len(p.b) && (p.b[j] == 'e' || p.b[j] == 'E') {
		j++
		if j < len(p.b) && (p.b[j] == '+' || p.b[j] == '-') {
			j++
		}
		d := j
		for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
			j++
		}
		if j == d {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(string(p.b[s:j]), 64)
	if err != nil {
		return 0, false
	}
	p.i = j
	return f, true
}

func (p *fastParser) report(r *positionReport) bool {
	if !p.lit('{') {
		return false
	}
	if p.lit('}') {
		return true
	}
	for {
		k, ok := p.str()
		if !ok || !p.lit(':') {
			return false
		}
		switch string(k) {
		case "aircraft", "callsign", "alt_source", "class":
			v, ok := p.str()
			if !ok {
				return false
			}
			switch string(k) {
			case "aircraft":
				r.Aircraft = string(v)
			case "callsign":
				r.Callsign = string(v)
			case "class":
				r.Class = string(v)
			default:
				r.AltSource = string(v)
			}
		case "time":
			v, ok := p.str()
			if !ok {
				return false
			}
			r.setTimeBytes(v)
		default:
			dst := r.floatField(string(k))
			if dst == nil {
				return false
			}
			v, ok := p.num()
			if !ok {
				return false
			}
			*dst = v
		}
		if p.lit(',') {
			continue
		}
		return p.lit('}')
	}
}

func (r *positionReport) floatField(name string) *float64 {
	switch name {
	case "lat":
		r.has |= hasLat
		return &r.Lat
	case "lon":
		r.has |= hasLon
		return &r.Lon
	case "alt_m":
		r.has |= hasAltM
		return &r.AltM
	case "vel_east_mps":
		return &r.VelEastMps
	case "vel_north_mps":
		return &r.VelNorthMps
	case "vel_up_mps":
		return &r.VelUpMps
	}
	return nil
}
