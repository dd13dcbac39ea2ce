package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
)

// queryTimeout bounds a whole query.
const queryTimeout = 5 * time.Second

// Query asks the daemon listening on the socket at path for its status. A
// socket that refuses connections was left by a daemon that died: Query
// removes it (when allowed to) and returns an error wrapping ErrNoDaemon.
func Query(path string) (*Status, error) {
	var before unix.Stat_t
	statErr := unix.Lstat(path, &before)
	c, err := net.DialTimeout("unix", path, queryTimeout)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("%w: %s does not exist (a mount made with the Go library or by an older sievefs has none)", ErrNoDaemon, path)
	case errors.Is(err, unix.ECONNREFUSED):
		removeIfSame(path, &before, statErr)
		return nil, fmt.Errorf("%w: stale control socket %s (its daemon died)", ErrNoDaemon, path)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return nil, fmt.Errorf("%w (socket %s)", ErrPermission, path)
	case err != nil:
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(queryTimeout))
	if _, err := c.Write([]byte(`{"cmd":"status"}` + "\n")); err != nil {
		return nil, fmt.Errorf("control socket %s: send: %w", path, err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, fmt.Errorf("control socket %s: the daemon did not answer within %v", path, queryTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("control socket %s: read: %w", path, err)
	}
	var reply struct {
		Error string `json:"error"`
		Status
	}
	if err := json.Unmarshal(line, &reply); err != nil {
		return nil, fmt.Errorf("control socket %s: bad reply: %w", path, err)
	}
	if reply.Error != "" {
		if strings.HasPrefix(reply.Error, "permission denied") {
			return nil, fmt.Errorf("%w (the daemon says: %s)", ErrPermission, reply.Error)
		}
		return nil, fmt.Errorf("control socket %s: the daemon says: %s", path, reply.Error)
	}
	return &reply.Status, nil
}

// removeIfSame removes the socket at path if it is still the file seen
// before (not a socket a new daemon has just put there).
func removeIfSame(path string, before *unix.Stat_t, statErr error) {
	var now unix.Stat_t
	if statErr == nil && unix.Lstat(path, &now) == nil && now.Dev == before.Dev && now.Ino == before.Ino {
		os.Remove(path)
	}
}

// Mount is a sievefs mount found in /proc/self/mountinfo.
type Mount struct {
	Mountpoint string
	Lower      string // the mount's source
	UID        int    // the user_id mount option: the mounting user
}

// States of an Entry.
const (
	StateRunning     = "running"     // the daemon answered
	StateDead        = "dead"        // the daemon is gone: the mount answers ENOTCONN
	StateUnreachable = "unreachable" // the daemon could not be asked (see Error)
)

// Entry is one sievefs mount as `sievefs status` shows it. In JSON, the
// daemon's Status keys sit beside mountpoint, lower, state and error.
type Entry struct {
	Mountpoint string `json:"mountpoint"`
	Lower      string `json:"lower"`
	State      string `json:"state"`
	Error      string `json:"error,omitempty"`
	// Status is the daemon's answer, when State is running. Its own
	// mountpoint and lower are shadowed by the fields above (equal to them).
	*Status
}

// Mounts lists the sievefs mounts of this mount namespace, in mount order:
// those of type fuse.sievefs, and FUSE mounts of another type (mounted with
// subtype=) that have a control socket.
func Mounts() ([]Mount, error) {
	all, err := sievefs.ReadMountinfo()
	if err != nil {
		return nil, err
	}
	var out []Mount
	for _, mi := range all {
		if !strings.HasPrefix(mi.FSType, "fuse.") {
			continue
		}
		m := Mount{Mountpoint: mi.Mountpoint, Lower: mi.Source}
		for _, o := range strings.Split(mi.SuperOptions, ",") {
			if v, ok := strings.CutPrefix(o, "user_id="); ok {
				m.UID, _ = strconv.Atoi(v)
			}
		}
		if mi.FSType == "fuse.sievefs" || hasSocket(m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// QueryMount asks the daemon of m for its status, on the socket Locate
// finds.
func QueryMount(m Mount) (*Status, error) {
	path, err := Locate(m.Mountpoint, m.UID)
	if err != nil {
		return nil, err
	}
	return Query(path)
}

// hasSocket reports whether m has a control socket: a view mounted with
// another subtype (fuse.NAME) is known by it.
func hasSocket(m Mount) bool {
	p, err := Locate(m.Mountpoint, m.UID)
	if err != nil {
		return false
	}
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().Type() == os.ModeSocket
}

// Inspect asks the daemon of m for its status, and says whether m is dead.
// It does not touch the mount unless the daemon fails to answer, so that a
// hung daemon cannot hang it.
func Inspect(m Mount) Entry {
	e := Entry{Mountpoint: m.Mountpoint, Lower: m.Lower}
	st, err := QueryMount(m)
	switch {
	case err == nil:
		e.State, e.Status = StateRunning, st
		e.Lower = st.Lower
	case Dead(m.Mountpoint):
		e.State = StateDead
		e.Error = "its daemon died (transport endpoint is not connected)"
	default:
		e.State, e.Error = StateUnreachable, err.Error()
	}
	return e
}

// deadTimeout bounds how long Dead waits for the kernel's answer.
const deadTimeout = 2 * time.Second

// Dead reports whether path is a FUSE mount whose daemon is gone. It asks
// statfs, which the kernel never answers from its cache (stat may succeed
// for a while after the daemon died, from cached attributes). A mount whose
// daemon is alive but does not answer within deadTimeout is not dead (and
// the goroutine asking stays blocked until it answers).
func Dead(path string) bool {
	res := make(chan error, 1)
	go func() {
		var st unix.Statfs_t
		res <- unix.Statfs(path, &st)
	}()
	select {
	case err := <-res:
		return err == unix.ENOTCONN
	case <-time.After(deadTimeout):
		return false
	}
}

// CleanStale removes the sockets in the socket directories of uid that
// refuse connections: those of daemons that died.
func CleanStale(uid int) {
	for _, dir := range SocketDirs(uid) {
		if checkDir(dir, uid) != nil {
			continue
		}
		names, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
		for _, p := range names {
			RemoveStale(p)
		}
	}
}

// RemoveStale removes the socket at path if it refuses connections: its
// daemon died without removing it (SIGKILL).
func RemoveStale(path string) {
	var before unix.Stat_t
	statErr := unix.Lstat(path, &before)
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
	} else if errors.Is(err, unix.ECONNREFUSED) {
		removeIfSame(path, &before, statErr)
	}
}
