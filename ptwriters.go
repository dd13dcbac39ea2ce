package sievefs

import (
	"sync"
	"sync/atomic"
)

// Attributes of files open for writing with passthrough. The kernel writes
// such files without the daemon, and through a shared mapping without
// telling even its own FUSE inode: the lower file's mtime and ctime move
// while the kernel keeps showing the ones it cached (for up to a day with
// --cache always; xfstests generic/080 and 215). So while an inode has a
// writable passthrough open its attributes are not cached (ttl is 0), what
// the kernel held is dropped when the first such open starts (a create's
// reply gets no attribute timeout instead) and when the last one ends, and
// at every fsync of one.
type ptWriters struct {
	n  atomic.Int64   // inodes in m, read without mu on every reply
	mu sync.RWMutex   // read on every reply while some inode is in m
	m  map[uint64]int // writable passthrough opens by node ID
}

// add counts a writable passthrough open of the inode and reports whether
// it is the first.
func (w *ptWriters) add(id uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = make(map[uint64]int)
	}
	w.m[id]++
	if w.m[id] == 1 {
		w.n.Add(1)
		return true
	}
	return false
}

// remove ends one add and reports whether it was the last of the inode.
func (w *ptWriters) remove(id uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m[id]--; w.m[id] > 0 {
		return false
	}
	delete(w.m, id)
	w.n.Add(-1)
	return true
}

// writing reports whether the inode has a writable passthrough open.
func (w *ptWriters) writing(id uint64) bool {
	if w.n.Load() == 0 {
		return false
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.m[id] > 0
}

// dropAttrs tells the kernel to forget the attributes it holds of the node.
func (fs *fileSystem) dropAttrs(id uint64) {
	if fs.conn != nil {
		fs.conn.InodeNotify(id, -1, 0)
	}
}
