// Package redact finds the bytes of image files that hold location data,
// so that a filesystem can return them zeroed.
//
// The model is Android MediaProvider's location redaction: the values of
// the EXIF GPS tags are cleared, while the file size, the IFD structure and
// every other byte stay as they are.
//
// The parser fails closed: a file it cannot read completely (not a JPEG or
// TIFF-based image, malformed, truncated before the start of scan, or
// needing more work than its bounds allow) is an error, never a partial
// answer. Its bounds make the cost of a crafted file small and fixed,
// whatever the file's size: at most 1024 ReadAt calls and 64 KiB read in
// all (maxReads, maxParseBytes, and the others below).
package redact

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Range is a byte range [Off, Off+Len) of a file.
type Range struct{ Off, Len int64 }

// TIFF tags of pointers to other IFDs.
const (
	tagSubIFDs = 0x014A
	tagExif    = 0x8769
	tagGPS     = 0x8825
	tagInterop = 0xA005
)

// Bounds of one parse. A file that needs more is refused (an error that
// wraps errBound). Real images stay far below them: camera JPEGs, DNGs and
// raw files take 10 to 20 reads of under 2 KiB, IFDs hold at most a few
// hundred entries, a GPS IFD about 30. maxReads and maxParseBytes bound
// the I/O of any structure the others allow.
const (
	maxSteps      = 512      // JPEG markers (segments and fill bytes) before the start of scan
	maxExif       = 16       // Exif APP1 segments in a JPEG
	maxIFDs       = 64       // IFDs visited: chains, SubIFDs, Exif, Interop and GPS IFDs
	maxEntries    = 1024     // entries of one IFD
	maxGPSIFDs    = 8        // GPS IFDs
	maxGPSEntries = 512      // entries of all GPS IFDs together
	maxReads      = 1024     // ReadAt calls
	maxParseBytes = 64 << 10 // bytes read
)

var (
	// errFormat is wrapped by every error that says the file cannot be
	// redacted as it is (as opposed to an error reading it).
	errFormat = errors.New("not a redactable image")
	// errNotImage: the file does not start like a JPEG or TIFF-based image.
	errNotImage = fmt.Errorf("%w: not a JPEG or TIFF-based image", errFormat)
	// errBound: the file needs more work than the parser's bounds allow.
	errBound = fmt.Errorf("%w: over a parser bound", errFormat)
	// errChanged: two reads of the same bytes differed during one parse.
	errChanged = errors.New("file changed while parsed")
)

// malformed returns an error wrapping errFormat.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errFormat}, args...)...)
}

// overBound returns an error wrapping errBound.
func overBound(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBound}, args...)...)
}

// Sniff reports whether head (the first bytes of a file, at least 4) starts
// like a JPEG or a TIFF-based image.
func Sniff(head []byte) bool {
	_, _, ok := tiffOrder(head)
	return ok || isJPEG(head)
}

// isJPEG reports whether h starts with a JPEG SOI marker and another marker.
func isJPEG(h []byte) bool {
	return len(h) >= 4 && h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF
}

// tiffOrder returns the byte order of the TIFF header at the start of h and
// whether it is a BigTIFF. Besides TIFF's 42 and BigTIFF's 43 it accepts
// the magic numbers of the TIFF-like raw formats ORF ("RO", "RS") and RW2
// (0x55).
func tiffOrder(h []byte) (bo binary.ByteOrder, big, ok bool) {
	if len(h) < 4 {
		return nil, false, false
	}
	switch string(h[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return nil, false, false
	}
	switch bo.Uint16(h[2:4]) {
	case 42, 0x4F52, 0x5352, 0x55:
		return bo, false, true
	case 43:
		return bo, true, true
	}
	return nil, false, false
}

// GPSRanges returns the ranges of r (a file of the given size) that hold
// GPS data: the value bytes of every tag of every EXIF GPS IFD, stored
// inline in an IFD entry's value field or out of line at an offset. The
// ranges are sorted, do not overlap and lie in [0,size).
//
// An empty file has no ranges. A JPEG or TIFF-based image without GPS data
// has none either. Anything else is an error, with no ranges: a file that
// is not such an image, is malformed or truncated, or exceeds the parser's
// bounds.
func GPSRanges(r io.ReaderAt, size int64) ([]Range, error) {
	l, err := parse(r, size)
	if err != nil {
		return nil, err
	}
	return l.ranges, nil
}

// layout is what one parse found in a file.
type layout struct {
	ranges []Range // the GPS values, sorted and disjoint
	// parts are the bytes the parse depended on (markers, headers, IFD
	// counts and entries, pointers), sorted and disjoint; sum is the
	// SHA-256 of their contents, in order. The GPS values are not among
	// them: a file of the same size whose parts hold the same bytes
	// parses the same.
	parts []Range
	sum   [sha256.Size]byte
	// body is where the bytes no parse depends on begin: a JPEG's start
	// of scan, the end of a TIFF-based file (whose values may lie
	// anywhere). Writes from there on cannot change how the file parses.
	body int64
}

// parse parses r, a file of size bytes. When the file cannot be redacted
// (the error wraps errFormat) the layout is returned too, without ranges:
// it holds what that answer relied on. Other errors (reading the file, or
// errChanged) come without a layout.
func parse(r io.ReaderAt, size int64) (*layout, error) {
	p := &parser{r: io.NewSectionReader(r, 0, size), size: size, body: size}
	var err error
	if size > 0 {
		err = p.file()
	}
	if err != nil && !errors.Is(err, errFormat) {
		return nil, fmt.Errorf("redact: %w", err)
	}
	l, lerr := p.layout(err == nil)
	if lerr != nil && !errors.Is(lerr, errFormat) {
		return nil, fmt.Errorf("redact: %w", lerr)
	}
	if err = cmp.Or(err, lerr); err != nil {
		l.ranges = nil
		return l, fmt.Errorf("redact: %w", err)
	}
	return l, nil
}

// end returns the end of r.
func end(r Range) int64 { return r.Off + r.Len }

// parser holds the state of one parse and enforces its bounds.
type parser struct {
	r    io.ReaderAt
	size int64

	reads  []chunk // every read, to check and digest what the parse saw
	relied []Range // what the parse depends on
	ranges []Range // GPS values found

	body                             int64 // see layout.body
	nreads                           int
	nbytes                           int64
	exifs, ifds, gpsIFDs, gpsEntries int
}

// chunk is the data of one read at off.
type chunk struct {
	off int64
	b   []byte
}

// file parses the whole file.
func (p *parser) file() error {
	head, err := p.read(0, min(4, p.size), true)
	if err != nil {
		return err
	}
	if isJPEG(head) {
		return p.jpeg()
	}
	if _, _, ok := tiffOrder(head); ok {
		return p.tiff(0, p.size)
	}
	return errNotImage
}

// read reads the n bytes at off, counting them against the bounds. relied
// says whether the parse depends on them.
func (p *parser) read(off, n int64, relied bool) ([]byte, error) {
	if p.nreads >= maxReads || n > maxParseBytes-p.nbytes {
		return nil, overBound("more than %d reads or %d bytes", maxReads, maxParseBytes)
	}
	p.nreads++
	p.nbytes += n
	b := make([]byte, n)
	if err := readFull(p.r, b, off); err != nil {
		return nil, err
	}
	p.reads = append(p.reads, chunk{off, b})
	if relied {
		p.rely(off, n)
	}
	return b, nil
}

// rely records that the parse depends on the n bytes at off.
func (p *parser) rely(off, n int64) {
	if k := len(p.relied) - 1; k >= 0 && p.relied[k].Off+p.relied[k].Len == off {
		p.relied[k].Len += n
		return
	}
	p.relied = append(p.relied, Range{off, n})
}

// jpeg walks the marker segments of a JPEG up to the start of scan and
// parses every Exif APP1 segment: one whose payload starts with "Exif\0"
// and one more byte (normally another 0), then holds a TIFF structure.
func (p *parser) jpeg() error {
	off := int64(2) // after SOI
	for range maxSteps {
		if p.size-off < 2 {
			return malformed("jpeg: no start of scan")
		}
		h, err := p.read(off, min(10, p.size-off), true)
		if err != nil {
			return fmt.Errorf("jpeg: marker at %d: %w", off, err)
		}
		if h[0] != 0xFF {
			return malformed("jpeg: no marker at %d", off)
		}
		switch m := h[1]; {
		case m == 0xFF: // fill byte
			off++
			continue
		case m == 0xDA: // start of scan
			p.body = off
			return nil
		case m == 0xD9:
			return malformed("jpeg: end of image before start of scan")
		case m == 0x01 || m >= 0xD0 && m <= 0xD8: // markers without a length
			off += 2
			continue
		}
		if len(h) < 4 {
			return malformed("jpeg: truncated segment at %d", off)
		}
		n := int64(binary.BigEndian.Uint16(h[2:4])) // counts its own 2 bytes
		if n < 2 || n > p.size-off-2 {
			return malformed("jpeg: bad segment length %d at %d", n, off)
		}
		if h[1] == 0xE1 && n >= 8 && string(h[4:9]) == "Exif\x00" {
			if p.exifs++; p.exifs > maxExif {
				return overBound("jpeg: more than %d Exif segments", maxExif)
			}
			if err := p.tiff(off+10, n-8); err != nil {
				return fmt.Errorf("jpeg: exif at %d: %w", off, err)
			}
		}
		off += 2 + n
	}
	return overBound("jpeg: more than %d markers before the start of scan", maxSteps)
}

// readFull reads len(p) bytes of r at off; a short read is a truncated
// file (errFormat), other errors are returned as they are.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		return malformed("truncated: %d of %d bytes at %d", n, len(p), off)
	}
	return fmt.Errorf("read %d bytes at %d: %w", len(p), off, err)
}

// layout returns what the parse read: the parts it relied on with their
// digest, and if found is set the GPS ranges. A GPS value that overlaps
// the parts is malformed: zeroing it would change how the file parses.
func (p *parser) layout(found bool) (*layout, error) {
	spans, err := mergeReads(p.reads)
	if err != nil {
		return nil, err
	}
	l := &layout{parts: normalize(p.relied), body: p.body}
	h := sha256.New()
	i := 0
	for _, pt := range l.parts {
		for end(Range{spans[i].off, int64(len(spans[i].b))}) < end(pt) {
			i++
		}
		at := pt.Off - spans[i].off
		h.Write(spans[i].b[at : at+pt.Len])
	}
	h.Sum(l.sum[:0])
	if !found {
		return l, nil
	}
	l.ranges = normalize(p.ranges)
	if rg, ok := overlap(l.ranges, l.parts); ok {
		return l, malformed("gps value at %d+%d overlaps the structure", rg.Off, rg.Len)
	}
	return l, nil
}

// mergeReads sorts the reads of a parse and joins those that overlap or
// touch into spans. Reads of the same byte that saw different values mean
// the file changed during the parse (errChanged).
func mergeReads(reads []chunk) ([]chunk, error) {
	slices.SortFunc(reads, func(a, b chunk) int { return cmp64(a.off, b.off) })
	var spans []chunk
	for _, c := range reads {
		k := len(spans) - 1
		if k < 0 || c.off > spans[k].off+int64(len(spans[k].b)) {
			spans = append(spans, chunk{c.off, slices.Clone(c.b)})
			continue
		}
		s := &spans[k]
		ov := min(s.off+int64(len(s.b))-c.off, int64(len(c.b)))
		if !bytes.Equal(s.b[c.off-s.off:][:ov], c.b[:ov]) {
			return nil, fmt.Errorf("%w: bytes at %d read twice differ", errChanged, c.off)
		}
		s.b = append(s.b, c.b[ov:]...)
	}
	return spans, nil
}

// overlap returns a range of a that overlaps one of b; both are sorted and
// disjoint.
func overlap(a, b []Range) (Range, bool) {
	j := 0
	for _, x := range a {
		for j < len(b) && b[j].Off+b[j].Len <= x.Off {
			j++
		}
		if j < len(b) && b[j].Off < x.Off+x.Len {
			return x, true
		}
	}
	return Range{}, false
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// normalize sorts ranges and merges those that overlap or touch.
func normalize(ranges []Range) []Range {
	slices.SortFunc(ranges, func(a, b Range) int { return cmp64(a.Off, b.Off) })
	var out []Range
	for _, rg := range ranges {
		if k := len(out) - 1; k >= 0 && rg.Off <= out[k].Off+out[k].Len {
			out[k].Len = max(out[k].Len, rg.Off+rg.Len-out[k].Off)
			continue
		}
		out = append(out, rg)
	}
	return out
}

// Zero clears the bytes of p, which holds the file's bytes starting at off,
// that fall in ranges.
func Zero(p []byte, off int64, ranges []Range) {
	end := off + int64(len(p))
	for _, rg := range ranges {
		if rg.Len <= 0 || rg.Off >= end {
			continue
		}
		lo, hi := max(rg.Off, off), end
		if rg.Len < end-rg.Off {
			hi = rg.Off + rg.Len
		}
		if lo < hi {
			clear(p[lo-off : hi-off])
		}
	}
}
