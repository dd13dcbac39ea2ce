package lower

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkLookupKnown measures a lookup of an inode the table holds with a
// descriptor: one fstatat and a map lookup.
func BenchmarkLookupKnown(b *testing.B) {
	tr, dir := openTree(b, 0)
	touch(b, filepath.Join(dir, "f"))
	var st unix.Stat_t
	b.ReportAllocs()
	var n uint64
	var ino *Inode
	var err error
	for b.Loop() {
		if ino, err = tr.Lookup(tr.Root(), "f", &st); err != nil {
			b.Fatal(err)
		}
		n++
	}
	tr.Forget(ino.ID, n)
}

// BenchmarkLookupNew measures registering an inode the table does not hold:
// one fstatat and two map inserts; nothing is opened.
func BenchmarkLookupNew(b *testing.B) {
	tr, dir := openTree(b, 0)
	touch(b, filepath.Join(dir, "f"))
	var st unix.Stat_t
	b.ReportAllocs()
	for b.Loop() {
		ino, err := tr.Lookup(tr.Root(), "f", &st)
		if err != nil {
			b.Fatal(err)
		}
		tr.Forget(ino.ID, 1)
	}
}

// BenchmarkFirstUse measures a lookup of a new inode followed by its first
// use (a stat), which opens it by name: fstatat, then openat, fstat,
// name_to_handle_at and the stat itself.
func BenchmarkFirstUse(b *testing.B) {
	tr, dir := openTree(b, 0)
	touch(b, filepath.Join(dir, "f"))
	var st unix.Stat_t
	b.ReportAllocs()
	for b.Loop() {
		ino, err := tr.Lookup(tr.Root(), "f", &st)
		if err != nil {
			b.Fatal(err)
		}
		if err := tr.Stat(ino, &st); err != nil {
			b.Fatal(err)
		}
		tr.Forget(ino.ID, 1)
	}
}

// BenchmarkLookupEvicted measures a lookup and a stat when the descriptor
// budget is smaller than the working set, so inodes are reopened by handle
// and others evicted.
func BenchmarkLookupEvicted(b *testing.B) {
	tr, dir := openTree(b, 4)
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, n := range names {
		touch(b, filepath.Join(dir, n))
	}
	var st unix.Stat_t
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		ino, err := tr.Lookup(tr.Root(), names[i%len(names)], &st)
		if err != nil {
			b.Fatal(err)
		}
		if err := tr.Stat(ino, &st); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAcquireRelease measures borrowing a cached descriptor, which every
// operation on an inode does.
func BenchmarkAcquireRelease(b *testing.B) {
	tr, dir := openTree(b, 0)
	touch(b, filepath.Join(dir, "f"))
	var st unix.Stat_t
	ino, err := tr.Lookup(tr.Root(), "f", &st)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := tr.Acquire(ino); err != nil {
				b.Error(err)
				return
			}
			tr.Release(ino)
		}
	})
}
