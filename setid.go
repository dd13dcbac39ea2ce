package sievefs

import (
	"fmt"
	"runtime"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/internal/lower"
)

// Set-ID bits. A write or truncate by anyone without CAP_FSETID clears the
// set-user-ID bit, and the set-group-ID bit of a group-executable file, so
// that a writer cannot leave content of its own in a program that runs with
// another's rights. With FUSE_HANDLE_KILLPRIV_V2 the kernel leaves this to
// the daemon:
//   - daemon-served writes and truncates come flagged (WRITE_KILL_SUIDGID,
//     FATTR_KILL_SUIDGID, OPEN_KILL_SUIDGID) and killPriv clears the bits;
//   - passthrough writes never reach the daemon. The kernel performs them
//     with the credentials the daemon had when it registered the backing
//     file, so the daemon registers every backing file with CAP_FSETID
//     dropped (noFsetid): the lower filesystem then clears the bits on every
//     passthrough write, as it would for an unprivileged writer, whoever
//     opened the file and whenever the bits were set. Root's writes through
//     passthrough clear them too, where natively they would not.

// privileged reports whether a write by an unprivileged caller must clear
// bits of mode: set-user-ID, or set-group-ID with group execute.
func privileged(mode uint32) bool {
	return mode&unix.S_ISUID != 0 || mode&(unix.S_ISGID|unix.S_IXGRP) == unix.S_ISGID|unix.S_IXGRP
}

// killPriv clears set-user-ID and set-group-ID bits as an unprivileged
// write or truncate does (the kernel leaves this to the daemon with
// FUSE_HANDLE_KILLPRIV_V2).
func (fs *fileSystem) killPriv(ino *lower.Inode) {
	var st unix.Stat_t
	if err := fs.tree.Stat(ino, &st); err != nil || !privileged(st.Mode) {
		return
	}
	mode := st.Mode &^ unix.S_ISUID
	if mode&unix.S_IXGRP != 0 {
		mode &^= unix.S_ISGID
	}
	if err := fs.tree.Chmod(ino, mode&07777); err != nil {
		fs.log.Warn("clearing set-ID bits", "inode", ino.ID, "err", err)
	}
}

// noFsetid registers backing files with CAP_FSETID dropped from the
// registering thread's effective capabilities (see the set-ID notes above).
type noFsetid struct{ conn connection }

// RegisterBackingFd registers m's descriptor as a backing file.
func (r noFsetid) RegisterBackingFd(m *fuse.BackingMap) (int32, syscall.Errno) {
	runtime.LockOSThread()
	restore, err := dropCap(unix.CAP_FSETID)
	if err != nil {
		runtime.UnlockOSThread()
		// Without the drop, passthrough writes would keep set-ID bits:
		// the open is served by the daemon instead.
		return 0, unix.EPERM
	}
	id, errno := r.conn.RegisterBackingFd(m)
	if restore() == nil {
		runtime.UnlockOSThread()
	}
	// Else the thread stays locked to this goroutine and ends with it,
	// so that no other code runs without CAP_FSETID.
	return id, errno
}

// UnregisterBackingFd closes a backing file.
func (r noFsetid) UnregisterBackingFd(id int32) syscall.Errno {
	return r.conn.UnregisterBackingFd(id)
}

// dropCap removes capability c from the calling thread's effective set and
// returns the function that puts it back. The caller holds the thread
// (runtime.LockOSThread) until then.
func dropCap(c int) (restore func() error, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil, fmt.Errorf("capget: %w", err)
	}
	saved := data
	data[c/32].Effective &^= 1 << (c % 32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return nil, fmt.Errorf("capset: %w", err)
	}
	return func() error {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		return unix.Capset(&hdr, &saved[0])
	}, nil
}
