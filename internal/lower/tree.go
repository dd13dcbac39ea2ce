// Package lower is the only code that touches the lower filesystem.
//
// A Tree holds the inode table of one lower directory. Every inode the kernel
// knows is identified by its (dev, ino) key and, where the filesystem supports
// it, by a file handle (name_to_handle_at). Operations are *at system calls
// relative to an O_PATH descriptor of the inode; names are single path
// components and are never followed when they are symlinks. No path string is
// ever joined onto the root.
//
// Descriptors are kept in a bounded LRU cache (see fdCache): the kernel may
// know millions of inodes while the process may hold only RLIMIT_NOFILE
// descriptors. An inode whose descriptor was evicted is reopened by handle
// (open_by_handle_at). An inode without a usable handle (a filesystem without
// export support, a submount, no CAP_DAC_READ_SEARCH) keeps its descriptor
// pinned for as long as the kernel knows it.
//
// Lock order: Tree.mu, then fdCache.mu. Neither is held during a system call
// that may block on the lower filesystem, except the short close of evicted
// descriptors, which happens after both are released.
package lower

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// RootID is the node ID of the lower root, as FUSE numbers it.
const RootID = 1

// Key identifies an inode on the lower filesystem.
type Key struct {
	Dev uint64
	Ino uint64
}

// Inode is one entry of the inode table. Its fields are ordered to keep it
// small: the kernel may cache millions of inodes.
type Inode struct {
	// ID is the FUSE node ID; it is never reused while the Tree lives.
	ID uint64
	// Key is the lower (dev, ino) of the inode.
	Key Key

	handle unix.FileHandle // valid only if handleValid

	loc atomic.Pointer[location] // where the view shows it (SetName)

	beneathUntil atomic.Int64 // a directory: until when (since Tree.epoch) it is trusted beneath the root

	lookups uint64 // protected by Tree.mu

	// Fields protected by fdCache.mu.
	prev, next *Inode    // LRU links, only while fd >= 0 and evictable
	lazy       *location // where to open it (lower name): until it first has a descriptor, or always (Tree.keepNames, no handle)
	fd         int32     // O_PATH descriptor, -1 when not opened yet, fdEvicted when evicted
	users      int32     // callers between Acquire and Release

	// Type is the S_IFMT bits of the inode's mode.
	Type uint32

	handleValid bool // protected by fdCache.mu; cleared when the handle goes stale
	forgotten   bool // protected by fdCache.mu
	inLRU       bool // protected by fdCache.mu
	pinned      bool // protected by fdCache.mu: holds a descriptor it keeps
}

// evictable reports whether the inode's descriptor may be closed and reopened
// by handle or by name. Caller holds fdCache.mu.
func (ino *Inode) evictable() bool { return ino.handleValid || ino.lazy != nil }

// Tree is the inode table of one lower directory.
type Tree struct {
	rootFD   int
	mountFD  int // O_RDONLY descriptor of the root: open_by_handle_at refuses O_PATH ones
	procFD   int // /proc/self/fd, to read descriptors' paths (-1 without /proc)
	rootDev  uint64
	rootPath atomic.Pointer[string] // the root's path now, for Acquire
	handles  bool                   // open_by_handle_at works on this tree
	fs       FSInfo                 // the lower filesystem's type, found at Open
	// keepNames: inodes keep their name after their first open (lazy stays
	// set), to be reopened by it: the tree has no handles, or its handles
	// may go stale (a remote filesystem).
	keepNames bool
	byName    atomic.Uint64 // Reopens.ByPath
	stale     atomic.Uint64 // Reopens.StaleHandles
	recheck   time.Duration // Options.RecheckAfter
	epoch     time.Time     // origin of Inode.beneathUntil
	root      *Inode
	fds       fdCache
	watch     atomic.Pointer[watcher] // set by Watch

	mu     sync.RWMutex
	byKey  map[Key]*Inode
	byID   map[uint64]*Inode
	peak   int // most entries byID had since it was last rebuilt
	nextID uint64
}

// Options tunes a Tree.
type Options struct {
	// MaxFDs bounds the O_PATH descriptors kept open for inodes that can be
	// reopened by handle. Zero means a default derived from RLIMIT_NOFILE.
	MaxFDs int
	// RecheckAfter is how long a directory found beneath the root is
	// trusted to stay there before the next use checks again (see
	// Acquire). Zero checks on every use.
	RecheckAfter time.Duration
	// NoHandles reopens inodes by name even where file handles work, as
	// on a filesystem without them (for tests).
	NoHandles bool
}

// ErrNotDir is returned by Open when the lower root is not a directory.
var ErrNotDir = errors.New("not a directory")

// Open opens the lower tree rooted at path. The path is resolved once, here;
// every later operation is relative to the descriptor opened now.
func Open(path string, opts Options) (*Tree, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOTDIR {
			return nil, fmt.Errorf("lower %q: %w", path, ErrNotDir)
		}
		return nil, fmt.Errorf("lower %q: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat lower %q: %w", path, err)
	}
	mountFD, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		mountFD = -1 // no handles then
	}
	procFD, err := unix.Open("/proc/self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		procFD = -1
	}
	t := &Tree{
		rootFD:  fd,
		mountFD: mountFD,
		procFD:  procFD,
		recheck: opts.RecheckAfter,
		epoch:   time.Now(),
		rootDev: st.Dev,
		byKey:   make(map[Key]*Inode),
		byID:    make(map[uint64]*Inode),
		nextID:  RootID + 1,
	}
	t.fds.max = opts.MaxFDs
	if t.fds.max <= 0 {
		t.fds.max = DefaultMaxFDs()
	}
	root := &Inode{ID: RootID, Key: Key{st.Dev, st.Ino}, Type: st.Mode & unix.S_IFMT, fd: int32(fd), lookups: 1}
	t.root = root
	t.byKey[root.Key] = root
	t.byID[RootID] = root
	if p, err := readlinkString(procPath(fd)); err == nil {
		t.rootPath.Store(&p)
	} else {
		t.rootPath.Store(&path)
	}
	t.handles = !opts.NoHandles && mountFD >= 0 && probeHandles(fd, mountFD)
	t.fs = fsInfo(fd)
	t.fs.Handles = t.handles
	t.keepNames = !t.handles || t.fs.Remote
	return t, nil
}

// DefaultMaxFDs is the descriptor budget of the inode cache: half of the
// soft RLIMIT_NOFILE after raising it to the hard limit, leaving the rest for
// open files, the FUSE device and the rest of the process.
func DefaultMaxFDs() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < 256 {
		return 128
	}
	return int(rl.Cur / 2)
}

// RaiseFDLimit raises the soft RLIMIT_NOFILE to the hard limit, which any
// process may do. It returns the new soft limit.
func RaiseFDLimit() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
		_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur
}

// probeHandles reports whether inodes of the tree can be reopened by handle.
func probeHandles(rootFD, mountFD int) bool {
	h, _, err := unix.NameToHandleAt(rootFD, "", unix.AT_EMPTY_PATH)
	if err != nil {
		return false
	}
	fd, err := unix.OpenByHandleAt(mountFD, h, unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// HandlesSupported reports whether evicted inodes are reopened through
// file handles (rather than by name).
func (t *Tree) HandlesSupported() bool { return t.handles }

// FS describes the lower filesystem as found at Open.
func (t *Tree) FS() FSInfo { return t.fs }

// Reopens returns how evicted inodes were reached again so far.
func (t *Tree) Reopens() Reopens {
	return Reopens{ByPath: t.byName.Load(), StaleHandles: t.stale.Load()}
}

// Close releases every descriptor of the tree. The tree must not be used
// afterwards.
func (t *Tree) Close() {
	if w := t.watch.Swap(nil); w != nil {
		w.close()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fds.mu.Lock()
	for _, ino := range t.byID {
		if ino.fd >= 0 {
			unix.Close(int(ino.fd))
			ino.fd = -1
		}
	}
	t.fds.head, t.fds.tail, t.fds.n = nil, nil, 0
	t.fds.mu.Unlock()
	for _, fd := range []int{t.mountFD, t.procFD} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	t.byID = map[uint64]*Inode{}
	t.byKey = map[Key]*Inode{}
}

// Root returns the root inode.
func (t *Tree) Root() *Inode { return t.root }

// Get returns the inode with the given node ID, or nil.
func (t *Tree) Get(id uint64) *Inode {
	t.mu.RLock()
	ino := t.byID[id]
	t.mu.RUnlock()
	return ino
}

// Len returns the number of inodes in the table.
func (t *Tree) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.byID)
}

// OpenFDs returns how many O_PATH descriptors the table holds.
func (t *Tree) OpenFDs() int {
	t.fds.mu.Lock()
	defer t.fds.mu.Unlock()
	n := t.fds.pinned + t.fds.n
	return n
}

// Forget drops n lookups of the inode; at zero the inode leaves the table and
// its descriptor is closed once no operation uses it.
func (t *Tree) Forget(id, n uint64) {
	if id == RootID {
		return
	}
	t.mu.Lock()
	ino := t.byID[id]
	if ino == nil {
		t.mu.Unlock()
		return
	}
	if ino.lookups > n {
		ino.lookups -= n
		t.mu.Unlock()
		return
	}
	ino.lookups = 0
	delete(t.byID, id)
	if t.byKey[ino.Key] == ino {
		delete(t.byKey, ino.Key)
	}
	t.shrink()
	t.mu.Unlock()
	t.unwatch(ino)
	t.fds.forget(ino)
}

// shrinkMin is the table size below which maps are not rebuilt.
const shrinkMin = 4096

// shrink rebuilds the maps once they hold a quarter of their peak: Go maps
// never give memory back, and a walk of a big tree followed by the kernel
// forgetting it would otherwise keep the peak forever. Caller holds mu.
func (t *Tree) shrink() {
	n := len(t.byID)
	if t.peak < shrinkMin || n > t.peak/4 {
		return
	}
	byID := make(map[uint64]*Inode, n)
	for id, ino := range t.byID {
		byID[id] = ino
	}
	byKey := make(map[Key]*Inode, len(t.byKey))
	for k, ino := range t.byKey {
		byKey[k] = ino
	}
	t.byID, t.byKey, t.peak = byID, byKey, n
}

// register adds a freshly opened inode (fd is an O_PATH descriptor of it, st
// its attributes, at its name when it has one) to the table, or counts one
// more lookup of the inode that is already there. It takes ownership of fd.
//
// Inode numbers are reused once a file is deleted and its last reference is
// gone, which an evicted descriptor no longer prevents; the file handle (which
// carries the generation) tells a reused number from the same file.
func (t *Tree) register(fd int, st *unix.Stat_t, at location) *Inode {
	ino := t.newInode(st)
	ino.handle, ino.handleValid = t.handleOf(fd, st)
	if at.parent != nil && (t.keepNames || !ino.handleValid) {
		kept := at       // allocated only when kept
		ino.lazy = &kept // reopened by name once evicted
	}
	t.mu.Lock()
	if old := t.byKey[ino.Key]; old != nil && t.fds.sameFile(old, ino) {
		old.lookups++
		t.mu.Unlock()
		t.fds.offer(old, fd)
		return old
	}
	t.add(ino)
	t.mu.Unlock()
	dirfd, name := t.magicLink(fd)
	t.watchNew(ino, dirfd, name, true)
	t.fds.install(ino, fd)
	return ino
}

// newInode returns a table entry for st, not yet in the table.
func (t *Tree) newInode(st *unix.Stat_t) *Inode {
	return &Inode{Key: Key{st.Dev, st.Ino}, Type: st.Mode & unix.S_IFMT, fd: -1}
}

// add puts a new inode in the table with one lookup. Caller holds mu.
func (t *Tree) add(ino *Inode) {
	ino.ID = t.nextID
	t.nextID++
	ino.lookups = 1
	t.byKey[ino.Key] = ino // a stale entry with the same key stays in byID until forgotten
	t.byID[ino.ID] = ino
	t.peak = max(t.peak, len(t.byID))
}

// handleOf returns a file handle of the inode open as fd, when the tree
// reopens inodes by handle.
func (t *Tree) handleOf(fd int, st *unix.Stat_t) (unix.FileHandle, bool) {
	if !t.handles || st.Dev != t.rootDev {
		return unix.FileHandle{}, false
	}
	h, _, err := unix.NameToHandleAt(fd, "", unix.AT_EMPTY_PATH)
	if err != nil {
		return unix.FileHandle{}, false
	}
	// An exact-size copy: NameToHandleAt's buffer is much larger.
	return unix.NewFileHandle(h.Type(), h.Bytes()), true
}

// adopt counts one more lookup of the table's inode for st, found as name
// in parent, or adds a new inode for it that is opened only when first used:
// a lookup that only reads attributes then costs one fstatat. It reports
// false when the name must be opened instead: to compare file handles with
// an inode the table knows by handle, or for a hard-linked file.
//
// An inode not opened yet is known by where it was found. Found again under
// another name, it may have been renamed underneath the mount or deleted and
// its number reused: the new name gets a new inode.
//
// A new inode's name is name in the directory dirfd, for the watch.
func (t *Tree) adopt(parent *Inode, dirfd int, name string, st *unix.Stat_t) (*Inode, bool) {
	key, typ := Key{st.Dev, st.Ino}, st.Mode&unix.S_IFMT
	t.mu.Lock()
	if ino := t.byKey[key]; ino != nil && ino.Type == typ {
		switch t.fds.known(ino, parent, name) {
		case knownSame:
			ino.lookups++
			t.mu.Unlock()
			return ino, true
		case knownByHandle:
			t.mu.Unlock()
			return nil, false
		}
	}
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		// A hard-linked file keeps one identity through all its names.
		t.mu.Unlock()
		return nil, false
	}
	ino := t.newInode(st)
	ino.lazy = &location{parent: parent, name: name}
	t.add(ino)
	t.mu.Unlock()
	t.watchNew(ino, dirfd, name, false)
	return ino, true
}

// relocate records that the inode the table holds for st, if it is not
// opened yet and known as from, is now to (a rename through the mount).
func (t *Tree) relocate(st *unix.Stat_t, from, to location) {
	t.mu.RLock()
	ino := t.byKey[Key{st.Dev, st.Ino}]
	t.mu.RUnlock()
	if ino != nil && ino.Type == st.Mode&unix.S_IFMT {
		t.fds.relocate(ino, from, to)
	}
}
