package asterix

import (
	"fmt"
	"math/bits"
)

// Item names one data item of one category: the category times 1000 plus
// the item number (62105 is I062/105); the reserved expansion and special
// purpose fields are numbers reExpansion and specialPurpose.
type Item uint32

const (
	reExpansion    = 998
	specialPurpose = 999
)

func item(cat, num int) Item { return Item(cat*1000 + num) }

// Category is the ASTERIX category the item belongs to.
func (i Item) Category() int { return int(i) / 1000 }

// String is the item's usual name, "I062/105" (or "I062/RE", "I062/SP");
// the zero Item is "".
func (i Item) String() string {
	if i == 0 {
		return ""
	}
	switch n := int(i) % 1000; n {
	case reExpansion:
		return fmt.Sprintf("I%03d/RE", i.Category())
	case specialPurpose:
		return fmt.Sprintf("I%03d/SP", i.Category())
	default:
		return fmt.Sprintf("I%03d/%03d", i.Category(), n)
	}
}

// kind is the structure of an item (or of a compound item's subfield) as
// the ASTERIX specifications define it (Part 1, section 4.3).
type kind uint8

const (
	// kindNone marks an FRN or a subfield the edition leaves spare: its
	// presence bit set is an error.
	kindNone kind = iota
	// kindFixed: n octets.
	kindFixed
	// kindExtended: a first part of n octets, then further parts of m
	// octets for as long as the last octet of a part has its FX bit (the
	// least significant bit) set.
	kindExtended
	// kindRepetitive: one octet REP, then REP repetitions of n octets.
	kindRepetitive
	// kindCompound: a primary subfield of presence bits (seven per octet,
	// the eighth the FX extension bit), then the present subfields in order.
	kindCompound
	// kindExplicit: one octet LEN counting itself, then LEN-1 octets.
	kindExplicit
)

// format describes how long an item is.
type format struct {
	kind kind
	n, m int
	subs []format
}

func fixed(n int) format       { return format{kind: kindFixed, n: n} }
func extended(n, m int) format { return format{kind: kindExtended, n: n, m: m} }
func repetitive(n int) format  { return format{kind: kindRepetitive, n: n} }
func compound(subs ...format) format {
	return format{kind: kindCompound, subs: subs}
}
func explicit() format { return format{kind: kindExplicit} }

// spare marks an FRN or a compound subfield that the edition does not use.
var spare = format{}

// maxPresenceOctets bounds an FSPEC or a compound primary subfield: no
// category defines more than 8 octets of them (56 FRNs).
const maxPresenceOctets = 8

// presence reads an FSPEC or a compound item's primary subfield at the
// start of b: bit k of the result (from 0) is set when field k+1 is
// present. It returns the number of octets read.
func presence(b []byte) (present uint64, n int, r Reason) {
	for {
		if n == len(b) {
			return 0, 0, ReasonFSPECPastEnd
		}
		if n == maxPresenceOctets {
			return 0, 0, ReasonUndefinedItem
		}
		o := b[n]
		// Bit 8 (0x80) of octet n is field 7n+1, bit 2 is field 7n+7, bit 1
		// the FX: reversed, field 7n+1 is bit 0 and the FX bit 7.
		present |= uint64(bits.Reverse8(o)&0x7f) << (7 * n)
		n++
		if o&1 == 0 {
			return present, n, ReasonNone
		}
	}
}

// length returns how many octets of b the item of format f occupies, or the
// reason it cannot be read within b.
func (f *format) length(b []byte) (int, Reason) {
	switch f.kind {
	case kindFixed:
		if len(b) < f.n {
			return 0, ReasonItemPastEnd
		}
		return f.n, ReasonNone
	case kindExtended:
		n := f.n
		for {
			if len(b) < n {
				return 0, ReasonItemPastEnd
			}
			if b[n-1]&1 == 0 {
				return n, ReasonNone
			}
			n += f.m
		}
	case kindRepetitive:
		if len(b) < 1 {
			return 0, ReasonItemPastEnd
		}
		n := 1 + int(b[0])*f.n
		if len(b) < n {
			return 0, ReasonItemPastEnd
		}
		return n, ReasonNone
	case kindExplicit:
		if len(b) < 1 {
			return 0, ReasonItemPastEnd
		}
		n := int(b[0])
		if n < 1 {
			return 0, ReasonBadExplicitLength
		}
		if len(b) < n {
			return 0, ReasonItemPastEnd
		}
		return n, ReasonNone
	case kindCompound:
		present, n, r := presence(b)
		if r == ReasonFSPECPastEnd {
			return 0, ReasonItemPastEnd
		}
		if r != ReasonNone {
			return 0, r
		}
		for present != 0 {
			k := bits.TrailingZeros64(present)
			present &^= 1 << k
			if k >= len(f.subs) || f.subs[k].kind == kindNone {
				return 0, ReasonUndefinedItem
			}
			sl, r := f.subs[k].length(b[n:])
			if r != ReasonNone {
				return 0, r
			}
			n += sl
		}
		return n, ReasonNone
	}
	return 0, ReasonUndefinedItem
}

// subfield returns the octets of subfield k (from 0) of a compound item b
// whose length f.length has already checked, or nil when it is absent.
func (f *format) subfield(b []byte, k int) []byte {
	present, n, _ := presence(b)
	if present&(1<<k) == 0 {
		return nil
	}
	for present &= 1<<k - 1; present != 0; {
		i := bits.TrailingZeros64(present)
		present &^= 1 << i
		sl, _ := f.subs[i].length(b[n:])
		n += sl
	}
	sl, _ := f.subs[k].length(b[n:])
	return b[n : n+sl]
}
