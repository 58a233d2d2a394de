package resolve

import "slices"

// span is the closed interval [lo, hi] of one dimension's values, lo < hi.
type span struct{ lo, hi float64 }

// spans is a set of values: sorted, disjoint spans that do not touch.
type spans []span

// unite returns the union of the spans in any order, sorted and merged
// (spans that touch merge); it reorders its argument.
func unite(s []span) spans {
	if len(s) < 2 {
		return s
	}
	slices.SortFunc(s, func(a, b span) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	out := s[:1]
	for _, x := range s[1:] {
		last := &out[len(out)-1]
		if x.lo <= last.hi {
			last.hi = max(last.hi, x.hi)
			continue
		}
		out = append(out, x)
	}
	return out
}

// complement returns [lo, hi] without s (s within [lo, hi]).
func (s spans) complement(lo, hi float64) spans {
	var out spans
	at := lo
	for _, x := range s {
		if x.lo > at {
			out = append(out, span{at, x.lo})
		}
		at = max(at, x.hi)
	}
	if hi > at {
		out = append(out, span{at, hi})
	}
	return out
}

// contains reports whether x is in the set (ends included).
func (s spans) contains(x float64) bool {
	i, _ := slices.BinarySearchFunc(s, x, func(sp span, x float64) int {
		if sp.hi < x {
			return -1
		}
		if sp.lo > x {
			return 1
		}
		return 0
	})
	return i < len(s) && s[i].lo <= x && x <= s[i].hi
}

// usable reports whether the set holds a span at least width wide.
func (s spans) usable(width float64) bool {
	for _, x := range s {
		if x.hi-x.lo >= width {
			return true
		}
	}
	return false
}

// appendWideGaps appends to dst the spans of [lo, hi] without s at least
// width wide: complement(lo, hi).wide(width) without building the
// complement.
func (s spans) appendWideGaps(dst spans, lo, hi, width float64) spans {
	at := lo
	for _, x := range s {
		if x.lo > at && x.lo-at >= width {
			dst = append(dst, span{at, x.lo})
		}
		at = max(at, x.hi)
	}
	if hi > at && hi-at >= width {
		dst = append(dst, span{at, hi})
	}
	return dst
}

// hull is the smallest range holding every span of s; [lo, hi] when s
// is empty.
func (s spans) hull(lo, hi float64) (float64, float64) {
	if len(s) == 0 {
		return lo, hi
	}
	return s[0].lo, s[len(s)-1].hi
}

// wide returns the spans of s at least width wide.
func (s spans) wide(width float64) spans {
	var out spans
	for _, x := range s {
		if x.hi-x.lo >= width {
			out = append(out, x)
		}
	}
	return out
}

// clamp returns the set within [lo, hi], without spans reduced to a point.
func (s spans) clamp(lo, hi float64) spans {
	var out spans
	for _, x := range s {
		x.lo, x.hi = max(x.lo, lo), min(x.hi, hi)
		if x.lo < x.hi {
			out = append(out, x)
		}
	}
	return out
}
