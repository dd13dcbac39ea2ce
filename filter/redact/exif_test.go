package redact

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	stdjpeg "image/jpeg"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/evanoberholster/imagemeta"

	"github.com/sievefs/sievefs/internal/exiftest"
)

// TIFF field types used by the test images.
const (
	typeByte     = 1
	typeASCII    = 2
	typeLong     = 4
	typeRational = 5
)

// field is an IFD entry to write; data is its encoded value.
type field struct {
	tag, typ uint16
	count    uint32
	data     []byte
}

func asciiField(tag uint16, s string) field {
	b := append([]byte(s), 0)
	return field{tag, typeASCII, uint32(len(b)), b}
}

func u32(bo binary.ByteOrder, v uint32) []byte {
	b := make([]byte, 4)
	bo.PutUint32(b, v)
	return b
}

func byteField(tag uint16, b ...byte) field {
	return field{tag, typeByte, uint32(len(b)), b}
}

// rationalField encodes numerator/denominator pairs.
func rationalField(bo binary.ByteOrder, tag uint16, v ...uint32) field {
	var b []byte
	for _, x := range v {
		b = append(b, u32(bo, x)...)
	}
	return field{tag, typeRational, uint32(len(v) / 2), b}
}

// ifd0Fields are the non-GPS tags of the test images.
func ifd0Fields() []field {
	return []field{
		asciiField(0x010F, "Google"),              // Make
		asciiField(0x0110, "Pixel 8"),             // Model
		asciiField(0x0132, "2024:05:01 12:34:56"), // DateTime
	}
}

// gpsFields are the GPS tags of the test images: 51°30'26"N 0°7'39"W, 35.5 m.
func gpsFields(bo binary.ByteOrder) []field {
	return []field{
		byteField(0x0000, 2, 2, 0, 0),                       // GPSVersionID, inline
		asciiField(0x0001, "N"),                             // GPSLatitudeRef, inline
		rationalField(bo, 0x0002, 51, 1, 30, 1, 26, 1),      // GPSLatitude
		asciiField(0x0003, "W"),                             // GPSLongitudeRef, inline
		rationalField(bo, 0x0004, 0, 1, 7, 1, 39, 1),        // GPSLongitude
		byteField(0x0005, 0),                                // GPSAltitudeRef, inline
		rationalField(bo, 0x0006, 71, 2),                    // GPSAltitude
		rationalField(bo, 0x0007, 12, 1, 34, 1, 56, 1),      // GPSTimeStamp
		{tag: 0x001B, typ: 7, count: 0},                     // GPSProcessingMethod, empty
		asciiField(0x001D, "2024:05:01"),                    // GPSDateStamp
		{tag: 0x001E, typ: 3, count: 1, data: []byte{0, 0}}, // GPSDifferential
	}
}

// buildTIFF returns a TIFF structure with IFD0 holding ifd0 and, if gps is
// not nil, a GPSInfo pointer to a GPS IFD holding gps. want is where the GPS
// values went, relative to the start of the structure.
func buildTIFF(bo binary.ByteOrder, ifd0, gps []field) (data []byte, want []Range) {
	const ifd0Off = 8
	gpsOff := ifd0Off + 2 + 12*(len(ifd0)+1) + 4
	if gps != nil {
		ifd0 = append(slices.Clone(ifd0), field{tagGPS, typeLong, 1, u32(bo, uint32(gpsOff))})
	} else {
		gpsOff = ifd0Off + 2 + 12*len(ifd0) + 4
	}
	end := gpsOff
	if gps != nil {
		end += 2 + 12*len(gps) + 4
	}
	buf := make([]byte, end)
	if bo == binary.LittleEndian {
		copy(buf, "II")
	} else {
		copy(buf, "MM")
	}
	bo.PutUint16(buf[2:], 42)
	bo.PutUint32(buf[4:], ifd0Off)
	writeIFD := func(at int, fs []field, record bool) {
		bo.PutUint16(buf[at:], uint16(len(fs)))
		for i, f := range fs {
			e := at + 2 + 12*i
			bo.PutUint16(buf[e:], f.tag)
			bo.PutUint16(buf[e+2:], f.typ)
			bo.PutUint32(buf[e+4:], f.count)
			pos := e + 8
			if len(f.data) > 4 {
				if len(buf)%2 == 1 {
					buf = append(buf, 0)
				}
				pos = len(buf)
				bo.PutUint32(buf[e+8:], uint32(pos))
				buf = append(buf, f.data...)
			} else {
				copy(buf[e+8:], f.data)
			}
			if record && len(f.data) > 0 {
				want = append(want, Range{int64(pos), int64(len(f.data))})
			}
		}
		// The next-IFD offset is left 0.
	}
	writeIFD(ifd0Off, ifd0, false)
	if gps != nil {
		writeIFD(gpsOff, gps, true)
	}
	return buf, want
}

// segment returns a JPEG marker segment.
func segment(marker byte, payload []byte) []byte {
	s := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(s[2:], uint16(2+len(payload)))
	return append(s, payload...)
}

func exifSegment(tiff []byte) []byte { return exiftest.ExifSegment(tiff) }

// buildJPEG returns a small valid JPEG with segs inserted after SOI.
func buildJPEG(_ testing.TB, segs ...[]byte) []byte { return exiftest.JPEG(segs...) }

// gpsJPEG returns a JPEG with an Exif segment with GPS data, preceded by
// the segments pre, and the GPS value ranges.
func gpsJPEG(t testing.TB, bo binary.ByteOrder, pre ...[]byte) ([]byte, []Range) {
	tiff, want := buildTIFF(bo, ifd0Fields(), gpsFields(bo))
	base := int64(2 + 4 + 6)
	for _, s := range pre {
		base += int64(len(s))
	}
	return buildJPEG(t, append(pre, exifSegment(tiff))...), shift(want, base)
}

func shift(rs []Range, by int64) []Range {
	out := make([]Range, len(rs))
	for i, r := range rs {
		out[i] = Range{r.Off + by, r.Len}
	}
	return out
}

// mask returns which of size bytes the ranges cover.
func mask(rs []Range, size int64) []bool {
	m := make([]bool, size)
	for _, r := range rs {
		for i := r.Off; i < r.Off+r.Len; i++ {
			m[i] = true
		}
	}
	return m
}

// checkWellFormed fails unless rs are sorted, disjoint, non-empty and in [0,size).
func checkWellFormed(t testing.TB, rs []Range, size int64) {
	t.Helper()
	prev := int64(-1)
	for _, r := range rs {
		if r.Len <= 0 || r.Off < 0 || r.Off > size-r.Len || r.Off < prev {
			t.Fatalf("bad range %+v in %+v (size %d)", r, rs, size)
		}
		prev = r.Off + r.Len
	}
}

// checkRanges fails unless got covers exactly the bytes of want.
func checkRanges(t testing.TB, got, want []Range, size int64) {
	t.Helper()
	checkWellFormed(t, got, size)
	if !slices.Equal(mask(got, size), mask(want, size)) {
		t.Fatalf("ranges %+v, want the bytes of %+v", got, want)
	}
}

// redacted returns a copy of file with ranges zeroed, after checking that
// only the bytes in ranges changed.
func redacted(t testing.TB, file []byte, ranges []Range) []byte {
	t.Helper()
	out := slices.Clone(file)
	Zero(out, 0, ranges)
	if len(out) != len(file) {
		t.Fatalf("length %d, want %d", len(out), len(file))
	}
	in := mask(ranges, int64(len(file)))
	for i := range out {
		if in[i] && out[i] != 0 {
			t.Fatalf("byte %d in a range is %#x, want 0", i, out[i])
		}
		if !in[i] && out[i] != file[i] {
			t.Fatalf("byte %d outside the ranges changed", i)
		}
	}
	return out
}

func noCoord(f float64) bool { return f == 0 || math.IsNaN(f) }

// checkMeta decodes file with imagemeta and checks its GPS and IFD0 tags.
func checkMeta(t testing.TB, file []byte, wantGPS bool) {
	t.Helper()
	e, err := imagemeta.Decode(bytes.NewReader(file))
	if err != nil {
		t.Fatalf("imagemeta: %v", err)
	}
	if e.Make != "Google" || e.Model != "Pixel 8" {
		t.Errorf("Make, Model = %q, %q; want Google, Pixel 8", e.Make, e.Model)
	}
	if got := e.ModifyDate().Format("2006:01:02 15:04:05"); got != "2024:05:01 12:34:56" {
		t.Errorf("DateTime = %s", got)
	}
	lat, lon, alt := e.GPS.Latitude(), e.GPS.Longitude(), float64(e.GPS.Altitude())
	if wantGPS {
		if math.Abs(lat-51.5072) > 1e-3 || math.Abs(lon+0.1275) > 1e-3 || alt != 35.5 {
			t.Errorf("GPS = %v, %v, %v; want 51.5072, -0.1275, 35.5", lat, lon, alt)
		}
		return
	}
	if !noCoord(lat) || !noCoord(lon) || !noCoord(alt) || !e.GPS.Date().IsZero() {
		t.Errorf("GPS after redaction = %v, %v, %v, %v; want none", lat, lon, alt, e.GPS.Date())
	}
}

func orders() map[string]binary.ByteOrder {
	return map[string]binary.ByteOrder{"II": binary.LittleEndian, "MM": binary.BigEndian}
}

func TestGPSRangesJPEG(t *testing.T) {
	for name, bo := range orders() {
		t.Run(name, func(t *testing.T) {
			file, want := gpsJPEG(t, bo)
			got, err := GPSRanges(bytes.NewReader(file), int64(len(file)))
			if err != nil {
				t.Fatal(err)
			}
			checkRanges(t, got, want, int64(len(file)))
			checkMeta(t, file, true)
			out := redacted(t, file, got)
			checkMeta(t, out, false)
			if _, err := stdjpeg.Decode(bytes.NewReader(out)); err != nil {
				t.Errorf("redacted file does not decode: %v", err)
			}
			again, err := GPSRanges(bytes.NewReader(out), int64(len(out)))
			if err != nil || !slices.Equal(again, got) {
				t.Errorf("ranges of the redacted file = %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

func TestGPSRangesJPEGOtherSegments(t *testing.T) {
	jfif := segment(0xE0, []byte("JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"))
	xmp := segment(0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>"))
	file, want := gpsJPEG(t, binary.BigEndian, jfif, xmp)
	got, err := GPSRanges(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	checkRanges(t, got, want, int64(len(file)))
	checkMeta(t, file, true)
	checkMeta(t, redacted(t, file, got), false)

	// A second Exif segment is searched too. (imagemeta misreads such
	// files, so only the ranges are checked.)
	tiff2, want2 := buildTIFF(binary.LittleEndian, ifd0Fields(), gpsFields(binary.LittleEndian))
	at := bytes.Index(file, []byte{0xFF, 0xDB}) // before the first DQT
	file = slices.Concat(file[:at], exifSegment(tiff2), file[at:])
	want = append(want, shift(want2, int64(at+4+6))...)
	got, err = GPSRanges(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	checkRanges(t, got, want, int64(len(file)))
	redacted(t, file, got)
}

// TestGPSRangesJPEGLateExif puts the Exif segment after the quantization
// tables, behind fill bytes: legal, and read by exiftool and Android's
// ExifInterface, though imagemeta stops looking at the first DQT.
func TestGPSRangesJPEGLateExif(t *testing.T) {
	le := binary.LittleEndian
	tiff, want := buildTIFF(le, ifd0Fields(), gpsFields(le))
	file := buildJPEG(t)
	at := bytes.Index(file, []byte{0xFF, 0xC0}) // before SOF0, after DQT
	seg := append([]byte{0xFF, 0xFF}, exifSegment(tiff)...)
	file = slices.Concat(file[:at], seg, file[at:])
	got, err := GPSRanges(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	checkRanges(t, got, shift(want, int64(at+2+4+6)), int64(len(file)))
	out := redacted(t, file, got)
	if _, err := stdjpeg.Decode(bytes.NewReader(out)); err != nil {
		t.Errorf("redacted file does not decode: %v", err)
	}
}

func TestGPSRangesTIFF(t *testing.T) {
	for name, bo := range orders() {
		t.Run(name, func(t *testing.T) {
			file, want := buildTIFF(bo, ifd0Fields(), gpsFields(bo))
			file = append(file, make([]byte, 256)...) // stands in for image data
			got, err := GPSRanges(bytes.NewReader(file), int64(len(file)))
			if err != nil {
				t.Fatal(err)
			}
			checkRanges(t, got, want, int64(len(file)))
			checkMeta(t, file, true)
			checkMeta(t, redacted(t, file, got), false)
		})
	}
}

func TestGPSRangesNone(t *testing.T) {
	le := binary.LittleEndian
	noGPS, _ := buildTIFF(le, ifd0Fields(), nil)
	tests := map[string][]byte{
		"empty":             nil,
		"jpeg without exif": buildJPEG(t),
		"jpeg with jfif":    buildJPEG(t, segment(0xE0, []byte("JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"))),
		"jpeg exif, no gps": buildJPEG(t, exifSegment(noGPS)),
		"tiff without gps":  noGPS,
	}
	for name, file := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := GPSRanges(bytes.NewReader(file), int64(len(file)))
			if err != nil || len(got) != 0 {
				t.Fatalf("GPSRanges = %+v, %v; want none", got, err)
			}
		})
	}
}

// TestGPSRangesRefused checks that files the parser cannot read completely
// are errors (fail closed), also those without any GPS data: the filter
// refuses to show them.
func TestGPSRangesRefused(t *testing.T) {
	tests := map[string]struct {
		file     []byte
		notImage bool
	}{
		"short":               {[]byte{0xFF, 0xD8}, true},
		"one byte":            {[]byte{0}, true},
		"text":                {[]byte("hello, world\n"), true},
		"png":                 {[]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), true},
		"jpeg soi only":       {[]byte{0xFF, 0xD8, 0xFF}, true},
		"tiff with no ifd0":   {[]byte("II*\x00\x00\x00\x00\x00"), false},
		"jpeg soi, eoi":       {[]byte{0xFF, 0xD8, 0xFF, 0xD9}, false},
		"jpeg ending in eoi":  {slices.Concat(buildJPEG(t)[:2], segment(0xE0, []byte("JFIF\x00")), []byte{0xFF, 0xD9}), false},
		"jpeg cut before sos": {buildJPEG(t)[:100], false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := GPSRanges(bytes.NewReader(tc.file), int64(len(tc.file)))
			if err == nil || got != nil || !errors.Is(err, errFormat) {
				t.Fatalf("GPSRanges = %+v, %v; want a format error", got, err)
			}
			if errors.Is(err, errNotImage) != tc.notImage {
				t.Errorf("error %v: not an image %v, want %v", err, !tc.notImage, tc.notImage)
			}
		})
	}
}

// patch returns a copy of b with p written at off.
func patch(b []byte, off int, p ...byte) []byte {
	b = slices.Clone(b)
	copy(b[off:], p)
	return b
}

// TestGPSRangesMalformed checks that malformed structures are errors, never
// a partial answer, and that what readers ignore is ignored.
func TestGPSRangesMalformed(t *testing.T) {
	le := binary.LittleEndian
	tiff, want := buildTIFF(le, ifd0Fields(), gpsFields(le))
	gpsOff := int(le.Uint32(tiff[8+2+12*3+8:])) // the GPSInfo value
	latEntry := gpsOff + 2 + 12*2               // GPSLatitude
	bad := map[string][]byte{
		"gps pointer out of bounds":             patch(tiff, 8+2+12*3+8, 0xF0, 0xFF, 0xFF, 0x7F),
		"gps ifd count too big":                 patch(tiff, gpsOff, 0xFF, 0x03),
		"gps ifd count over the bound":          patch(tiff, gpsOff, 0xFF, 0xFF),
		"ifd0 out of bounds":                    patch(tiff, 4, 0xFF, 0xFF, 0, 0),
		"bad magic":                             patch(tiff, 2, 44, 0),
		"bigtiff magic in a tiff":               patch(tiff, 2, 43, 0),
		"value offset out of bounds":            patch(tiff, latEntry+8, 0xFF, 0xFF, 0xFF, 0xFF),
		"huge count":                            patch(tiff, latEntry+4, 0xFF, 0xFF, 0xFF, 0xFF),
		"ifd0 loop":                             patch(tiff, 8+2+12*4, 8),
		"gps pointer to ifd0":                   patch(tiff, 8+2+12*3+8, 8, 0, 0, 0),
		"gps pointer of type short":             patch(tiff, 8+2+12*3+2, 3, 0),
		"two gps offsets":                       patch(tiff, 8+2+12*3+4, 2),
		"bad next ifd":                          patch(tiff, 8+2+12*4, 0xFF, 0xFF, 0xFF),
		"gps value over the gps ifd":            patch(tiff, latEntry+8, byte(gpsOff), byte(gpsOff>>8), 0, 0),
		"gps value over the header":             patch(tiff, latEntry+8, 0, 0, 0, 0),
		"jpeg without start of scan":            buildJPEG(t)[:40],
		"jpeg segment length 0":                 patch(buildJPEG(t, exifSegment(tiff)), 4, 0, 0),
		"jpeg segment past the end":             slices.Concat(buildJPEG(t)[:2], []byte{0xFF, 0xE1, 0xFF, 0xFF, 'E', 'x'}),
		"jpeg garbage between segments":         slices.Insert(buildJPEG(t), 4, 0),
		"exif segment shorter than tiff header": buildJPEG(t, segment(0xE1, []byte("Exif\x00\x00II"))),
		// The latitude's offset points past the end of the segment, into
		// the JPEG data: no reader should find it there.
		"value outside exif segment": buildJPEG(t, exifSegment(patch(tiff, latEntry+8, byte(len(tiff)+4), byte((len(tiff)+4)>>8)))),
	}
	for name, file := range bad {
		t.Run(name, func(t *testing.T) {
			got, err := GPSRanges(bytes.NewReader(file), int64(len(file)))
			if err == nil || got != nil || !errors.Is(err, errFormat) {
				t.Fatalf("GPSRanges = %+v, %v; want a format error", got, err)
			}
		})
	}

	good := map[string][]byte{
		// Readers do not follow the next IFD of a GPS IFD.
		"gps ifd points to itself as next": patch(tiff, gpsOff+2+12*len(gpsFields(le)), byte(gpsOff), byte(gpsOff>>8)),
		// A null pointer is no IFD.
		"null gps pointer": patch(tiff, 8+2+12*3+8, 0, 0, 0, 0),
	}
	for name, file := range good {
		t.Run(name, func(t *testing.T) {
			got, err := GPSRanges(bytes.NewReader(file), int64(len(file)))
			if err != nil {
				t.Fatal(err)
			}
			if name == "null gps pointer" {
				checkRanges(t, got, nil, int64(len(file)))
				return
			}
			checkRanges(t, got, want, int64(len(file)))
		})
	}

	t.Run("size larger than file", func(t *testing.T) {
		got, err := GPSRanges(bytes.NewReader(tiff[:40]), int64(len(tiff)))
		if err == nil || got != nil {
			t.Fatalf("GPSRanges = %+v, %v; want an error", got, err)
		}
	})
}

// TestGPSRangesTruncated cuts the test files at every length.
func TestGPSRangesTruncated(t *testing.T) {
	le := binary.LittleEndian
	tiff, _ := buildTIFF(le, ifd0Fields(), gpsFields(le))
	jpg, _ := gpsJPEG(t, binary.BigEndian)
	for _, file := range [][]byte{tiff, jpg} {
		for n := range len(file) {
			got, _ := GPSRanges(bytes.NewReader(file[:n]), int64(n))
			checkWellFormed(t, got, int64(n))
		}
	}
}

// countingReader counts the calls and bytes read through it.
type countingReader struct {
	r     io.ReaderAt
	calls int
	n     int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.calls++
	c.n += int64(len(p))
	return c.r.ReadAt(p, off)
}

func TestGPSRangesReadsOnlyMetadata(t *testing.T) {
	le := binary.LittleEndian
	tiff, _ := buildTIFF(le, ifd0Fields(), gpsFields(le))
	jpg, _ := gpsJPEG(t, le)
	big := make([]byte, 1<<20)
	for name, file := range map[string][]byte{
		"tiff": append(tiff, big...),
		"jpeg": slices.Concat(jpg[:len(jpg)-2], big, jpg[len(jpg)-2:]),
	} {
		c := &countingReader{r: bytes.NewReader(file)}
		got, err := GPSRanges(c, int64(len(file)))
		if err != nil || len(got) == 0 {
			t.Fatalf("%s: GPSRanges = %+v, %v", name, got, err)
		}
		if c.n > 16<<10 {
			t.Errorf("%s: read %d bytes", name, c.n)
		}
	}
}

func TestSniff(t *testing.T) {
	tests := map[string]bool{
		"\xFF\xD8\xFF\xE0": true,
		"\xFF\xD8\xFF\xE1": true,
		"II*\x00":          true,
		"MM\x00*":          true,
		"IIRO":             true, // ORF
		"IIU\x00":          true, // RW2
		"II+\x00":          true, // BigTIFF
		"MM\x00+":          true, // BigTIFF
		"MM*\x00":          false,
		"\xFF\xD8\x00\x00": false,
		"\x89PNG":          false,
		"\xFF\xD8\xFF":     false, // too short
		"":                 false,
	}
	for head, want := range tests {
		if got := Sniff([]byte(head)); got != want {
			t.Errorf("Sniff(%q) = %v, want %v", head, got, want)
		}
	}
}

func TestZero(t *testing.T) {
	const off = 100 // p holds file bytes [100, 110)
	tests := []struct {
		name   string
		ranges []Range
		want   string // x: kept, 0: zeroed
	}{
		{"none", nil, "xxxxxxxxxx"},
		{"before", []Range{{90, 10}}, "xxxxxxxxxx"},
		{"after", []Range{{110, 5}}, "xxxxxxxxxx"},
		{"straddles start", []Range{{95, 7}}, "00xxxxxxxx"},
		{"straddles end", []Range{{108, 10}}, "xxxxxxxx00"},
		{"covers all", []Range{{0, 1000}}, "0000000000"},
		{"exact", []Range{{100, 10}}, "0000000000"},
		{"inside", []Range{{103, 2}}, "xxx00xxxxx"},
		{"first byte", []Range{{99, 2}}, "0xxxxxxxxx"},
		{"last byte", []Range{{109, 1}}, "xxxxxxxxx0"},
		{"several", []Range{{90, 11}, {104, 1}, {109, 50}}, "0xxx0xxxx0"},
		{"empty and negative", []Range{{101, 0}, {102, -3}}, "xxxxxxxxxx"},
		{"huge", []Range{{105, math.MaxInt64 - 105}}, "xxxxx00000"},
	}
	for _, tc := range tests {
		p := []byte("xxxxxxxxxx")
		Zero(p, off, tc.ranges)
		if got := string(bytes.ReplaceAll(p, []byte{0}, []byte("0"))); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
	Zero(nil, 0, []Range{{0, 10}}) // must not panic
}

// TestExiftool checks the redacted files with exiftool, if it is installed.
func TestExiftool(t *testing.T) {
	exiftool, err := exec.LookPath("exiftool")
	if err != nil {
		t.Skip("exiftool not installed")
	}
	le := binary.LittleEndian
	jpg, _ := gpsJPEG(t, binary.BigEndian)
	tiff, _ := buildTIFF(le, ifd0Fields(), gpsFields(le))
	late := buildJPEG(t)
	at := bytes.Index(late, []byte{0xFF, 0xC0}) // after DQT
	late = slices.Concat(late[:at], exifSegment(tiff), late[at:])
	files := map[string][]byte{"a.jpg": jpg, "a.tif": tiff, "late.jpg": late,
		"exif-ff.jpg": buildJPEG(t, segment(0xE1, slices.Concat([]byte("Exif\x00\xFF"), tiff)))}
	// GPS IFDs behind other pointers than IFD0's, which exiftool reads too.
	gps := []ptr{{tag: tagGPS, to: []*node{gpsNode(le)}}}
	for name, root := range map[string]*node{
		"exif-ifd": {fields: ifd0Fields(), ptrs: []ptr{{tag: tagExif, to: []*node{{ptrs: gps}}}}},
		"interop":  {fields: ifd0Fields(), ptrs: []ptr{{tag: tagExif, to: []*node{{ptrs: []ptr{{tag: tagInterop, to: []*node{{ptrs: gps}}}}}}}}},
		"subifd":   {fields: ifd0Fields(), ptrs: []ptr{{tag: tagSubIFDs, to: []*node{{ptrs: gps}}}}},
	} {
		b, _ := encodeTIFF(le, false, root)
		files[name+".tif"] = append(b, make([]byte, 64)...)
		files[name+".jpg"] = buildJPEG(t, exifSegment(b))
	}
	for name, file := range files {
		ranges, err := GPSRanges(bytes.NewReader(file), int64(len(file)))
		if err != nil {
			t.Fatal(err)
		}
		read := func(b []byte) (map[string]any, []string) {
			path := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(exiftool, "-j", "-n", "-Make", "-Model", "-GPS:all", path).Output()
			if err != nil {
				t.Fatalf("exiftool: %v", err)
			}
			var res []map[string]any
			if err := json.Unmarshal(out, &res); err != nil || len(res) != 1 {
				t.Fatalf("exiftool output %s: %v", out, err)
			}
			out, err = exec.Command(exiftool, "-validate", "-a", "-s3", "-Warning", path).Output()
			if err != nil {
				t.Fatalf("exiftool -validate: %v", err)
			}
			return res[0], strings.Split(strings.TrimSpace(string(out)), "\n")
		}
		before, warnBefore := read(file)
		after, warnAfter := read(redacted(t, file, ranges))
		// Zeroed values draw warnings (and a new count of them, from
		// -validate); the structure must not.
		valueWarning := regexp.MustCompile(`^\d+ Warnings|(Unknown|Undefined) value for GPS|requires GPSVersionID`)
		for _, w := range warnAfter {
			if !slices.Contains(warnBefore, w) && !valueWarning.MatchString(w) {
				t.Errorf("%s: new exiftool warning after redaction: %s", name, w)
			}
		}
		if before["GPSLatitude"] == nil || before["GPSLongitude"] == nil {
			t.Errorf("%s: exiftool finds no GPS before redaction: %v", name, before)
		}
		for _, tag := range []string{"GPSLatitude", "GPSLongitude", "GPSAltitude"} {
			if v, ok := after[tag].(float64); ok && v != 0 {
				t.Errorf("%s: %s = %v after redaction", name, tag, v)
			}
		}
		for _, tag := range []string{"GPSLatitudeRef", "GPSLongitudeRef", "GPSDateStamp"} {
			if v, ok := after[tag].(string); ok && v != "" {
				t.Errorf("%s: %s = %q after redaction", name, tag, v)
			}
		}
		if after["Make"] != "Google" || after["Model"] != "Pixel 8" {
			t.Errorf("%s: Make, Model = %v, %v after redaction", name, after["Make"], after["Model"])
		}
		t.Logf("%s: exiftool after redaction: %v", name, after)
	}
}
