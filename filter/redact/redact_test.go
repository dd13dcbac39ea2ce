package redact

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/filter"
)

// memFile is a filter.File in memory. Its version changes with every
// change made by set or WriteAt; poke changes bytes without changing it,
// as stores through a shared mapping do. hook, if set, runs at the start
// of every ReadAt.
type memFile struct {
	mu    sync.Mutex
	ino   uint64
	data  []byte
	ctime int64
	calls int
	hook  func(f *memFile, p []byte, off int64)
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if f.hook != nil {
		f.hook(f, p, off)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return bytes.NewReader(f.data).ReadAt(p, off)
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if end := int(off) + len(p); end > len(f.data) {
		f.data = append(f.data, make([]byte, end-len(f.data))...)
	}
	copy(f.data[off:], p)
	f.ctime++
	return len(p), nil
}

func (f *memFile) Size() (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(len(f.data)), nil
}

func (f *memFile) Version() (filter.Version, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return filter.Version{Dev: 1, Ino: f.ino, Size: int64(len(f.data)), Mtime: f.ctime, Ctime: f.ctime}, nil
}

// set replaces the file's contents.
func (f *memFile) set(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data = slices.Clone(b)
	f.ctime++
}

// poke replaces the file's contents, of the same size, keeping the version.
func (f *memFile) poke(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(b) != len(f.data) {
		panic("poke changes the size")
	}
	copy(f.data, b)
}

// openStream opens a stream of a new filter on f.
func openStream(t testing.TB, rd *Filter, f filter.File) filter.Stream {
	t.Helper()
	s, err := rd.Open(&filter.Request{Op: filter.OpOpen, Path: "a.jpg"}, f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newFilter(t testing.TB) *Filter {
	t.Helper()
	rd, err := New(filter.Patterns{filter.MustPattern("**")}, []string{"gps"})
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

// readAll reads n bytes of s from 0 in one read.
func readAll(s filter.Stream, n int) ([]byte, error) {
	p := make([]byte, n)
	m, err := s.ReadAt(p, 0)
	if err == io.EOF {
		err = nil
	}
	return p[:m], err
}

// twoLayouts returns two JPEGs of the same size whose GPS values sit at
// different offsets, and their redacted forms.
func twoLayouts(t testing.TB) (a, b, ra, rb []byte) {
	pad := segment(0xFE, make([]byte, 64))
	a, wantA := gpsJPEG(t, binary.LittleEndian, pad)
	tiff, wantB := buildTIFF(binary.LittleEndian, ifd0Fields(), gpsFields(binary.LittleEndian))
	b = buildJPEG(t, exifSegment(tiff), pad)
	if len(a) != len(b) {
		t.Fatal("layouts differ in size")
	}
	return a, b, redacted(t, a, wantA), redacted(t, b, shift(wantB, 2+4+6))
}

// TestStreamFailClosed changes the file under one open: each read sees the
// file as it is then, redacted, empty, or failing with EIO.
func TestStreamFailClosed(t *testing.T) {
	img, want := gpsJPEG(t, binary.BigEndian)
	red := redacted(t, img, want)
	sixth := patch(img, 2+4+5, 1) // "Exif\0\x01"
	f := &memFile{}
	s := openStream(t, newFilter(t), f)
	steps := []struct {
		name string
		data []byte
		want []byte // nil: EIO
	}{
		{"empty", nil, []byte{}},
		{"image", img, red},
		{"text", []byte("hello\n"), nil},
		{"soi broken", patch(img, 0, 0), nil},
		{"soi restored", img, red},
		{"exif header's sixth byte changed", sixth, redacted(t, sixth, want)},
		{"truncated before sos", img[:len(img)/4], nil},
		{"truncated to nothing", nil, []byte{}},
		{"image again", img, red},
	}
	for _, st := range steps {
		f.set(st.data)
		got, err := readAll(s, len(img))
		if st.want == nil {
			if !errors.Is(err, syscall.EIO) || len(got) != 0 {
				t.Errorf("%s: read %d bytes, %v; want EIO", st.name, len(got), err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, st.want) {
			t.Errorf("%s: read %d bytes, %v; want the file redacted", st.name, len(got), err)
		}
	}
}

// TestStreamVersionChange changes the file between the parse and the read
// of the data, by a write or by stores that keep the version: the read is
// tried again, and never shows one layout's bytes with the other's ranges.
func TestStreamVersionChange(t *testing.T) {
	a, b, ra, rb := twoLayouts(t)
	for _, tc := range []struct {
		name   string
		change func(f *memFile, to []byte)
	}{
		{"write", (*memFile).set},
		{"store through a mapping", (*memFile).poke},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &memFile{data: slices.Clone(a)}
			s := openStream(t, newFilter(t), f)
			// The data read is the one of the whole file: flip the
			// layout just before it, once.
			flips := 1
			f.hook = func(f *memFile, p []byte, off int64) {
				if len(p) == len(a) && flips > 0 {
					flips--
					tc.change(f, b)
				}
			}
			got, err := readAll(s, len(a))
			if err != nil || !bytes.Equal(got, rb) {
				t.Errorf("read after a change to b: %v, equal to b redacted: %v (to a redacted: %v)", err, bytes.Equal(got, rb), bytes.Equal(got, ra))
			}
			// A file that changes at every read fails.
			flips = maxAttempts
			f.hook = func(f *memFile, p []byte, off int64) {
				if len(p) == len(a) && flips > 0 {
					flips--
					if bytes.Equal(f.data, a) {
						tc.change(f, b)
					} else {
						tc.change(f, a)
					}
				}
			}
			if got, err := readAll(s, len(a)); !errors.Is(err, syscall.EIO) {
				t.Errorf("read of a file changing at every attempt: %d bytes, %v; want EIO", len(got), err)
			}
		})
	}
}

// TestStreamChangeDuringParse changes the file while it is parsed: that
// parse is not kept.
func TestStreamChangeDuringParse(t *testing.T) {
	a, b, _, rb := twoLayouts(t)
	for _, change := range []func(f *memFile, to []byte){(*memFile).set, (*memFile).poke} {
		f := &memFile{data: slices.Clone(a)}
		rd := newFilter(t)
		s := openStream(t, rd, f)
		reads := 0
		f.hook = func(f *memFile, p []byte, off int64) {
			if reads++; reads == 2 { // the parser's second read
				change(f, b)
			}
		}
		got, err := readAll(s, len(a))
		if err != nil || !bytes.Equal(got, rb) {
			t.Errorf("read: %v, equal to b redacted: %v", err, bytes.Equal(got, rb))
		}
		f.hook = nil
		p0 := rd.Stats().Parses
		if got, err := readAll(s, len(a)); err != nil || !bytes.Equal(got, rb) || rd.Stats().Parses != p0 {
			t.Errorf("second read: %v, equal to b redacted: %v, %d more parses", err, bytes.Equal(got, rb), rd.Stats().Parses-p0)
		}
	}
}

// TestFilterCache checks that parses are shared by the opens of a file,
// that failures are kept too, and that the cache stays bounded.
func TestFilterCache(t *testing.T) {
	img, want := gpsJPEG(t, binary.LittleEndian)
	rd := newFilter(t)
	f := &memFile{ino: 1, data: slices.Clone(img)}
	for range 10 {
		s := openStream(t, rd, f)
		if got, err := readAll(s, len(img)); err != nil || !bytes.Equal(got, redacted(t, img, want)) {
			t.Fatalf("read: %v", err)
		}
		s.Close()
	}
	if st := rd.Stats(); st.Parses != 1 || st.Cached != 1 {
		t.Errorf("stats after 10 opens of one file: %+v, want 1 parse, 1 cached", st)
	}
	// A warm read reads the data and the structure in a few calls.
	s := openStream(t, rd, f)
	f.calls = 0
	readAll(s, len(img))
	if f.calls > 3 {
		t.Errorf("a warm read made %d ReadAt calls", f.calls)
	}

	hostile := &memFile{ino: 2, data: slices.Clone(hostileJPEG(t))}
	for range 10 {
		if _, err := readAll(openStream(t, rd, hostile), 4096); !errors.Is(err, syscall.EIO) {
			t.Fatalf("read of the hostile file: %v, want EIO", err)
		}
	}
	if st := rd.Stats(); st.Parses != 2 {
		t.Errorf("stats after 10 opens of a hostile file: %+v, want 2 parses in all", st)
	}

	f.set(patch(img, len(img)-3, 1)) // a new version
	readAll(s, len(img))
	if st := rd.Stats(); st.Parses != 3 || st.Cached != 2 {
		t.Errorf("stats after a change: %+v, want 3 parses, 2 cached", st)
	}

	for i := range cacheSize + 10 {
		g := &memFile{ino: uint64(100 + i), data: slices.Clone(img)}
		readAll(openStream(t, rd, g), len(img))
	}
	if st := rd.Stats(); st.Cached != cacheSize {
		t.Errorf("stats after reading %d files: %+v, want %d cached", cacheSize+12, st, cacheSize)
	}
}
