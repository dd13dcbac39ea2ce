package main

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
)

// TestBadInput runs the real binary on bad input: each case must exit with
// the documented code, say what is wrong on stderr, and leave nothing
// mounted.
func TestBadInput(t *testing.T) {
	requireFuse(t)
	type paths struct{ base, lower, mnt string }
	// dirs makes base/lower and base/mnt (both directories).
	dirs := func(t *testing.T) paths {
		base, err := filepath.EvalSymlinks(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		p := paths{base, filepath.Join(base, "lower"), filepath.Join(base, "mnt")}
		for _, d := range []string{p.lower, p.mnt} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	file := func(t *testing.T, path string) {
		if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		// args returns the arguments after setting up p.
		args func(t *testing.T, p paths) []string
		code int
		// want are substrings of stderr; %L and %M stand for the lower
		// directory and the mountpoint given.
		want []string
	}{
		{
			name: "LowerMissing",
			args: func(t *testing.T, p paths) []string {
				os.Remove(p.lower)
				return []string{"mount", p.lower, p.mnt}
			},
			code: exitBadLower,
			want: []string{"bad lower directory", "%L", "no such file or directory"},
		},
		{
			name: "LowerIsFile",
			args: func(t *testing.T, p paths) []string {
				os.Remove(p.lower)
				file(t, p.lower)
				return []string{"mount", p.lower, p.mnt}
			},
			code: exitBadLower,
			want: []string{"bad lower directory", "%L", "not a directory"},
		},
		{
			name: "MountpointMissing",
			args: func(t *testing.T, p paths) []string {
				os.Remove(p.mnt)
				return []string{"mount", p.lower, p.mnt}
			},
			code: exitBadMountpoint,
			want: []string{"bad mountpoint", "%M", "no such file or directory"},
		},
		{
			name: "MountpointIsFile",
			args: func(t *testing.T, p paths) []string {
				os.Remove(p.mnt)
				file(t, p.mnt)
				return []string{"mount", p.lower, p.mnt}
			},
			code: exitBadMountpoint,
			want: []string{"bad mountpoint", "%M", "not a directory"},
		},
		{
			name: "MountpointBusy",
			args: func(t *testing.T, p paths) []string {
				if err := syscall.Mount("tmpfs", p.mnt, "tmpfs", 0, "size=1m"); err != nil {
					t.Fatalf("mount tmpfs: %v", err)
				}
				t.Cleanup(func() {
					if err := syscall.Unmount(p.mnt, 0); err != nil {
						t.Errorf("unmount tmpfs: %v", err)
					}
				})
				file(t, filepath.Join(p.mnt, "in-use"))
				return []string{"mount", p.lower, p.mnt}
			},
			code: exitMountpointBusy,
			want: []string{"already a mount in use", "%M"},
		},
		{
			name: "MountpointInsideLower",
			args: func(t *testing.T, p paths) []string {
				inner := filepath.Join(p.lower, "sub")
				if err := os.Mkdir(inner, 0o755); err != nil {
					t.Fatal(err)
				}
				return []string{"mount", p.lower, inner}
			},
			code: exitStackingLoop,
			want: []string{"overlap", "%L"},
		},
		{
			name: "LowerInsideMountpoint",
			args: func(t *testing.T, p paths) []string {
				inner := filepath.Join(p.mnt, "sub")
				if err := os.Mkdir(inner, 0o755); err != nil {
					t.Fatal(err)
				}
				return []string{"mount", inner, p.mnt}
			},
			code: exitStackingLoop,
			want: []string{"overlap", "%M"},
		},
		{
			name: "LowerIsMountpoint",
			args: func(t *testing.T, p paths) []string { return []string{"mount", p.lower, p.lower} },
			code: exitStackingLoop,
			want: []string{"overlap", "%L"},
		},
		{
			name: "LowerIsMountpointViaSymlink",
			args: func(t *testing.T, p paths) []string {
				link := filepath.Join(p.base, "link")
				if err := os.Symlink(p.lower, link); err != nil {
					t.Fatal(err)
				}
				return []string{"mount", p.lower, link}
			},
			code: exitStackingLoop,
			want: []string{"overlap"},
		},
		{
			name: "UnknownDashO",
			args: func(t *testing.T, p paths) []string { return []string{"mount", "-o", "bogus", p.lower, p.mnt} },
			code: exitUsage,
			want: []string{"sievefs mount: unknown mount option \"bogus\"\nRun 'sievefs mount --help' for usage.\n"},
		},
		{
			name: "UnknownDashOAmongKnown",
			args: func(t *testing.T, p paths) []string {
				return []string{"mount", p.lower, p.mnt, "-o", "ro,bogus=1,allow_other"}
			},
			code: exitUsage,
			want: []string{`unknown mount option "bogus"`},
		},
		{
			name: "UnknownFlag",
			args: func(t *testing.T, p paths) []string { return []string{"mount", "--bogus", p.lower, p.mnt} },
			code: exitUsage,
			want: []string{"sievefs mount: unknown flag --bogus\nRun 'sievefs mount --help' for usage.\n"},
		},
		{
			name: "OneArg",
			args: func(t *testing.T, p paths) []string { return []string{"mount", p.lower} },
			code: exitUsage,
			want: []string{"want LOWER and MOUNTPOINT, got 1 arguments\nRun 'sievefs mount --help' for usage.\n"},
		},
		{
			name: "ThreeArgs",
			args: func(t *testing.T, p paths) []string { return []string{"mount", p.lower, p.mnt, p.mnt} },
			code: exitUsage,
			want: []string{"want LOWER and MOUNTPOINT, got 3 arguments"},
		},
		{
			name: "NoMountArgs",
			args: func(t *testing.T, p paths) []string { return []string{"mount"} },
			code: exitUsage,
			want: []string{"got 0 arguments"},
		},
		{
			name: "NoArgs",
			args: func(t *testing.T, p paths) []string { return nil },
			code: exitUsage,
			want: []string{"usage:"},
		},
		{
			name: "UnknownCommand",
			args: func(t *testing.T, p paths) []string { return []string{"frobnicate", p.lower, p.mnt} },
			code: exitUsage,
			want: []string{`unknown command "frobnicate"`},
		},
		{
			name: "BadPassthrough",
			args: func(t *testing.T, p paths) []string {
				return []string{"mount", "--passthrough", "maybe", p.lower, p.mnt}
			},
			code: exitUsage,
			want: []string{`invalid value "maybe" for --passthrough`, "want auto, off or require"},
		},
		{
			name: "BadPassthroughDashO",
			args: func(t *testing.T, p paths) []string {
				return []string{"mount", "-o", "passthrough=maybe", p.lower, p.mnt}
			},
			code: exitUsage,
			want: []string{"passthrough", "want auto, off or require"},
		},
		{
			name: "BadCache",
			args: func(t *testing.T, p paths) []string { return []string{"mount", "--cache=sometimes", p.lower, p.mnt} },
			code: exitUsage,
			want: []string{"want auto, watch, always or never"},
		},
		{
			name: "BadLogFormat",
			args: func(t *testing.T, p paths) []string { return []string{"mount", "--log-format=xml", p.lower, p.mnt} },
			code: exitUsage,
			want: []string{"log format", "xml"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := dirs(t)
			args := c.args(t, p)
			var lower, mnt string
			if n := len(args); n >= 3 && args[0] == "mount" {
				lower, mnt = args[n-2], args[n-1]
			}
			r := runBinary(t, args...)
			if r.code != c.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", r.code, c.code, r.stderr)
			}
			for _, w := range c.want {
				w = strings.NewReplacer("%L", lower, "%M", mnt).Replace(w)
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if m := sievefsMountsUnder(p.base); len(m) > 0 {
				t.Errorf("left mounted: %+v", m)
				for _, mm := range m {
					unix.Unmount(mm.Point, unix.MNT_DETACH)
				}
			}
		})
	}

	t.Run("MountpointBusyStaysMounted", func(t *testing.T) {
		p := dirs(t)
		if err := syscall.Mount("tmpfs", p.mnt, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatalf("mount tmpfs: %v", err)
		}
		t.Cleanup(func() { syscall.Unmount(p.mnt, 0) })
		runBinary(t, "mount", p.lower, p.mnt)
		n := 0
		for _, m := range mounts() {
			if m.Point == p.mnt {
				n++
				if m.FSType != "tmpfs" {
					t.Errorf("%s mounted on the busy mountpoint", m.FSType)
				}
			}
		}
		if n != 1 {
			t.Errorf("%d mounts on the mountpoint, want the tmpfs only", n)
		}
	})

	// /dev/fuse is hidden in a private mount namespace by a tmpfs on /dev.
	t.Run("NoDevFuse", func(t *testing.T) {
		p := dirs(t)
		cmd := exec.Command("/bin/sh", "-c", `mount -t tmpfs none /dev && exec "$0" mount "$1" "$2"`,
			binary(t), p.lower, p.mnt)
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Skipf("cannot run in a private mount namespace: %v", err)
		}
		if code := cmd.ProcessState.ExitCode(); code != exitNoFuse {
			t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitNoFuse, stderr.String())
		}
		if !strings.Contains(stderr.String(), "/dev/fuse") {
			t.Errorf("stderr does not name /dev/fuse:\n%s", stderr.String())
		}
	})
}

// TestSignalsAndOutsideUmount checks that SIGTERM and SIGINT unmount and exit
// 0, and that an unmount from outside makes the daemon exit 0.
func TestSignalsAndOutsideUmount(t *testing.T) {
	requireFuse(t)
	setup := func(t *testing.T) (lower, mnt string, d *daemon) {
		base, err := filepath.EvalSymlinks(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		lower, mnt = filepath.Join(base, "lower"), filepath.Join(base, "mnt")
		for _, dir := range []string{lower, mnt} {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		d = startMount(t, lower, mnt)
		if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("through the mount"), 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(lower, "f")); err != nil || string(b) != "through the mount" {
			t.Fatalf("write through the mount did not reach the lower dir: %q, %v", b, err)
		}
		return lower, mnt, d
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			_, mnt, d := setup(t)
			if err := d.Cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := d.Wait(t, 10*time.Second); code != exitOK {
				t.Errorf("exit code %d, want 0; stderr:\n%s", code, d.Stderr)
			}
			if mountedOn(mnt) {
				t.Error("still mounted after the daemon exited")
			}
			if !strings.Contains(d.Stderr.String(), "unmounting") {
				t.Errorf("log does not say it is unmounting:\n%s", d.Stderr)
			}
		})
	}
	t.Run("SIGTERMWhileFileOpen", func(t *testing.T) {
		_, mnt, d := setup(t)
		f, err := os.Open(filepath.Join(mnt, "f"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		d.Cmd.Process.Signal(syscall.SIGTERM)
		if code := d.Wait(t, 10*time.Second); code != exitOK {
			t.Errorf("exit code %d, want 0; stderr:\n%s", code, d.Stderr)
		}
		if mountedOn(mnt) {
			t.Error("still mounted after the daemon exited")
		}
	})
	t.Run("OutsideUmount", func(t *testing.T) {
		_, mnt, d := setup(t)
		umount := exec.Command("umount", mnt)
		if out, err := umount.CombinedOutput(); err != nil {
			t.Logf("umount(8): %v %s; using umount(2)", err, out)
			if err := syscall.Unmount(mnt, 0); err != nil {
				t.Fatal(err)
			}
		}
		if code := d.Wait(t, 10*time.Second); code != exitOK {
			t.Errorf("exit code %d, want 0; stderr:\n%s", code, d.Stderr)
		}
		if mountedOn(mnt) {
			t.Error("still mounted")
		}
		if !strings.Contains(d.Stderr.String(), "unmounted from outside") {
			t.Errorf("log does not say it was unmounted from outside:\n%s", d.Stderr)
		}
	})
}
