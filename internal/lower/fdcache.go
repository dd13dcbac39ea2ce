package lower

import (
	"sync"

	"golang.org/x/sys/unix"
)

// fdCache bounds the O_PATH descriptors held for inodes. Inodes that can be
// reopened, by handle or by name, sit on an LRU list while they hold a
// descriptor; past max, the least recently used ones that no operation is
// using lose theirs. Inodes that can be reached neither way keep their
// descriptor pinned. Inodes found by a lookup get no descriptor until an
// operation needs one (see Tree.adopt): until then they are known by their
// directory and name.
type fdCache struct {
	mu         sync.Mutex
	max        int
	n          int    // descriptors on the LRU list
	pinned     int    // descriptors of inodes that cannot be reopened
	head, tail *Inode // most and least recently used
}

// knownState is what the table's inode with a lookup's key says about the
// file the lookup found.
type knownState int

const (
	knownOther    knownState = iota // another file: the lookup gets a new inode
	knownSame                       // the same file
	knownByHandle                   // compare file handles to tell
)

// known compares the table's inode ino with a file of the same key and type
// found as name in parent. A held descriptor keeps the inode alive, so its
// number cannot have been reused.
func (c *fdCache) known(ino *Inode, parent *Inode, name string) knownState {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case ino.fd >= 0:
		return knownSame
	case ino.handleValid:
		return knownByHandle
	case ino.lazy != nil:
		if ino.lazy.parent == parent && ino.lazy.name == name {
			return knownSame
		}
	}
	return knownOther
}

// sameFile reports whether the table entry old and fresh, just opened with
// the same key, are the same file.
func (c *fdCache) sameFile(old, fresh *Inode) bool {
	if old.Type != fresh.Type {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case old.fd >= 0:
		return true
	case old.handleValid && fresh.handleValid:
		return string(old.handle.Bytes()) == string(fresh.handle.Bytes()) && old.handle.Type() == fresh.handle.Type()
	case old.fd == fdEvicted && !old.handleValid && old.lazy != nil && fresh.lazy != nil:
		// Reopened by name: found again by that name (as Tree.adopt
		// tells an inode not opened yet).
		return *old.lazy == *fresh.lazy
	}
	// An inode not opened yet is known by name only (see Tree.adopt), and
	// one without a descriptor or handle is stale.
	return false
}

// relocate moves an inode not opened yet from one name to another.
func (c *fdCache) relocate(ino *Inode, from, to location) {
	c.mu.Lock()
	if ino.lazy != nil && *ino.lazy == from {
		ino.lazy = &to
	}
	c.mu.Unlock()
}

// install gives a new inode its first descriptor.
func (c *fdCache) install(ino *Inode, fd int) {
	c.mu.Lock()
	ino.fd = int32(fd)
	victims := c.track(ino)
	c.mu.Unlock()
	closeAll(victims)
}

// track puts ino, which just got its descriptor, on the LRU list or counts
// it as pinned. Caller holds mu and closes what it returns.
func (c *fdCache) track(ino *Inode) []int {
	if ino.evictable() {
		c.pushFront(ino)
		return c.evict()
	}
	ino.pinned = true
	c.pinned++
	return nil
}

// offer gives ino a descriptor if it has none, else closes fd.
func (c *fdCache) offer(ino *Inode, fd int) {
	c.mu.Lock()
	if ino.fd >= 0 || ino.forgotten || !ino.evictable() {
		c.mu.Unlock()
		unix.Close(fd)
		return
	}
	ino.fd = int32(fd)
	victims := c.track(ino)
	c.mu.Unlock()
	closeAll(victims)
}

// fdEvicted marks an inode whose descriptor was given back (fd -1: not
// opened yet), to count reopens by name.
const fdEvicted = -2

// reach is how an inode without a descriptor is opened again.
type reach struct {
	handle   unix.FileHandle
	byHandle bool      // by handle
	at       *location // else (or when the handle is stale) by name
	evicted  bool      // it had a descriptor before
}

// held returns the descriptor ino holds, acquired until release, or -1 with
// how to reopen it.
func (c *fdCache) held(ino *Inode) (int, reach) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ino.fd < 0 {
		return -1, reach{ino.handle, ino.handleValid, ino.lazy, ino.fd == fdEvicted}
	}
	ino.users++
	if ino.inLRU {
		c.unlink(ino)
		c.pushFront(ino)
	}
	return int(ino.fd), reach{}
}

// acquire returns a descriptor of ino that stays open until release: the
// one it holds, or one reopened by handle, or one opened by name (an inode
// not opened yet, or one without a usable handle).
func (c *fdCache) acquire(t *Tree, ino *Inode) (int, error) {
	fd, r := c.held(ino)
	if fd >= 0 {
		return fd, nil
	}
	fd, fresh, freshValid, err := c.reopen(t, ino, r)
	if err != nil {
		return -1, err
	}
	c.mu.Lock()
	if ino.fd >= 0 {
		// Another operation reopened it first.
		ino.users++
		cur := int(ino.fd)
		c.mu.Unlock()
		unix.Close(fd)
		return cur, nil
	}
	if r.at != nil && !ino.handleValid && freshValid {
		ino.handle, ino.handleValid = fresh, true
	}
	if ino.handleValid && !t.keepNames {
		ino.lazy = nil // reopened by handle from now on
	}
	ino.fd = int32(fd)
	ino.users++
	if ino.forgotten {
		// The kernel forgot it meanwhile: the descriptor is closed on release.
		c.mu.Unlock()
		return fd, nil
	}
	victims := c.track(ino)
	c.mu.Unlock()
	closeAll(victims)
	return fd, nil
}

// reopen opens ino, which has no descriptor, as r says: by handle, and by
// name when it has no handle or (with a name to fall back on) the handle
// is stale. It returns the descriptor and, for one opened by name, a fresh
// handle of it where the tree uses handles.
func (c *fdCache) reopen(t *Tree, ino *Inode, r reach) (int, unix.FileHandle, bool, error) {
	if r.byHandle {
		fd, err := unix.OpenByHandleAt(t.mountFD, r.handle, unix.O_PATH|unix.O_CLOEXEC)
		if err != unix.ESTALE {
			return fd, unix.FileHandle{}, false, err
		}
		t.stale.Add(1)
		if r.at == nil {
			return -1, unix.FileHandle{}, false, err
		}
		c.dropHandle(ino)
	}
	if r.at == nil {
		return -1, unix.FileHandle{}, false, unix.ESTALE
	}
	if r.evicted {
		t.byName.Add(1)
	}
	fd, h, ok, err := t.resolve(ino, r.at)
	return fd, h, ok && !r.byHandle, err
}

// dropHandle stops reopening ino by its handle, which went stale: it is
// reopened by name from now on.
func (c *fdCache) dropHandle(ino *Inode) {
	c.mu.Lock()
	ino.handleValid = false
	c.mu.Unlock()
}

// openedAt reports whether ino has been opened and is reopened by name at.
func (c *fdCache) openedAt(ino *Inode, at location) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ino.fd != -1 && !ino.handleValid && ino.lazy != nil && *ino.lazy == at
}

// pin keeps ino's descriptor, which ino holds and an acquire of it keeps
// open, for as long as the kernel knows ino: its name is about to be
// removed, and a name is how it would be reopened.
func (c *fdCache) pin(ino *Inode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ino.handleValid || ino.pinned || ino.fd < 0 {
		return
	}
	ino.lazy = nil
	if ino.inLRU {
		c.unlink(ino)
	}
	if !ino.forgotten {
		ino.pinned = true
		c.pinned++
	}
}

// release ends one acquire of ino.
func (c *fdCache) release(ino *Inode) {
	c.mu.Lock()
	ino.users--
	var victim = -1
	if ino.users == 0 && ino.forgotten && ino.fd >= 0 {
		victim = c.drop(ino)
	}
	c.mu.Unlock()
	if victim >= 0 {
		unix.Close(victim)
	}
}

// reopenable reports whether ino can be reached without its descriptor:
// by its name in its parent or by its handle.
func (c *fdCache) reopenable(ino *Inode) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ino.lazy != nil || ino.handleValid
}

// forget marks ino as gone from the table and closes its descriptor once no
// operation uses it.
func (c *fdCache) forget(ino *Inode) {
	c.mu.Lock()
	ino.forgotten = true
	victim := -1
	if ino.users == 0 && ino.fd >= 0 {
		victim = c.drop(ino)
	}
	c.mu.Unlock()
	if victim >= 0 {
		unix.Close(victim)
	}
}

// drop detaches ino's descriptor and returns it for closing. Caller holds mu.
func (c *fdCache) drop(ino *Inode) int {
	fd := int(ino.fd)
	ino.fd = fdEvicted
	if ino.inLRU {
		c.unlink(ino)
	} else if ino.pinned {
		ino.pinned = false
		c.pinned--
	}
	// A forgotten inode reopened meanwhile is on no list.
	return fd
}

// evict detaches descriptors past the budget, least recently used first,
// skipping those in use. Caller holds mu; the caller closes what it returns.
func (c *fdCache) evict() []int {
	var victims []int
	for ino := c.tail; c.n > c.max && ino != nil; {
		prev := ino.prev
		if ino.users == 0 {
			victims = append(victims, c.drop(ino))
		}
		ino = prev
	}
	return victims
}

func (c *fdCache) pushFront(ino *Inode) {
	ino.prev, ino.next = nil, c.head
	if c.head != nil {
		c.head.prev = ino
	}
	c.head = ino
	if c.tail == nil {
		c.tail = ino
	}
	ino.inLRU = true
	c.n++
}

func (c *fdCache) unlink(ino *Inode) {
	if ino.prev != nil {
		ino.prev.next = ino.next
	} else {
		c.head = ino.next
	}
	if ino.next != nil {
		ino.next.prev = ino.prev
	} else {
		c.tail = ino.prev
	}
	ino.prev, ino.next, ino.inLRU = nil, nil, false
	c.n--
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
