package redact

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sievefs/sievefs/internal/exiftest"
)

// node is an IFD for encodeTIFF: its fields, the IFDs it points to, and
// the IFD chained after it. The values of a GPS node's fields are the
// ranges to redact.
type node struct {
	fields []field
	ptrs   []ptr
	next   *node
	gps    bool
}

// ptr is a pointer entry: tag, pointing to the IFDs to (an array when
// more than one), with the entry type typ (0: LONG, or LONG8 in a BigTIFF).
type ptr struct {
	tag uint16
	typ uint16
	to  []*node
}

// encoder lays out a TIFF or BigTIFF structure.
type encoder struct {
	bo   binary.ByteOrder
	big  bool
	buf  []byte
	at   map[*node]int // offset of each IFD
	want []Range       // GPS value ranges
}

// encodeTIFF returns a TIFF structure (a BigTIFF if big) with root as IFD0
// and the ranges of the values of its GPS IFDs.
func encodeTIFF(bo binary.ByteOrder, big bool, root *node) ([]byte, []Range) {
	e := &encoder{bo: bo, big: big, at: map[*node]int{}}
	order := e.collect(root, nil)
	hdr := 8
	if big {
		hdr = 16
	}
	off := hdr
	for _, n := range order {
		e.at[n] = off
		off += e.cs() + e.es()*(len(n.fields)+len(n.ptrs)) + e.fs()
	}
	e.buf = make([]byte, off)
	copy(e.buf, map[bool]string{true: "II", false: "MM"}[bo == binary.LittleEndian])
	if big {
		bo.PutUint16(e.buf[2:], 43)
		bo.PutUint16(e.buf[4:], 8)
		bo.PutUint64(e.buf[8:], uint64(hdr))
	} else {
		bo.PutUint16(e.buf[2:], 42)
		bo.PutUint32(e.buf[4:], uint32(hdr))
	}
	for _, n := range order {
		e.write(n)
	}
	return e.buf, e.want
}

// collect lists the IFDs reachable from n, each once, n first.
func (e *encoder) collect(n *node, out []*node) []*node {
	if n == nil || slices.Contains(out, n) {
		return out
	}
	out = append(out, n)
	for _, p := range n.ptrs {
		for _, c := range p.to {
			out = e.collect(c, out)
		}
	}
	return e.collect(n.next, out)
}

func (e *encoder) cs() int { return map[bool]int{true: 8, false: 2}[e.big] }
func (e *encoder) es() int { return map[bool]int{true: 20, false: 12}[e.big] }
func (e *encoder) fs() int { return map[bool]int{true: 8, false: 4}[e.big] }

// putOff writes an offset (or count) of the value field's size at b.
func (e *encoder) putOff(b []byte, v uint64) {
	if e.big {
		e.bo.PutUint64(b, v)
	} else {
		e.bo.PutUint32(b, uint32(v))
	}
}

// value places data for the entry at pos: in its value field when it fits,
// else at the end of the buffer; it returns where it went.
func (e *encoder) value(pos int, data []byte) int {
	field := pos + e.es() - e.fs()
	if len(data) <= e.fs() {
		copy(e.buf[field:], data)
		return field
	}
	if len(e.buf)%2 == 1 {
		e.buf = append(e.buf, 0)
	}
	at := len(e.buf)
	e.putOff(e.buf[field:], uint64(at))
	e.buf = append(e.buf, data...)
	return at
}

// write writes the IFD n at its offset.
func (e *encoder) write(n *node) {
	at := e.at[n]
	count := len(n.fields) + len(n.ptrs)
	if e.big {
		e.bo.PutUint64(e.buf[at:], uint64(count))
	} else {
		e.bo.PutUint16(e.buf[at:], uint16(count))
	}
	entry := func(i int, tag, typ uint16, cnt uint64) int {
		pos := at + e.cs() + e.es()*i
		e.bo.PutUint16(e.buf[pos:], tag)
		e.bo.PutUint16(e.buf[pos+2:], typ)
		if e.big {
			e.bo.PutUint64(e.buf[pos+4:], cnt)
		} else {
			e.bo.PutUint32(e.buf[pos+4:], uint32(cnt))
		}
		return pos
	}
	for i, f := range n.fields {
		pos := entry(i, f.tag, f.typ, uint64(f.count))
		v := e.value(pos, f.data)
		if n.gps && len(f.data) > 0 {
			e.want = append(e.want, Range{int64(v), int64(len(f.data))})
		}
	}
	for i, p := range n.ptrs {
		typ, size := p.typ, e.fs()
		if typ == 0 {
			typ = map[bool]uint16{true: 16, false: 4}[e.big]
		}
		if typ == 4 || typ == 13 {
			size = 4
		}
		var data []byte
		for _, c := range p.to {
			b := make([]byte, size)
			if size == 8 {
				e.bo.PutUint64(b, uint64(e.at[c]))
			} else {
				e.bo.PutUint32(b, uint32(e.at[c]))
			}
			data = append(data, b...)
		}
		e.value(entry(len(n.fields)+i, p.tag, typ, uint64(len(p.to))), data)
	}
	if n.next != nil {
		e.putOff(e.buf[at+e.cs()+e.es()*count:], uint64(e.at[n.next]))
	}
}

// gpsNode returns a GPS IFD with the test images' GPS fields.
func gpsNode(bo binary.ByteOrder) *node { return &node{fields: gpsFields(bo), gps: true} }

// parseOK parses file, which must give exactly the ranges want.
func parseOK(t *testing.T, file []byte, want []Range) {
	t.Helper()
	got, err := GPSRanges(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("the test file has no GPS values")
	}
	checkRanges(t, got, want, int64(len(file)))
	redacted(t, file, got)
}

func TestGPSRangesBigTIFF(t *testing.T) {
	for name, bo := range orders() {
		t.Run(name, func(t *testing.T) {
			exif := &node{fields: []field{asciiField(0x9003, "2024:05:01 12:34:56")}}
			root := &node{fields: ifd0Fields(), ptrs: []ptr{{tag: tagExif, to: []*node{exif}}, {tag: tagGPS, to: []*node{gpsNode(bo)}}}}
			file, want := encodeTIFF(bo, true, root)
			parseOK(t, append(file, make([]byte, 100)...), want)

			// In a JPEG's Exif segment too.
			jpg := buildJPEG(t, exifSegment(file))
			parseOK(t, jpg, shift(want, 2+4+6))

			// Values of 8-byte types inline, as only BigTIFF allows.
			small := &node{fields: []field{rationalField(bo, 0x0006, 71, 2), rationalField(bo, 0x0002, 51, 1)}, gps: true}
			file, want = encodeTIFF(bo, true, &node{fields: ifd0Fields(), ptrs: []ptr{{tag: tagGPS, typ: 18, to: []*node{small}}}})
			parseOK(t, file, want)
		})
	}
}

// TestGPSRangesPointers finds GPS IFDs wherever an IFD may point to one:
// IFD0, an IFD chained after it, the Exif IFD, the Interop IFD and
// SubIFDs (one offset inline, or an array).
func TestGPSRangesPointers(t *testing.T) {
	le := binary.LittleEndian
	gpsIn := func(n *node) *node {
		n.ptrs = append(n.ptrs, ptr{tag: tagGPS, to: []*node{gpsNode(le)}})
		return n
	}
	plain := func() *node { return &node{fields: ifd0Fields()} }
	tests := map[string]*node{
		"ifd0":     gpsIn(plain()),
		"ifd1":     {fields: ifd0Fields(), next: gpsIn(plain())},
		"exif ifd": {fields: ifd0Fields(), ptrs: []ptr{{tag: tagExif, to: []*node{gpsIn(plain())}}}},
		"interop": {fields: ifd0Fields(), ptrs: []ptr{{tag: tagExif, to: []*node{
			{ptrs: []ptr{{tag: tagInterop, to: []*node{gpsIn(plain())}}}}}}}},
		"subifd":         {fields: ifd0Fields(), ptrs: []ptr{{tag: tagSubIFDs, to: []*node{gpsIn(plain())}}}},
		"subifd array":   {fields: ifd0Fields(), ptrs: []ptr{{tag: tagSubIFDs, typ: 13, to: []*node{plain(), gpsIn(plain())}}}},
		"subifd chain":   {fields: ifd0Fields(), ptrs: []ptr{{tag: tagSubIFDs, to: []*node{{next: gpsIn(plain())}}}}},
		"all of them":    gpsIn(&node{fields: ifd0Fields(), ptrs: []ptr{{tag: tagExif, to: []*node{gpsIn(plain())}}, {tag: tagSubIFDs, to: []*node{gpsIn(plain())}}}}),
		"two gps in one": gpsIn(gpsIn(plain())),
	}
	for name, root := range tests {
		t.Run(name, func(t *testing.T) {
			for _, big := range []bool{false, true} {
				file, want := encodeTIFF(le, big, root)
				parseOK(t, file, want)
				parseOK(t, buildJPEG(t, exifSegment(file)), shift(want, 2+4+6))
			}
		})
	}
}

// TestGPSRangesExifHeader reads every APP1 segment that starts with
// "Exif\0" as Exif, whatever its sixth byte, and every such segment of a
// file.
func TestGPSRangesExifHeader(t *testing.T) {
	le := binary.LittleEndian
	tiff, want := buildTIFF(le, ifd0Fields(), gpsFields(le))
	for _, b := range []byte{0, 0xFF, 'x'} {
		seg := segment(0xE1, slices.Concat([]byte("Exif\x00"), []byte{b}, tiff))
		parseOK(t, buildJPEG(t, seg), shift(want, 2+4+6))
	}
	// Three Exif segments, other APP1 segments between them.
	xmp := segment(0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>"))
	one := exifSegment(tiff)
	file := buildJPEG(t, one, xmp, one, segment(0xE1, []byte("Exif")), one)
	var all []Range
	for _, at := range []int{2, 2 + len(one) + len(xmp), 2 + 2*len(one) + len(xmp) + 8} {
		all = append(all, shift(want, int64(at+4+6))...)
	}
	parseOK(t, file, all)
}

// TestGPSRangesRawFormats reads the TIFF-like raw formats.
func TestGPSRangesRawFormats(t *testing.T) {
	le := binary.LittleEndian
	tiff, want := buildTIFF(le, ifd0Fields(), gpsFields(le))
	for _, magic := range []string{"RO", "RS", "U\x00"} {
		parseOK(t, patch(tiff, 2, magic[0], magic[1]), want)
	}
}

// TestGPSRangesBounds checks that files over each bound are refused, with
// an error wrapping errBound, at a cost within the bounds.
func TestGPSRangesBounds(t *testing.T) {
	le := binary.LittleEndian
	com := segment(0xFE, []byte("comment"))
	var manyGPS []ptr
	for range maxGPSIFDs + 1 {
		manyGPS = append(manyGPS, ptr{tag: tagGPS, to: []*node{gpsNode(le)}})
	}
	chain := &node{fields: ifd0Fields()}
	for range maxIFDs {
		chain = &node{fields: ifd0Fields(), next: chain}
	}
	bigIFD := &node{}
	for i := range maxEntries + 1 {
		bigIFD.fields = append(bigIFD.fields, byteField(uint16(0x9000+i), 1))
	}
	bigGPS := &node{gps: true}
	for i := range maxGPSEntries/2 + 1 {
		bigGPS.fields = append(bigGPS.fields, byteField(uint16(i), 1))
	}
	twoBigGPS := &node{ptrs: []ptr{{tag: tagGPS, to: []*node{bigGPS}}, {tag: tagExif, to: []*node{{ptrs: []ptr{{tag: tagGPS, to: []*node{{fields: bigGPS.fields, gps: true}}}}}}}}}
	enc := func(n *node) []byte { b, _ := encodeTIFF(le, false, n); return b }
	noGPS, _ := buildTIFF(le, ifd0Fields(), nil)
	// The files, and what their errors name.
	tests := map[string]struct {
		file []byte
		want string
	}{
		"segments":      {buildJPEG(t, slices.Repeat([][]byte{com}, maxSteps)...), "markers before the start of scan"},
		"fill bytes":    {buildJPEG(t, bytes.Repeat([]byte{0xFF}, maxSteps)), "markers before the start of scan"},
		"exif segments": {buildJPEG(t, slices.Repeat([][]byte{exifSegment(noGPS)}, maxExif+1)...), "Exif segments"},
		"gps ifds":      {enc(&node{ptrs: manyGPS}), "GPS IFDs"},
		"ifd chain":     {enc(chain), "IFDs"},
		"ifd entries":   {enc(bigIFD), "entries, more than"},
		"gps entries":   {enc(twoBigGPS), "GPS entries"},
		"bytes":         {buildJPEG(t, slices.Repeat([][]byte{exifSegment(enc(&node{fields: bigIFD.fields[:maxEntries]}))}, 6)...), "bytes"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := &countingReader{r: bytes.NewReader(tc.file)}
			got, err := GPSRanges(c, int64(len(tc.file)))
			if !errors.Is(err, errBound) || got != nil {
				t.Fatalf("GPSRanges = %+v, %v; want an error over a bound", got, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q is not about %s", err, tc.want)
			}
			if c.calls > maxReads || c.n > maxParseBytes {
				t.Errorf("%d reads of %d bytes, over the bounds", c.calls, c.n)
			}
		})
	}
}

// hostileJPEG returns a JPEG of about 20 MB: hundreds of Exif segments,
// each an IFD0 of a thousand GPS pointers to overlapping GPS IFDs of
// thousands of entries.
func hostileJPEG(testing.TB) []byte { return exiftest.HostileJPEG(20 << 20) }

func TestGPSRangesHostile(t *testing.T) {
	file := hostileJPEG(t)
	c := &countingReader{r: bytes.NewReader(file)}
	got, err := GPSRanges(c, int64(len(file)))
	if !errors.Is(err, errFormat) || got != nil {
		t.Fatalf("GPSRanges = %d ranges, %v; want a format error", len(got), err)
	}
	if c.calls > maxReads || c.n > maxParseBytes {
		t.Errorf("%d reads of %d bytes, over the bounds", c.calls, c.n)
	}
	t.Logf("%d MB file refused after %d reads of %d bytes: %v", len(file)>>20, c.calls, c.n, err)
}
