// Package fusermount runs fusermount3, the set-user-ID helper of the fuse3
// package through which a user other than root mounts and unmounts FUSE
// filesystems: it mounts or unmounts as root, on a mountpoint the user may
// write and, for -u, only a mount that user made.
package fusermount

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
)

// ErrNotInstalled: neither fusermount3 nor the older fusermount is found.
var ErrNotInstalled = errors.New("fusermount3 is not installed (Debian package fuse3): a user other than root mounts and unmounts FUSE filesystems through it")

// Path returns the fusermount3 binary, or the older fusermount, looked for
// as go-fuse looks when it mounts: in PATH, then in /bin.
func Path() (string, error) {
	for _, name := range []string{"fusermount3", "/bin/fusermount3", "fusermount", "/bin/fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNotInstalled
}

// Unmount runs fusermount3 -u on mountpoint, with -z (detach it now even if
// it is in use) when lazy. The error carries fusermount3's message, and
// wraps EBUSY if the mount is in use (open files, or processes working in
// it).
func Unmount(mountpoint string, lazy bool) error {
	bin, err := Path()
	if err != nil {
		return err
	}
	args := []string{"-u", mountpoint}
	if lazy {
		args = []string{"-u", "-z", mountpoint}
	}
	cmd := exec.Command(bin, args...)
	// Messages in English, to tell "busy" apart; PATH for its own use.
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		if strings.Contains(msg, "Device or resource busy") {
			return fmt.Errorf("%w: %s", syscall.EBUSY, msg)
		}
		return fmt.Errorf("%s -u: %s", bin, msg)
	}
	return nil
}
