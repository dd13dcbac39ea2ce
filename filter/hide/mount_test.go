package hide_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/hide"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// hideTree is the lower tree of the hide tests and the globs they hide:
// a whole directory, a name anywhere, a directory anchored under another
// one, and a glob over the entries of one directory.
var (
	hideGlobs = []string{"secrets/**", "**/.env", "proj/secrets/**", "many/*.key"}
	hideTree  = []string{
		"secrets/key", "secrets/sub/deep", ".env", "docs/readme", "docs/.env",
		"proj/visible", "proj/secrets/key", "pub",
	}
)

// hiddenPaths are paths of hideTree the view must not show.
var hiddenPaths = []string{
	"secrets", "secrets/key", "secrets/sub", "secrets/sub/deep", ".env", "docs/.env",
	"proj/secrets", "proj/secrets/key", "many/f003.key",
}

// newHideView lays out hideTree (and many/: 60 files, every third a .key)
// and mounts it with a hide rule.
func newHideView(t *testing.T) (low string, v *fusetest.View) {
	t.Helper()
	low = fusetest.NewLower(t)
	fusetest.LayTree(t, low, hideTree...)
	for i := range 60 {
		name := fmt.Sprintf("many/f%03d", i)
		if i%3 == 0 {
			name += ".key"
		}
		fusetest.LayTree(t, low, name)
	}
	chain := fusetest.RulesOf(t, filter.Rule{Name: "hide", Filter: hide.New(fusetest.Globs(hideGlobs...))})
	return low, fusetest.MountFiltered(t, low, chain, false)
}

// TestFilterHide checks every way to reach, make or move a hidden path:
// lookups, listings, creation, links, renames onto, out of and into
// existence (EXDEV, and mv's copy), "..", symlinks, xattrs, and the
// documented exception of a lower hard link.
func TestFilterHide(t *testing.T) {
	low, v := newHideView(t)
	p := v.Path

	t.Run("Lookup", func(t *testing.T) {
		for _, name := range hiddenPaths {
			_, err := os.Stat(p(name))
			fusetest.WantErr(t, "stat "+name, err, syscall.ENOENT)
			_, err = os.Lstat(p(name))
			fusetest.WantErr(t, "lstat "+name, err, syscall.ENOENT)
			var stx unix.Statx_t
			err = unix.Statx(unix.AT_FDCWD, p(name), unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_FORCE_SYNC, unix.STATX_ALL, &stx)
			fusetest.WantErr(t, "statx "+name, err, syscall.ENOENT)
			_, err = os.ReadFile(p(name))
			fusetest.WantErr(t, "read "+name, err, syscall.ENOENT)
		}
		for _, name := range []string{"pub", "docs/readme", "proj/visible", "many/f001", "docs", "proj"} {
			if _, err := os.Stat(p(name)); err != nil {
				t.Errorf("stat visible %s: %v", name, err)
			}
		}
	})

	t.Run("Readdir", func(t *testing.T) {
		tr := fusetest.NewFuseTrace(t, v.Mnt)
		if tr != nil {
			tr.Reset(t)
		}
		for dir, want := range map[string][]string{
			".":    {"docs", "many", "proj", "pub"},
			"docs": {"readme"},
			"proj": {"visible"},
		} {
			if got := fusetest.ListDir(t, p(dir)); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("ls -l %s: %v, want %v", dir, got, want)
			}
			if got := fusetest.GetdentsSmall(t, p(dir)); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("getdents %s: %v, want %v", dir, got, want)
			}
		}
		// Many entries, read in many small getdents calls: several
		// requests, at offsets past the first, all filtered. A listing
		// that stats its entries gets them with attributes (READDIRPLUS),
		// one that does not gets them without (READDIR): both are
		// filtered.
		plain := v.Mount.Requests("readdir")
		for _, names := range [][]string{fusetest.ListDir(t, p("many")), fusetest.GetdentsSmall(t, p("many"))} {
			visible := 0
			for _, n := range names {
				if filepath.Ext(n) == ".key" {
					t.Errorf("many: hidden %s listed", n)
				}
				visible++
			}
			if visible != 40 {
				t.Errorf("many: %d visible entries listed, want 40", visible)
			}
		}
		if v.Mount.Requests("readdir") == plain {
			t.Error("no READDIR without attributes reached the daemon: the plain listing path went untested")
		}
		if tr != nil {
			c := tr.Counts(t)
			t.Logf("requests: READDIR %d, READDIRPLUS %d", c[28], c[44])
			if c[28]+c[44] < 8 {
				t.Errorf("only %d READDIR/READDIRPLUS requests: the listings did not reach the daemon", c[28]+c[44])
			}
		}
	})

	t.Run("Create", func(t *testing.T) {
		before := fusetest.Snapshot(t, low)
		for _, name := range []string{".env", "docs/.env", "proj/.env", "many/new.key"} {
			err := os.WriteFile(p(name), []byte("x"), 0o644)
			fusetest.WantErr(t, "create "+name, err, syscall.EACCES)
			f, err := os.OpenFile(p(name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
			if err == nil {
				f.Close()
			}
			fusetest.WantErr(t, "create O_EXCL "+name, err, syscall.EACCES)
		}
		for _, name := range []string{"secrets", "proj/secrets", "docs/.env", "many/d.key"} {
			fusetest.WantErr(t, "mkdir "+name, os.Mkdir(p(name), 0o755), syscall.EACCES)
		}
		fusetest.WantErr(t, "mknod fifo .env", unix.Mknod(p("proj/.env"), unix.S_IFIFO|0o644, 0), syscall.EACCES)
		fusetest.WantErr(t, "mknod file secrets", unix.Mknod(p("secrets"), unix.S_IFREG|0o644, 0), syscall.EACCES)
		fusetest.WantErr(t, "symlink named .env", os.Symlink("pub", p("docs/.env")), syscall.EACCES)
		fusetest.WantErr(t, "symlink named secrets", os.Symlink("pub", p("secrets")), syscall.EACCES)
		// Inside a hidden directory: its name does not resolve.
		fusetest.WantErr(t, "create in secrets", os.WriteFile(p("secrets/new"), nil, 0o644), syscall.ENOENT)
		fusetest.WantErr(t, "mkdir in secrets", os.Mkdir(p("secrets/newdir"), 0o755), syscall.ENOENT)
		fusetest.SameSnapshot(t, "lower after create attempts", before, fusetest.Snapshot(t, low))
	})

	t.Run("Link", func(t *testing.T) {
		before := fusetest.Snapshot(t, low)
		fusetest.WantErr(t, "link onto .env", os.Link(p("pub"), p(".env")), syscall.EACCES)
		fusetest.WantErr(t, "link onto new proj/.env", os.Link(p("pub"), p("proj/.env")), syscall.EACCES)
		fusetest.WantErr(t, "link onto secrets", os.Link(p("pub"), p("secrets")), syscall.EACCES)
		fusetest.WantErr(t, "link onto many/x.key", os.Link(p("pub"), p("many/x.key")), syscall.EACCES)
		fusetest.WantErr(t, "link from secrets/key", os.Link(p("secrets/key"), p("stolen")), syscall.ENOENT)
		fusetest.WantErr(t, "link from .env", os.Link(p(".env"), p("stolen")), syscall.ENOENT)
		// An unnamed file linked in under a hidden name.
		fd, err := unix.Open(p("proj"), unix.O_TMPFILE|unix.O_RDWR, 0o600)
		if err != nil {
			t.Fatalf("O_TMPFILE in proj: %v", err)
		}
		unix.Write(fd, []byte("tmp"))
		fusetest.WantErr(t, "linkat O_TMPFILE onto proj/.env",
			unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, p("proj/.env"), unix.AT_SYMLINK_FOLLOW), syscall.EACCES)
		fusetest.WantErr(t, "linkat O_TMPFILE onto proj/secrets",
			unix.Linkat(fd, "", unix.AT_FDCWD, p("proj/secrets"), unix.AT_EMPTY_PATH), syscall.EACCES)
		unix.Close(fd)
		fusetest.SameSnapshot(t, "lower after link attempts", before, fusetest.Snapshot(t, low))
	})

	t.Run("Rename", func(t *testing.T) {
		before := fusetest.Snapshot(t, low)
		// Onto a hidden name, existing in the lower tree or not.
		fusetest.WantErr(t, "rename onto .env", os.Rename(p("pub"), p(".env")), syscall.EACCES)
		fusetest.WantErr(t, "rename onto secrets", os.Rename(p("pub"), p("secrets")), syscall.EACCES)
		fusetest.WantErr(t, "rename onto proj/.env", os.Rename(p("pub"), p("proj/.env")), syscall.EACCES)
		fusetest.WantErr(t, "rename dir onto proj/secrets", os.Rename(p("docs"), p("proj/secrets")), syscall.EACCES)
		fusetest.WantErr(t, "rename onto many/x.key", os.Rename(p("pub"), p("many/x.key")), syscall.EACCES)
		fusetest.WantErr(t, "renameat2 NOREPLACE onto proj/.env",
			unix.Renameat2(unix.AT_FDCWD, p("pub"), unix.AT_FDCWD, p("proj/.env"), unix.RENAME_NOREPLACE), syscall.EACCES)
		fusetest.WantErr(t, "renameat2 EXCHANGE with docs/.env",
			unix.Renameat2(unix.AT_FDCWD, p("pub"), unix.AT_FDCWD, p("docs/.env"), unix.RENAME_EXCHANGE), syscall.ENOENT)
		// Out of hiding: the source does not resolve.
		fusetest.WantErr(t, "rename secrets/key out", os.Rename(p("secrets/key"), p("key")), syscall.ENOENT)
		fusetest.WantErr(t, "rename .env out", os.Rename(p(".env"), p("env")), syscall.ENOENT)
		fusetest.WantErr(t, "rename secrets out", os.Rename(p("secrets"), p("s2")), syscall.ENOENT)
		fusetest.WantErr(t, "rename many/f000.key out", os.Rename(p("many/f000.key"), p("many/f000")), syscall.ENOENT)
		// Into existence: moving the directory above a path-anchored
		// hidden subtree would show it under the new name.
		fusetest.WantErr(t, "rename proj", os.Rename(p("proj"), p("proj2")), syscall.EXDEV)
		fusetest.WantErr(t, "rename many", os.Rename(p("many"), p("many2")), syscall.EXDEV)
		fusetest.WantErr(t, "exchange proj with docs",
			unix.Renameat2(unix.AT_FDCWD, p("docs"), unix.AT_FDCWD, p("proj"), unix.RENAME_EXCHANGE), syscall.EXDEV)
		fusetest.SameSnapshot(t, "lower after refused renames", before, fusetest.Snapshot(t, low))

		// Renames that keep hidden things hidden work: a file inside
		// proj, and a directory holding a .env (hidden by name wherever
		// it goes).
		if err := os.Rename(p("proj/visible"), p("proj/visible2")); err != nil {
			t.Errorf("rename proj/visible: %v", err)
		}
		if err := os.Rename(p("proj/visible2"), p("proj/visible")); err != nil {
			t.Errorf("rename proj/visible2 back: %v", err)
		}
		if err := os.Rename(p("docs"), p("docs2")); err != nil {
			t.Fatalf("rename docs (holding a .env): %v", err)
		}
		_, err := os.Stat(p("docs2/.env"))
		fusetest.WantErr(t, "stat docs2/.env after the move", err, syscall.ENOENT)
		if b, err := os.ReadFile(filepath.Join(low, "docs2/.env")); err != nil || string(b) != "docs/.env" {
			t.Errorf("lower docs2/.env: %q %v", b, err)
		}
		if err := os.Rename(p("docs2"), p("docs")); err != nil {
			t.Fatalf("rename docs2 back: %v", err)
		}
	})

	t.Run("MvFallsBackToCopy", func(t *testing.T) {
		mv, err := exec.LookPath("mv")
		if err != nil {
			t.Skip("no mv")
		}
		// mv gets EXDEV, copies what it sees, and cannot remove the
		// source directory: the hidden file stays where it was.
		out, err := exec.Command(mv, p("proj"), p("proj2")).CombinedOutput()
		t.Logf("mv proj proj2: %v %s", err, bytes.TrimSpace(out))
		if err == nil {
			t.Error("mv proj proj2 succeeded; it cannot remove proj, which still holds hidden files")
		}
		if b, err := os.ReadFile(filepath.Join(low, "proj/secrets/key")); err != nil || string(b) != "proj/secrets/key" {
			t.Errorf("lower proj/secrets/key after mv: %q %v", b, err)
		}
		if _, err := os.Lstat(filepath.Join(low, "proj2/secrets")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lower proj2/secrets after mv: %v, want it absent", err)
		}
		if b, err := os.ReadFile(p("proj2/visible")); err != nil || string(b) != "proj/visible" {
			t.Errorf("proj2/visible after mv: %q %v", b, err)
		}
		if got := fusetest.ListDir(t, p("proj")); len(got) != 0 {
			t.Errorf("proj after mv lists %v, want nothing", got)
		}
		_, err = os.Stat(p("proj/secrets"))
		fusetest.WantErr(t, "stat proj/secrets after mv", err, syscall.ENOENT)
	})

	t.Run("DotDot", func(t *testing.T) {
		for _, name := range []string{"docs/../secrets", "docs/../secrets/key", "docs/../.env", "secrets/..", "secrets/../pub", "proj/../proj/secrets/key", "many/../many/f000.key"} {
			_, err := os.Stat(v.Mnt + "/" + name)
			fusetest.WantErr(t, "stat "+name, err, syscall.ENOENT)
		}
		if _, err := os.Stat(v.Mnt + "/docs/../pub"); err != nil {
			t.Errorf("stat docs/../pub: %v", err)
		}
	})

	t.Run("Symlink", func(t *testing.T) {
		// Made through the view (the target is stored as given), made
		// in the lower tree, relative and absolute.
		links := map[string]string{
			"lnk-rel":      "secrets/key",
			"lnk-env":      "docs/.env",
			"lnk-abs":      p("secrets/key"),
			"docs/lnk-up":  "../secrets/sub/deep",
			"lnk-dir":      "secrets",
			"lnk-many-key": "many/f000.key",
		}
		for name, target := range links {
			if err := os.Symlink(target, p(name)); err != nil {
				t.Fatalf("symlink %s: %v", name, err)
			}
			if got, err := os.Readlink(filepath.Join(low, name)); err != nil || got != target {
				t.Errorf("lower %s: target %q %v, want %q", name, got, err, target)
			}
		}
		if err := os.Symlink("../secrets/key", filepath.Join(low, "proj/lower-lnk")); err != nil {
			t.Fatal(err)
		}
		links["proj/lower-lnk"] = "../secrets/key"
		for name := range links {
			_, err := os.ReadFile(p(name))
			fusetest.WantErr(t, "read through "+name, err, syscall.ENOENT)
			_, err = os.Stat(p(name))
			fusetest.WantErr(t, "stat through "+name, err, syscall.ENOENT)
		}
		_, err := os.ReadFile(p("lnk-dir/key"))
		fusetest.WantErr(t, "read lnk-dir/key", err, syscall.ENOENT)
		for name := range links {
			os.Remove(p(name))
		}
	})

	t.Run("Xattr", func(t *testing.T) {
		for _, name := range []string{"secrets/key", ".env", "docs/.env", "secrets"} {
			if err := unix.Lsetxattr(filepath.Join(low, name), "user.sievefs", []byte("hidden"), 0); err != nil {
				t.Fatalf("lower xattr: %v", err)
			}
		}
		before := fusetest.Snapshot(t, low)
		buf := make([]byte, 256)
		for _, name := range []string{"secrets/key", ".env", "docs/.env", "secrets"} {
			_, err := unix.Getxattr(p(name), "user.sievefs", buf)
			fusetest.WantErr(t, "getxattr "+name, err, syscall.ENOENT)
			_, err = unix.Lgetxattr(p(name), "user.sievefs", buf)
			fusetest.WantErr(t, "lgetxattr "+name, err, syscall.ENOENT)
			_, err = unix.Listxattr(p(name), buf)
			fusetest.WantErr(t, "listxattr "+name, err, syscall.ENOENT)
			fusetest.WantErr(t, "setxattr "+name, unix.Setxattr(p(name), "user.sievefs", []byte("x"), 0), syscall.ENOENT)
			fusetest.WantErr(t, "removexattr "+name, unix.Removexattr(p(name), "user.sievefs"), syscall.ENOENT)
		}
		fusetest.SameSnapshot(t, "lower after xattr attempts", before, fusetest.Snapshot(t, low))
	})

	t.Run("LowerHardLink", func(t *testing.T) {
		// Documented: a file hard-linked from a visible path stays
		// reachable there.
		if err := os.Link(filepath.Join(low, "secrets/key"), filepath.Join(low, "keylink")); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p("keylink")); err != nil || string(b) != "secrets/key" {
			t.Errorf("read keylink (a lower hard link of secrets/key): %q %v", b, err)
		}
		if !fusetest.HasName(fusetest.ListDir(t, v.Mnt), "keylink") {
			t.Error("keylink not listed")
		}
		_, err := os.Stat(p("secrets/key"))
		fusetest.WantErr(t, "stat secrets/key", err, syscall.ENOENT)
	})
}

// TestFilterHideHeldNode hides, by a policy reload, files the kernel still
// knows: an open descriptor keeps reading, but its node answers nothing
// more, and a file handle taken before cannot reopen it.
func TestFilterHideHeldNode(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "plain", "other", "keep")
	if err := unix.Setxattr(filepath.Join(low, "plain"), "user.sievefs", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	v := fusetest.MountFiltered(t, low, fusetest.RulesOf(t), false)

	handles := map[string]unix.FileHandle{}
	for _, name := range []string{"plain", "other"} {
		h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, v.Path(name), 0)
		if errors.Is(err, syscall.EOPNOTSUPP) {
			break // the mount gives out no handles (see TestNoFileHandles)
		}
		if err != nil {
			t.Fatalf("name_to_handle_at %s: %v", name, err)
		}
		handles[name] = h
	}
	root, err := unix.Open(v.Mnt, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(root)
	// Before the reload the handles work.
	for name, h := range handles {
		fd, err := unix.OpenByHandleAt(root, h, unix.O_RDONLY)
		if err != nil {
			t.Logf("open_by_handle_at %s before hiding: %v (the kernel cannot reopen it: no export support)", name, err)
			continue
		}
		unix.Close(fd)
	}

	held, err := os.Open(v.Path("plain"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	if err := v.Mount.SetRules(fusetest.RulesOf(t, filter.Rule{Filter: hide.New(fusetest.Globs("plain", "other"))})); err != nil {
		t.Fatal(err)
	}
	_, err = os.Stat(v.Path("plain"))
	fusetest.WantErr(t, "stat plain after hiding it", err, syscall.ENOENT)

	// The open file stays open and readable.
	buf := make([]byte, 16)
	if n, err := held.ReadAt(buf, 0); string(buf[:n]) != "plain" {
		t.Errorf("read of the descriptor opened before: %q %v", buf[:n], err)
	}
	// Its node answers nothing more.
	_, err = unix.Fgetxattr(int(held.Fd()), "user.sievefs", buf)
	fusetest.WantErr(t, "fgetxattr of the held descriptor", err, syscall.ENOENT)
	fusetest.WantErr(t, "fsetxattr of the held descriptor", unix.Fsetxattr(int(held.Fd()), "user.sievefs", []byte("w"), 0), syscall.ENOENT)
	_, err = unix.Flistxattr(int(held.Fd()), buf)
	fusetest.WantErr(t, "flistxattr of the held descriptor", err, syscall.ENOENT)
	// Nor can it be linked back into view.
	fusetest.WantErr(t, "linkat the held descriptor to a visible name",
		unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", held.Fd()), unix.AT_FDCWD, v.Path("exposed"), unix.AT_SYMLINK_FOLLOW), syscall.ENOENT)
	fusetest.WantErr(t, "linkat AT_EMPTY_PATH the held descriptor to a visible name",
		unix.Linkat(int(held.Fd()), "", unix.AT_FDCWD, v.Path("exposed"), unix.AT_EMPTY_PATH), syscall.ENOENT)
	if _, err := os.Lstat(filepath.Join(low, "exposed")); !os.IsNotExist(err) {
		t.Errorf("lower exposed: %v, want absent", err)
	}
	if b, _ := os.ReadFile(filepath.Join(low, "plain")); string(b) != "plain" {
		t.Errorf("lower plain changed: %q", b)
	}

	// A handle taken while it was visible does not reopen it: the node
	// is still in the kernel's cache for plain (held open), perhaps not
	// for other.
	for name, h := range handles {
		fd, err := unix.OpenByHandleAt(root, h, unix.O_RDONLY)
		if err == nil {
			n, _ := unix.Read(fd, buf)
			unix.Close(fd)
			t.Errorf("open_by_handle_at %s after hiding it succeeded (read %q)", name, buf[:max(n, 0)])
			continue
		}
		if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ESTALE) {
			t.Errorf("open_by_handle_at %s after hiding it: %v, want ENOENT or ESTALE", name, err)
		}
		t.Logf("open_by_handle_at %s after hiding it: %v", name, err)
	}
	if b, err := os.ReadFile(v.Path("keep")); err != nil || string(b) != "keep" {
		t.Errorf("read keep: %q %v", b, err)
	}
}
