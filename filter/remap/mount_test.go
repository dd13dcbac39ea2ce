package remap_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/remap"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestFilterRemap checks the presented owner and modes (files and
// directories apart, symlinks keep theirs), that the kernel checks
// permissions against them for other users, and that chmod and chown
// through the mount succeed only to the presented values.
func TestFilterRemap(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "shared/f", "shared/sub/g", "own")
	// The lower tree: root's, 0600 files in a 0700 directory.
	for name, mode := range map[string]os.FileMode{"shared": 0o700, "shared/sub": 0o700, "shared/f": 0o600, "shared/sub/g": 0o600, "own": 0o600} {
		if err := os.Chmod(filepath.Join(low, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("f", filepath.Join(low, "shared/lnk")); err != nil {
		t.Fatal(err)
	}
	uid, gid, fileMode, dirMode := uint32(1000), uint32(1000), uint32(0o640), uint32(0o755)
	chain := fusetest.RulesOf(t, filter.Rule{Name: "remap", Filter: remap.New(remap.Config{
		Paths: fusetest.Globs("shared/**"), Uid: &uid, Gid: &gid, FileMode: &fileMode, DirMode: &dirMode,
	})})
	v := fusetest.MountFiltered(t, low, chain, true)
	p := v.Path

	t.Run("Stat", func(t *testing.T) {
		for name, want := range map[string]uint32{
			"shared":       syscall.S_IFDIR | 0o755,
			"shared/sub":   syscall.S_IFDIR | 0o755,
			"shared/f":     syscall.S_IFREG | 0o640,
			"shared/sub/g": syscall.S_IFREG | 0o640,
		} {
			var st syscall.Stat_t
			if err := syscall.Lstat(p(name), &st); err != nil {
				t.Fatal(err)
			}
			if st.Mode != want || st.Uid != 1000 || st.Gid != 1000 {
				t.Errorf("%s: mode %o uid %d gid %d, want %o 1000 1000", name, st.Mode, st.Uid, st.Gid, want)
			}
		}
		// statx asking for more than the basic fields (FUSE_STATX where
		// the kernel and the daemon have it) presents the same.
		for name, want := range map[string]uint16{"shared": syscall.S_IFDIR | 0o755, "shared/f": syscall.S_IFREG | 0o640} {
			var stx unix.Statx_t
			if err := unix.Statx(unix.AT_FDCWD, p(name), unix.AT_STATX_FORCE_SYNC, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &stx); err != nil {
				t.Fatal(err)
			}
			if stx.Mode != want || stx.Uid != 1000 || stx.Gid != 1000 {
				t.Errorf("statx %s: mode %o uid %d gid %d, want %o 1000 1000", name, stx.Mode, stx.Uid, stx.Gid, want)
			}
		}
		// A symlink keeps its mode but gets the owner.
		var st syscall.Stat_t
		if err := syscall.Lstat(p("shared/lnk"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != syscall.S_IFLNK|0o777 || st.Uid != 1000 {
			t.Errorf("shared/lnk: mode %o uid %d, want 120777 1000", st.Mode, st.Uid)
		}
		// Outside the paths, nothing changes.
		if err := syscall.Lstat(p("own"), &st); err != nil || st.Mode != syscall.S_IFREG|0o600 || st.Uid != 0 {
			t.Errorf("own: mode %o uid %d %v, want 100600 0", st.Mode, st.Uid, err)
		}
		// The listing presents the same.
		es, err := os.ReadDir(p("shared"))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1000 || st.Gid != 1000 {
				t.Errorf("ls -l shared: %s owned by %d:%d", e.Name(), st.Uid, st.Gid)
			}
		}
	})

	t.Run("Permissions", func(t *testing.T) {
		// uid 1000 owns the presented 0640 file; root owns the lower 0600.
		if b, err := fusetest.ReadAs(t, 1000, 1000, p("shared/f")); err != nil || string(b) != "shared/f" {
			t.Errorf("uid 1000 read shared/f: %q %v", b, err)
		}
		if b, err := fusetest.ReadAs(t, 1000, 1000, p("shared/sub/g")); err != nil || string(b) != "shared/sub/g" {
			t.Errorf("uid 1000 read shared/sub/g: %q %v", b, err)
		}
		_, err := fusetest.ReadAs(t, 2000, 2000, p("shared/f"))
		fusetest.WantErr(t, "uid 2000 read shared/f", err, syscall.EACCES)
		// Group 1000 may read (0640).
		if b, err := fusetest.ReadAs(t, 2000, 1000, p("shared/f")); err != nil || string(b) != "shared/f" {
			t.Errorf("uid 2000 gid 1000 read shared/f: %q %v", b, err)
		}
		// The lower mode holds outside the paths.
		_, err = fusetest.ReadAs(t, 1000, 1000, p("own"))
		fusetest.WantErr(t, "uid 1000 read own (root 0600)", err, syscall.EACCES)
		// uid 1000 may write what it is shown to own.
		var werr error
		fusetest.AsCaller(t, 1000, 1000, func() { werr = os.WriteFile(p("shared/sub/g"), []byte("by 1000"), 0) })
		if werr != nil {
			t.Errorf("uid 1000 write shared/sub/g: %v", werr)
		}
		if b, _ := os.ReadFile(filepath.Join(low, "shared/sub/g")); string(b) != "by 1000" {
			t.Errorf("lower shared/sub/g: %q", b)
		}
		// What uid 1000 creates there is its own in the lower tree.
		fusetest.AsCaller(t, 1000, 1000, func() { werr = os.WriteFile(p("shared/made"), []byte("made"), 0o600) })
		if werr != nil {
			t.Errorf("uid 1000 create shared/made: %v", werr)
		} else if fi, err := os.Stat(filepath.Join(low, "shared/made")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 1000 || fi.Sys().(*syscall.Stat_t).Gid != 1000 {
			t.Errorf("lower shared/made: %v, want owned by 1000:1000", err)
		}
		// uid 2000 is shown a 0755 directory it does not own.
		fusetest.AsCaller(t, 2000, 2000, func() { werr = os.WriteFile(p("shared/by2000"), []byte("x"), 0o600) })
		fusetest.WantErr(t, "uid 2000 create shared/by2000", werr, syscall.EACCES)
		// The same checks by child processes with those credentials.
		if b, name := fusetest.ParseAs(t, fusetest.RunAs(t, 1000, 1000, "read", p("shared/f"))); name != "ok" || string(b) != "shared/f" {
			t.Errorf("child process as uid 1000 reading shared/f: %q %s", b, name)
		}
		if _, name := fusetest.ParseAs(t, fusetest.RunAs(t, 2000, 2000, "read", p("shared/f"))); name != "EACCES" {
			t.Errorf("child process as uid 2000 reading shared/f: %s, want EACCES", name)
		}
	})

	t.Run("Chmod", func(t *testing.T) {
		fusetest.WantErr(t, "chmod shared/f 0600", os.Chmod(p("shared/f"), 0o600), syscall.EPERM)
		fusetest.WantErr(t, "chmod shared/f 0644", os.Chmod(p("shared/f"), 0o644), syscall.EPERM)
		fusetest.WantErr(t, "chmod shared 0700", os.Chmod(p("shared"), 0o700), syscall.EPERM)
		fusetest.WantErr(t, "chown shared/f 2000", os.Chown(p("shared/f"), 2000, -1), syscall.EPERM)
		fusetest.WantErr(t, "chgrp shared/f 2000", os.Chown(p("shared/f"), -1, 2000), syscall.EPERM)
		// To the presented values: success, and the lower file is left
		// alone.
		fusetest.WantErr(t, "chmod shared/f 0640", os.Chmod(p("shared/f"), 0o640), 0)
		fusetest.WantErr(t, "chmod shared 0755", os.Chmod(p("shared"), 0o755), 0)
		fusetest.WantErr(t, "chown shared/f 1000:1000", os.Chown(p("shared/f"), 1000, 1000), 0)
		var err error
		fusetest.AsCaller(t, 1000, 1000, func() { err = os.Chmod(p("shared/f"), 0o640) })
		fusetest.WantErr(t, "uid 1000 chmod shared/f 0640", err, 0)
		fusetest.AsCaller(t, 1000, 1000, func() { err = os.Chmod(p("shared/f"), 0o666) })
		fusetest.WantErr(t, "uid 1000 chmod shared/f 0666", err, syscall.EPERM)
		for name, want := range map[string]os.FileMode{"shared": os.ModeDir | 0o700, "shared/f": 0o600} {
			fi, err := os.Stat(filepath.Join(low, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != want || fi.Sys().(*syscall.Stat_t).Uid != 0 {
				t.Errorf("lower %s: %v uid %d, want %v root", name, fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid, want)
			}
		}
		if fi, err := os.Stat(p("shared/f")); err != nil || fi.Mode() != 0o640 {
			t.Errorf("shared/f after the chmods: %v, want 0640", err)
		}
		// Outside the paths chmod works as usual.
		fusetest.WantErr(t, "chmod own", os.Chmod(p("own"), 0o644), 0)
		if fi, err := os.Stat(filepath.Join(low, "own")); err != nil || fi.Mode() != 0o644 {
			t.Errorf("lower own: %v, want mode 0644", err)
		}
	})
}
