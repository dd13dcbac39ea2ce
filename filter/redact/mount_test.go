package redact_test

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/redact"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestFilterRedact checks, with a rule for everyone but root, that uid
// 1000 reads (and maps) a JPEG with its GPS values zeroed and every other
// byte unchanged while root reads the lower file by passthrough, that
// other files keep passthrough, that the redacted caller's writes land in
// the lower file, that an unparsable image fails with EIO, and that the
// redacted caller cannot move files out of the paths.
func TestFilterRedact(t *testing.T) {
	low := fusetest.NewLower(t)
	img, ranges := fusetest.GPSJPEG(t)
	// The builder and the package agree on where the GPS values are.
	if got, err := redact.GPSRanges(bytes.NewReader(img), int64(len(img))); err != nil || len(got) == 0 {
		t.Fatalf("redact.GPSRanges of the test image: %v %v", got, err)
	}
	want := fusetest.Redacted(img, ranges)
	if bytes.Equal(want, img) {
		t.Fatal("the test image has no GPS bytes to redact")
	}
	fusetest.LayTree(t, low, "photos/", "elsewhere/")
	notes := bytes.Repeat([]byte("not an image\n"), 1000)
	// Starts like a JPEG, ends before the start of scan.
	broken := append([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0x40, 0x00}, "Exif\x00\x00II*\x00"...)
	for name, data := range map[string][]byte{"photos/geo.jpg": img, "photos/notes.txt": notes, "elsewhere/geo.jpg": img,
		"photos/broken.jpg": broken, "photos/move.jpg": img} {
		path := filepath.Join(low, name)
		fusetest.WriteFile(t, path, data)
		if err := os.Chown(path, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{"photos", "elsewhere"} {
		if err := os.Chown(filepath.Join(low, dir), 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	rd, err := redact.New(fusetest.Globs("photos/**"), []string{"gps"})
	if err != nil {
		t.Fatal(err)
	}
	chain := fusetest.RulesOf(t, filter.Rule{Name: "redact", Filter: rd, When: filter.Condition{Unless: &filter.Callers{Uids: []uint32{0}}}})
	v := fusetest.MountFiltered(t, low, chain, true)
	p := v.Path
	passthrough := v.Mount.Status().Passthrough.Active

	read1000 := func(name string) []byte {
		t.Helper()
		b, err := fusetest.ReadAs(t, 1000, 1000, p(name))
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
		r0, _ := fusetest.DaemonIO(v)
		if b := fusetest.ReadFile(t, p("photos/geo.jpg")); !bytes.Equal(b, img) {
			t.Errorf("round %d: root read of photos/geo.jpg differs from the lower file", round)
		}
		if r1, _ := fusetest.DaemonIO(v); passthrough && r1 != r0 {
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
		if r2, _ := fusetest.DaemonIO(v); r2 == r0 {
			t.Errorf("round %d: uid 1000's read of a claimed file did not reach the daemon", round)
		}
	}
	var size int64
	fusetest.AsCaller(t, 1000, 1000, func() {
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
	_, err = fusetest.ReadAs(t, 1000, 1000, p("photos/notes.txt"))
	fusetest.WantErr(t, "uid 1000 read photos/notes.txt", err, syscall.EIO)
	if b := fusetest.ReadFile(t, p("photos/notes.txt")); !bytes.Equal(b, notes) {
		t.Error("root read of photos/notes.txt differs from the lower file")
	}

	// Mappings: the redacted caller's mapping sees zeros too.
	if b, name := fusetest.ParseAs(t, fusetest.RunAs(t, 1000, 1000, "mmap", p("photos/geo.jpg"))); name != "ok" || !bytes.Equal(b, want) {
		t.Errorf("uid 1000 mmap of photos/geo.jpg: %s, equal to the redacted bytes: %v", name, bytes.Equal(b, want))
	}
	if b, name := fusetest.ParseAs(t, fusetest.RunAs(t, 0, 0, "mmap", p("photos/geo.jpg"))); name != "ok" || !bytes.Equal(b, img) {
		t.Errorf("root mmap of photos/geo.jpg: %s, equal to the lower file: %v", name, bytes.Equal(b, img))
	}

	// Writes by the redacted caller land in the lower file when they are
	// in the image data; over the metadata (a GPS value here) they fail.
	gpsOff := ranges[2].Off
	dataOff := int64(len(img) - 10)
	var werr, gpsErr error
	fusetest.AsCaller(t, 1000, 1000, func() {
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
	fusetest.WantErr(t, "uid 1000 write over a GPS value", gpsErr, syscall.EPERM)
	copy(img[dataOff:], []byte{0xAB, 0xCD})
	if b := fusetest.ReadFile(t, filepath.Join(low, "photos/geo.jpg")); !bytes.Equal(b, img) {
		t.Error("the lower file does not hold what uid 1000 wrote")
	}
	if b := fusetest.ReadFile(t, p("photos/geo.jpg")); !bytes.Equal(b, img) {
		t.Error("root read after uid 1000's writes differs from the lower file")
	}
	if b := read1000("photos/geo.jpg"); !bytes.Equal(b, fusetest.Redacted(img, ranges)) {
		t.Error("uid 1000 read after its writes: not the new lower file with GPS zeroed")
	}
	// A file that cannot be parsed is not shown unredacted.
	_, err = fusetest.ReadAs(t, 1000, 1000, p("photos/broken.jpg"))
	fusetest.WantErr(t, "uid 1000 read photos/broken.jpg", err, syscall.EIO)
	if b := fusetest.ReadFile(t, p("photos/broken.jpg")); !bytes.Equal(b, broken) {
		t.Error("root read of photos/broken.jpg differs from the lower file")
	}

	// The redacted caller cannot take a file out of the paths; root can.
	var renameErr, linkErr error
	fusetest.AsCaller(t, 1000, 1000, func() {
		renameErr = os.Rename(p("photos/move.jpg"), p("elsewhere/move.jpg"))
		linkErr = os.Link(p("photos/move.jpg"), p("elsewhere/link.jpg"))
	})
	fusetest.WantErr(t, "uid 1000 rename photos/move.jpg out of the paths", renameErr, syscall.EXDEV)
	fusetest.WantErr(t, "uid 1000 link photos/move.jpg out of the paths", linkErr, syscall.EXDEV)
	fusetest.AsCaller(t, 1000, 1000, func() { renameErr = os.Rename(p("photos/move.jpg"), p("photos/moved.jpg")) })
	fusetest.WantErr(t, "uid 1000 rename within the paths", renameErr, 0)
	if err := os.Rename(p("photos/moved.jpg"), p("elsewhere/moved.jpg")); err != nil {
		t.Errorf("root rename out of the paths: %v", err)
	}

	if d := fusetest.RuleDecisions(v, "redact"); d[filter.DecisionData] == 0 {
		t.Errorf("rule redact decisions %v, want data opens", d)
	}
}
