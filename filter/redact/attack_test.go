package redact_test

// Attacks on the redact filter by an unprivileged caller it covers (uid
// 1000, through an allow_other mount), with a process beside the mount
// rewriting the lower file: the file is never served raw.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/redact"
	"github.com/sievefs/sievefs/internal/exiftest"
	"github.com/sievefs/sievefs/internal/fusetest"
)

func init() {
	fusetest.Helper("redact-writer", redactWriter)
}

// redactWriter rewrites a lower file in place, from a process beside the
// mount. "put PATH SRC" writes SRC's contents over PATH and truncates it to
// their size. "flip PATH SRC..." writes each SRC over PATH in turn until
// its standard input closes, then the first SRC once more, and prints how
// many writes it made.
func redactWriter(args []string) error {
	if len(args) < 3 {
		return fmt.Errorf("want put|flip PATH SRC..., got %q", args)
	}
	var srcs [][]byte
	for _, name := range args[2:] {
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		srcs = append(srcs, b)
	}
	f, err := os.OpenFile(args[1], os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	switch args[0] {
	case "put":
		if _, err := f.WriteAt(srcs[0], 0); err != nil {
			return err
		}
		return f.Truncate(int64(len(srcs[0])))
	case "flip":
		var stop atomic.Bool
		go func() {
			io.Copy(io.Discard, os.Stdin)
			stop.Store(true)
		}()
		n := 0
		for ; !stop.Load(); n++ {
			if _, err := f.WriteAt(srcs[n%len(srcs)], 0); err != nil {
				return err
			}
		}
		if _, err := f.WriteAt(srcs[0], 0); err != nil {
			return err
		}
		fmt.Println(n + 1)
		return nil
	}
	return fmt.Errorf("unknown op %q", args[0])
}

// putBeside writes data over the lower file path from a process beside
// the mount.
func putBeside(t *testing.T, path string, data []byte) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	fusetest.WriteFile(t, src, data)
	fusetest.RunHelper(t, "redact-writer", "put", path, src)
}

// slotJPEG returns a JPEG of fixed size whose GPS IFD keeps its
// out-of-line values (latitude, longitude, altitude) in one of two slots,
// the other slot zero, and the ranges of its GPS values. With slot 0 and
// slot 1, the GPS values sit at different offsets, and each layout has
// zeros where the other has GPS values.
func slotJPEG(t testing.TB, slot int) ([]byte, []redact.Range) {
	t.Helper()
	le := binary.LittleEndian
	const (
		ifd0     = 8
		gpsIFD   = ifd0 + 2 + 2*12 + 4
		makeAt   = gpsIFD + 2 + 6*12 + 4
		slots    = makeAt + 8
		slotSize = 24 + 24 + 8
	)
	tiff := make([]byte, slots+2*slotSize)
	copy(tiff, "II*\x00")
	le.PutUint32(tiff[4:], ifd0)
	entry := func(at int, tag, typ uint16, count uint32, value []byte) {
		le.PutUint16(tiff[at:], tag)
		le.PutUint16(tiff[at+2:], typ)
		le.PutUint32(tiff[at+4:], count)
		copy(tiff[at+8:], value)
	}
	u32 := func(v ...uint32) (b []byte) {
		for _, x := range v {
			b = le.AppendUint32(b, x)
		}
		return b
	}
	le.PutUint16(tiff[ifd0:], 2)
	entry(ifd0+2, 0x010F, 2, 7, u32(makeAt)) // Make
	entry(ifd0+14, 0x8825, 4, 1, u32(gpsIFD))
	copy(tiff[makeAt:], "Google\x00")
	at := slots + slot*slotSize
	copy(tiff[at:], u32(51, 1, 30, 1, 26, 1, 7, 1, 7, 1, 39, 1, 71, 2))
	le.PutUint16(tiff[gpsIFD:], 6)
	e := gpsIFD + 2
	entry(e, 0x0000, 1, 4, []byte{2, 3, 0, 1}) // GPSVersionID
	entry(e+12, 0x0001, 2, 2, []byte("N\x00")) // GPSLatitudeRef
	entry(e+24, 0x0002, 5, 3, u32(uint32(at))) // GPSLatitude
	entry(e+36, 0x0003, 2, 2, []byte("W\x00")) // GPSLongitudeRef
	entry(e+48, 0x0004, 5, 3, u32(uint32(at+24)))
	entry(e+60, 0x0006, 5, 1, u32(uint32(at+48)))
	rg := func(off, n int) redact.Range {
		return redact.Range{Off: int64(fusetest.ExifTIFFOffset + off), Len: int64(n)}
	}
	ranges := []redact.Range{rg(e+8, 4), rg(e+12+8, 2), rg(at, 24), rg(e+36+8, 2), rg(at+24, 24), rg(at+48, 8)}

	return fusetest.ExifJPEG(t, tiff), ranges
}

// leaks returns the ranges of rs that are not all zero in data.
func leaks(data []byte, rs []redact.Range) []redact.Range {
	var out []redact.Range
	for _, r := range rs {
		if r.Off+r.Len <= int64(len(data)) && slices.ContainsFunc(data[r.Off:r.Off+r.Len], func(b byte) bool { return b != 0 }) {
			out = append(out, r)
		}
	}
	return out
}

// redactView mounts low with a redact rule on photos/** for everyone but
// root, reachable by uid 1000 (allow_other).
func redactView(t *testing.T, low string) (*fusetest.View, *redact.Filter) {
	t.Helper()
	rd, err := redact.New(fusetest.Globs("photos/**"), []string{"gps"})
	if err != nil {
		t.Fatal(err)
	}
	chain := fusetest.RulesOf(t, filter.Rule{Name: "redact", Filter: rd, When: filter.Condition{Unless: &filter.Callers{Uids: []uint32{0}}}})
	return fusetest.MountFiltered(t, low, chain, true), rd
}

// photos lays out low/photos, owned by uid 1000, with files of the given
// contents, owned by uid 1000 too.
func photos(t *testing.T, low string, files map[string][]byte) {
	t.Helper()
	dir := filepath.Join(low, "photos")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		fusetest.WriteFile(t, p, data)
		if err := os.Chown(p, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
}

// readOutcome is what one read as uid 1000 returned.
type readOutcome struct {
	data []byte
	err  error
}

// readAt reads n bytes at 0 of f; io.EOF is no error.
func readAt(f *os.File, n int) readOutcome {
	p := make([]byte, n)
	m, err := f.ReadAt(p, 0)
	if err == io.EOF {
		err = nil
	}
	return readOutcome{p[:m], err}
}

// TestFilterRedactBrokenHeader: the file's header is broken beside the
// mount (by a writer of the lower tree) while uid 1000 holds it open
// through the mount. Every read decides on the file as it is: unparsable
// (SOI broken, truncated before the start of scan) fails with EIO, never
// the GPS bytes; an Exif header whose sixth byte changed is still
// redacted; restored, the file reads redacted again.
func TestFilterRedactBrokenHeader(t *testing.T) {
	low := fusetest.NewLower(t)
	img, ranges := slotJPEG(t, 0)
	photos(t, low, map[string][]byte{"geo.jpg": img})
	v, _ := redactView(t, low)
	path := v.Path("photos/geo.jpg")

	steps := []struct {
		name  string
		write func(f *os.File) error
		eio   bool
	}{
		{"as laid", func(*os.File) error { return nil }, false},
		{"soi broken", func(f *os.File) error { _, err := f.WriteAt([]byte{0}, 0); return err }, true},
		{"soi restored", func(f *os.File) error { _, err := f.WriteAt(img[:1], 0); return err }, false},
		{"exif header's sixth byte changed", func(f *os.File) error { _, err := f.WriteAt([]byte{1}, 2+4+5); return err }, false},
		{"exif header restored", func(f *os.File) error { _, err := f.WriteAt(img[2+4+5:][:1], 2+4+5); return err }, false},
		{"truncated before sos", func(f *os.File) error { return f.Truncate(int64(len(img) / 3)) }, true},
		{"rewritten", func(f *os.File) error { _, err := f.WriteAt(img, 0); return err }, false},
	}
	lowerFile, err := os.OpenFile(v.LowerPath("photos/geo.jpg"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lowerFile.Close()
	var openErr error
	got := make([]readOutcome, len(steps))
	fresh := make([]readOutcome, len(steps))
	lower := make([][]byte, len(steps)) // the lower file at each step
	c := fusetest.StartCaller(t, 1000, 1000)
	var held *os.File
	c.Run(t, func() { held, openErr = os.Open(path) })
	if openErr != nil {
		t.Fatalf("uid 1000 open: %v", openErr)
	}
	defer held.Close()
	for i, st := range steps {
		if err := st.write(lowerFile); err != nil {
			t.Fatalf("%s: write beside the mount: %v", st.name, err)
		}
		c.Run(t, func() {
			got[i] = readAt(held, len(img))
			b, err := os.ReadFile(path)
			fresh[i] = readOutcome{b, err}
		})
		lower[i] = fusetest.ReadFile(t, v.LowerPath("photos/geo.jpg"))
	}
	for i, st := range steps {
		for _, o := range []struct {
			how string
			readOutcome
		}{{"held open", got[i]}, {"new open", fresh[i]}} {
			what := fmt.Sprintf("%s: uid 1000 read through a %s", st.name, o.how)
			if l := leaks(o.data, ranges); len(l) > 0 {
				t.Errorf("%s: GPS bytes at %v", what, l)
			}
			if st.eio {
				fusetest.WantErr(t, what, o.err, syscall.EIO)
				continue
			}
			fusetest.WantErr(t, what, o.err, 0)
			if o.err == nil && !bytes.Equal(o.data, fusetest.Redacted(lower[i], ranges)) {
				t.Errorf("%s: not the lower file with its GPS values zeroed", what)
			}
		}
	}
}

// TestFilterRedactCoveredWriter is the attack of a covered caller who may
// write the file: relabel its GPS IFD (a tag, a byte of the header, a
// pointer) so that the file still parses but its values are not redacted,
// or cut it before the GPS IFD and grow it again. Such writes and
// truncations fail with EPERM and the file keeps reading redacted; writes
// to the image data after the start of scan, appends, and truncation to 0
// go through.
func TestFilterRedactCoveredWriter(t *testing.T) {
	low := fusetest.NewLower(t)
	img, ranges := slotJPEG(t, 0)
	photos(t, low, map[string][]byte{"geo.jpg": img})
	v, _ := redactView(t, low)
	path := v.Path("photos/geo.jpg")
	tag := int64(bytes.Index(img, []byte{0x25, 0x88, 4, 0})) // the GPS pointer's entry
	if tag < 0 {
		t.Fatal("no GPS pointer in the test image")
	}
	var relabel, soi, cut, body, appended, zero error
	var after readOutcome
	var data []byte
	fusetest.AsCaller(t, 1000, 1000, func() {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			relabel = err
			return
		}
		defer f.Close()
		_, relabel = f.WriteAt([]byte{0x26}, tag)
		_, soi = f.WriteAt([]byte{0}, 0)
		cut = f.Truncate(tag)
		after = readAt(f, len(img))
		_, body = f.WriteAt([]byte{0xAB}, int64(len(img)-3))
		_, appended = f.WriteAt([]byte("tail"), int64(len(img)))
		data, _ = os.ReadFile(path)
		zero = f.Truncate(0)
	})
	fusetest.WantErr(t, "uid 1000 relabels the GPS pointer", relabel, syscall.EPERM)
	fusetest.WantErr(t, "uid 1000 breaks the SOI", soi, syscall.EPERM)
	fusetest.WantErr(t, "uid 1000 truncates before the GPS IFD", cut, syscall.EPERM)
	fusetest.WantErr(t, "uid 1000 read after the refused writes", after.err, 0)
	if l := leaks(after.data, ranges); len(l) > 0 || len(after.data) != len(img) {
		t.Errorf("uid 1000 read after the refused writes: %d bytes, GPS bytes at %v", len(after.data), l)
	}
	fusetest.WantErr(t, "uid 1000 writes the image data", body, 0)
	fusetest.WantErr(t, "uid 1000 appends", appended, 0)
	if l := leaks(data, ranges); len(l) > 0 || !bytes.HasSuffix(data, []byte("tail")) {
		t.Errorf("uid 1000 read after its writes: GPS bytes at %v, appended tail there: %v", l, bytes.HasSuffix(data, []byte("tail")))
	}
	fusetest.WantErr(t, "uid 1000 truncates to 0", zero, 0)
}

// TestFilterRedactHeldOpen opens an empty file and a text file as uid
// 1000 and keeps them open; a process beside the mount then writes a GPS
// JPEG into each lower file. Reads through the held opens are redacted.
func TestFilterRedactHeldOpen(t *testing.T) {
	low := fusetest.NewLower(t)
	img, ranges := slotJPEG(t, 1)
	notes := []byte("not an image, not yet\n")
	photos(t, low, map[string][]byte{"empty.jpg": nil, "notes.txt": notes})
	v, _ := redactView(t, low)

	names := []string{"empty.jpg", "notes.txt"}
	c := fusetest.StartCaller(t, 1000, 1000)
	files := map[string]*os.File{}
	before := map[string]readOutcome{}
	var openErr error
	c.Run(t, func() {
		for _, name := range names {
			f, err := os.Open(v.Path("photos/" + name))
			if err != nil {
				openErr = err
				return
			}
			files[name] = f
			before[name] = readAt(f, len(img))
		}
	})
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	if openErr != nil {
		t.Fatalf("uid 1000 open: %v", openErr)
	}
	if o := before["empty.jpg"]; o.err != nil || len(o.data) != 0 {
		t.Errorf("uid 1000 read of the empty file: %d bytes, %v; want none", len(o.data), o.err)
	}
	fusetest.WantErr(t, "uid 1000 read of the text file", before["notes.txt"].err, syscall.EIO)

	for _, name := range names {
		putBeside(t, v.LowerPath("photos/"+name), img)
	}
	after := map[string]readOutcome{}
	c.Run(t, func() {
		for _, name := range names {
			after[name] = readAt(files[name], len(img))
		}
	})
	for _, name := range names {
		o := after[name]
		if l := leaks(o.data, ranges); len(l) > 0 {
			t.Errorf("%s: uid 1000 read through the held open shows GPS bytes at %v", name, l)
		}
		if o.err != nil || !bytes.Equal(o.data, fusetest.Redacted(img, ranges)) {
			t.Errorf("%s: uid 1000 read through the held open: %d bytes, %v; want the image redacted", name, len(o.data), o.err)
		}
	}
}

// TestFilterRedactRewriteRace rewrites the lower file in place from a
// process beside the mount, in a loop: a layout with the GPS values in one
// slot, one with them in the other, and one with a broken header. uid 1000
// reads the file meanwhile, through one open and through new ones: every
// read fails with EIO or has zeros at every GPS offset of both layouts.
func TestFilterRedactRewriteRace(t *testing.T) {
	low := fusetest.NewLower(t)
	a, ra := slotJPEG(t, 0)
	b, rb := slotJPEG(t, 1)
	broken := slices.Clone(b)
	broken[0] = 0
	photos(t, low, map[string][]byte{"race.jpg": a})
	v, _ := redactView(t, low)
	gps := append(slices.Clone(ra), rb...)
	if len(leaks(fusetest.Redacted(a, ra), gps)) > 0 || len(leaks(fusetest.Redacted(b, rb), gps)) > 0 {
		t.Fatal("a layout has non-zero bytes where the other keeps GPS values")
	}

	dir := t.TempDir()
	var srcs []string
	for i, data := range [][]byte{a, b, broken} {
		srcs = append(srcs, filepath.Join(dir, strconv.Itoa(i)))
		fusetest.WriteFile(t, srcs[i], data)
	}
	writer := exec.Command(os.Args[0], append([]string{"flip", v.LowerPath("photos/race.jpg")}, srcs...)...)
	writer.Env = append(os.Environ(), fusetest.HelperEnv+"=redact-writer")
	stdin, err := writer.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, stderr bytes.Buffer
	writer.Stdout, writer.Stderr = &out, &stderr
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		writer.Wait()
	})

	const reads = 1500 // a few seconds with the race detector on 2 CPUs
	var ok, eio, leaked int
	var others []error
	check := func(o readOutcome) {
		switch {
		case o.err == nil && len(leaks(o.data, gps)) == 0:
			ok++
		case o.err == nil:
			leaked++
		case errors.Is(o.err, syscall.EIO):
			eio++
		default:
			others = append(others, o.err)
		}
	}
	path := v.Path("photos/race.jpg")
	fusetest.AsCaller(t, 1000, 1000, func() {
		f, err := os.Open(path)
		if err != nil {
			others = append(others, err)
			return
		}
		defer f.Close()
		for i := range reads {
			if i%10 == 0 {
				b, err := os.ReadFile(path)
				check(readOutcome{b, err})
				continue
			}
			check(readAt(f, len(a)))
		}
	})
	stdin.Close()
	if err := writer.Wait(); err != nil {
		t.Fatalf("writer: %v\n%s", err, stderr.String())
	}
	writes, _ := strconv.Atoi(strings.TrimSpace(out.String()))
	t.Logf("%d rewrites; %d reads redacted, %d EIO, %d leaked GPS bytes", writes, ok, eio, leaked)
	if leaked > 0 {
		t.Errorf("%d of %d reads showed GPS bytes", leaked, reads)
	}
	if len(others) > 0 {
		t.Errorf("%d reads failed otherwise than with EIO, first: %v", len(others), others[0])
	}
	if writes < 2 {
		t.Errorf("the writer made %d writes; no race was tried", writes)
	}
	// The writer ended with layout a.
	got, err := fusetest.ReadAs(t, 1000, 1000, path)
	if err != nil || !bytes.Equal(got, fusetest.Redacted(a, ra)) {
		t.Errorf("uid 1000 read after the writer stopped: %v, equal to a redacted: %v", err, bytes.Equal(got, fusetest.Redacted(a, ra)))
	}
}

// TestFilterRedactHostile reads crafted files (a JPEG of many Exif
// segments with huge, overlapping GPS IFDs; a TIFF whose IFD0 claims
// 65535 entries) as uid 1000: they fail with EIO, and opening them many
// times parses each once and keeps the filter's cache bounded.
func TestFilterRedactHostile(t *testing.T) {
	low := fusetest.NewLower(t)
	tiff := make([]byte, 1<<20)
	copy(tiff, "II*\x00\x08\x00\x00\x00\xFF\xFF")
	photos(t, low, map[string][]byte{"hostile.jpg": exiftest.HostileJPEG(8 << 20), "hostile.tif": tiff})
	v, rd := redactView(t, low)
	before := rd.Stats()
	const opens = 50
	var errs []error
	c := fusetest.StartCaller(t, 1000, 1000)
	c.Run(t, func() {
		for range opens {
			for _, name := range []string{"hostile.jpg", "hostile.tif"} {
				f, err := os.Open(v.Path("photos/" + name))
				if err != nil {
					errs = append(errs, err)
					continue
				}
				// A reader that keeps trying on errors, reading ahead.
				for off := range int64(4) {
					_, err := f.ReadAt(make([]byte, 4096), off<<12)
					errs = append(errs, err)
				}
				f.Close()
			}
		}
	})
	for i, err := range errs {
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("uid 1000 read %d of a hostile file: %v, want EIO", i, err)
		}
	}
	st := rd.Stats()
	if st.Parses-before.Parses > 2 {
		t.Errorf("%d opens of 2 hostile files parsed them %d times, want once each", opens, st.Parses-before.Parses)
	}
	if st.Cached > 2 {
		t.Errorf("the filter holds %d parse results after reading 2 files", st.Cached)
	}
	t.Logf("stats after %d opens of each: %+v", opens, st)
}
