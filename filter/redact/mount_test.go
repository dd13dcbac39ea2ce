package sievefs_test

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/redact"
)

// gpsJPEG returns a JPEG whose Exif segment has a GPS IFD (latitude,
// longitude, altitude and their references, all non-zero), and the byte
// ranges of the GPS values: what a redacted reader must see as zeros.
func gpsJPEG(t testing.TB) ([]byte, []redact.Range) {
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

	img := image.NewGray(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var enc bytes.Buffer
	if err := jpeg.Encode(&enc, img, nil); err != nil {
		t.Fatal(err)
	}
	body := enc.Bytes()
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(2+len(payload)))
	seg = append(seg, payload...)
	out := slices.Concat(body[:2], seg, body[2:])
	base := int64(2 + 4 + 6) // SOI, marker and length, "Exif\0\0"
	for i := range ranges {
		ranges[i].Off += base
	}
	return out, ranges
}

// redacted returns data with the ranges zeroed.
func redacted(data []byte, ranges []redact.Range) []byte {
	out := slices.Clone(data)
	for _, r := range ranges {
		clear(out[r.Off : r.Off+r.Len])
	}
	return out
}

// TestFilterRedact checks, with a rule for everyone but root, that uid
// 1000 reads (and maps) a JPEG with its GPS values zeroed and every other
// byte unchanged while root reads the lower file by passthrough, that
// other files keep passthrough, that the redacted caller's writes land in
// the lower file, that an unparsable image fails with EIO, and that the
// redacted caller cannot move files out of the paths.
func TestFilterRedact(t *testing.T) {
	low := newLower(t)
	img, ranges := gpsJPEG(t)
	// The builder and the package agree on where the GPS values are.
	if got, err := redact.GPSRanges(bytes.NewReader(img), int64(len(img))); err != nil || len(got) == 0 {
		t.Fatalf("redact.GPSRanges of the test image: %v %v", got, err)
	}
	want := redacted(img, ranges)
	if bytes.Equal(want, img) {
		t.Fatal("the test image has no GPS bytes to redact")
	}
	layTree(t, low, "photos/", "elsewhere/")
	notes := bytes.Repeat([]byte("not an image\n"), 1000)
	// Starts like a JPEG, ends before the start of scan.
	broken := append([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0x40, 0x00}, "Exif\x00\x00II*\x00"...)
	for name, data := range map[string][]byte{"photos/geo.jpg": img, "photos/notes.txt": notes, "elsewhere/geo.jpg": img,
		"photos/broken.jpg": broken, "photos/move.jpg": img} {
		path := filepath.Join(low, name)
		writeFile(t, path, data)
		if err := os.Chown(path, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{"photos", "elsewhere"} {
		if err := os.Chown(filepath.Join(low, dir), 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	rd, err := redact.New(globs("photos/**"), []string{"gps"})
	if err != nil {
		t.Fatal(err)
	}
	chain := rulesOf(t, filter.Rule{Name: "redact", Filter: rd, When: filter.Condition{Unless: &filter.Callers{Uids: []uint32{0}}}})
	v := mountFiltered(t, low, chain, true)
	p := v.Path
	passthrough := v.Mount.Status().Passthrough.Active

	read1000 := func(name string) []byte {
		t.Helper()
		b, err := readAs(t, 1000, 1000, p(name))
		if err != nil {
			t.Fatalf("uid 1000 read %s: %v", name, err)
		}
		return b
	}

	// Root holds the file open (passthrough) while uid 1000 reads it.
	held, err := os.Open(p("photos/geo.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for round := range 3 {
		r0, _ := daemonIO(v)
		if b := readFile(t, p("photos/geo.jpg")); !bytes.Equal(b, img) {
			t.Errorf("round %d: root read of photos/geo.jpg differs from the lower file", round)
		}
		if r1, _ := daemonIO(v); passthrough && r1 != r0 {
			t.Errorf("round %d: root's read reached the daemon (%d READs)", round, r1-r0)
		}
		got := read1000("photos/geo.jpg")
		if len(got) != len(img) {
			t.Fatalf("round %d: uid 1000 read %d bytes, want %d", round, len(got), len(img))
		}
		if !bytes.Equal(got, want) {
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("round %d: uid 1000 read: first difference at byte %d: %#x, want %#x (lower %#x)", round, i, got[i], want[i], img[i])
					break
				}
			}
		}
		if r2, _ := daemonIO(v); r2 == r0 {
			t.Errorf("round %d: uid 1000's read of a claimed file did not reach the daemon", round)
		}
	}
	var size int64
	asCaller(t, 1000, 1000, func() {
		if fi, err := os.Stat(p("photos/geo.jpg")); err == nil {
			size = fi.Size()
		}
	})
	if size != int64(len(img)) {
		t.Errorf("uid 1000 stat size %d, want %d", size, len(img))
	}
	if b := read1000("elsewhere/geo.jpg"); !bytes.Equal(b, img) {
		t.Error("uid 1000 read of elsewhere/geo.jpg (outside the paths) is not the lower file")
	}

	// A file under the paths that is not an image the filter can read is
	// not shown to the redacted caller (fail closed); root reads it.
	_, err = readAs(t, 1000, 1000, p("photos/notes.txt"))
	wantErr(t, "uid 1000 read photos/notes.txt", err, syscall.EIO)
	if b := readFile(t, p("photos/notes.txt")); !bytes.Equal(b, notes) {
		t.Error("root read of photos/notes.txt differs from the lower file")
	}

	// Mappings: the redacted caller's mapping sees zeros too.
	if b, name := parseAs(t, runAs(t, 1000, 1000, "mmap", p("photos/geo.jpg"))); name != "ok" || !bytes.Equal(b, want) {
		t.Errorf("uid 1000 mmap of photos/geo.jpg: %s, equal to the redacted bytes: %v", name, bytes.Equal(b, want))
	}
	if b, name := parseAs(t, runAs(t, 0, 0, "mmap", p("photos/geo.jpg"))); name != "ok" || !bytes.Equal(b, img) {
		t.Errorf("root mmap of photos/geo.jpg: %s, equal to the lower file: %v", name, bytes.Equal(b, img))
	}

	// Writes by the redacted caller land in the lower file when they are
	// in the image data; over the metadata (a GPS value here) they fail.
	gpsOff := ranges[2].Off
	dataOff := int64(len(img) - 10)
	var werr, gpsErr error
	asCaller(t, 1000, 1000, func() {
		f, err := os.OpenFile(p("photos/geo.jpg"), os.O_RDWR, 0)
		if err != nil {
			werr = err
			return
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte{0xAB, 0xCD}, dataOff); err != nil {
			werr = err
			return
		}
		_, gpsErr = f.WriteAt([]byte{9, 9, 9, 9}, gpsOff)
	})
	if werr != nil {
		t.Fatalf("uid 1000 write to photos/geo.jpg: %v", werr)
	}
	wantErr(t, "uid 1000 write over a GPS value", gpsErr, syscall.EPERM)
	copy(img[dataOff:], []byte{0xAB, 0xCD})
	if b := readFile(t, filepath.Join(low, "photos/geo.jpg")); !bytes.Equal(b, img) {
		t.Error("the lower file does not hold what uid 1000 wrote")
	}
	if b := readFile(t, p("photos/geo.jpg")); !bytes.Equal(b, img) {
		t.Error("root read after uid 1000's writes differs from the lower file")
	}
	if b := read1000("photos/geo.jpg"); !bytes.Equal(b, redacted(img, ranges)) {
		t.Error("uid 1000 read after its writes: not the new lower file with GPS zeroed")
	}
	// A file that cannot be parsed is not shown unredacted.
	_, err = readAs(t, 1000, 1000, p("photos/broken.jpg"))
	wantErr(t, "uid 1000 read photos/broken.jpg", err, syscall.EIO)
	if b := readFile(t, p("photos/broken.jpg")); !bytes.Equal(b, broken) {
		t.Error("root read of photos/broken.jpg differs from the lower file")
	}

	// The redacted caller cannot take a file out of the paths; root can.
	var renameErr, linkErr error
	asCaller(t, 1000, 1000, func() {
		renameErr = os.Rename(p("photos/move.jpg"), p("elsewhere/move.jpg"))
		linkErr = os.Link(p("photos/move.jpg"), p("elsewhere/link.jpg"))
	})
	wantErr(t, "uid 1000 rename photos/move.jpg out of the paths", renameErr, syscall.EXDEV)
	wantErr(t, "uid 1000 link photos/move.jpg out of the paths", linkErr, syscall.EXDEV)
	asCaller(t, 1000, 1000, func() { renameErr = os.Rename(p("photos/move.jpg"), p("photos/moved.jpg")) })
	wantErr(t, "uid 1000 rename within the paths", renameErr, 0)
	if err := os.Rename(p("photos/moved.jpg"), p("elsewhere/moved.jpg")); err != nil {
		t.Errorf("root rename out of the paths: %v", err)
	}

	if d := ruleDecisions(v, "redact"); d[filter.DecisionData] == 0 {
		t.Errorf("rule redact decisions %v, want data opens", d)
	}
}
