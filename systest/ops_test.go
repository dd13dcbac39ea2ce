package systest

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestOperations covers operations that posixtest and pjdfstest do not
// reach on Linux: renameat2 flags, O_TMPFILE, SEEK_DATA/SEEK_HOLE,
// copy_file_range, statx birth time and fsync of a directory.
func TestOperations(t *testing.T) {
	for _, mode := range []sievefs.PassthroughMode{sievefs.PassthroughAuto, sievefs.PassthroughOff} {
		t.Run(string(mode), func(t *testing.T) {
			v := fusetest.Mount(t, sievefs.Options{Passthrough: mode})
			testRename2(t, v)
			testTmpfile(t, v)
			testSeekHoles(t, v)
			testCopyFileRange(t, v)
			testStatxAndFsyncDir(t, v)
		})
	}
}

func testRename2(t *testing.T, v *fusetest.View) {
	fusetest.WriteFile(t, v.Path("a"), []byte("A"))
	fusetest.WriteFile(t, v.Path("b"), []byte("B"))
	if err := unix.Renameat2(unix.AT_FDCWD, v.Path("a"), unix.AT_FDCWD, v.Path("b"), unix.RENAME_NOREPLACE); err != unix.EEXIST {
		t.Errorf("RENAME_NOREPLACE onto an existing name: %v, want EEXIST", err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, v.Path("a"), unix.AT_FDCWD, v.Path("b"), unix.RENAME_EXCHANGE); err != nil {
		t.Fatalf("RENAME_EXCHANGE: %v", err)
	}
	if got := string(fusetest.ReadFile(t, v.LowerPath("a"))); got != "B" {
		t.Errorf("after exchange, lower a holds %q, want B", got)
	}
	if got := string(fusetest.ReadFile(t, v.Path("b"))); got != "A" {
		t.Errorf("after exchange, b through the mount holds %q, want A", got)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, v.Path("a"), unix.AT_FDCWD, v.Path("c"), unix.RENAME_NOREPLACE); err != nil {
		t.Errorf("RENAME_NOREPLACE onto a free name: %v", err)
	}
}

func testTmpfile(t *testing.T, v *fusetest.View) {
	fd, err := unix.Open(v.Mnt, unix.O_TMPFILE|unix.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("O_TMPFILE: %v", err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("tmp")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Linkat(fd, "", unix.AT_FDCWD, v.Path("linked"), unix.AT_EMPTY_PATH); err != nil {
		t.Fatalf("linking the O_TMPFILE file in: %v", err)
	}
	if got := string(fusetest.ReadFile(t, v.LowerPath("linked"))); got != "tmp" {
		t.Errorf("linked O_TMPFILE file holds %q on the lower tree, want tmp", got)
	}
}

func testSeekHoles(t *testing.T, v *fusetest.View) {
	f, err := os.Create(v.Path("sparse"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const hole = 1 << 20
	if _, err := f.WriteAt([]byte("end"), hole); err != nil {
		t.Fatal(err)
	}
	data, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_DATA)
	if err != nil {
		t.Fatalf("SEEK_DATA: %v", err)
	}
	if data < hole-4096 || data > hole {
		t.Errorf("SEEK_DATA from 0 = %d, want the block of offset %d", data, hole)
	}
	h, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE)
	if err != nil {
		t.Fatalf("SEEK_HOLE: %v", err)
	}
	if h != 0 {
		t.Errorf("SEEK_HOLE from 0 = %d, want 0", h)
	}
}

func testCopyFileRange(t *testing.T, v *fusetest.View) {
	want := fusetest.RandomBytes(t, 300000)
	fusetest.WriteFile(t, v.Path("src"), want)
	src, err := os.Open(v.Path("src"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(v.Path("dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	var offIn, offOut int64
	for offIn < int64(len(want)) {
		n, err := unix.CopyFileRange(int(src.Fd()), &offIn, int(dst.Fd()), &offOut, len(want)-int(offIn), 0)
		if err != nil {
			t.Fatalf("copy_file_range: %v", err)
		}
		if n == 0 {
			break
		}
	}
	if got := fusetest.ReadFile(t, v.LowerPath("dst")); !bytes.Equal(got, want) {
		t.Errorf("copy_file_range copied %d bytes that differ from the source", len(got))
	}
}

func testStatxAndFsyncDir(t *testing.T, v *fusetest.View) {
	fusetest.WriteFile(t, v.Path("x"), []byte("x"))
	var mnt, low unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, v.Path("x"), 0, unix.STATX_ALL, &mnt); err != nil {
		t.Fatal(err)
	}
	if err := unix.Statx(unix.AT_FDCWD, v.LowerPath("x"), 0, unix.STATX_ALL, &low); err != nil {
		t.Fatal(err)
	}
	if low.Mask&unix.STATX_BTIME != 0 && (mnt.Mask&unix.STATX_BTIME == 0 || mnt.Btime != low.Btime) {
		t.Errorf("birth time through the mount %+v (mask %#x), lower %+v", mnt.Btime, mnt.Mask, low.Btime)
	}
	d, err := os.Open(filepath.Join(v.Mnt))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Errorf("fsync of a directory: %v", err)
	}
}

// TestNoFileHandles checks that the mount gives out no file handles, which
// would turn stale once the kernel forgets the inode (xfstests
// generic/426): name_to_handle_at fails at once with EOPNOTSUPP, while a
// handle for identification only (AT_HANDLE_FID, as fanotify uses) works.
func TestNoFileHandles(t *testing.T) {
	v := fusetest.Mount(t, sievefs.Options{})
	fusetest.WriteFile(t, v.Path("f"), []byte("x"))
	_, _, err := unix.NameToHandleAt(unix.AT_FDCWD, v.Path("f"), 0)
	fusetest.WantErr(t, "name_to_handle_at on the mount", err, syscall.EOPNOTSUPP)
	const atHandleFID = 0x200
	if _, _, err := unix.NameToHandleAt(unix.AT_FDCWD, v.Path("f"), atHandleFID); err != nil {
		t.Errorf("name_to_handle_at with AT_HANDLE_FID: %v", err)
	}
}
