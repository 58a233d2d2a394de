// Package asterix owns the decoding of EUROCONTROL ASTERIX surveillance
// data: data blocks, records, their FSPEC and items, for the categories a
// deconfliction feed needs, and the framings recorders wrap blocks in.
//
// Categories and the editions of the EUROCONTROL specifications the item
// definitions are written against (the user application profiles of the
// editions named are identical in the items decoded here; where an edition
// changed an item's layout the comment at the item says so):
//
//   - CAT062 SDPS Track Messages, Part 9, edition 1.18 (2018-08), which
//     keeps the UAP and item lengths of editions 1.12 to 1.20.
//   - CAT021 ADS-B Target Reports, Part 12, editions 2.1 to 2.6 (the UAP
//     and the lengths of every item are the same across 2.x; I021/271 was
//     restructured in 2.2 but stays an extended item).
//   - CAT048 Monoradar Target Reports, Part 4, edition 1.31 (UAP unchanged
//     since edition 1.15).
//   - CAT034 Monoradar Service Messages, Part 2b, edition 1.29.
//   - CAT065 SDPS Service Status Messages, Part 15, edition 1.6 (UAP as in
//     1.3).
//
// Every other category is recognised by its block header only and skipped
// by its block length.
//
// Decoding never reads past the end of its input: a block whose length
// disagrees with the bytes available, an FSPEC or an item that runs past
// the end of its block, an FSPEC naming an item the category does not
// define, or an explicit-length item with an impossible length makes the
// whole block malformed (an *Error carrying its Reason); the caller counts
// it and goes on with the next block. Records whose block is malformed are
// not returned, since records carry no length of their own and a block
// that does not tile cannot be trusted in part.
//
// Values are kept as the raw integers of the items (Record), with the
// item's least significant bit applied only when asked (Record.LatDeg and
// the like): the dump format (WriteCSV) prints raw × LSB exactly, and the
// feed converts to SI units at its edge.
package asterix
