// Package control is the control socket of a sievefs daemon: a unix socket
// on which `sievefs status` asks a running mount what it is doing.
//
// The daemon of the mount on MOUNTPOINT listens on
// SocketDir(uid)/<MOUNTPOINT escaped>.sock: /run/sievefs for a daemon run as
// root; for another user, /run/user/UID/sievefs when the user's runtime
// directory is there, else /tmp/sievefs-UID (see SocketDirs). The directory
// is 0700 and the socket 0600, both owned by the daemon's user, and the
// daemon also checks each peer's credentials (SO_PEERCRED): only root and the
// daemon's own user are answered.
//
// The protocol is one JSON request line, {"cmd":"status"}, answered by one
// JSON line: a Status, or {"error":"…"}.
package control

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
)

// Status is a daemon's answer to a status request: the mount's status, the
// daemon's process id and, when it has one, its policy file and the error of
// its last failed reload (cleared by a successful one).
type Status struct {
	sievefs.Status
	PID         int    `json:"pid"`
	Policy      string `json:"policy,omitempty"`
	PolicyError string `json:"policy_error,omitempty"`
}

// Errors that Query wraps.
var (
	// ErrNoDaemon: no daemon listens for the mount (no socket, or a stale one).
	ErrNoDaemon = errors.New("no daemon answers on the control socket")
	// ErrPermission: the caller may not use the socket.
	ErrPermission = errors.New("permission denied: only root or the mounting user may query the daemon")
)

// maxSocketPath is the longest socket path: a socket address holds 107 bytes
// (sun_path less its NUL), and Listen first binds the path with ".PID" added.
const maxSocketPath = 107 - len(".4194304")

// Where the control sockets of daemons not run by root go: the user's
// runtime directory (systemd-logind makes /run/user/UID, 0700, at login), or
// else a directory of the user's own in /tmp. Variables for the tests.
var (
	runUserDir = "/run/user"
	tmpDir     = "/tmp"
)

// rootSocketDir holds the sockets of daemons run by root.
const rootSocketDir = "/run/sievefs"

// SocketDirs decides where the control sockets of daemons run by uid go:
// the directories to use, the one a daemon starting now takes first. It
// reads no environment (XDG_RUNTIME_DIR is unset under setpriv, cron and
// service managers, and root's differs), so that the daemon, the user's
// sessions and root agree on it. /run/user/UID counts only when it is a
// directory of uid that no one else may enter; /tmp/sievefs-UID is listed
// after it even then, for a daemon started before the user's runtime
// directory appeared (a cron job, then a login). checkDir vets the one in
// /tmp, which anyone could have made first.
func SocketDirs(uid int) []string {
	if uid == 0 {
		return []string{rootSocketDir}
	}
	id := strconv.Itoa(uid)
	tmp := filepath.Join(tmpDir, "sievefs-"+id)
	if rt := filepath.Join(runUserDir, id); checkDir(rt, uid) == nil {
		return []string{filepath.Join(rt, "sievefs"), tmp}
	}
	return []string{tmp}
}

// SocketDir is the directory in which a daemon run by uid starting now puts
// its control socket.
func SocketDir(uid int) string { return SocketDirs(uid)[0] }

// checkDir checks that dir is a directory (not a symlink) of uid that no one
// else may enter or change: a place where only uid and root put sockets.
func checkDir(dir string, uid int) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("control socket directory: %w", err)
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return fmt.Errorf("control socket directory %s is a symlink, not a directory: refused", dir)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("control socket directory %s is not a directory: refused", dir)
	case int(st.Uid) != uid:
		return fmt.Errorf("control socket directory %s belongs to uid %d, not to uid %d: refused (someone else made it; remove it)", dir, st.Uid, uid)
	case st.Mode&0o077 != 0:
		return fmt.Errorf("control socket directory %s has mode %04o: others may enter it", dir, st.Mode&0o7777)
	}
	return nil
}

// SocketPath is the control socket of the mount on mountpoint (an absolute,
// resolved path) whose daemon runs as uid and starts now.
func SocketPath(mountpoint string, uid int) string {
	return socketIn(SocketDir(uid), mountpoint)
}

// Locate returns the control socket of the running daemon of the mount on
// mountpoint, run by uid: the first socket of that name in the directories
// of SocketDirs, or the path a daemon starting now would take if there is
// none. A socket in a directory checkDir refuses is not used: the error
// says why.
func Locate(mountpoint string, uid int) (string, error) {
	for _, dir := range SocketDirs(uid) {
		p := socketIn(dir, mountpoint)
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if err := checkDir(dir, uid); err != nil {
			return "", err
		}
		return p, nil
	}
	return SocketPath(mountpoint, uid), nil
}

// socketIn is the socket of the mount on mountpoint in dir.
func socketIn(dir, mountpoint string) string {
	p := filepath.Join(dir, escape(mountpoint)+".sock")
	if len(p) > maxSocketPath {
		sum := sha256.Sum256([]byte(mountpoint))
		p = filepath.Join(dir, "sha256-"+hex.EncodeToString(sum[:16])+".sock")
	}
	return p
}

// escape turns a path into a file name as systemd-escape --path does:
// "/mnt/my-view" becomes "mnt-my\x2dview", "/" becomes "-".
func escape(path string) string {
	path = strings.Trim(filepath.Clean(path), "/")
	if path == "" {
		return "-"
	}
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_',
			c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}
