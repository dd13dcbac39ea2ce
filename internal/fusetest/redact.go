package fusetest

// Images for the tests of the redact filter through a mount (filter/redact
// and systest).

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/jpeg"
	"slices"
	"testing"

	"github.com/sievefs/sievefs/filter/redact"
)

// GPSJPEG returns a JPEG whose Exif segment has a GPS IFD (latitude,
// longitude, altitude and their references, all non-zero), and the byte
// ranges of the GPS values: what a redacted reader must see as zeros.
func GPSJPEG(t testing.TB) ([]byte, []redact.Range) {
	t.Helper()
	bo := binary.LittleEndian
	type field struct {
		tag, typ uint16
		count    uint32
		data     []byte
	}
	rational := func(v ...uint32) []byte {
		var b []byte
		for _, x := range v {
			b = bo.AppendUint32(b, x)
		}
		return b
	}
	gps := []field{
		{0x0000, 1, 4, []byte{2, 3, 0, 1}},            // GPSVersionID, inline
		{0x0001, 2, 2, []byte("N\x00")},               // GPSLatitudeRef, inline
		{0x0002, 5, 3, rational(51, 1, 30, 1, 26, 1)}, // GPSLatitude
		{0x0003, 2, 2, []byte("W\x00")},               // GPSLongitudeRef, inline
		{0x0004, 5, 3, rational(7, 1, 7, 1, 39, 1)},   // GPSLongitude
		{0x0006, 5, 1, rational(71, 2)},               // GPSAltitude
	}
	make0 := []field{{0x010F, 2, 7, []byte("Google\x00")}} // Make
	// TIFF: header, IFD0 (Make, GPSInfo), GPS IFD, then out-of-line values.
	const ifd0 = 8
	gpsIFD := ifd0 + 2 + 12*(len(make0)+1) + 4
	tiff := make([]byte, gpsIFD+2+12*len(gps)+4)
	copy(tiff, "II")
	bo.PutUint16(tiff[2:], 42)
	bo.PutUint32(tiff[4:], ifd0)
	var ranges []redact.Range
	write := func(at int, fs []field, record bool) {
		bo.PutUint16(tiff[at:], uint16(len(fs)))
		for i, f := range fs {
			e := at + 2 + 12*i
			bo.PutUint16(tiff[e:], f.tag)
			bo.PutUint16(tiff[e+2:], f.typ)
			bo.PutUint32(tiff[e+4:], f.count)
			pos := e + 8
			if len(f.data) > 4 {
				pos = len(tiff)
				bo.PutUint32(tiff[e+8:], uint32(pos))
				tiff = append(tiff, f.data...)
			} else {
				copy(tiff[e+8:], f.data)
			}
			if record {
				ranges = append(ranges, redact.Range{Off: int64(pos), Len: int64(len(f.data))})
			}
		}
	}
	write(ifd0, append(make0, field{0x8825, 4, 1, bo.AppendUint32(nil, uint32(gpsIFD))}), false)
	write(gpsIFD, gps, true)

	out := ExifJPEG(t, tiff)
	for i := range ranges {
		ranges[i].Off += ExifTIFFOffset
	}
	return out, ranges
}

// ExifTIFFOffset is where the TIFF structure given to ExifJPEG starts in
// the file it makes: after SOI, the APP1 marker and length, "Exif\0\0".
const ExifTIFFOffset = 2 + 4 + 6

// ExifJPEG returns a small real JPEG (a 32×32 gray image) whose first
// segment is an APP1 Exif segment holding tiff.
func ExifJPEG(t testing.TB, tiff []byte) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var enc bytes.Buffer
	if err := jpeg.Encode(&enc, img, nil); err != nil {
		t.Fatal(err)
	}
	body := enc.Bytes()
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(2+6+len(tiff)))
	seg = slices.Concat(seg, []byte("Exif\x00\x00"), tiff)
	return slices.Concat(body[:2], seg, body[2:])
}

// Redacted returns data with the ranges zeroed.
func Redacted(data []byte, ranges []redact.Range) []byte {
	out := slices.Clone(data)
	for _, r := range ranges {
		clear(out[r.Off : r.Off+r.Len])
	}
	return out
}
