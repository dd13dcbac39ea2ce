package sievefs_test

// Tests of the mount flags a view is mounted with (Options.NoExec, Suid,
// Dev, Atime, NoDirAtime, NoSymFollow, ReadOnly): each must show in
// /proc/self/mountinfo and take effect.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// script is a shell script that prints "ran".
const script = "#!/bin/sh\necho ran\n"

// checkFlags fails the test unless the mount on mnt has every flag of want
// and none of absent.
func checkFlags(t testing.TB, mnt string, want, absent []string) {
	t.Helper()
	got := fusetest.MountFlags(t, mnt)
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("mount flags %v lack %s", got, w)
		}
	}
	for _, a := range absent {
		if slices.Contains(got, a) {
			t.Errorf("mount flags %v have %s", got, a)
		}
	}
}

func init() { fusetest.Helper("exec", execHelper) }

// runProgram executes path with args from a child process and returns its
// output, or the name of the errno that executing it failed with. The test
// process serves the view: were it to fork and exec a file on it itself, the
// forking thread would hold up the Go runtime while the kernel waits for the
// daemon to answer, and both would hang.
func runProgram(t testing.TB, path string, args ...string) (out, errno string) {
	t.Helper()
	res := fusetest.RunHelper(t, "exec", append([]string{path}, args...)...)
	if e, ok := strings.CutPrefix(res, "error "); ok {
		return "", e
	}
	return strings.TrimPrefix(res, "ok "), ""
}

// execHelper executes args[0] with the rest as arguments directly (no PATH
// lookup, no access(2) check first, so that an error is execve's own) and
// prints "ok OUTPUT" or "error ERRNO".
func execHelper(args []string) error {
	cmd := &exec.Cmd{Path: args[0], Args: args}
	out, err := cmd.Output()
	if err != nil {
		fmt.Print("error ", fusetest.ErrnoName(err))
		return nil
	}
	fmt.Print("ok ", string(out))
	return nil
}

func TestMountNoExec(t *testing.T) {
	fusetest.RequireFuse(t)
	low := t.TempDir()
	if err := os.WriteFile(filepath.Join(low, "s.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Run("Default", func(t *testing.T) {
		v := fusetest.MountLower(t, low, sievefs.Options{})
		checkFlags(t, v.Mnt, []string{"rw", "nosuid", "nodev"}, []string{"noexec"})
		if out, errno := runProgram(t, v.Path("s.sh")); errno != "" || out != "ran\n" {
			t.Errorf("script on the view: %q, %s", out, errno)
		}
	})
	t.Run("NoExec", func(t *testing.T) {
		v := fusetest.MountLower(t, low, sievefs.Options{NoExec: true})
		checkFlags(t, v.Mnt, []string{"noexec", "nosuid", "nodev"}, nil)
		if out, errno := runProgram(t, v.Path("s.sh")); errno != "EACCES" {
			t.Errorf("script on a noexec view: %q, %q; want EACCES", out, errno)
		}
		// Still readable: only execution is refused.
		if b := fusetest.ReadFile(t, v.Path("s.sh")); string(b) != script {
			t.Errorf("read %q", b)
		}
	})
}

// TestMountSuidDev checks that a view is nosuid,nodev by default and that
// Suid and Dev lift that for a daemon running as root: a set-user-ID
// program runs as its owner and a device node opens.
func TestMountSuidDev(t *testing.T) {
	fusetest.RequireFuse(t)
	low := t.TempDir()
	// id owned by nobody and set-user-ID: run by root on a suid mount it
	// prints nobody's uid.
	idBin, err := exec.LookPath("id")
	if err != nil {
		t.Skip("no id program")
	}
	fusetest.WriteFile(t, filepath.Join(low, "id"), fusetest.ReadFile(t, idBin))
	if err := os.Chown(filepath.Join(low, "id"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(low, "id"), os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	// The null device (1, 3).
	if err := unix.Mknod(filepath.Join(low, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		opts     sievefs.Options
		want     []string
		absent   []string
		euid     string
		devErrno error
	}{
		{"Default", sievefs.Options{}, []string{"nosuid", "nodev"}, nil, "0", syscall.EACCES},
		{"Suid", sievefs.Options{Suid: true}, []string{"nodev"}, []string{"nosuid"}, "65534", syscall.EACCES},
		{"Dev", sievefs.Options{Dev: true}, []string{"nosuid"}, []string{"nodev"}, "0", nil},
		{"SuidDev", sievefs.Options{Suid: true, Dev: true}, nil, []string{"nosuid", "nodev"}, "65534", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := fusetest.MountLower(t, low, c.opts)
			checkFlags(t, v.Mnt, c.want, c.absent)
			if out, errno := runProgram(t, v.Path("id"), "-u"); errno != "" || strings.TrimSpace(out) != c.euid {
				t.Errorf("set-user-ID id -u on the view: %q, %s; want %s", out, errno, c.euid)
			}
			f, err := os.OpenFile(v.Path("null"), os.O_WRONLY, 0)
			if err == nil {
				f.Close()
			}
			if c.devErrno == nil && err != nil || c.devErrno != nil && !errors.Is(err, c.devErrno) {
				t.Errorf("open the device node on the view: %v; want %v", err, c.devErrno)
			}
		})
	}
}

// TestMountAtimeFlags checks that the atime, nosymfollow and ro flags reach
// the mount.
func TestMountAtimeFlags(t *testing.T) {
	fusetest.RequireFuse(t)
	low := t.TempDir()
	fusetest.WriteFile(t, filepath.Join(low, "f"), []byte("data"))
	if err := os.Symlink("f", filepath.Join(low, "link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name         string
		opts         sievefs.Options
		want, absent []string
	}{
		{"Default", sievefs.Options{}, []string{"relatime"}, []string{"noatime", "nodiratime", "nosymfollow"}},
		{"Relatime", sievefs.Options{Atime: sievefs.AtimeRelative}, []string{"relatime"}, []string{"noatime"}},
		{"Noatime", sievefs.Options{Atime: sievefs.AtimeNever}, []string{"noatime"}, []string{"relatime"}},
		// strictatime is the absence of both.
		{"Strictatime", sievefs.Options{Atime: sievefs.AtimeStrict}, nil, []string{"relatime", "noatime"}},
		{"Nodiratime", sievefs.Options{NoDirAtime: true}, []string{"nodiratime", "relatime"}, nil},
		{"Nosymfollow", sievefs.Options{NoSymFollow: true}, []string{"nosymfollow"}, nil},
		{"ReadOnly", sievefs.Options{ReadOnly: true, NoExec: true, Atime: sievefs.AtimeNever},
			[]string{"ro", "noexec", "noatime", "nosuid", "nodev"}, []string{"rw"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := fusetest.MountLower(t, low, c.opts)
			checkFlags(t, v.Mnt, c.want, c.absent)
			_, err := os.ReadFile(v.Path("link"))
			if c.opts.NoSymFollow {
				if !errors.Is(err, syscall.ELOOP) {
					t.Errorf("open through a symlink on a nosymfollow view: %v; want ELOOP", err)
				}
				if target, err := os.Readlink(v.Path("link")); err != nil || target != "f" {
					t.Errorf("readlink on a nosymfollow view: %q, %v", target, err)
				}
			} else if err != nil {
				t.Errorf("open through a symlink: %v", err)
			}
			err = os.WriteFile(v.Path("new"), nil, 0o644)
			if c.opts.ReadOnly != errors.Is(err, syscall.EROFS) {
				t.Errorf("create on the view: %v (read-only %v)", err, c.opts.ReadOnly)
			}
		})
	}
}

// TestMountBadAtime checks that an unknown atime mode is refused before
// anything is mounted.
func TestMountBadAtime(t *testing.T) {
	fusetest.RequireFuse(t)
	low, mnt := t.TempDir(), t.TempDir()
	m, err := sievefs.MountView(low, mnt, sievefs.Options{Atime: "sometimes"})
	if err == nil {
		m.Unmount()
		t.Fatal("mounted with atime mode \"sometimes\"")
	}
	if !errors.Is(err, sievefs.ErrMountOption) || !strings.Contains(err.Error(), `"sometimes"`) {
		t.Errorf("error %v; want ErrMountOption naming the mode", err)
	}
	if fusetest.SievefsMounted(mnt) {
		t.Error("mounted after the error")
	}
}
