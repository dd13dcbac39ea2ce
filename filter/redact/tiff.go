package redact

import (
	"encoding/binary"
	"fmt"
)

// tiff is a TIFF or BigTIFF structure of n bytes at offset base of a file,
// in a TIFF file (base 0) or a JPEG's Exif segment. Offsets inside it are
// relative to base.
type tiff struct {
	p       *parser
	base, n int64
	bo      binary.ByteOrder
	big     bool           // BigTIFF: 8-byte offsets and counts, 20-byte entries
	seen    map[int64]bool // IFDs visited
}

// entry is an IFD entry; pos is its offset.
type entry struct {
	tag, typ uint16
	count    uint64
	value    []byte // the value field: 4 bytes, 8 in a BigTIFF
	pos      int64
}

// tiff parses the TIFF structure of n bytes at base: it visits IFD0 and
// the IFDs chained after it, and every IFD they point to.
func (p *parser) tiff(base, n int64) error {
	if n < 8 {
		return malformed("tiff: %d bytes", n)
	}
	h, err := p.read(base, 8, true)
	if err != nil {
		return fmt.Errorf("tiff header: %w", err)
	}
	bo, big, ok := tiffOrder(h)
	if !ok {
		return malformed("tiff header: bad byte order or magic")
	}
	t := &tiff{p: p, base: base, n: n, bo: bo, big: big, seen: map[int64]bool{}}
	first := uint64(bo.Uint32(h[4:]))
	if big {
		if bo.Uint16(h[4:]) != 8 || bo.Uint16(h[6:]) != 0 || n < 16 {
			return malformed("bigtiff header: bad offset size")
		}
		if h, err = p.read(base+8, 8, true); err != nil {
			return fmt.Errorf("bigtiff header: %w", err)
		}
		first = bo.Uint64(h)
	}
	if first == 0 {
		return malformed("tiff: no IFD0")
	}
	return t.chain(first, "ifd0")
}

// fieldSize is the size of an entry's value field.
func (t *tiff) fieldSize() int64 {
	if t.big {
		return 8
	}
	return 4
}

// chain visits the IFD at off and the IFDs chained after it.
func (t *tiff) chain(off uint64, name string) error {
	for i := 0; off != 0; i++ {
		next, err := t.ifd(off, true)
		if err != nil {
			return fmt.Errorf("%s[%d]: %w", name, i, err)
		}
		off = next
	}
	return nil
}

// ifd visits the IFD at off: it follows the pointers to Exif, Interop, GPS
// and SubIFDs, and returns the offset of the next IFD if chained.
func (t *tiff) ifd(off uint64, chained bool) (uint64, error) {
	b, count, err := t.entries(off, chained, true)
	if err != nil {
		return 0, err
	}
	for i := range count {
		e := t.entry(b, off, i)
		switch e.tag {
		case tagExif, tagInterop:
			err = t.subIFDs(e, 1, false)
		case tagSubIFDs:
			err = t.subIFDs(e, maxIFDs, true)
		case tagGPS:
			err = t.gpsPointer(e)
		}
		if err != nil {
			return 0, fmt.Errorf("ifd at %d: tag %#04x: %w", off, e.tag, err)
		}
	}
	if !chained {
		return 0, nil
	}
	return t.offset(b[t.entrySize()*count:]), nil
}

// subIFDs visits the IFDs e points to (at most most), and their chains if
// chained.
func (t *tiff) subIFDs(e entry, most uint64, chained bool) error {
	offs, err := t.pointers(e, most)
	if err != nil {
		return err
	}
	for _, o := range offs {
		if chained {
			err = t.chain(o, "subifd")
		} else {
			_, err = t.ifd(o, false)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// gpsPointer visits the GPS IFD e points to.
func (t *tiff) gpsPointer(e entry) error {
	offs, err := t.pointers(e, 1)
	if err != nil {
		return err
	}
	for _, o := range offs {
		if err := t.gps(o); err != nil {
			return fmt.Errorf("gps ifd: %w", err)
		}
	}
	return nil
}

// gps records the value ranges of every entry of the GPS IFD at off. The
// parse relies on the entries' tags, types, counts and value offsets, not
// on the values.
func (t *tiff) gps(off uint64) error {
	if t.p.gpsIFDs++; t.p.gpsIFDs > maxGPSIFDs {
		return overBound("more than %d GPS IFDs", maxGPSIFDs)
	}
	b, count, err := t.entries(off, false, false)
	if err != nil {
		return err
	}
	if t.p.gpsEntries += int(count); t.p.gpsEntries > maxGPSEntries {
		return overBound("more than %d GPS entries", maxGPSEntries)
	}
	fs := t.fieldSize()
	for i := range count {
		e := t.entry(b, off, i)
		t.p.rely(t.base+e.pos, t.entrySize()-fs) // tag, type, count
		rg, inline, err := t.valueRange(e)
		if err != nil {
			return fmt.Errorf("tag %#04x: %w", e.tag, err)
		}
		if !inline {
			t.p.rely(t.base+e.pos+t.entrySize()-fs, fs)
		}
		if rg.Len > 0 {
			t.p.ranges = append(t.p.ranges, rg)
		}
	}
	return nil
}

// entrySize is the size of an IFD entry.
func (t *tiff) entrySize() int64 {
	if t.big {
		return 20
	}
	return 12
}

// entries reads the IFD at off (and the next-IFD offset after it if
// chained). It returns the bytes of its entries and their count. The IFD's
// count is relied on, and its entries too when relyEntries is set.
func (t *tiff) entries(off uint64, chained, relyEntries bool) ([]byte, int64, error) {
	o := int64(off)
	if off > uint64(t.n) || t.seen[o] {
		return nil, 0, malformed("ifd at %d: out of bounds or reached twice", off)
	}
	t.seen[o] = true
	if t.p.ifds++; t.p.ifds > maxIFDs {
		return nil, 0, overBound("more than %d IFDs", maxIFDs)
	}
	cs := int64(2)
	if t.big {
		cs = 8
	}
	b, err := t.read(o, cs, true)
	if err != nil {
		return nil, 0, fmt.Errorf("ifd at %d: %w", off, err)
	}
	count := uint64(t.bo.Uint16(b))
	if t.big {
		count = t.bo.Uint64(b)
	}
	if count > maxEntries {
		return nil, 0, overBound("ifd at %d: %d entries, more than %d", off, count, maxEntries)
	}
	n := int64(count) * t.entrySize()
	if chained {
		n += t.fieldSize()
	}
	if b, err = t.read(o+cs, n, relyEntries); err != nil {
		return nil, 0, fmt.Errorf("ifd at %d with %d entries: %w", off, count, err)
	}
	return b, int64(count), nil
}

// entry decodes the i'th entry of the entries b of the IFD at off.
func (t *tiff) entry(b []byte, off uint64, i int64) entry {
	cs := int64(2)
	if t.big {
		cs = 8
	}
	b = b[i*t.entrySize():]
	e := entry{tag: t.bo.Uint16(b), typ: t.bo.Uint16(b[2:]), pos: int64(off) + cs + i*t.entrySize()}
	if t.big {
		e.count, e.value = t.bo.Uint64(b[4:]), b[12:20]
	} else {
		e.count, e.value = uint64(t.bo.Uint32(b[4:])), b[8:12]
	}
	return e
}

// offset decodes an offset: 4 bytes, 8 in a BigTIFF.
func (t *tiff) offset(b []byte) uint64 {
	if t.big {
		return t.bo.Uint64(b)
	}
	return uint64(t.bo.Uint32(b))
}

// read reads the n bytes at off, which must lie inside the structure.
func (t *tiff) read(off, n int64, relied bool) ([]byte, error) {
	if off < 0 || n < 0 || off > t.n-n {
		return nil, malformed("%d bytes at %d out of bounds", n, off)
	}
	return t.p.read(t.base+off, n, relied)
}

// pointers returns the IFD offsets e holds, at least one and at most most,
// leaving out null offsets. They must be of type LONG or IFD (LONG8 or
// IFD8 in a BigTIFF).
func (t *tiff) pointers(e entry, most uint64) ([]uint64, error) {
	size := int64(4)
	switch {
	case e.typ == 4 || e.typ == 13: // LONG, IFD
	case t.big && (e.typ == 16 || e.typ == 18): // LONG8, IFD8
		size = 8
	default:
		return nil, malformed("type %d is not an offset", e.typ)
	}
	if e.count == 0 || e.count > most {
		return nil, malformed("%d offsets, want 1 to %d", e.count, most)
	}
	b := e.value
	if n := int64(e.count) * size; n > t.fieldSize() {
		var err error
		if b, err = t.read(int64(t.offset(e.value)), n, true); err != nil {
			return nil, err
		}
	}
	var offs []uint64
	for i := range int64(e.count) {
		o := uint64(t.bo.Uint32(b[i*size:]))
		if size == 8 {
			o = t.bo.Uint64(b[i*size:])
		}
		if o != 0 {
			offs = append(offs, o)
		}
	}
	return offs, nil
}

// valueRange returns the file range of the value of e and whether it is
// stored inline, in the entry's value field. A value of an unknown type is
// taken to be the whole field. A value out of bounds is malformed.
func (t *tiff) valueRange(e entry) (rg Range, inline bool, err error) {
	fs := t.fieldSize()
	size := typeSize(e.typ)
	if size == 0 {
		return Range{t.base + e.pos + t.entrySize() - fs, fs}, true, nil
	}
	if e.count > uint64(t.n)/uint64(size) {
		return Range{}, false, malformed("value of %d items out of bounds", e.count)
	}
	n := int64(e.count) * size
	if n <= fs {
		return Range{t.base + e.pos + t.entrySize() - fs, n}, true, nil
	}
	off := t.offset(e.value)
	if off > uint64(t.n-n) {
		return Range{}, false, malformed("value at %d+%d out of bounds", off, n)
	}
	return Range{t.base + int64(off), n}, false, nil
}

// typeSize returns the size of one value of a TIFF field type, or 0 if the
// type is unknown.
func typeSize(typ uint16) int64 {
	switch typ {
	case 1, 2, 6, 7: // BYTE, ASCII, SBYTE, UNDEFINED
		return 1
	case 3, 8: // SHORT, SSHORT
		return 2
	case 4, 9, 11, 13: // LONG, SLONG, FLOAT, IFD
		return 4
	case 5, 10, 12, 16, 17, 18: // RATIONAL, SRATIONAL, DOUBLE, LONG8, SLONG8, IFD8
		return 8
	}
	return 0
}
