package lower

import (
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func openTree(t testing.TB, maxFDs int) (*Tree, string) {
	t.Helper()
	dir := t.TempDir()
	tr, err := Open(dir, Options{MaxFDs: maxFDs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	if !tr.HandlesSupported() {
		t.Skip("the temp directory's filesystem has no file handles for this process")
	}
	return tr, dir
}

func touch(t testing.TB, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(path), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEvictionBoundsDescriptors checks that the cache keeps at most MaxFDs
// descriptors and that evicted inodes are reopened by handle.
func TestEvictionBoundsDescriptors(t *testing.T) {
	tr, dir := openTree(t, 8)
	var inodes []*Inode
	for i := range 100 {
		name := "f" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		touch(t, filepath.Join(dir, name))
		var st unix.Stat_t
		ino, err := tr.Lookup(tr.Root(), name, &st)
		if err != nil {
			t.Fatal(err)
		}
		inodes = append(inodes, ino)
	}
	if n := tr.OpenFDs(); n > 8 {
		t.Fatalf("%d descriptors held, want at most 8", n)
	}
	for _, ino := range inodes {
		var st unix.Stat_t
		if err := tr.Stat(ino, &st); err != nil {
			t.Fatalf("stat of an evicted inode: %v", err)
		}
		if st.Ino != ino.Key.Ino {
			t.Fatalf("reopened inode %d, want %d", st.Ino, ino.Key.Ino)
		}
	}
	if n := tr.OpenFDs(); n > 8 {
		t.Fatalf("%d descriptors held after reopening, want at most 8", n)
	}
	forgetAll(t, tr, inodes...)
}

// forgetAll forgets one lookup of each inode and checks that the table is
// back to the root alone, holding no descriptor.
func forgetAll(t *testing.T, tr *Tree, inodes ...*Inode) {
	t.Helper()
	for _, ino := range inodes {
		tr.Forget(ino.ID, 1)
	}
	if n := tr.Len(); n != 1 {
		t.Fatalf("table holds %d inodes after forgetting all, want the root only", n)
	}
	if n := tr.OpenFDs(); n != 0 {
		t.Errorf("%d descriptors held after forgetting all", n)
	}
}

// TestReusedInodeNumber checks that a file created after another was deleted
// is not mistaken for it when it gets the same inode number: the file handle
// (with its generation) tells them apart once the old descriptor is evicted.
func TestReusedInodeNumber(t *testing.T) {
	tr, dir := openTree(t, 1)
	for attempt := 0; attempt < 50; attempt++ {
		touch(t, filepath.Join(dir, "old"))
		var st unix.Stat_t
		old, err := tr.Lookup(tr.Root(), "old", &st)
		if err != nil {
			t.Fatal(err)
		}
		// Open old (lookups alone open nothing), then evict its descriptor,
		// which would otherwise keep its number.
		if err := tr.Stat(old, &st); err != nil {
			t.Fatal(err)
		}
		touch(t, filepath.Join(dir, "other"))
		other, err := tr.Lookup(tr.Root(), "other", &st)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Stat(other, &st); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, "old")); err != nil {
			t.Fatal(err)
		}
		// Under the old name, so that only the handle tells them apart.
		touch(t, filepath.Join(dir, "old"))
		fresh, err := tr.Lookup(tr.Root(), "old", &st)
		if err != nil {
			t.Fatal(err)
		}
		reused := fresh.Key == old.Key
		if reused && fresh == old {
			t.Fatal("a new file with a reused inode number was taken for the deleted one")
		}
		for _, ino := range []*Inode{old, other, fresh} {
			tr.Forget(ino.ID, 1)
		}
		os.Remove(filepath.Join(dir, "old"))
		os.Remove(filepath.Join(dir, "other"))
		if reused {
			return
		}
	}
	t.Skip("the filesystem never reused an inode number in 50 tries")
}

// TestNamesStayOneComponent checks that names that could leave the parent are
// refused.
func TestNamesStayOneComponent(t *testing.T) {
	tr, _ := openTree(t, 0)
	for _, name := range []string{"", ".", "..", "a/b", "../x", "a\x00b"} {
		var st unix.Stat_t
		if _, err := tr.Lookup(tr.Root(), name, &st); err == nil {
			t.Errorf("lookup of %q succeeded", name)
		}
		if _, err := tr.Mkdir(tr.Root(), name, 0o755, nil, &st); err == nil {
			t.Errorf("mkdir of %q succeeded", name)
		}
	}
}

// TestDirectoryMovedOutOfTree checks that a directory moved out of the tree
// can no longer be searched or changed through the inode the table holds.
func TestDirectoryMovedOutOfTree(t *testing.T) {
	tr, dir := openTree(t, 0)
	outside := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	d, err := tr.Lookup(tr.Root(), "d", &st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Mkdir(d, "inside", 0o755, nil, &st); err != nil {
		t.Fatalf("mkdir inside the tree: %v", err)
	}
	if err := os.Rename(filepath.Join(dir, "d"), filepath.Join(outside, "d")); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Mkdir(d, "escaped", 0o755, nil, &st); err != unix.ENOENT {
		t.Errorf("mkdir in a directory moved out of the tree: %v, want ENOENT", err)
	}
	if _, err := tr.Lookup(d, "inside", &st); err != unix.ENOENT {
		t.Errorf("lookup in a directory moved out of the tree: %v, want ENOENT", err)
	}
	if _, err := tr.OpenDir(d); err != unix.ENOENT {
		t.Errorf("opendir of a directory moved out of the tree: %v, want ENOENT", err)
	}
	for what, err := range map[string]error{
		"stat":      tr.Stat(d, &st),
		"chmod":     tr.Chmod(d, 0o700),
		"chown":     tr.Chown(d, 1, 1),
		"setxattr":  tr.SetXattr(d, "user.x", []byte("1"), 0),
		"utimensat": tr.Utimens(d, &[2]unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}),
	} {
		if err != unix.ENOENT {
			t.Errorf("%s of a directory moved out of the tree: %v, want ENOENT", what, err)
		}
	}
	if _, err := tr.Acquire(d); err != unix.ENOENT {
		t.Errorf("acquire of a directory moved out of the tree: %v, want ENOENT", err)
	}
	fd, err := unix.Open(filepath.Join(outside, "d"), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if tr.Beneath(d, &File{fd}) {
		t.Error("a directory moved out of the tree counts as beneath the root")
	}
	if !tr.Beneath(tr.Root(), &File{fd}) {
		t.Error("the root does not count as beneath itself")
	}
	if _, err := os.Stat(filepath.Join(outside, "d", "escaped")); !os.IsNotExist(err) {
		t.Errorf("the daemon created a directory outside the tree: %v", err)
	}
}

// TestLookupOpensLazily checks that a lookup holds no descriptor until an
// operation needs one, that the inode is then opened by its name, and that
// a name that now holds another file, or none, is refused.
func TestLookupOpensLazily(t *testing.T) {
	tr, dir := openTree(t, 0)
	for _, n := range []string{"kept", "replaced", "removed"} {
		touch(t, filepath.Join(dir, n))
	}
	var st unix.Stat_t
	inodes := map[string]*Inode{}
	for _, n := range []string{"kept", "replaced", "removed"} {
		ino, err := tr.Lookup(tr.Root(), n, &st)
		if err != nil {
			t.Fatal(err)
		}
		inodes[n] = ino
	}
	if n := tr.OpenFDs(); n != 0 {
		t.Fatalf("%d descriptors held after lookups only, want 0", n)
	}
	again, err := tr.Lookup(tr.Root(), "kept", &st)
	if err != nil || again != inodes["kept"] {
		t.Fatalf("second lookup of the same name: %v, %v; want the same inode", again, err)
	}
	// Replace one name with another file while the first still exists
	// (its number cannot be reused), remove another.
	if err := os.Rename(filepath.Join(dir, "replaced"), filepath.Join(dir, "aside")); err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(dir, "replaced"))
	if err := os.Remove(filepath.Join(dir, "removed")); err != nil {
		t.Fatal(err)
	}
	if err := tr.Stat(inodes["kept"], &st); err != nil || st.Ino != inodes["kept"].Key.Ino {
		t.Errorf("stat of an inode opened on first use: ino %d, %v", st.Ino, err)
	}
	if err := tr.Stat(inodes["replaced"], &st); err != unix.ESTALE {
		t.Errorf("stat of an inode whose name now holds another file: %v, want ESTALE", err)
	}
	if err := tr.Stat(inodes["removed"], &st); err != unix.ENOENT {
		t.Errorf("stat of an inode whose name is gone: %v, want ENOENT", err)
	}
	if n := tr.OpenFDs(); n != 1 {
		t.Errorf("%d descriptors held, want 1 (the inode opened)", n)
	}
	// Found again under another name, the renamed file is a new inode: the
	// old one was known by name only.
	aside, err := tr.Lookup(tr.Root(), "aside", &st)
	if err != nil {
		t.Fatal(err)
	}
	if aside == inodes["replaced"] {
		t.Error("a file found under a new name took the inode known by its old name")
	}
	forgetAll(t, tr, inodes["kept"], inodes["replaced"], inodes["removed"], again, aside)
}

// TestRenameMovesLazyInodes checks that inodes not opened yet follow renames
// made through the tree, the exchanged one too, and directories' children
// with them.
func TestRenameMovesLazyInodes(t *testing.T) {
	tr, dir := openTree(t, 0)
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(dir, "d", "child"))
	touch(t, filepath.Join(dir, "a"))
	touch(t, filepath.Join(dir, "b"))
	var st unix.Stat_t
	lookup := func(parent *Inode, name string) *Inode {
		t.Helper()
		ino, err := tr.Lookup(parent, name, &st)
		if err != nil {
			t.Fatal(err)
		}
		return ino
	}
	d := lookup(tr.Root(), "d")
	child := lookup(d, "child") // opens d, not child
	a, b := lookup(tr.Root(), "a"), lookup(tr.Root(), "b")
	if err := tr.Rename(tr.Root(), "d", tr.Root(), "e", 0); err != nil {
		t.Fatal(err)
	}
	if err := tr.Rename(tr.Root(), "a", tr.Root(), "b", unix.RENAME_EXCHANGE); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ino  *Inode
		what string
	}{{child, "child of a renamed directory"}, {a, "exchanged a"}, {b, "exchanged b"}} {
		if err := tr.Stat(c.ino, &st); err != nil || st.Ino != c.ino.Key.Ino {
			t.Errorf("stat of the %s: ino %d, %v; want ino %d", c.what, st.Ino, err, c.ino.Key.Ino)
		}
	}
	// A lazy directory renamed, then its child opened through it.
	if err := os.Mkdir(filepath.Join(dir, "f"), 0o755); err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(dir, "f", "g"))
	f := lookup(tr.Root(), "f")
	if err := tr.Rename(tr.Root(), "f", tr.Root(), "h", 0); err != nil {
		t.Fatal(err)
	}
	g := lookup(f, "g")
	if err := tr.Stat(g, &st); err != nil || st.Ino != g.Key.Ino {
		t.Errorf("stat of a file in a renamed directory opened lazily: %v", err)
	}
}

// TestDirectoryMovedOutRechecked checks that a directory trusted beneath the
// root for RecheckAfter is refused once that time has passed after it was
// moved out of the tree.
func TestDirectoryMovedOutRechecked(t *testing.T) {
	const recheck = 20 * time.Millisecond
	dir, outside := t.TempDir(), t.TempDir()
	tr, err := Open(dir, Options{RecheckAfter: recheck})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(dir, "d", "inside"))
	var st unix.Stat_t
	d, err := tr.Lookup(tr.Root(), "d", &st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Lookup(d, "inside", &st); err != nil {
		t.Fatalf("lookup in the directory before the move: %v", err)
	}
	if err := os.Rename(filepath.Join(dir, "d"), filepath.Join(outside, "d")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * recheck)
	if _, err := tr.Lookup(d, "inside", &st); err != unix.ENOENT {
		t.Errorf("lookup in a directory moved out of the tree, after RecheckAfter: %v, want ENOENT", err)
	}
}

// TestInodeSize keeps an Inode in the 96-byte allocation class: the kernel
// may cache millions of them, and the next class is 112 bytes.
func TestInodeSize(t *testing.T) {
	if n := unsafe.Sizeof(Inode{}); n > 96 {
		t.Errorf("an Inode takes %d bytes, want at most 96", n)
	}
}
