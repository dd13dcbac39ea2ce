package sievefs

import (
	"container/list"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/internal/lower"
)

// The descriptor budget. The daemon holds descriptors for what callers keep
// open, and a caller can keep tens of thousands open while the daemon's hard
// RLIMIT_NOFILE cannot be raised (20,000 where sievefs is measured). Left
// unbounded, one caller holding ~20,000 daemon-served opens would leave the
// daemon unable to open anything, and every other caller would get EMFILE.
// So Options.MaxFDs (by default the limit itself) is split:
//
//   - the inode table's O_PATH descriptors: Options.MaxInodeFDs, by default
//     half; an evicted inode is reopened by file handle (see lower);
//   - a reserve for descriptors held for the length of one request (an
//     fsync of a passthrough file, a lookup's O_PATH open), the FUSE device,
//     sockets and logs;
//   - open directories: their descriptors sit in a bounded LRU (dirFDs); an
//     evicted one is reopened by handle at its next READDIR, which seeks to
//     the offset the kernel asks for (directory offsets are cookies the
//     filesystem honours on any open of the directory);
//   - the rest is for descriptors that cannot be given back while their open
//     lives: a daemon-served open holds its lower file (which may be
//     unlinked, and would be lost if closed), a flock on a passthrough open
//     holds a descriptor of its own. These are counted per caller uid
//     (heldFDs): past a user's share the open or flock fails with EMFILE
//     (ENOLCK for flock) for that user alone, and past the whole pool with
//     ENFILE.
type fdBudget struct {
	Total, Inodes, Reserve, Dirs, Held, PerUser int
}

// newFDBudget splits total descriptors (the process limit when 0), giving
// the inode table inodes (half of total when 0).
func newFDBudget(total, inodes int) fdBudget {
	if total <= 0 {
		var rl unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil {
			total = int(min(rl.Cur, 1<<30))
		}
	}
	total = max(total, 64)
	if inodes <= 0 {
		inodes = total / 2
	}
	b := fdBudget{Total: total, Inodes: inodes, Reserve: min(512, total/8)}
	rest := max(total-b.Inodes-b.Reserve, 8)
	b.Dirs = max(4, rest/8)
	b.Held = max(4, rest-b.Dirs)
	b.PerUser = max(1, b.Held/4)
	return b
}

// heldFDs counts the descriptors held for callers' opens, per uid.
type heldFDs struct {
	max, perUser int
	refused      atomic.Uint64

	mu     sync.Mutex
	total  int
	byUser map[uint32]int
}

func newHeldFDs(max, perUser int) *heldFDs {
	return &heldFDs{max: max, perUser: perUser, byUser: make(map[uint32]int)}
}

// take counts one more descriptor held for uid: EMFILE past the user's
// share, ENFILE past the pool.
func (h *heldFDs) take(uid uint32) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.byUser[uid] >= h.perUser:
		h.refused.Add(1)
		return syscall.EMFILE
	case h.total >= h.max:
		h.refused.Add(1)
		return syscall.ENFILE
	}
	h.byUser[uid]++
	h.total++
	return 0
}

// give ends one take.
func (h *heldFDs) give(uid uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byUser[uid]--; h.byUser[uid] <= 0 {
		delete(h.byUser, uid)
	}
	h.total--
}

// usage returns how many descriptors are held and by how many users.
func (h *heldFDs) usage() (total, users int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total, len(h.byUser)
}

// dirFDs bounds the descriptors of open directories: at most max, the least
// recently used idle ones closed first. A dirHandle is idle, and on the
// idle list, while it holds a descriptor and no READDIR uses it; only idle
// handles lose theirs. Its descriptor and idle element are guarded by mu;
// a handle in use keeps its descriptor until release.
type dirFDs struct {
	max     int
	evicted atomic.Uint64

	mu   sync.Mutex
	n    int       // descriptors held (idle or in use)
	idle list.List // of *dirHandle, most recently used first
}

// acquire makes sure d has a descriptor (opened by open if it lost it, or
// never had one; its listing then starts again at offset 0) and takes d off
// the idle list until release. Idle descriptors of other handles are closed
// to stay within max. One request uses a handle at a time (READDIR on one
// open directory is serialized by the kernel).
func (c *dirFDs) acquire(d *dirHandle, open func() (*lower.File, error)) error {
	c.mu.Lock()
	c.unlist(d)
	if d.dir != nil {
		c.mu.Unlock()
		return nil
	}
	victims := c.makeRoom()
	c.n++
	c.mu.Unlock()
	for _, v := range victims {
		v.Close()
	}
	dir, err := open()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.n--
		return err
	}
	d.dir = dir
	d.pos, d.end, d.off, d.eof = 0, 0, 0, false
	return nil
}

// makeRoom takes idle handles off the list, least recently used first,
// until one more descriptor fits, and returns their files for the caller to
// close. Caller holds c.mu.
func (c *dirFDs) makeRoom() []*lower.File {
	var victims []*lower.File
	for c.n >= c.max && c.idle.Len() > 0 {
		v := c.idle.Back().Value.(*dirHandle)
		c.unlist(v)
		victims = append(victims, v.dir)
		v.dir, v.buf = nil, nil
		c.n--
		c.evicted.Add(1)
	}
	return victims
}

// release puts d, done with its descriptor for now, first on the idle list.
func (c *dirFDs) release(d *dirHandle) {
	c.mu.Lock()
	if d.dir != nil && d.idle == nil {
		d.idle = c.idle.PushFront(d)
	}
	c.mu.Unlock()
}

// forget drops d for good, closing its descriptor.
func (c *dirFDs) forget(d *dirHandle) {
	c.mu.Lock()
	c.unlist(d)
	dir := d.dir
	if dir != nil {
		c.n--
	}
	d.dir, d.buf = nil, nil
	c.mu.Unlock()
	dir.Close()
}

// unlist takes d off the idle list if it is there. Caller holds c.mu.
func (c *dirFDs) unlist(d *dirHandle) {
	if d.idle != nil {
		c.idle.Remove(d.idle)
		d.idle = nil
	}
}

// held returns how many directory descriptors are open.
func (c *dirFDs) held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
