package lower

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func openTree(t *testing.T, maxFDs int) (*Tree, string) {
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

func touch(t *testing.T, path string) {
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
	for _, ino := range inodes {
		tr.Forget(ino.ID, 1)
	}
	if n := tr.Len(); n != 1 {
		t.Fatalf("table holds %d inodes after forgetting all, want the root only", n)
	}
	if n := tr.OpenFDs(); n != 0 {
		t.Fatalf("%d descriptors held after forgetting all", n)
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
		// Evict old's descriptor, which would otherwise keep its number.
		touch(t, filepath.Join(dir, "other"))
		other, err := tr.Lookup(tr.Root(), "other", &st)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, "old")); err != nil {
			t.Fatal(err)
		}
		touch(t, filepath.Join(dir, "new"))
		fresh, err := tr.Lookup(tr.Root(), "new", &st)
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
		os.Remove(filepath.Join(dir, "new"))
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
	fd, err := tr.Acquire(d)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Release(d)
	if tr.Beneath(d, fd) {
		t.Error("a directory moved out of the tree counts as beneath the root")
	}
	if !tr.Beneath(tr.Root(), fd) {
		t.Error("the root does not count as beneath itself")
	}
	if _, err := os.Stat(filepath.Join(outside, "d", "escaped")); !os.IsNotExist(err) {
		t.Errorf("the daemon created a directory outside the tree: %v", err)
	}
}
