// Package control is the control socket of a sievefs daemon: a unix socket
// on which `sievefs status` asks a running mount what it is doing.
//
// The daemon of the mount on MOUNTPOINT listens on
// SocketDir(uid)/<MOUNTPOINT escaped>.sock: /run/sievefs for a daemon run as
// root, $XDG_RUNTIME_DIR/sievefs (or /run/user/UID/sievefs) for another user.
// The directory is 0700 and the socket 0600, both owned by the daemon's
// user, and the daemon also checks each peer's credentials (SO_PEERCRED): only
// root and the daemon's own user are answered.
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

// SocketDir is the directory of the control sockets of daemons run by uid.
func SocketDir(uid int) string {
	if uid == 0 {
		return "/run/sievefs"
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" && uid == os.Getuid() {
		return filepath.Join(rt, "sievefs")
	}
	return filepath.Join("/run/user", strconv.Itoa(uid), "sievefs")
}

// SocketPath is the control socket of the mount on mountpoint (an absolute,
// resolved path) whose daemon runs as uid.
func SocketPath(mountpoint string, uid int) string {
	dir := SocketDir(uid)
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
