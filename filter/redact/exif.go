// Package redact finds the bytes of image files that hold location data,
// so that a filesystem can return them zeroed.
//
// The model is Android MediaProvider's location redaction: the values of
// the EXIF GPS tags are cleared, while the file size, the IFD structure and
// every other byte stay as they are.
package redact

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Range is a byte range [Off, Off+Len) of a file.
type Range struct{ Off, Len int64 }

const (
	tagGPSInfo  = 0x8825  // IFD0 pointer to the GPS IFD
	maxIFDs     = 16      // IFDs followed in an IFD chain
	maxGPSIFDs  = 4       // GPS IFDs read in one TIFF structure
	maxSegments = 1 << 16 // JPEG segments read before the start of scan
)

// Sniff reports whether head (the first bytes of a file, at least 4) starts like a JPEG or a TIFF-based image.
func Sniff(head []byte) bool {
	if len(head) < 4 {
		return false
	}
	_, ok := tiffOrder(head)
	return ok || isJPEG(head)
}

// isJPEG reports whether h starts with a JPEG SOI marker and another marker.
func isJPEG(h []byte) bool {
	return len(h) >= 3 && h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF
}

// tiffOrder returns the byte order of the TIFF header at the start of h.
// Besides TIFF's 42 it accepts the magic numbers of the TIFF-like raw
// formats ORF ("RO", "RS") and RW2 (0x55). BigTIFF (43) is not supported.
func tiffOrder(h []byte) (binary.ByteOrder, bool) {
	if len(h) < 4 {
		return nil, false
	}
	var bo binary.ByteOrder
	switch string(h[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return nil, false
	}
	switch bo.Uint16(h[2:4]) {
	case 42, 0x4F52, 0x5352, 0x55:
		return bo, true
	}
	return nil, false
}

// GPSRanges returns the ranges of r (a file of the given size) that hold GPS data: the value bytes of every tag of the EXIF GPS IFD (values stored inline in the 4-byte value field of an IFD entry, and values stored out of line at an offset). A file without GPS data gives no ranges and no error. Malformed files give an error or no ranges, never a panic, and never a range outside [0,size).
//
// Files that Sniff does not recognise give no ranges and no error. The
// ranges are sorted and do not overlap. On error, the ranges found before
// the error are returned as well, so that a caller may still clear them.
func GPSRanges(r io.ReaderAt, size int64) ([]Range, error) {
	head := make([]byte, 4)
	if size < int64(len(head)) {
		return nil, nil
	}
	r = io.NewSectionReader(r, 0, size) // no reads past size
	if err := readFull(r, head, 0); err != nil {
		return nil, fmt.Errorf("redact: read header: %w", err)
	}
	var (
		ranges []Range
		err    error
	)
	switch {
	case isJPEG(head):
		ranges, err = jpegRanges(r, size)
	case Sniff(head):
		ranges, err = tiffRanges(r, 0, size)
	default:
		return nil, nil
	}
	ranges = normalize(ranges)
	if err != nil {
		return ranges, fmt.Errorf("redact: %w", err)
	}
	return ranges, nil
}

// jpegRanges walks the marker segments of a JPEG up to the start of scan
// and returns the GPS ranges of every Exif APP1 segment. The TIFF structure
// of such a segment starts after its 4-byte marker and length and the
// 6-byte "Exif\x00\x00" prefix.
func jpegRanges(r io.ReaderAt, size int64) ([]Range, error) {
	var ranges []Range
	p := make([]byte, 10)
	off := int64(2) // after SOI
	for range maxSegments {
		if err := readFull(r, p[:2], off); err != nil {
			return ranges, fmt.Errorf("jpeg: no start of scan: %w", err)
		}
		if p[0] != 0xFF {
			return ranges, fmt.Errorf("jpeg: no marker at %d", off)
		}
		switch m := p[1]; {
		case m == 0xFF: // fill byte
			off++
			continue
		case m == 0xDA || m == 0xD9: // SOS, EOI
			return ranges, nil
		case m == 0x01 || m >= 0xD0 && m <= 0xD8: // markers without a length
			off += 2
			continue
		}
		if err := readFull(r, p[2:4], off+2); err != nil {
			return ranges, fmt.Errorf("jpeg: segment at %d: %w", off, err)
		}
		n := int64(binary.BigEndian.Uint16(p[2:4])) // counts its own 2 bytes
		if n < 2 {
			return ranges, fmt.Errorf("jpeg: bad segment length %d at %d", n, off)
		}
		if p[1] == 0xE1 && n >= 2+6 {
			if err := readFull(r, p[4:10], off+4); err != nil {
				return ranges, fmt.Errorf("jpeg: app1 at %d: %w", off, err)
			}
			if string(p[4:10]) == "Exif\x00\x00" {
				rs, err := tiffRanges(r, off+10, min(n-8, size-off-10))
				ranges = append(ranges, rs...)
				if err != nil {
					return ranges, fmt.Errorf("jpeg: exif at %d: %w", off, err)
				}
			}
		}
		off += 2 + n
	}
	return ranges, fmt.Errorf("jpeg: more than %d segments", maxSegments)
}

// tiffData is a TIFF structure of n bytes at offset base of a file.
// Offsets inside it are relative to base.
type tiffData struct {
	r       io.ReaderAt
	base, n int64
	bo      binary.ByteOrder
}

// entry is a 12-byte IFD entry; pos is the offset of the entry.
type entry struct {
	tag, typ uint16
	count    uint32
	value    []byte // the 4-byte value or offset field
	pos      int64
}

// tiffRanges returns the GPS ranges of the TIFF structure of n bytes at base.
func tiffRanges(r io.ReaderAt, base, n int64) ([]Range, error) {
	t := &tiffData{r: r, base: base, n: n}
	hdr, err := t.read(0, 8)
	if err != nil {
		return nil, fmt.Errorf("tiff header: %w", err)
	}
	bo, ok := tiffOrder(hdr)
	if !ok {
		return nil, errors.New("tiff header: bad byte order or magic")
	}
	t.bo = bo

	var ranges []Range
	seen := map[uint32]bool{} // IFDs read, to break loops
	gpsIFDs := 0
	next := bo.Uint32(hdr[4:])
	for i := 0; next != 0 && !seen[next] && i < maxIFDs; i++ {
		seen[next] = true
		entries, nextOff, err := t.ifd(next)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("ifd0: %w", err)
			}
			break // a broken link after IFD0 ends the chain, as in most readers
		}
		for _, e := range entries {
			if e.tag != tagGPSInfo {
				continue
			}
			off := bo.Uint32(e.value)
			if seen[off] || gpsIFDs == maxGPSIFDs {
				continue
			}
			seen[off] = true
			gpsIFDs++
			gps, _, err := t.ifd(off)
			if err != nil {
				return ranges, fmt.Errorf("gps ifd: %w", err)
			}
			for _, g := range gps {
				if rg, ok := t.valueRange(g); ok {
					ranges = append(ranges, rg)
				}
			}
		}
		next = nextOff
	}
	return ranges, nil
}

// read returns the n bytes at off.
func (t *tiffData) read(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off > t.n-n {
		return nil, fmt.Errorf("offset %d+%d out of bounds", off, n)
	}
	p := make([]byte, n)
	if err := readFull(t.r, p, t.base+off); err != nil {
		return nil, err
	}
	return p, nil
}

// ifd reads the IFD at off and returns its entries and the next IFD offset.
func (t *tiffData) ifd(off uint32) ([]entry, uint32, error) {
	if off == 0 {
		return nil, 0, errors.New("null ifd offset")
	}
	p, err := t.read(int64(off), 2)
	if err != nil {
		return nil, 0, fmt.Errorf("ifd at %d: %w", off, err)
	}
	count := int64(t.bo.Uint16(p))
	p, err = t.read(int64(off)+2, 12*count+4)
	if err != nil {
		return nil, 0, fmt.Errorf("ifd at %d with %d entries: %w", off, count, err)
	}
	entries := make([]entry, count)
	for i := range entries {
		b := p[12*i:]
		entries[i] = entry{
			tag:   t.bo.Uint16(b[0:]),
			typ:   t.bo.Uint16(b[2:]),
			count: t.bo.Uint32(b[4:]),
			value: b[8:12],
			pos:   int64(off) + 2 + 12*int64(i),
		}
	}
	return entries, t.bo.Uint32(p[12*count:]), nil
}

// valueRange returns the file range of the value of e. Values of at most
// 4 bytes sit in the entry's value field; a value of an unknown type is
// taken to be the whole field. Values out of bounds give no range.
func (t *tiffData) valueRange(e entry) (Range, bool) {
	size := typeSize(e.typ)
	n := int64(e.count) * size
	if size == 0 {
		n = 4
	}
	if n == 0 {
		return Range{}, false
	}
	off := e.pos + 8
	if n > 4 {
		off = int64(t.bo.Uint32(e.value))
	}
	if off > t.n-n {
		return Range{}, false
	}
	return Range{Off: t.base + off, Len: n}, true
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
	case 5, 10, 12: // RATIONAL, SRATIONAL, DOUBLE
		return 8
	}
	return 0
}

// normalize sorts ranges and merges those that overlap.
func normalize(ranges []Range) []Range {
	slices.SortFunc(ranges, func(a, b Range) int {
		switch {
		case a.Off < b.Off:
			return -1
		case a.Off > b.Off:
			return 1
		}
		return 0
	})
	var out []Range
	for _, rg := range ranges {
		if k := len(out) - 1; k >= 0 && rg.Off < out[k].Off+out[k].Len {
			out[k].Len = max(out[k].Len, rg.Off+rg.Len-out[k].Off)
			continue
		}
		out = append(out, rg)
	}
	return out
}

// readFull reads len(p) bytes of r at off.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at %d: %w", len(p), off, err)
}

// Zero clears the bytes of p, which holds the file's bytes starting at off, that fall in ranges.
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
