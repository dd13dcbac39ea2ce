package redact

import (
	"crypto/sha256"
	"io"
	"sync"
)

// verify reports whether the file r still holds, in the parts l relied
// on, the bytes it was parsed from. It reads them again, parts at most
// maxGap apart in one read of at most maxParseBytes (no part is longer:
// a parse reads no more in all), so a real image takes a few reads.
func (l *layout) verify(r io.ReaderAt) (bool, error) {
	if len(l.parts) == 0 {
		return true, nil
	}
	bp := pieceBufs.Get().(*[]byte)
	defer pieceBufs.Put(bp)
	h := sha256.New()
	parts := l.parts
	for len(parts) > 0 {
		k := 1
		for k < len(parts) && parts[k].Off-end(parts[k-1]) <= maxGap && end(parts[k])-parts[0].Off <= maxParseBytes {
			k++
		}
		lo := parts[0].Off
		b := (*bp)[:end(parts[k-1])-lo]
		if err := readFull(r, b, lo); err != nil {
			return false, err
		}
		for _, pt := range parts[:k] {
			h.Write(b[pt.Off-lo : end(pt)-lo])
		}
		parts = parts[k:]
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum == l.sum, nil
}

// maxGap is the most bytes between two parts that verify reads with them.
const maxGap = 4 << 10

// pieceBufs hold the buffers of verify.
var pieceBufs = sync.Pool{New: func() any {
	b := make([]byte, maxParseBytes)
	return &b
}}
