package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/control"
	"github.com/sievefs/sievefs/internal/fusermount"
)

// runUmount unmounts a sievefs mount and waits for its daemon to exit.
func runUmount(args []string, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("sievefs umount", flag.ContinueOnError)
	f.SetOutput(stderr)
	lazy := f.Bool("lazy", false, "if the mount is busy, detach it anyway (MNT_DETACH); its daemon exits when the last open file is closed")
	timeout := f.Duration("timeout", 30*time.Second, "how long to wait for the daemon to exit")
	pos, code, done := parseCommand(f, "sievefs umount [--lazy] [--timeout D] MOUNTPOINT", args, stdout, stderr)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "sievefs umount: want MOUNTPOINT, got %d arguments\n", len(pos))
		f.Usage()
		return exitUsage
	}
	m, err := findMount(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "sievefs umount: %v\n", err)
		return exitFailure
	}
	// Ask the daemon for its pid before unmounting, and hold it by a pidfd,
	// so that the wait below cannot be fooled by the pid being reused. It
	// answers only root and its own user; unmount says why another may not.
	pidfd := -1
	if uid := os.Geteuid(); uid == 0 || uid == m.UID {
		pidfd = daemonPidfd(m, stderr)
	}
	if pidfd >= 0 {
		defer unix.Close(pidfd)
	}
	if err := unmount(m, *lazy); errors.Is(err, unix.EBUSY) && !*lazy {
		fmt.Fprintf(stderr, "sievefs umount: %s is busy (open files, or processes working in it); close them, or use --lazy to detach it now\n", m.Mountpoint)
		return exitFailure
	} else if err != nil {
		fmt.Fprintf(stderr, "sievefs umount: %v\n", err)
		return exitFailure
	}
	if pidfd >= 0 {
		if err := waitExit(pidfd, *timeout); err != nil {
			fmt.Fprintf(stderr, "sievefs umount: %s unmounted, but its daemon: %v\n", m.Mountpoint, err)
			return exitFailure
		}
	}
	return exitOK
}

// daemonPidfd returns a pidfd of the daemon of m, or -1 after saying why
// there is none (unless the mount is dead: its daemon is gone).
func daemonPidfd(m control.Mount, stderr io.Writer) int {
	st, err := control.QueryMount(m)
	if err == nil {
		fd, perr := unix.PidfdOpen(st.PID, 0)
		if perr == nil {
			return fd
		}
		err = fmt.Errorf("pidfd_open %d: %w", st.PID, perr)
	}
	if !control.Dead(m.Mountpoint) {
		fmt.Fprintf(stderr, "sievefs umount: %v; not waiting for the daemon\n", err)
	}
	return -1
}

// unmount unmounts m, detaching it even if it is busy when lazy; a busy
// mount is otherwise an error wrapping EBUSY. Root unmounts with umount(2);
// a user without the right to (EPERM) through fusermount3, which unmounts
// the FUSE mounts that user made.
func unmount(m control.Mount, lazy bool) error {
	err := unix.Unmount(m.Mountpoint, 0)
	if errors.Is(err, unix.EBUSY) && lazy {
		err = unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
	}
	if !errors.Is(err, unix.EPERM) {
		if err != nil {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
		return nil
	}
	if uid := os.Geteuid(); m.UID != uid {
		return fmt.Errorf("unmount %s: %w: it was mounted by uid %d, and only root or that user may unmount it (you are uid %d)", m.Mountpoint, err, m.UID, uid)
	}
	err = fusermount.Unmount(m.Mountpoint, false)
	if errors.Is(err, unix.EBUSY) && lazy {
		err = fusermount.Unmount(m.Mountpoint, true)
	}
	if errors.Is(err, fusermount.ErrNotInstalled) {
		return fmt.Errorf("unmount %s: umount(2) needs root, and %w", m.Mountpoint, err)
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
	}
	return nil
}

// waitExit waits until the process of pidfd exits, at most timeout.
func waitExit(pidfd int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("did not exit within %v", timeout)
		}
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for exit: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
}

// findMount returns the sievefs mount on path (the topmost, if several).
func findMount(path string) (control.Mount, error) {
	mounts, err := control.Mounts()
	if err != nil {
		return control.Mount{}, err
	}
	mnt := resolveMountpoint(path, mounts)
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].Mountpoint == mnt {
			return mounts[i], nil
		}
	}
	return control.Mount{}, fmt.Errorf("%s is not a sievefs mount", path)
}

// resolveMountpoint makes path absolute with symlinks resolved. A path that
// is a mountpoint as written is not touched (a dead mount answers ENOTCONN,
// a hung one does not answer).
func resolveMountpoint(path string, mounts []control.Mount) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	for _, m := range mounts {
		if m.Mountpoint == abs {
			return abs
		}
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}
