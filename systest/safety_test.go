package systest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/internal/fusetest"
	"github.com/sievefs/sievefs/internal/lower"
)

// The safety tests lay out base/lower (the lower tree) next to base/outside
// (which the daemon must never touch), and mount the view in another
// temporary directory that has no "outside" in it. A symlink in the lower
// tree with a relative target such as ../outside escapes the lower tree only
// when the daemon resolves it; the client's kernel resolves it next to the
// mountpoint, where it names nothing. So anything that changes base/outside
// was done by the daemon.

// safetyTree is the layout of a safety test.
type safetyTree struct {
	base, lower, outside string
	v                    *fusetest.View
}

// newSafetyTree creates base/lower and base/outside, fills both with
// files, and mounts base/lower.
func newSafetyTree(t *testing.T, opts sievefs.Options) *safetyTree {
	t.Helper()
	fusetest.RequireFuse(t)
	base := t.TempDir()
	s := &safetyTree{base: base, lower: filepath.Join(base, "lower"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{s.lower, s.outside, filepath.Join(s.lower, "d"), filepath.Join(s.outside, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The same names inside d and outside, so that an operation on the
	// wrong directory would find its target.
	for _, name := range []string{"canary", "victim", "sub/canary"} {
		fusetest.WriteFile(t, filepath.Join(s.outside, name), []byte("outside "+name))
	}
	for _, name := range []string{"canary", "victim"} {
		fusetest.WriteFile(t, filepath.Join(s.lower, "d", name), []byte("inside "+name))
	}
	if err := os.Mkdir(filepath.Join(s.lower, "d", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.v = fusetest.MountLower(t, s.lower, opts)
	if _, err := os.Stat(filepath.Join(filepath.Dir(s.v.Mnt), "outside")); err == nil {
		t.Fatal("the mountpoint's parent has an outside directory; the test cannot tell who resolved a symlink")
	}
	return s
}

// mutateUnder runs every kind of mutating operation on names under dir
// (a path through the mount) and through the directory descriptor dirfd
// when it is >= 0. Errors are expected and ignored: only where the effects
// land matters.
func mutateUnder(t *testing.T, dir string, dirfd int) {
	t.Helper()
	p := func(name string) string { return filepath.Join(dir, name) }
	os.WriteFile(p("new"), []byte("new"), 0o644)
	os.WriteFile(p("canary"), []byte("overwritten"), 0o644)
	if f, err := os.OpenFile(p("canary"), os.O_WRONLY|os.O_APPEND, 0); err == nil {
		f.WriteString("appended")
		f.Close()
	}
	os.Truncate(p("canary"), 1)
	os.Remove(p("victim"))
	os.Chmod(p("canary"), 0o777)
	os.Chown(p("canary"), 12345, 12345)
	now := time.Now().Add(-time.Hour)
	os.Chtimes(p("canary"), now, now)
	unix.Setxattr(p("canary"), "user.sievefs-test", []byte("x"), 0)
	unix.Removexattr(p("canary"), "user.sievefs-test")
	os.Mkdir(p("newdir"), 0o755)
	os.Symlink("/", p("newlink"))
	os.Link(p("canary"), p("hardlink"))
	os.Rename(p("canary"), p("renamed"))
	os.Remove(p("sub/canary"))
	unix.Mknod(p("fifo"), unix.S_IFIFO|0o644, 0)
	if dirfd < 0 {
		return
	}
	if fd, err := unix.Openat(dirfd, "new-at", unix.O_CREAT|unix.O_WRONLY, 0o644); err == nil {
		unix.Write(fd, []byte("new-at"))
		unix.Close(fd)
	}
	if fd, err := unix.Openat(dirfd, "canary", unix.O_WRONLY|unix.O_TRUNC, 0); err == nil {
		unix.Write(fd, []byte("overwritten-at"))
		unix.Close(fd)
	}
	unix.Unlinkat(dirfd, "victim", 0)
	unix.Fchmodat(dirfd, "canary", 0o777, 0)
	unix.Mkdirat(dirfd, "newdir-at", 0o755)
	unix.Renameat(dirfd, "canary", dirfd, "renamed-at")
}

// TestSafetyRenamedDir renames a directory of the lower tree while the
// client has it cached and holds it open: operations through the old path
// and the held descriptor fail or act on the renamed directory, never
// elsewhere.
func TestSafetyRenamedDir(t *testing.T) {
	for _, cache := range []sievefs.CacheMode{sievefs.CacheNever, sievefs.CacheAuto, sievefs.CacheAlways} {
		t.Run("WithinTree/"+string(cache), func(t *testing.T) {
			s := newSafetyTree(t, sievefs.Options{Cache: cache})
			if _, err := os.Stat(s.v.Path("d/canary")); err != nil {
				t.Fatal(err)
			}
			dirfd, err := unix.Open(s.v.Path("d"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(dirfd)
			if err := os.Rename(filepath.Join(s.lower, "d"), filepath.Join(s.lower, "z")); err != nil {
				t.Fatal(err)
			}
			outside := fusetest.Snapshot(t, s.outside)
			mutateUnder(t, s.v.Path("d"), dirfd)
			fusetest.SameSnapshot(t, "outside", outside, fusetest.Snapshot(t, s.outside))
			ents, _ := os.ReadDir(s.base)
			if len(ents) != 2 {
				t.Errorf("base holds %d entries, want lower and outside only", len(ents))
			}
			if _, err := os.Lstat(filepath.Join(s.lower, "d")); err == nil {
				t.Errorf("the old name d came back in the lower tree")
			}
			// The descriptor follows the directory to its new name.
			if _, err := os.Stat(filepath.Join(s.lower, "z", "new-at")); err != nil {
				t.Errorf("create through the held descriptor did not land in the renamed dir: %v", err)
			}
			if cache == sievefs.CacheNever {
				if _, err := os.Stat(s.v.Path("d")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("stat of the old path with caching off: %v, want ENOENT", err)
				}
			}
		})
	}

	// A directory moved out of the lower tree must not stay reachable by
	// path once the kernel revalidates it.
	for _, cache := range []sievefs.CacheMode{sievefs.CacheNever, sievefs.CacheAuto} {
		t.Run("MovedOut/"+string(cache), func(t *testing.T) {
			s := newSafetyTree(t, sievefs.Options{Cache: cache})
			if _, err := os.Stat(s.v.Path("d/canary")); err != nil {
				t.Fatal(err)
			}
			fusetest.Beside(t, "rename", filepath.Join(s.lower, "d"), filepath.Join(s.outside, "moved"))
			if cache != sievefs.CacheNever {
				// Past the one-second entry timeout.
				time.Sleep(1500 * time.Millisecond)
			}
			outside := fusetest.Snapshot(t, s.outside)
			mutateUnder(t, s.v.Path("d"), -1)
			fusetest.SameSnapshot(t, "outside", outside, fusetest.Snapshot(t, s.outside))
			if _, err := os.Stat(s.v.Path("d")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("stat of the moved-out dir through the mount: %v, want ENOENT", err)
			}
		})
	}
}

// TestSafetySymlinkSwap replaces the lower directory d by a symlink to
// ../outside while the mount is in use: nothing done through the mount may
// change the outside directory, and d appears as a symlink.
func TestSafetySymlinkSwap(t *testing.T) {
	for _, cache := range []sievefs.CacheMode{sievefs.CacheNever, sievefs.CacheAuto, sievefs.CacheAlways} {
		t.Run(string(cache), func(t *testing.T) {
			s := newSafetyTree(t, sievefs.Options{Cache: cache})
			if _, err := os.Stat(s.v.Path("d/canary")); err != nil {
				t.Fatal(err)
			}
			dirfd, err := unix.Open(s.v.Path("d"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(dirfd)
			// Swap atomically: d becomes the symlink, d.old the directory.
			link := filepath.Join(s.lower, "d.old")
			fusetest.Beside(t, "symlink", "../outside", link)
			fusetest.Beside(t, "exchange", link, filepath.Join(s.lower, "d"))
			outside := fusetest.Snapshot(t, s.outside)
			mutateUnder(t, s.v.Path("d"), dirfd)
			fusetest.SameSnapshot(t, "outside", outside, fusetest.Snapshot(t, s.outside))

			if cache == sievefs.CacheAuto {
				time.Sleep(1500 * time.Millisecond)
			}
			if cache != sievefs.CacheAlways {
				fi, err := os.Lstat(s.v.Path("d"))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode()&os.ModeSymlink == 0 {
					t.Errorf("d through the mount is %v, want a symlink", fi.Mode())
				}
				if target, err := os.Readlink(s.v.Path("d")); err != nil || target != "../outside" {
					t.Errorf("readlink d: %q, %v", target, err)
				}
				// The client's kernel resolves it next to the mountpoint,
				// where there is no outside.
				if _, err := os.Stat(s.v.Path("d/canary")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("stat d/canary through the swapped symlink: %v, want ENOENT", err)
				}
				mutateUnder(t, s.v.Path("d"), dirfd)
				fusetest.SameSnapshot(t, "outside", outside, fusetest.Snapshot(t, s.outside))
			}
			if _, err := os.Stat(filepath.Join(s.lower, "d.old", "new-at")); err != nil {
				t.Errorf("create through the held descriptor did not land in the old dir: %v", err)
			}
		})
	}
}

// TestSafetyFileSymlinkSwap replaces a lower file by a symlink whose
// relative target escapes the lower tree: opening it for writing through
// the mount never writes the outside file.
func TestSafetyFileSymlinkSwap(t *testing.T) {
	for _, cache := range []sievefs.CacheMode{sievefs.CacheNever, sievefs.CacheAuto, sievefs.CacheAlways} {
		t.Run(string(cache), func(t *testing.T) {
			s := newSafetyTree(t, sievefs.Options{Cache: cache})
			f := s.v.Path("d/canary")
			held, err := os.OpenFile(f, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			lf := filepath.Join(s.lower, "d", "canary")
			fusetest.Beside(t, "rename", lf, lf+".old")
			fusetest.Beside(t, "symlink", "../../outside/canary", lf)
			if cache == sievefs.CacheAuto {
				time.Sleep(1500 * time.Millisecond)
			}
			outside := fusetest.Snapshot(t, s.outside)

			fd, err := unix.Open(f, unix.O_WRONLY|unix.O_NOFOLLOW, 0)
			if err == nil {
				unix.Close(fd)
			}
			if cache != sievefs.CacheAlways && err != unix.ELOOP {
				t.Errorf("open O_NOFOLLOW of the swapped file: %v, want ELOOP", err)
			}
			for _, flags := range []int{os.O_WRONLY, os.O_RDWR | os.O_TRUNC, os.O_WRONLY | os.O_CREATE, os.O_WRONLY | os.O_APPEND} {
				if g, err := os.OpenFile(f, flags, 0o644); err == nil {
					g.WriteString("written through the mount")
					g.Close()
				}
			}
			os.Truncate(f, 0)
			os.Chmod(f, 0o777)
			unix.Setxattr(f, "user.sievefs-test", []byte("x"), 0)
			unix.Fchownat(unix.AT_FDCWD, f, 12345, 12345, unix.AT_SYMLINK_NOFOLLOW)
			unix.UtimesNanoAt(unix.AT_FDCWD, f, []unix.Timespec{{Sec: 1}, {Sec: 1}}, unix.AT_SYMLINK_NOFOLLOW)
			unix.Fchmodat(unix.AT_FDCWD, f, 0o777, unix.AT_SYMLINK_NOFOLLOW)
			// The descriptor opened before the swap keeps writing the old file.
			if _, err := held.WriteAt([]byte("held"), 0); err != nil {
				t.Errorf("write through the descriptor opened before the swap: %v", err)
			}
			if err := held.Truncate(2); err != nil {
				t.Errorf("ftruncate through the descriptor opened before the swap: %v", err)
			}
			held.Sync()
			fusetest.SameSnapshot(t, "outside", outside, fusetest.Snapshot(t, s.outside))
			if b := fusetest.ReadFile(t, lf+".old"); cache != sievefs.CacheAlways && string(b) != "he" {
				t.Errorf("the old file holds %q, want \"he\"", b)
			}
		})
	}
}

// TestSafetyNames checks that the lower layer refuses names that are not a
// single path component, and that odd but valid names stay inside.
func TestSafetyNames(t *testing.T) {
	base := t.TempDir()
	low, out := filepath.Join(base, "lower"), filepath.Join(base, "outside")
	for _, d := range []string{low, out, filepath.Join(low, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fusetest.WriteFile(t, filepath.Join(out, "canary"), []byte("outside"))
	fusetest.WriteFile(t, filepath.Join(low, "sub", "f"), []byte("inside"))
	before := fusetest.Snapshot(t, out)

	tree, err := lower.Open(low, lower.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	var st unix.Stat_t
	sub, err := tree.Lookup(tree.Root(), "sub", &st)
	if err != nil {
		t.Fatal(err)
	}
	f, err := tree.Lookup(sub, "f", &st)
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{"", ".", "..", "../outside", "../outside/canary", "../../outside", "a/b", "/", "/etc",
		"x\x00y", "sub/../../outside"}
	for _, name := range bad {
		for _, parent := range []*lower.Inode{tree.Root(), sub} {
			if _, err := tree.Lookup(parent, name, &st); err == nil {
				t.Errorf("Lookup %q succeeded", name)
			}
			if _, err := tree.Mkdir(parent, name, 0o755, nil, &st); err == nil {
				t.Errorf("Mkdir %q succeeded", name)
			}
			if _, fd, err := tree.Create(parent, name, unix.O_WRONLY, 0o644, nil, &st); err == nil {
				fd.Close()
				t.Errorf("Create %q succeeded", name)
			}
			if _, err := tree.Mknod(parent, name, unix.S_IFREG|0o644, 0, nil, &st); err == nil {
				t.Errorf("Mknod %q succeeded", name)
			}
			if _, err := tree.Symlink(parent, name, "x", nil, &st); err == nil {
				t.Errorf("Symlink %q succeeded", name)
			}
			if _, err := tree.Link(f, parent, name, &st); err == nil {
				t.Errorf("Link %q succeeded", name)
			}
			if err := tree.Unlink(parent, name); err == nil {
				t.Errorf("Unlink %q succeeded", name)
			}
			if err := tree.Rmdir(parent, name); err == nil {
				t.Errorf("Rmdir %q succeeded", name)
			}
			if err := tree.Rename(sub, "f", parent, name, 0); err == nil {
				t.Errorf("Rename to %q succeeded", name)
			}
			if err := tree.Rename(parent, name, sub, "g", 0); err == nil {
				t.Errorf("Rename from %q succeeded", name)
			}
		}
	}
	fusetest.SameSnapshot(t, "outside", before, fusetest.Snapshot(t, out))
	if b := fusetest.ReadFile(t, filepath.Join(low, "sub", "f")); string(b) != "inside" {
		t.Errorf("sub/f changed: %q", b)
	}

	// Odd but valid names work through the mount and stay in the tree.
	v := fusetest.MountLower(t, low, sievefs.Options{})
	for _, name := range []string{"...", "..x", ". .", " ..", "..\\..", "-", "\t", "a\nb", "\u2025"} {
		fusetest.WriteFile(t, v.Path(name), []byte(name))
		if b, err := os.ReadFile(filepath.Join(low, name)); err != nil || string(b) != name {
			t.Errorf("%q through the mount: lower has %q, %v", name, b, err)
		}
		if err := os.Remove(v.Path(name)); err != nil {
			t.Error(err)
		}
	}
	// Paths with .. through the mount are the client kernel's business: they
	// resolve in the client's namespace, never through the daemon.
	if _, err := os.Stat(v.Path("sub/../../outside")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat mnt/sub/../../outside: %v, want ENOENT", err)
	}
	fusetest.SameSnapshot(t, "outside", before, fusetest.Snapshot(t, out))
}

// TestSafetyOtherUser runs commands as uid 65534 on an allow_other mount:
// files it creates belong to it in the lower tree, and it cannot write a
// root-owned 0644 file or read a 0600 one.
func TestSafetyOtherUser(t *testing.T) {
	fusetest.RequireFuse(t)
	const nobody = 65534
	v := fusetest.Mount(t, sievefs.Options{AllowOther: true})
	// Let nobody reach the mountpoint, and write in the lower root.
	for _, d := range []string{filepath.Dir(v.Mnt), filepath.Dir(filepath.Dir(v.Mnt))} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(v.Lower, 0o777); err != nil {
		t.Fatal(err)
	}
	fusetest.WriteFile(t, v.LowerPath("root-0644"), []byte("root's"))
	if err := os.WriteFile(v.LowerPath("root-0600"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	asNobody := func(script string, args ...string) (string, error) {
		cmd := exec.Command("/bin/sh", append([]string{"-c", script, "sh"}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		cmd.Dir = "/"
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}

	if out, err := asNobody(`echo hello > "$1" && mkdir "$2"`, v.Path("made-by-nobody"), v.Path("dir-by-nobody")); err != nil {
		t.Fatalf("nobody cannot create through the mount: %v\n%s", err, out)
	}
	for _, name := range []string{"made-by-nobody", "dir-by-nobody"} {
		var st unix.Stat_t
		if err := unix.Lstat(v.LowerPath(name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != nobody || st.Gid != nobody {
			t.Errorf("lower %s owned by %d:%d, want %d:%d", name, st.Uid, st.Gid, nobody, nobody)
		}
	}

	if out, err := asNobody(`echo more >> "$1"`, v.Path("root-0644")); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("nobody appending to a root 0644 file: %v %q, want Permission denied", err, out)
	}
	if out, err := asNobody(`cat "$1"`, v.Path("root-0600")); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("nobody reading a root 0600 file: %v %q, want Permission denied", err, out)
	}
	if out, err := asNobody(`chmod 666 "$1"`, v.Path("root-0644")); err == nil {
		t.Errorf("nobody could chmod a root file: %q", out)
	}
	if b := fusetest.ReadFile(t, v.LowerPath("root-0644")); string(b) != "root's" {
		t.Errorf("root 0644 file changed: %q", b)
	}
	if fi, err := os.Stat(v.LowerPath("root-0644")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("root 0644 file mode: %v, %v", fi.Mode(), err)
	}
}
