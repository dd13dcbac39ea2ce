package systest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// requireWatch skips the test when the lower tree's filesystem cannot be
// watched, and fails it when the watch is missing for another reason.
func requireWatch(t *testing.T, m *sievefs.Mount) {
	t.Helper()
	c := m.Status().Cache
	if c.Watch {
		return
	}
	if strings.Contains(c.Reason, "filesystem type") {
		t.Skipf("lower tree not watched here: %s", c.Reason)
	}
	t.Fatalf("lower tree not watched in cache mode watch: %s", c.Reason)
}

// metadataOps are the requests that revalidate names and attributes. Not
// listings: the kernel keeps a cached listing in page cache, which it may
// reclaim at any time under memory pressure.
var metadataOps = []string{"lookup", "getattr", "statx"}

// pinNames keeps the kernel's dentries of paths (and so their names and
// inodes) in memory until the test ends: unused ones may be reclaimed at any
// time under memory pressure, and looked up again. O_PATH opens send the
// daemon nothing.
func pinNames(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		t.Cleanup(func() { unix.Close(fd) })
	}
}

// metadataRequests counts the metadataOps served, by operation.
func metadataRequests(m *sievefs.Mount) map[string]uint64 {
	n := make(map[string]uint64)
	for _, op := range metadataOps {
		n[op] = m.Requests(op)
	}
	return n
}

// newRequests returns the metadataOps served since before, as "op: n"
// words, or "" if none was.
func newRequests(m *sievefs.Mount, before map[string]uint64) string {
	var out []string
	for op, n := range metadataRequests(m) {
		if n > before[op] {
			out = append(out, fmt.Sprintf("%s: %d", op, n-before[op]))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// TestWatch checks cache mode watch on a watched lower tree: the kernel
// keeps names, attributes and listings past the one-second timeout of an
// unwatched tree, yet every change made beside the mount (by another
// process) shows through it at once; the daemon's own changes cost no
// revalidation.
func TestWatch(t *testing.T) {
	v := fusetest.Mount(t, sievefs.Options{Cache: sievefs.CacheWatch})
	requireWatch(t, v.Mount)
	fusetest.LayTree(t, v.Lower, "f", "d/x", "d/z")
	fusetest.WriteFile(t, filepath.Join(v.Lower, "f"), []byte("one"))
	held, err := os.Open(v.Path("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	pinNames(t, v.Path("d"), v.Path("d/x"), v.Path("d/z"))
	// Not a stat of d: after a listing the kernel asks for a directory's
	// attributes again, for its access time, whatever the timeout.
	look := func() {
		for _, p := range []string{"f", "d/x", "d/z"} {
			if _, err := os.Lstat(v.Path(p)); err != nil {
				t.Fatal(err)
			}
		}
		fusetest.ListDir(t, v.Path("d"))
	}
	look()
	before := metadataRequests(v.Mount)
	time.Sleep(1500 * time.Millisecond) // past the timeout of an unwatched tree
	look()
	if got := newRequests(v.Mount, before); got != "" {
		t.Errorf("requests after 1.5 s: %s; want none (the kernel caches for the watch timeout)", got)
	}

	fusetest.Beside(t, "append", filepath.Join(v.Lower, "f"), "two")
	fusetest.Eventually(t, 5*time.Second, "the new size through the path", func() bool {
		fi, err := os.Stat(v.Path("f"))
		return err == nil && fi.Size() == 6
	})
	fusetest.Eventually(t, 5*time.Second, "the new size through a descriptor held open", func() bool {
		fi, err := held.Stat()
		return err == nil && fi.Size() == 6
	})
	if got := string(fusetest.ReadFile(t, v.Path("f"))); got != "onetwo" {
		t.Errorf("f reads %q, want onetwo", got)
	}
	// A directory looked up but never searched: its own attributes.
	if err := os.Mkdir(filepath.Join(v.Lower, "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(v.Path("e")); err != nil {
		t.Fatal(err)
	}
	fusetest.Beside(t, "chmod", filepath.Join(v.Lower, "e"), "700")
	fusetest.Eventually(t, 5*time.Second, "the new mode of a directory never searched", func() bool {
		fi, err := os.Lstat(v.Path("e"))
		return err == nil && fi.Mode().Perm() == 0o700
	})
	fusetest.Beside(t, "chmod", filepath.Join(v.Lower, "f"), "600")
	fusetest.Eventually(t, 5*time.Second, "the new mode", func() bool {
		fi, err := os.Stat(v.Path("f"))
		return err == nil && fi.Mode().Perm() == 0o600
	})
	if _, err := os.Lstat(v.Path("d/absent")); !os.IsNotExist(err) {
		t.Fatalf("d/absent: %v, want ENOENT", err)
	}
	fusetest.Beside(t, "append", filepath.Join(v.Lower, "d", "absent"), "")
	fusetest.Beside(t, "mkdir", filepath.Join(v.Lower, "d", "sub"))
	fusetest.Beside(t, "rename", filepath.Join(v.Lower, "d", "x"), filepath.Join(v.Lower, "d", "y"))
	fusetest.Beside(t, "remove", filepath.Join(v.Lower, "d", "z"))
	want := "absent sub y"
	fusetest.Eventually(t, 5*time.Second, "the listing of d to become "+want, func() bool {
		return strings.Join(fusetest.ListDir(t, v.Path("d")), " ") == want
	})
	for p, exists := range map[string]bool{"d/absent": true, "d/sub": true, "d/y": true, "d/x": false, "d/z": false} {
		fusetest.Eventually(t, 5*time.Second, fmt.Sprintf("%s to exist: %v", p, exists), func() bool {
			_, err := os.Lstat(v.Path(p))
			return (err == nil) == exists
		})
	}

	// A file written through the mount by another process: the watch
	// stops reporting its writes while it is open there, and reports
	// writes beside the mount again once it is closed, even while their
	// writer keeps it open.
	fi, err := os.Stat(v.Path("d/y"))
	if err != nil {
		t.Fatal(err)
	}
	size := fi.Size()
	through := fusetest.StartBeside(t, "append-hold", v.Path("d/y"), "through", "1s")
	time.Sleep(300 * time.Millisecond) // the watch has seen its write
	// Its attributes are still watched while it is written through the mount
	// (after a stat that takes in the write's new size and time).
	if _, err := os.Stat(v.Path("d/y")); err != nil {
		t.Fatal(err)
	}
	fusetest.Beside(t, "chmod", filepath.Join(v.Lower, "d", "y"), "640")
	fusetest.Eventually(t, 600*time.Millisecond, "the new mode of d/y while it is written through the mount", func() bool {
		fi, err := os.Stat(v.Path("d/y"))
		return err == nil && fi.Mode().Perm() == 0o640
	})
	if err := through.Wait(); err != nil {
		t.Fatalf("the writer through the mount: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // the watch has seen its close
	if fi, err := os.Stat(v.Path("d/y")); err != nil || fi.Size() != size+7 {
		t.Fatalf("d/y after a write through the mount: %v %v, want %d bytes", fi, err, size+7)
	}
	holder := fusetest.StartBeside(t, "append-hold", filepath.Join(v.Lower, "d", "y"), "beside", "3s")
	fusetest.Eventually(t, 2500*time.Millisecond, "the size of d/y after a write beside the mount, its writer still there", func() bool {
		fi, err := os.Stat(v.Path("d/y"))
		return err == nil && fi.Size() == size+13
	})
	if err := holder.Wait(); err != nil {
		t.Fatalf("the writer beside the mount: %v", err)
	}

	// Changes through the mount are told to the kernel by the replies:
	// the watch must not make the kernel ask again.
	open := func() int { o := v.Mount.Status().OpenFiles; return o.Passthrough + o.DaemonServed }
	opened := open()
	fusetest.WriteFile(t, v.Path("d/mine"), []byte("x"))
	// The kernel sends RELEASE after close returns; the last writable
	// passthrough open's release drops the attributes (see ptWriters).
	fusetest.Eventually(t, 5*time.Second, "the release of d/mine", func() bool { return open() == opened })
	if err := os.Chmod(v.Path("d/mine"), 0o640); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // what a watch would do, it has done
	pinNames(t, v.Path("d/mine"))
	before = metadataRequests(v.Mount)
	if fi, err := os.Stat(v.Path("d/mine")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("d/mine: %v %v", fi, err)
	}
	if got := newRequests(v.Mount, before); got != "" {
		t.Errorf("stat of a file made and changed through the mount: %s; want no request", got)
	}
}

// TestWatchOnlyInWatchMode checks that the other cache modes do not watch
// and say why.
func TestWatchOnlyInWatchMode(t *testing.T) {
	for _, mode := range []sievefs.CacheMode{sievefs.CacheAuto, sievefs.CacheAlways, sievefs.CacheNever} {
		v := fusetest.Mount(t, sievefs.Options{Cache: mode})
		if c := v.Mount.Status().Cache; c.Watch || c.Reason == "" || c.Mode != mode {
			t.Errorf("cache %s: status %+v, want no watch and a reason", mode, c)
		}
	}
}

// TestWatchAfterReclaim checks that a change made beside the mount shows
// through it even after the kernel reclaimed the lower tree's unused inodes
// (drop_caches) while the mount's kernel still caches their attributes, and
// that the inodes the kernel forgets lose their marks.
func TestWatchAfterReclaim(t *testing.T) {
	v := fusetest.Mount(t, sievefs.Options{Cache: sievefs.CacheWatch})
	requireWatch(t, v.Mount)
	var many []string
	for i := range 200 {
		many = append(many, fmt.Sprintf("many/%d", i))
	}
	fusetest.LayTree(t, v.Lower, append(many, "d/g")...)
	for _, p := range append(many, "d/g") {
		if _, err := os.Lstat(v.Path(p)); err != nil {
			t.Fatal(err)
		}
	}
	pinNames(t, v.Path("d/g"))
	if n := watchMarks(t); n < len(many) {
		t.Fatalf("%d marks after looking up %d files, want at least as many", n, len(many))
	}
	unix.Sync() // a dirty inode is not reclaimed
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	fusetest.Beside(t, "chmod", filepath.Join(v.Lower, "d", "g"), "600")
	fusetest.Beside(t, "append", filepath.Join(v.Lower, "d", "g"), "more")
	fusetest.Eventually(t, 5*time.Second, "the new mode and size of d/g", func() bool {
		fi, err := os.Lstat(v.Path("d/g"))
		return err == nil && fi.Mode().Perm() == 0o600 && fi.Size() == int64(len("d/gmore"))
	})
	// A file forgotten and looked up again keeps its mark: its mark is
	// removed a while after the kernel forgets it, unless it comes back.
	again := v.Path(many[0])
	if _, err := os.Lstat(again); err != nil {
		t.Fatal(err)
	}
	pinNames(t, again)
	fusetest.Eventually(t, 5*time.Second, "the marks of the files the kernel forgot to go", func() bool {
		return watchMarks(t) < len(many)/2
	})
	fusetest.Beside(t, "chmod", filepath.Join(v.Lower, many[0]), "600")
	fusetest.Eventually(t, 5*time.Second, "the new mode of "+many[0]+", forgotten and found again", func() bool {
		fi, err := os.Lstat(again)
		return err == nil && fi.Mode().Perm() == 0o600
	})
}

// watchMarks counts the inode marks of the fanotify groups of this process
// (the daemon's, as the tests mount in process).
func watchMarks(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if l, _ := os.Readlink("/proc/self/fd/" + fd.Name()); l != "anon_inode:[fanotify]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + fd.Name())
		if err != nil {
			continue // closed meanwhile
		}
		n += strings.Count(string(info), "fanotify ino:")
	}
	return n
}
