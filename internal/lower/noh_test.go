package lower

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNoHandlesReopensByName checks the fallback for lowers without file
// handles (sshfs and most FUSE clients): descriptors stay within the
// budget, evicted inodes are reopened by name and checked to be the same
// file, and one whose name now holds another file is ESTALE.
func TestNoHandlesReopensByName(t *testing.T) {
	dir := t.TempDir()
	tr, err := Open(dir, Options{MaxFDs: 8, NoHandles: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	if tr.HandlesSupported() || tr.FS().Handles {
		t.Fatal("a tree opened with NoHandles says it uses handles")
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	d, err := tr.Lookup(tr.Root(), "d", &st)
	if err != nil {
		t.Fatal(err)
	}
	var inodes []*Inode
	for i := range 40 {
		name := fmt.Sprintf("f%d", i)
		touch(t, filepath.Join(dir, "d", name))
		ino, err := tr.Lookup(d, name, &st)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Stat(ino, &st); err != nil { // opens it
			t.Fatal(err)
		}
		inodes = append(inodes, ino)
	}
	if n := tr.OpenFDs(); n > 8 {
		t.Fatalf("%d descriptors held, want at most 8", n)
	}
	for _, ino := range inodes {
		if err := tr.Stat(ino, &st); err != nil || st.Ino != ino.Key.Ino {
			t.Fatalf("stat of an evicted inode: ino %d, %v; want %d", st.Ino, err, ino.Key.Ino)
		}
	}
	if n := tr.OpenFDs(); n > 8 {
		t.Fatalf("%d descriptors held after reopening, want at most 8", n)
	}
	if r := tr.Reopens(); r.ByPath == 0 || r.StaleHandles != 0 {
		t.Errorf("reopens %+v, want some by name and no stale handle", r)
	}
	// Evict f0, then put another file under its name beside the mount.
	for _, ino := range inodes[1:10] {
		if err := tr.Stat(ino, &st); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(filepath.Join(dir, "d", "f0"), filepath.Join(dir, "aside")); err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(dir, "d", "f0"))
	if err := tr.Stat(inodes[0], &st); err != unix.ESTALE {
		t.Errorf("stat of an inode whose name now holds another file: %v, want ESTALE", err)
	}
	// Renamed through the tree, an evicted inode is found by its new name.
	if err := tr.Rename(d, "f1", tr.Root(), "moved", 0); err != nil {
		t.Fatal(err)
	}
	for _, ino := range inodes[10:20] {
		if err := tr.Stat(ino, &st); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Stat(inodes[1], &st); err != nil || st.Ino != inodes[1].Key.Ino {
		t.Errorf("stat of an evicted inode renamed through the tree: %v", err)
	}
	forgetAll(t, tr, append(inodes, d)...)
}

// TestNoHandlesUnlinkedStaysReachable checks that an inode whose name is
// removed through the tree (an open file unlinked, a file renamed over)
// keeps its descriptor: without a handle, its name was the only way back.
func TestNoHandlesUnlinkedStaysReachable(t *testing.T) {
	dir := t.TempDir()
	tr, err := Open(dir, Options{MaxFDs: 2, NoHandles: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	var st unix.Stat_t
	var inodes []*Inode
	for _, name := range []string{"gone", "over", "src", "a", "b", "c"} {
		touch(t, filepath.Join(dir, name))
		ino, err := tr.Lookup(tr.Root(), name, &st)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Stat(ino, &st); err != nil {
			t.Fatal(err)
		}
		inodes = append(inodes, ino)
	}
	gone, over := inodes[0], inodes[1]
	if err := tr.Unlink(tr.Root(), "gone"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Rename(tr.Root(), "src", tr.Root(), "over", 0); err != nil {
		t.Fatal(err)
	}
	for _, ino := range inodes[3:] { // evict whatever may be evicted
		if err := tr.Stat(ino, &st); err != nil {
			t.Fatal(err)
		}
	}
	for _, ino := range []*Inode{gone, over} {
		if err := tr.Stat(ino, &st); err != nil || st.Ino != ino.Key.Ino || st.Nlink != 0 {
			t.Errorf("stat of an inode whose name was removed: ino %d nlink %d, %v", st.Ino, st.Nlink, err)
		}
	}
	forgetAll(t, tr, inodes...)
}
