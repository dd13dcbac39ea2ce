package readonly_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/readonly"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestFilterReadonly checks that every change under the read-only paths
// fails with EROFS (EXDEV for directory renames across the patterns'
// reach), that the rest of the tree stays writable, and that reads of
// read-only files keep passthrough.
func TestFilterReadonly(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "archive/old", "archive/sub/", "archive/nested/f", "data/frozen/f", "data/free",
		"incoming/locked/f", "pub", "pubdir/f")
	big := fusetest.RandomBytes(t, 2<<20)
	fusetest.WriteFile(t, filepath.Join(low, "archive/big"), big)
	if err := unix.Setxattr(filepath.Join(low, "archive/old"), "user.sievefs", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	chain := fusetest.RulesOf(t, filter.Rule{Name: "ro", Filter: readonly.New(fusetest.Globs("archive/**", "data/frozen/**", "vault/locked/**"))})
	v := fusetest.MountFiltered(t, low, chain, false)
	p := v.Path

	archive := filepath.Join(low, "archive")
	before := fusetest.Snapshot(t, archive)
	t.Run("Open", func(t *testing.T) {
		for _, c := range []struct {
			name  string
			flags int
		}{
			{"O_WRONLY", os.O_WRONLY},
			{"O_RDWR", os.O_RDWR},
			{"O_RDONLY|O_TRUNC", os.O_RDONLY | os.O_TRUNC},
			{"O_WRONLY|O_TRUNC", os.O_WRONLY | os.O_TRUNC},
			{"O_WRONLY|O_APPEND", os.O_WRONLY | os.O_APPEND},
			{"O_RDWR|O_APPEND", os.O_RDWR | os.O_APPEND},
			{"O_WRONLY|O_CREAT", os.O_WRONLY | os.O_CREATE},
		} {
			for _, name := range []string{"archive/old", "data/frozen/f"} {
				f, err := os.OpenFile(p(name), c.flags, 0o644)
				if err == nil {
					f.Close()
				}
				fusetest.WantErr(t, "open "+name+" "+c.name, err, syscall.EROFS)
			}
		}
	})

	t.Run("Setattr", func(t *testing.T) {
		now := time.Now().Add(-time.Hour)
		fusetest.WantErr(t, "truncate", os.Truncate(p("archive/old"), 0), syscall.EROFS)
		fusetest.WantErr(t, "chmod", os.Chmod(p("archive/old"), 0o600), syscall.EROFS)
		fusetest.WantErr(t, "chmod dir", os.Chmod(p("archive/sub"), 0o700), syscall.EROFS)
		fusetest.WantErr(t, "chown", os.Chown(p("archive/old"), 1000, 1000), syscall.EROFS)
		fusetest.WantErr(t, "chtimes", os.Chtimes(p("archive/old"), now, now), syscall.EROFS)
		fusetest.WantErr(t, "utimensat now", unix.UtimesNanoAt(unix.AT_FDCWD, p("archive/old"), nil, 0), syscall.EROFS)
		// Through a descriptor open for reading.
		f, err := os.Open(p("archive/old"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fusetest.WantErr(t, "fchmod", f.Chmod(0o600), syscall.EROFS)
		fusetest.WantErr(t, "fchown", f.Chown(1000, 1000), syscall.EROFS)
		fusetest.WantErr(t, "futimens", unix.Futimes(int(f.Fd()), []unix.Timeval{{Sec: 1}, {Sec: 1}}), syscall.EROFS)
		fusetest.WantErr(t, "fsetxattr", unix.Fsetxattr(int(f.Fd()), "user.other", []byte("x"), 0), syscall.EROFS)
		fusetest.WantErr(t, "ftruncate of a read-only descriptor", f.Truncate(0), syscall.EINVAL)
	})

	t.Run("Xattr", func(t *testing.T) {
		fusetest.WantErr(t, "setxattr", unix.Setxattr(p("archive/old"), "user.other", []byte("x"), 0), syscall.EROFS)
		fusetest.WantErr(t, "setxattr replace", unix.Setxattr(p("archive/old"), "user.sievefs", []byte("x"), 0), syscall.EROFS)
		fusetest.WantErr(t, "removexattr", unix.Removexattr(p("archive/old"), "user.sievefs"), syscall.EROFS)
		buf := make([]byte, 64)
		if n, err := unix.Getxattr(p("archive/old"), "user.sievefs", buf); err != nil || string(buf[:n]) != "v" {
			t.Errorf("getxattr: %q %v", buf[:max(n, 0)], err)
		}
		if n, err := unix.Listxattr(p("archive/old"), buf); err != nil || !bytes.Contains(buf[:n], []byte("user.sievefs")) {
			t.Errorf("listxattr: %q %v", buf[:max(n, 0)], err)
		}
	})

	t.Run("Names", func(t *testing.T) {
		fusetest.WantErr(t, "unlink", os.Remove(p("archive/old")), syscall.EROFS)
		fusetest.WantErr(t, "rmdir empty dir", os.Remove(p("archive/sub")), syscall.EROFS)
		fusetest.WantErr(t, "rmdir archive", unix.Rmdir(p("archive")), syscall.EROFS)
		fusetest.WantErr(t, "mkdir inside", os.Mkdir(p("archive/newdir"), 0o755), syscall.EROFS)
		fusetest.WantErr(t, "create inside", os.WriteFile(p("archive/new"), []byte("x"), 0o644), syscall.EROFS)
		fusetest.WantErr(t, "create deeper", os.WriteFile(p("archive/sub/new"), []byte("x"), 0o644), syscall.EROFS)
		fusetest.WantErr(t, "mknod inside", unix.Mknod(p("archive/fifo"), unix.S_IFIFO|0o644, 0), syscall.EROFS)
		fusetest.WantErr(t, "symlink inside", os.Symlink("old", p("archive/lnk")), syscall.EROFS)
		fd, err := unix.Open(p("archive"), unix.O_TMPFILE|unix.O_RDWR, 0o600)
		if err == nil {
			unix.Close(fd)
		}
		fusetest.WantErr(t, "O_TMPFILE inside", err, syscall.EROFS)
		fd, err = unix.Open(p("data"), unix.O_TMPFILE|unix.O_RDWR, 0o600)
		if err != nil {
			t.Fatalf("O_TMPFILE in data: %v", err)
		}
		fusetest.WantErr(t, "linkat an O_TMPFILE file inside", unix.Linkat(fd, "", unix.AT_FDCWD, p("archive/tmp"), unix.AT_EMPTY_PATH), syscall.EROFS)
		unix.Close(fd)

		fusetest.WantErr(t, "rename within", os.Rename(p("archive/old"), p("archive/old2")), syscall.EROFS)
		fusetest.WantErr(t, "rename out", os.Rename(p("archive/old"), p("old2")), syscall.EROFS)
		fusetest.WantErr(t, "rename in", os.Rename(p("pub"), p("archive/pub")), syscall.EROFS)
		fusetest.WantErr(t, "rename in, onto a file", os.Rename(p("pub"), p("archive/old")), syscall.EROFS)
		fusetest.WantErr(t, "rename dir in", os.Rename(p("pubdir"), p("archive/pubdir")), syscall.EROFS)
		fusetest.WantErr(t, "rename archive", os.Rename(p("archive"), p("archive2")), syscall.EROFS)
		fusetest.WantErr(t, "exchange with a read-only file",
			unix.Renameat2(unix.AT_FDCWD, p("pub"), unix.AT_FDCWD, p("archive/old"), unix.RENAME_EXCHANGE), syscall.EROFS)
		fusetest.WantErr(t, "link from", os.Link(p("archive/old"), p("linked")), syscall.EROFS)
		fusetest.WantErr(t, "link to", os.Link(p("pub"), p("archive/pub")), syscall.EROFS)
		// A directory holding a read-only subtree cannot move it out of
		// the patterns' reach, nor a directory move a subtree into it.
		fusetest.WantErr(t, "rename data (holding data/frozen)", os.Rename(p("data"), p("data2")), syscall.EXDEV)
		fusetest.WantErr(t, "rename incoming to vault (making vault/locked)", os.Rename(p("incoming"), p("vault")), syscall.EXDEV)
		for _, name := range []string{"linked", "old2", "data2", "vault", "archive2"} {
			if _, err := os.Lstat(filepath.Join(low, name)); !os.IsNotExist(err) {
				t.Errorf("lower %s exists after a refused operation", name)
			}
		}
	})

	t.Run("ElsewhereWritable", func(t *testing.T) {
		if err := os.WriteFile(p("data/free"), []byte("changed"), 0o644); err != nil {
			t.Errorf("write data/free: %v", err)
		}
		if err := os.Rename(p("data/free"), p("data/free2")); err != nil {
			t.Errorf("rename data/free: %v", err)
		}
		if err := os.WriteFile(p("data/new"), []byte("new"), 0o644); err != nil {
			t.Errorf("create data/new: %v", err)
		}
		if err := os.Rename(p("pubdir"), p("pubdir2")); err != nil {
			t.Errorf("rename pubdir: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(low, "data/free2")); string(b) != "changed" {
			t.Errorf("lower data/free2: %q", b)
		}
	})

	t.Run("ReadsPassthrough", func(t *testing.T) {
		if b, err := os.ReadFile(p("archive/old")); err != nil || string(b) != "archive/old" {
			t.Errorf("read archive/old: %q %v", b, err)
		}
		if names := fusetest.ListDir(t, p("archive")); len(names) != 4 {
			t.Errorf("ls archive: %v", names)
		}
		fusetest.RequirePassthrough(t, v.Mount)
		tr := fusetest.NewFuseTrace(t, v.Mnt)
		if tr != nil {
			tr.Reset(t)
		}
		r0, w0 := fusetest.DaemonIO(v)
		f, err := os.Open(p("archive/big"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if st := v.Mount.Status(); st.OpenFiles.Passthrough != 1 {
			t.Errorf("open files %+v, want 1 passthrough", st.OpenFiles)
		}
		got, err := io.ReadAll(f)
		if err != nil || !bytes.Equal(got, big) {
			t.Errorf("read archive/big: %d bytes, %v; differs from the lower file", len(got), err)
		}
		if r1, w1 := fusetest.DaemonIO(v); r1 != r0 || w1 != w0 {
			t.Errorf("reading a read-only file reached the daemon: reads %d -> %d", r0, r1)
		}
		if tr != nil {
			c := tr.Counts(t)
			if c[fusetest.OpOpen] == 0 {
				t.Errorf("tracepoint saw no OPEN: the trace does not work (%v)", c)
			}
			if c[fusetest.OpRead] != 0 {
				t.Errorf("kernel sent %d READ requests for a read-only file, want none", c[fusetest.OpRead])
			}
		}
	})

	fusetest.SameSnapshot(t, "lower archive", before, fusetest.Snapshot(t, archive))
	if d := fusetest.RuleDecisions(v, "ro"); d[filter.DecisionError] == 0 {
		t.Errorf("rule ro decisions %v, want errors counted", d)
	}
}

// TestFilterReadonlyLowerHardLink uses a read-only file that the lower
// tree also links under a writable name. The dispatcher knows an inode by
// the path it was last looked up under (docs/policies.md, "Paths and globs") and the
// kernel's OPEN names the inode, not the path. With CacheNever every
// access looks its name up again, so each name gets its own rule: the
// writable name writes the file (as hide's documented exception lets a
// visible link read a hidden file) and the read-only name refuses. With
// the default cache the read-only name follows whichever name was looked
// up last, which the test only logs.
func TestFilterReadonlyLowerHardLink(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "archive/old")
	if err := os.Link(filepath.Join(low, "archive/old"), filepath.Join(low, "pub-link")); err != nil {
		t.Fatal(err)
	}
	chain := func() []filter.Rule {
		return fusetest.RulesOf(t, filter.Rule{Filter: readonly.New(fusetest.Globs("archive/**"))})
	}

	v := fusetest.MountLower(t, low, sievefs.Options{Rules: chain(), Cache: sievefs.CacheNever})
	for range 2 {
		if err := os.WriteFile(v.Path("pub-link"), []byte("via pub-link"), 0); err != nil {
			t.Errorf("write pub-link: %v", err)
		}
		fusetest.WantErr(t, "write archive/old after a write through pub-link",
			os.WriteFile(v.Path("archive/old"), []byte("via archive/old"), 0), syscall.EROFS)
		fusetest.WantErr(t, "truncate archive/old", os.Truncate(v.Path("archive/old"), 0), syscall.EROFS)
	}
	if b, _ := os.ReadFile(filepath.Join(low, "archive/old")); string(b) != "via pub-link" {
		t.Errorf("lower archive/old: %q, want what was written through pub-link", b)
	}

	v = fusetest.MountLower(t, low, sievefs.Options{Rules: chain()})
	os.Stat(v.Path("archive/old"))
	os.Stat(v.Path("pub-link"))
	err := os.WriteFile(v.Path("archive/old"), []byte("via archive/old"), 0)
	t.Logf("default cache: write through archive/old after a lookup of pub-link: %v", err)
}
