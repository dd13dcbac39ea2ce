package redact

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"testing"
)

// maxParseAlloc is the most a parse may allocate: its reads (at most
// maxParseBytes), their merged copy, and bookkeeping bounded by maxReads
// and the other bounds.
const maxParseAlloc = 1 << 20

// FuzzGPSRanges parses arbitrary files. Its seed corpus, in
// testdata/fuzz/FuzzGPSRanges, holds real-shaped files (the structure of
// camera JPEGs, a CR2 and a GoPro DNG, their values zeroed; built JPEGs,
// TIFFs and BigTIFFs with GPS IFDs behind every kind of pointer) and
// crafted ones. On every input:
//   - no panic, and an error is always a format error (a reader of static
//     bytes cannot fail otherwise);
//   - the cost is within the bounds, counted: at most maxReads ReadAt
//     calls of maxParseBytes bytes, and maxParseAlloc bytes allocated;
//   - the ranges are sorted, disjoint, non-empty and inside the file;
//   - zeroing them changes nothing the parse relied on: the redacted file
//     verifies against the parse, and parses again to the same ranges,
//     which now hold only zeros.
func FuzzGPSRanges(f *testing.F) {
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		jpg, _ := gpsJPEG(f, bo)
		f.Add(jpg)
		tiff, _ := buildTIFF(bo, ifd0Fields(), gpsFields(bo))
		f.Add(tiff)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		size := int64(len(file))
		c := &countingReader{r: bytes.NewReader(file)}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		l, err := parse(c, size)
		runtime.ReadMemStats(&after)
		if c.calls > maxReads || c.n > maxParseBytes {
			t.Fatalf("%d reads of %d bytes, over the bounds", c.calls, c.n)
		}
		if a := after.TotalAlloc - before.TotalAlloc; a > maxParseAlloc {
			t.Fatalf("a parse allocated %d bytes", a)
		}
		if err != nil {
			if !errors.Is(err, errFormat) || l == nil || l.ranges != nil {
				t.Fatalf("parse = %v, %v; want a format error and a layout without ranges", l, err)
			}
			return
		}
		checkWellFormed(t, l.ranges, size)
		if len(l.ranges) > 0 && !Sniff(file) {
			t.Fatalf("ranges %+v for a file Sniff rejects", l.ranges)
		}
		out := slices.Clone(file)
		Zero(out, 0, l.ranges)
		if ok, err := l.verify(bytes.NewReader(out)); !ok || err != nil {
			t.Fatalf("the redacted file does not verify: %v, %v", ok, err)
		}
		again, err := GPSRanges(bytes.NewReader(out), size)
		if err != nil || !slices.Equal(again, l.ranges) {
			t.Fatalf("the redacted file parses to %+v, %v; want %+v", again, err, l.ranges)
		}
		for _, rg := range again {
			if slices.ContainsFunc(out[rg.Off:end(rg)], func(b byte) bool { return b != 0 }) {
				t.Fatalf("GPS value at %+v not zeroed", rg)
			}
		}
	})
}
