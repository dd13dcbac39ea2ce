// Package exiftest builds JPEG and TIFF files for the tests of the redact
// filter: the parser's unit tests and the mount tests share them.
package exiftest

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/jpeg"
	"slices"
)

// JPEG returns a small valid JPEG with segs inserted after its SOI marker.
func JPEG(segs ...[]byte) []byte {
	img := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	var enc bytes.Buffer
	if err := jpeg.Encode(&enc, img, nil); err != nil {
		panic(err) // a Gray image into a buffer: cannot fail
	}
	b := enc.Bytes()
	return slices.Concat(b[:2], slices.Concat(segs...), b[2:])
}

// Segment returns a JPEG marker segment: 0xFF, marker, its length and
// payload.
func Segment(marker byte, payload []byte) []byte {
	s := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(s[2:], uint16(2+len(payload)))
	return append(s, payload...)
}

// ExifSegment returns an APP1 Exif segment holding the TIFF structure tiff.
func ExifSegment(tiff []byte) []byte {
	return Segment(0xE1, append([]byte("Exif\x00\x00"), tiff...))
}

// HostileTIFF returns a TIFF structure of about 64 KB crafted to cost a
// parser much: an IFD0 of a thousand GPS pointers to overlapping GPS IFDs
// of a thousand entries each.
func HostileTIFF() []byte {
	le := binary.LittleEndian
	const ptrs = 1000
	tiff := make([]byte, 65000)
	copy(tiff, "II*\x00")
	le.PutUint32(tiff[4:], 8)
	le.PutUint16(tiff[8:], ptrs)
	gpsAt := 8 + 2 + 12*ptrs + 4
	for i := range ptrs {
		e := tiff[10+12*i:]
		le.PutUint16(e, 0x8825) // GPSInfo
		le.PutUint16(e[2:], 4)  // LONG
		le.PutUint32(e[4:], 1)
		le.PutUint32(e[8:], uint32(gpsAt+12*i))
	}
	// Every 12 bytes from gpsAt are a GPS IFD of 1000 entries, whose
	// entries are the next ones, each a rational at gpsAt.
	for at := gpsAt; at+12 <= len(tiff); at += 12 {
		le.PutUint16(tiff[at:], 1000)
		le.PutUint16(tiff[at+2:], 0x0002) // GPSLatitude
		le.PutUint16(tiff[at+4:], 5)      // RATIONAL
		le.PutUint32(tiff[at+6:], 1)
		le.PutUint32(tiff[at+10:], uint32(gpsAt))
	}
	return tiff
}

// HostileJPEG returns a JPEG of about size bytes made of Exif segments
// holding HostileTIFF.
func HostileJPEG(size int) []byte {
	seg := ExifSegment(HostileTIFF())
	return JPEG(slices.Repeat([][]byte{seg}, max(1, size/len(seg)))...)
}
